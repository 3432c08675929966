"""Frame digests (canonical encoding) and verification of a recorded draw."""

from __future__ import annotations

import hashlib

import numpy as np

from sampling import (
    DifferenceKind,
    DrawResult,
    FrameColumns,
    StratumDraw,
    StratumSpec,
    combined_digest,
    draw_all,
    frame_digests,
    stratum_digest,
    verify,
)

K = DifferenceKind


def setup():
    rng = np.random.default_rng(0)
    n = 900
    key = rng.choice(10**7, n, replace=False).astype(np.int64)
    stratum = (np.arange(n) % 3).astype(np.int32)
    specs = [StratumSpec("01:citizen", 20, 5), StratumSpec("02:citizen", 20, 5),
             StratumSpec("03:leader", 5, 2)]
    return FrameColumns(key, stratum), specs


def test_digest_follows_the_documented_encoding():
    keys = np.array([30, -2, 7], dtype=np.int64)
    body = (b"survey.sampling.frame/v1\n" + "xã Đông:citizen".encode() + b"\n"
            + (3).to_bytes(8, "little") + b"\x00"
            + b"".join(k.to_bytes(8, "little", signed=True) for k in (-2, 7, 30)))
    assert stratum_digest("xã Đông:citizen", keys) == hashlib.sha256(body).hexdigest()
    fp = np.array([300, -20, 70])  # each key is followed by its row's fingerprint
    body_fp = body[:-24 - 1] + b"\x01" + b"".join(
        k.to_bytes(8, "little", signed=True) + v.to_bytes(8, "little", signed=True)
        for k, v in ((-2, -20), (7, 70), (30, 300)))
    assert stratum_digest("xã Đông:citizen", keys, fp) == hashlib.sha256(body_fp).hexdigest()


def test_frame_digests_match_draw_and_single_stratum_digest():
    frame, specs = setup()
    result = draw_all(frame, specs, 1)
    assert frame_digests(frame, specs) == result.digests
    assert result.digests[1] == stratum_digest("02:citizen", frame.key[frame.stratum == 1])
    lines = "".join(f"{s.key}\t{d}\n" for s, d in zip(specs, result.digests, strict=True))
    assert result.frame_digest == hashlib.sha256(lines.encode()).hexdigest()
    assert combined_digest(specs, result.digests) == result.frame_digest


def test_digest_changes_with_the_frame_not_with_row_order_or_seed():
    frame, specs = setup()
    base = frame_digests(frame, specs)
    assert frame_digests(frame.take(np.arange(len(frame))[::-1]), specs) == base
    assert draw_all(frame, specs, 2).digests == base
    edited = frame.key.copy()
    edited[4] += 1  # row 4 is in stratum 1
    changed = frame_digests(FrameColumns(edited, frame.stratum), specs)
    assert changed[1] != base[1] and changed[0] == base[0] and changed[2] == base[2]


def test_fingerprint_covers_row_content():
    frame, specs = setup()
    fp = np.arange(len(frame), dtype=np.int64) * 31
    with_fp = FrameColumns(frame.key, frame.stratum, fingerprint=fp)
    base = frame_digests(with_fp, specs)
    assert base != frame_digests(frame, specs)
    fp2 = fp.copy()
    fp2[5] ^= 1  # row 5 (stratum 2) was edited, its key did not change
    after = frame_digests(FrameColumns(frame.key, frame.stratum, fingerprint=fp2), specs)
    assert [a != b for a, b in zip(base, after, strict=True)] == [False, False, True]
    # The draw itself only depends on the keys.
    a = draw_all(with_fp, specs, 3)
    b = draw_all(frame, specs, 3)
    assert np.array_equal(a.selected_keys, b.selected_keys)


def test_verify_accepts_an_exact_record():
    frame, specs = setup()
    recorded = draw_all(frame, specs, 42)
    report = verify(frame.take(np.random.default_rng(1).permutation(len(frame))), specs, 42,
                    recorded)
    assert report.ok and report.strata_checked == 3
    rebuilt = [StratumDraw(d.key, d.quota, d.selected.copy(), d.reserves.copy(), d.eligible,
                           d.digest) for d in recorded]
    assert verify(frame, specs, 42, rebuilt).ok


def test_verify_reports_a_changed_frame_row():
    frame, specs = setup()
    recorded = draw_all(frame, specs, 42)
    key = frame.key.copy()
    row = int(np.flatnonzero(frame.stratum == 0)[0])
    key[row] = 10**9  # the entry was replaced after the draw
    report = verify(FrameColumns(key, frame.stratum), specs, 42, recorded)
    assert not report.ok
    assert set(report.by_stratum()) == {"01:citizen"}
    kinds = {d.kind for d in report.differences}
    assert K.DIGEST in kinds
    digest = next(d for d in report.differences if d.kind is K.DIGEST)
    assert digest.expected != digest.found and digest.found == recorded[0].digest


def test_verify_reports_removed_row_counts_and_wrong_seed():
    frame, specs = setup()
    recorded = draw_all(frame, specs, 42)
    keep = np.ones(len(frame), dtype=bool)
    keep[np.flatnonzero(frame.stratum == 2)[:3]] = False
    report = verify(frame, specs, 42, recorded, eligible=keep)
    kinds = {(d.stratum, d.kind) for d in report.differences}
    assert ("03:leader", K.DIGEST) in kinds and ("03:leader", K.ELIGIBLE_COUNT) in kinds
    assert all(s == "03:leader" for s, _ in kinds)
    wrong_seed = verify(frame, specs, 43, recorded)
    assert {d.kind for d in wrong_seed.differences} == {K.SELECTION, K.RESERVES}
    assert len(wrong_seed.by_stratum()) == 3


def test_verify_reports_tampered_selection_and_missing_or_extra_strata():
    frame, specs = setup()
    recorded = list(draw_all(frame, specs, 42))
    d = recorded[0]
    swapped = d.selected.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # order matters: reserves are used in draw order
    recorded[0] = StratumDraw(d.key, d.quota, swapped, d.reserves, d.eligible, d.digest)
    recorded[2] = StratumDraw("99:other", 1, np.array([1]), np.array([]), 1, "x")
    report = verify(frame, specs, 42, recorded)
    found = {(x.stratum, x.kind) for x in report.differences}
    assert found == {("01:citizen", K.SELECTION), ("03:leader", K.MISSING_STRATUM),
                     ("99:other", K.UNEXPECTED_STRATUM)}
    selection = next(x for x in report.differences if x.kind is K.SELECTION)
    assert "position 0" in selection.found
    assert K.SELECTION.label == "Danh sách được chọn không khớp"


def test_draw_result_indexing():
    frame, specs = setup()
    result = draw_all(frame, specs, 5)
    assert isinstance(result, DrawResult)
    assert result.index("02:citizen") == 1
    assert result["02:citizen"].digest == result[1].digest
    assert [d.key for d in result] == [s.key for s in specs]
