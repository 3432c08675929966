"""Stratified draw with reserves: counts, uniformity, independence, order invariance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

import sampling.draw as draw_module
from sampling import (
    FrameColumns,
    SamplingError,
    StratumSpec,
    draw_all,
    draw_stratum,
    stratum_digest,
    stratum_seed,
)
from sampling.draw import _rank_candidates

P_MIN = 0.001


def make_frame(sizes: list[int], rng: np.random.Generator, spread: int = 10**9):
    """Frame with sizes[h] rows in stratum h, random unique keys, rows shuffled."""
    stratum = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    key = rng.choice(spread, size=stratum.size, replace=False).astype(np.int64)
    order = rng.permutation(stratum.size)
    return FrameColumns(key[order], stratum[order])


def assert_same(a, b):
    assert a.digests == b.digests
    assert np.array_equal(a.eligible, b.eligible)
    assert np.array_equal(a.selected_keys, b.selected_keys)
    assert np.array_equal(a.selected_offsets, b.selected_offsets)
    assert np.array_equal(a.reserve_keys, b.reserve_keys)
    assert np.array_equal(a.reserve_offsets, b.reserve_offsets)


def test_draw_stratum_counts_no_duplicates_reserves_disjoint():
    rng = np.random.default_rng(1)
    keys = rng.choice(10**6, 300, replace=False)
    d = draw_stratum(keys, 26, 10, rng, stratum_key="u1:citizen")
    assert d.selected.size == 26 and d.reserves.size == 10
    both = np.concatenate([d.selected, d.reserves])
    assert np.unique(both).size == 36
    assert np.isin(both, keys).all()
    assert d.eligible == 300 and d.shortfall == 0
    assert d.weight == pytest.approx(300 / 26)


def test_shortfall_takes_everyone_and_leaves_no_reserves():
    d = draw_stratum(np.array([5, 3, 9, 1]), 10, 5, 123)
    assert sorted(d.selected.tolist()) == [1, 3, 5, 9]
    assert d.reserves.size == 0
    assert d.shortfall == 6
    assert d.weight == 1.0


def test_reserves_partially_filled_when_frame_is_small():
    d = draw_stratum(np.arange(12), 10, 5, 9)
    assert d.selected.size == 10 and d.reserves.size == 2 and d.shortfall == 0


def test_empty_stratum_and_zero_quota():
    empty = draw_stratum(np.array([], dtype=np.int64), 3, 2, 1)
    assert empty.selected.size == 0 and empty.shortfall == 3 and empty.weight == 0.0
    only_reserves = draw_stratum(np.arange(10), 0, 3, 1)
    assert only_reserves.selected.size == 0 and only_reserves.reserves.size == 3


def test_duplicate_keys_rejected():
    with pytest.raises(SamplingError):
        draw_stratum(np.array([1, 2, 2]), 1, 0, 1)
    frame = FrameColumns(np.array([1, 2, 2]), np.array([0, 0, 0]))
    with pytest.raises(SamplingError):
        draw_all(frame, [StratumSpec("a", 1)], 1)


def test_same_key_in_two_strata_is_allowed():
    frame = FrameColumns(np.array([1, 2, 1, 2]), np.array([0, 0, 1, 1]))
    result = draw_all(frame, [StratumSpec("a", 1), StratumSpec("b", 1)], 3)
    assert result.eligible.tolist() == [2, 2]


def test_bad_strata_rejected():
    frame = FrameColumns(np.array([1, 2]), np.array([0, 1]))
    with pytest.raises(SamplingError):
        draw_all(frame, [StratumSpec("a", 1)], 1)  # stratum 1 not listed
    with pytest.raises(SamplingError):
        draw_all(frame, [StratumSpec("a", 1), StratumSpec("a", 1)], 1)
    with pytest.raises(SamplingError):
        StratumSpec("a", -1)


def test_draw_all_matches_draw_stratum_per_stratum():
    rng = np.random.default_rng(2)
    sizes = [0, 1, 5, 40, 300, 2000, 37]
    specs = [StratumSpec(f"s{h}", q, r) for h, (q, r) in
             enumerate([(3, 1), (3, 1), (5, 2), (26, 10), (26, 10), (15, 5), (0, 4)])]
    frame = make_frame(sizes, rng)
    result = draw_all(frame, specs, 77)
    assert len(result) == len(specs)
    for h, spec in enumerate(specs):
        keys = frame.key[frame.stratum == h]
        single = draw_stratum(keys, spec.quota, spec.reserves, stratum_seed(77, spec.key),
                              stratum_key=spec.key)
        got = result[spec.key]
        assert np.array_equal(got.selected, single.selected)
        assert np.array_equal(got.reserves, single.reserves)
        assert got.digest == single.digest and got.eligible == single.eligible
    assert result.n_selected.tolist() == [0, 1, 5, 26, 26, 15, 0]
    assert result.shortfall.tolist() == [3, 2, 0, 0, 0, 0, 0]
    assert result.weights[4] == pytest.approx(300 / 26)
    assert result.selected_weights.size == result.selected_keys.size
    assert np.array_equal(np.unique(result.selected_strata), [1, 2, 3, 4, 5])


def test_eligible_mask_is_applied():
    frame = FrameColumns(np.arange(10), np.zeros(10, dtype=np.int32))
    mask = np.arange(10) % 2 == 0
    result = draw_all(frame, [StratumSpec("a", 10)], 1, mask)
    assert sorted(result[0].selected.tolist()) == [0, 2, 4, 6, 8]
    assert result[0].eligible == 5


def test_result_does_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    frame = make_frame([50, 300, 7, 1000], rng)
    specs = [StratumSpec(f"u{h}", 10, 5) for h in range(4)]
    base = draw_all(frame, specs, 11)
    for _ in range(3):
        shuffled = frame.take(rng.permutation(len(frame)))
        assert_same(base, draw_all(shuffled, specs, 11))


def test_redrawing_one_stratum_leaves_the_others_alone():
    rng = np.random.default_rng(4)
    frame = make_frame([200, 200, 200], rng)
    specs = [StratumSpec(f"u{h}", 20, 5) for h in range(3)]
    base = draw_all(frame, specs, 5)
    # Stratum 1's list changes (rows dropped, quota changed): strata 0 and 2 keep their draw.
    keep = ~((frame.stratum == 1) & (np.arange(len(frame)) % 3 == 0))
    changed_specs = [specs[0], StratumSpec("u1", 30, 0), specs[2]]
    other = draw_all(frame.take(keep), changed_specs, 5)
    for h in (0, 2):
        assert np.array_equal(base[h].selected, other[h].selected)
        assert np.array_equal(base[h].reserves, other[h].reserves)
    assert not np.array_equal(base[1].selected, other[1].selected)
    # Listing the strata in another order, or adding one, changes nothing either.
    reordered = [specs[2], specs[0], specs[1], StratumSpec("new", 3)]
    remap = np.array([1, 2, 0], dtype=np.int32)
    moved = draw_all(FrameColumns(frame.key, remap[frame.stratum]), reordered, 5)
    for spec in specs:
        assert np.array_equal(base[spec.key].selected, moved[spec.key].selected)


def test_different_seed_gives_different_sample():
    frame = make_frame([500], np.random.default_rng(5))
    a = draw_all(frame, [StratumSpec("a", 20)], 1)[0].selected
    b = draw_all(frame, [StratumSpec("a", 20)], 2)[0].selected
    assert not np.array_equal(np.sort(a), np.sort(b))


def test_wide_and_negative_keys_take_the_general_path():
    rng = np.random.default_rng(6)
    keys = rng.integers(-(2**63), 2**63 - 1, 600, dtype=np.int64)
    stratum = (np.arange(600) % 3).astype(np.int32)
    frame = FrameColumns(keys, stratum)
    specs = [StratumSpec(f"h{h}", 7, 3) for h in range(3)]
    result = draw_all(frame, specs, 99)
    for h in range(3):
        single = draw_stratum(keys[stratum == h], 7, 3, stratum_seed(99, f"h{h}"),
                              stratum_key=f"h{h}")
        assert np.array_equal(result[h].selected, single.selected)
        assert np.array_equal(result[h].reserves, single.reserves)
        assert result[h].digest == single.digest


def test_candidate_fallback_gives_the_exact_draw(monkeypatch):
    rng = np.random.default_rng(7)
    frame = make_frame([400, 1000, 250], rng)
    specs = [StratumSpec(f"h{h}", 20, 10) for h in range(3)]
    exact = draw_all(frame, specs, 8)
    monkeypatch.setattr(draw_module, "_Z", -6.0)  # cut far too low: every stratum falls back
    assert_same(exact, draw_all(frame, specs, 8))


def test_ranking_with_truncated_priority_ties_is_exact():
    # Two candidates whose priorities agree on the top bits: the exact fallback must order them.
    prio = np.array([5, (7 << 40) | 2, (7 << 40) | 1, 3, 9], dtype=np.uint64)
    strata = np.array([0, 0, 0, 0, 1])
    order = _rank_candidates(strata, prio, 2)
    assert order.tolist() == [3, 0, 2, 1, 4]


def _first_position_counts(draws: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(draws, minlength=n)


def test_inclusion_is_uniform_over_seeds():
    # 2,000 draws of 5 from 20 with different seeds.
    keys = np.arange(100, 120, dtype=np.int64)
    frame = FrameColumns(keys, np.zeros(20, dtype=np.int32))
    spec = [StratumSpec("x", 5, 3)]
    counts = np.zeros(20)
    first_reserve_rank = np.zeros(15)
    first_selected = np.zeros(20)
    for seed in range(2000):
        d = draw_all(frame, spec, seed)[0]
        counts[d.selected - 100] += 1
        first_selected[d.selected[0] - 100] += 1
        others = np.setdiff1d(keys, d.selected)  # sorted non-selected keys
        first_reserve_rank[np.searchsorted(others, d.reserves[0])] += 1
    assert counts.sum() == 2000 * 5
    assert chisquare(counts).pvalue > P_MIN
    assert chisquare(first_selected).pvalue > P_MIN
    assert chisquare(first_reserve_rank).pvalue > P_MIN


def test_inclusion_is_uniform_with_generators():
    keys = np.arange(20)
    counts = np.zeros(20)
    for seed in range(2000):
        counts[draw_stratum(keys, 5, 0, np.random.default_rng(seed)).selected] += 1
    assert chisquare(counts).pvalue > P_MIN


def test_inclusion_is_uniform_across_strata_in_one_vectorised_draw():
    # 2,000 strata with the same 100 keys, where the candidate cut is active (take 5 + 2).
    n_strata, n = 2000, 100
    frame = FrameColumns(np.tile(np.arange(n), n_strata),
                         np.repeat(np.arange(n_strata, dtype=np.int32), n))
    specs = [StratumSpec(f"commune-{h}:citizen", 5, 2) for h in range(n_strata)]
    result = draw_all(frame, specs, 2024)
    assert np.array_equal(result.n_selected, np.full(n_strata, 5))
    assert chisquare(np.bincount(result.selected_keys, minlength=n)).pvalue > P_MIN
    first_reserve = result.reserve_keys[result.reserve_offsets[:-1]]
    assert chisquare(np.bincount(first_reserve, minlength=n)).pvalue > P_MIN
    # Strata are independent: overlap between consecutive strata's samples is hypergeometric.
    sel = result.selected_keys.reshape(n_strata, 5)
    overlap = [np.intersect1d(sel[h], sel[h + 1]).size for h in range(n_strata - 1)]
    assert np.mean(overlap) == pytest.approx(5 * 5 / n, abs=0.06)


def test_threaded_digests_give_the_same_result(monkeypatch):
    rng = np.random.default_rng(8)
    frame = make_frame([300, 20, 800], rng)
    specs = [StratumSpec(f"h{h}", 12, 4) for h in range(3)]
    plain = draw_all(frame, specs, 4)
    monkeypatch.setattr(draw_module, "_THREADED_FROM", 0)
    assert_same(plain, draw_all(frame, specs, 4))
    monkeypatch.setattr(draw_module, "_PARTS", 3)  # parts of one stratum each
    threaded = draw_all(frame, specs, 4)
    assert_same(plain, threaded)
    assert draw_module.frame_digests(frame, specs) == plain.digests
    # The frame rows of the drawn people are returned too.
    assert np.array_equal(frame.key[threaded.selected_rows], plain.selected_keys)
    assert np.array_equal(frame.key[plain.reserve_rows], plain.reserve_keys)


@pytest.mark.parametrize("with_fingerprint", [False, True])
def test_hash_keys_with_shared_prefixes_sort_exactly(with_fingerprint):
    # 63-bit hash keys (as the service uses) force the (stratum | key prefix | row) sort; keys
    # in tight clusters share their prefix and must still come out in full-key order.
    rng = np.random.default_rng(9)
    centres = rng.integers(0, 2**63 - 1000, 150, dtype=np.int64)
    keys = (centres[:, None] + np.arange(0, 40, 4)[None, :]).ravel()
    stratum = rng.integers(0, 4, keys.size).astype(np.int32)
    fp = rng.integers(0, 2**63 - 1, keys.size, dtype=np.int64) if with_fingerprint else None
    mask = rng.random(keys.size) < 0.8
    order = rng.permutation(keys.size)
    frame = FrameColumns(keys[order], stratum[order],
                         fingerprint=None if fp is None else fp[order])
    specs = [StratumSpec(f"h{h}", 30, 10) for h in range(4)]
    result = draw_all(frame, specs, 123, mask[order])
    for h in range(4):
        rows = (stratum == h) & mask
        single = draw_stratum(keys[rows], 30, 10, stratum_seed(123, f"h{h}"),
                              stratum_key=f"h{h}")
        assert np.array_equal(result[h].selected, single.selected)
        assert np.array_equal(result[h].reserves, single.reserves)
        expected = stratum_digest(f"h{h}", keys[rows], None if fp is None else fp[rows])
        assert result[h].digest == expected


def test_duplicate_hash_keys_rejected():
    keys = np.array([2**62 + 5, 17, 2**62 + 5], dtype=np.int64)
    frame = FrameColumns(keys, np.zeros(3, dtype=np.int32), fingerprint=np.arange(3))
    with pytest.raises(SamplingError):
        draw_all(frame, [StratumSpec("a", 1)], 1)


@pytest.mark.parametrize("fingerprint", [None, np.array([], dtype=np.int64)])
def test_empty_frame_reports_full_shortfall(fingerprint):
    empty = np.array([], dtype=np.int64)
    frame = FrameColumns(empty, empty.astype(np.int32), fingerprint=fingerprint)
    result = draw_all(frame, [StratumSpec("a", 3, 1)], 1)
    assert result.shortfall.tolist() == [3] and result.selected_keys.size == 0
    assert result[0].digest == stratum_digest("a", empty, fingerprint)


@pytest.mark.parametrize("with_fingerprint", [False, True])
@pytest.mark.parametrize(("chunk", "parts"), [(7, 1), (50, 3), (1 << 15, 2)])
def test_chunked_threaded_draw_matches_the_single_stratum_draw(
    monkeypatch, with_fingerprint, chunk, parts
):
    # The national path (frame read in chunks, strata split over threads, steps of whole
    # strata, runs of keys sharing their packed prefix) against the plain per-stratum code.
    monkeypatch.setattr(draw_module, "_CHUNK", chunk)
    monkeypatch.setattr(draw_module, "_PARTS", parts)
    monkeypatch.setattr(draw_module, "_THREADED_FROM", 0)
    rng = np.random.default_rng(12)
    sizes = rng.integers(0, 120, 25)
    sizes[3] = 0
    stratum = np.repeat(np.arange(sizes.size, dtype=np.int32), sizes)
    centres = rng.integers(-(2**62), 2**62, stratum.size // 4 + 1, dtype=np.int64)
    keys = np.concatenate([centres, centres[: stratum.size] + 3])[: stratum.size]
    keys = np.unique(np.concatenate([keys, rng.integers(0, 2**62, stratum.size)]))
    keys = rng.permutation(keys)[: stratum.size]
    fp = rng.integers(0, 2**63 - 1, keys.size, dtype=np.int64) if with_fingerprint else None
    mask = rng.random(keys.size) < 0.85
    specs = [StratumSpec(f"xã-{h}:g", int(rng.integers(0, 30)), int(rng.integers(0, 10)))
             for h in range(sizes.size)]
    order = rng.permutation(keys.size)
    frame = FrameColumns(keys[order], stratum[order],
                         fingerprint=None if fp is None else fp[order])
    result = draw_all(frame, specs, 77, mask[order])
    assert draw_module.frame_digests(frame, specs, mask[order]) == result.digests
    for h, spec in enumerate(specs):
        rows = (stratum == h) & mask
        single = draw_stratum(keys[rows], spec.quota, spec.reserves,
                              stratum_seed(77, spec.key), stratum_key=spec.key)
        assert np.array_equal(result[h].selected, single.selected)
        assert np.array_equal(result[h].reserves, single.reserves)
        assert result[h].eligible == int(rows.sum())
        assert result[h].digest == stratum_digest(spec.key, keys[rows],
                                                  None if fp is None else fp[rows])
    assert np.array_equal(frame.key[result.selected_rows], result.selected_keys)
    assert np.array_equal(frame.key[result.reserve_rows], result.reserve_keys)


def test_key_prefix_ties_across_the_whole_key_range_are_ordered(monkeypatch):
    # Keys spanning all 64 bits leave a short prefix: many rows share it and are put in
    # full-key order by the untie step; a repeated key in one stratum is still an error.
    monkeypatch.setattr(draw_module, "_CHUNK", 64)
    rng = np.random.default_rng(13)
    keys = np.concatenate([[-(2**63), 2**63 - 1], rng.integers(-(2**63), 2**63 - 1, 3000)])
    keys = np.concatenate([keys, keys[:1500] + 1])  # neighbours sharing every prefix bit
    keys = np.unique(keys)
    stratum = rng.integers(0, 3, keys.size).astype(np.int32)
    frame = FrameColumns(keys, stratum, fingerprint=keys ^ 12345)
    specs = [StratumSpec(f"h{h}", 40, 5) for h in range(3)]
    result = draw_all(frame, specs, 5)
    for h in range(3):
        single = draw_stratum(keys[stratum == h], 40, 5, stratum_seed(5, f"h{h}"),
                              stratum_key=f"h{h}")
        assert np.array_equal(result[h].selected, single.selected)
        assert result[h].digest == stratum_digest(f"h{h}", keys[stratum == h],
                                                  keys[stratum == h] ^ 12345)
    twice = FrameColumns(np.append(keys, keys[10]), np.append(stratum, stratum[10]))
    with pytest.raises(SamplingError):
        draw_all(twice, specs, 5)
