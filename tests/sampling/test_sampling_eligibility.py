"""Eligibility filters: each rule, precedence, counts, and the fast membership test."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from sampling import (
    DedupScope,
    EligibilityRules,
    ExclusionReason,
    FrameColumns,
    SamplingError,
    check_eligibility,
)
from sampling.eligibility import isin_sorted

R = ExclusionReason


def frame(**cols):
    n = len(next(iter(cols.values())))
    cols.setdefault("key", np.arange(1, n + 1))
    cols.setdefault("stratum", np.zeros(n, dtype=np.int32))
    return FrameColumns(**cols)


def dates(*days):
    return np.array([np.datetime64(d) if d else np.datetime64("NaT") for d in days],
                    dtype="datetime64[D]")


def test_no_rules_keeps_everyone():
    e = check_eligibility(frame(key=np.arange(5)), EligibilityRules())
    assert e.mask.all() and e.eligible_count == 5 and sum(e.counts.values()) == 0


def test_phone_required():
    f = frame(phone=np.array([84912345678, 0, 84987654321]))
    e = check_eligibility(f, EligibilityRules(require_phone=True))
    assert e.mask.tolist() == [True, False, True]
    assert e.counts[R.NO_PHONE] == 1
    assert check_eligibility(f, EligibilityRules()).mask.all()


def test_reference_period_is_inclusive_and_missing_date_counted():
    f = frame(transaction_date=dates("2024-12-31", "2025-01-01", "2025-12-31", "2026-01-01", None))
    rules = EligibilityRules(period_start=dt.date(2025, 1, 1), period_end=dt.date(2025, 12, 31))
    e = check_eligibility(f, rules)
    assert e.mask.tolist() == [False, True, True, False, False]
    assert e.counts[R.OUTSIDE_PERIOD] == 2 and e.counts[R.MISSING_DATE] == 1
    assert e.reason[4] == R.MISSING_DATE


def test_open_ended_period():
    f = frame(transaction_date=dates("2020-05-01", "2025-06-01"))
    e = check_eligibility(f, EligibilityRules(period_start=dt.date(2025, 1, 1)))
    assert e.mask.tolist() == [False, True]


def test_adults_only_when_birth_year_known():
    f = frame(birth_year=np.array([2007, 2008, 0, 1950, 2030]))
    e = check_eligibility(f, EligibilityRules(reference_year=2025))
    assert e.mask.tolist() == [True, False, True, True, False]
    assert e.counts[R.UNDERAGE] == 2
    # Without a reference year the rule is off.
    assert check_eligibility(f, EligibilityRules()).mask.all()


def test_previously_sampled_phones_and_persons():
    f = frame(phone=np.array([111, 222, 333, 444]), person=np.array([7, 8, 9, 0]))
    rules = EligibilityRules(excluded_phones=np.array([222, 0]), excluded_persons=[9, 0])
    e = check_eligibility(f, rules)
    assert e.mask.tolist() == [True, False, False, True]
    assert e.counts[R.PREVIOUSLY_SAMPLED] == 2


def test_one_per_phone_keeps_smallest_key_whatever_the_row_order():
    key = np.array([50, 10, 30, 20, 40])
    phone = np.array([9, 9, 8, 8, 7])
    e = check_eligibility(frame(key=key, phone=phone),
                          EligibilityRules(one_per_phone=DedupScope.FRAME))
    assert key[e.mask].tolist() == [10, 20, 40]
    assert e.counts[R.DUPLICATE_PHONE] == 2
    order = np.array([4, 2, 0, 3, 1])
    e2 = check_eligibility(frame(key=key[order], phone=phone[order]),
                           EligibilityRules(one_per_phone=DedupScope.FRAME))
    assert sorted(key[order][e2.mask].tolist()) == [10, 20, 40]


def test_one_per_phone_ignores_missing_phones_and_prefers_eligible_rows():
    key = np.array([1, 2, 3, 4])
    phone = np.array([0, 0, 5, 5])
    birth = np.array([1980, 1980, 2015, 1980])  # key 3 is a child: key 4 is the one kept
    e = check_eligibility(frame(key=key, phone=phone, birth_year=birth),
                          EligibilityRules(reference_year=2025, one_per_phone=DedupScope.FRAME))
    assert e.mask.tolist() == [True, True, False, True]
    assert e.reason[2] == R.UNDERAGE


def test_dedup_scope_stratum_vs_frame():
    key = np.array([1, 2, 3])
    phone = np.array([5, 5, 5])
    stratum = np.array([0, 1, 1], dtype=np.int32)
    f = frame(key=key, phone=phone, stratum=stratum)
    by_stratum = check_eligibility(f, EligibilityRules(one_per_phone=DedupScope.STRATUM))
    assert by_stratum.mask.tolist() == [True, True, False]
    whole = check_eligibility(f, EligibilityRules(one_per_phone=DedupScope.FRAME))
    assert whole.mask.tolist() == [True, False, False]


def test_shared_list_entry_repeated_in_several_strata_stays_eligible():
    f = frame(key=np.array([1, 1, 1, 2]), phone=np.array([5, 5, 5, 5]),
              stratum=np.array([0, 1, 2, 0], dtype=np.int32))
    e = check_eligibility(f, EligibilityRules(one_per_phone=DedupScope.FRAME))
    assert e.mask.tolist() == [True, True, True, False]


def test_first_reason_wins_and_counts_add_up():
    f = frame(phone=np.array([0, 5, 5, 6, 7]),
              transaction_date=dates("2025-03-01", "2019-01-01", "2025-03-01", "2025-03-01",
                                     "2025-03-01"),
              birth_year=np.array([2015, 2015, 1990, 1990, 1990]))
    rules = EligibilityRules.for_campaign(
        phone_mode=True, period_start=dt.date(2025, 1, 1), period_end=dt.date(2025, 12, 31),
        reference_year=2025, excluded_phones=[6])
    e = check_eligibility(f, rules)
    assert e.reason.tolist() == [R.NO_PHONE, R.OUTSIDE_PERIOD, 0, R.PREVIOUSLY_SAMPLED, 0]
    assert e.eligible_count + sum(e.counts.values()) == 5
    table = e.by_stratum(np.array([0, 0, 1, 1, 1]), 2)
    assert table[:, 0].tolist() == [0, 2]
    assert table[0, R.NO_PHONE] == 1 and table[1, R.PREVIOUSLY_SAMPLED] == 1


def test_missing_columns_are_errors():
    f = frame(key=np.arange(3))
    with pytest.raises(SamplingError):
        check_eligibility(f, EligibilityRules(require_phone=True))
    with pytest.raises(SamplingError):
        check_eligibility(f, EligibilityRules(period_end=dt.date(2025, 1, 1)))
    with pytest.raises(SamplingError):
        check_eligibility(f, EligibilityRules(excluded_persons=[1]))
    with pytest.raises(SamplingError):
        EligibilityRules(period_start=dt.date(2025, 2, 1), period_end=dt.date(2025, 1, 1))


def _scramble(ids: np.ndarray) -> np.ndarray:
    """A bijection of non-zero ids onto full-range 64-bit values, as hashed phones would be."""
    out = ids.astype(np.int64).view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return np.where(ids == 0, 0, out.view(np.int64))


@pytest.mark.parametrize("hashed", [False, True])  # packed value sort / hash-bitmap path
@pytest.mark.parametrize("scope", [DedupScope.FRAME, DedupScope.STRATUM])
def test_large_frame_filters_agree_with_naive_computation(hashed, scope):
    rng = np.random.default_rng(0)
    n = 100_000
    key = rng.permutation(n).astype(np.int64) + 1
    stratum = rng.integers(0, 3, n).astype(np.int32)
    phone = rng.integers(1, 80_000, n)  # many repeated phones
    phone[rng.random(n) < 0.05] = 0
    previous = rng.choice(80_000, 3_000, replace=False) + 1
    if hashed:
        phone, previous = _scramble(phone), _scramble(previous)
        assert phone.min() < 0
    f = frame(key=key, phone=phone, stratum=stratum)
    rules = EligibilityRules(require_phone=True, excluded_phones=previous, one_per_phone=scope)
    e = check_eligibility(f, rules)
    ok = (phone != 0) & ~np.isin(phone, previous)
    group = (lambda i: phone[i]) if scope is DedupScope.FRAME else (
        lambda i: (phone[i], stratum[i]))
    best: dict[object, int] = {}
    for i in np.flatnonzero(ok).tolist():
        g = group(i)
        best[g] = min(int(key[i]), best.get(g, int(key[i])))
    expected = ok.copy()
    for i in np.flatnonzero(ok).tolist():
        expected[i] = best[group(i)] == key[i]
    assert np.array_equal(e.mask, expected)
    assert e.counts[R.PREVIOUSLY_SAMPLED] == int(((phone != 0) & np.isin(phone, previous)).sum())


def test_isin_sorted_matches_numpy():
    rng = np.random.default_rng(1)
    values = rng.integers(-(2**62), 2**62, 300_000)
    members = np.unique(np.concatenate([rng.choice(values, 5_000), rng.integers(0, 10**6, 500)]))
    assert np.array_equal(isin_sorted(values, members), np.isin(values, members))
    small = np.unique(values[:5])
    assert np.array_equal(isin_sorted(values[:100], small), np.isin(values[:100], small))
    assert not isin_sorted(values, np.empty(0, np.int64)).any()


def test_threaded_phone_sort_gives_the_same_result(monkeypatch):
    import sampling.eligibility as module

    rng = np.random.default_rng(3)
    n = 20_000
    f = frame(key=rng.permutation(n) + 1, phone=rng.integers(0, 9_000, n),
              birth_year=rng.integers(1990, 2015, n))
    rules = EligibilityRules(require_phone=True, reference_year=2025,
                             excluded_phones=np.arange(1, 300), one_per_phone=DedupScope.FRAME)
    plain = check_eligibility(f, rules)
    monkeypatch.setattr(module, "_THREADED_SORT_FROM", 0)
    threaded = check_eligibility(f, rules)
    assert np.array_equal(plain.reason, threaded.reason)
    assert plain.counts == threaded.counts and plain.counts[R.DUPLICATE_PHONE] > 0


def _naive_reasons(f, rules):
    """Row by row, in the documented order: the first reason that applies."""
    reason = np.zeros(len(f), dtype=np.uint8)
    ex = set(rules.excluded_phones.tolist())
    for i in range(len(f)):
        d = f.transaction_date[i]
        if f.phone[i] == 0:
            reason[i] = R.NO_PHONE
        elif np.isnat(d):
            reason[i] = R.MISSING_DATE
        elif not rules.period_start <= d.astype(object) <= rules.period_end:
            reason[i] = R.OUTSIDE_PERIOD
        elif f.birth_year[i] and rules.reference_year - f.birth_year[i] < rules.min_age:
            reason[i] = R.UNDERAGE
        elif int(f.phone[i]) in ex:
            reason[i] = R.PREVIOUSLY_SAMPLED
    best: dict[int, int] = {}
    for i in np.flatnonzero(reason == 0).tolist():
        p = int(f.phone[i])
        best[p] = min(int(f.key[i]), best.get(p, int(f.key[i])))
    for i in np.flatnonzero(reason == 0).tolist():
        if best[int(f.phone[i])] != f.key[i]:
            reason[i] = R.DUPLICATE_PHONE
    return reason


@pytest.mark.parametrize("chunk", [5, 1 << 16])
def test_chunked_threaded_filters_agree_with_row_by_row_rules(monkeypatch, chunk):
    # Column passes in chunks (chunk boundaries anywhere), phones split into two value ranges
    # sorted by two threads: the result must be the row-by-row one.
    import sampling.eligibility as module

    rng = np.random.default_rng(11)
    n = 3_000
    phone = rng.integers(1, 1_500, n)  # many shared phones, on both sides of the split
    phone[rng.random(n) < 0.05] = 0
    day = np.datetime64("2025-01-01") + rng.integers(-30, 400, n).astype("timedelta64[D]")
    day[rng.random(n) < 0.05] = np.datetime64("NaT")
    birth = rng.integers(1995, 2012, n).astype(np.int32)
    birth[rng.random(n) < 0.3] = 0
    f = frame(key=rng.permutation(n) + 1, phone=phone, transaction_date=day, birth_year=birth)
    rules = EligibilityRules(require_phone=True, period_start=dt.date(2025, 1, 1),
                             period_end=dt.date(2025, 12, 31), reference_year=2025,
                             excluded_phones=np.arange(1, 1_500, 7),
                             one_per_phone=DedupScope.FRAME)
    monkeypatch.setattr(module, "_CHUNK", chunk)
    monkeypatch.setattr(module, "_THREADED_SORT_FROM", 0)
    got = check_eligibility(f, rules)
    expected = _naive_reasons(f, rules)
    assert np.array_equal(got.reason, expected)
    assert got.counts == {r: int((expected == r).sum()) for r in R}
    assert all(got.counts[r] > 0 for r in R)
