"""Recompute a recorded draw from its frame and seed, and list every difference per stratum."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from sampling.draw import DrawResult, StratumDraw, StratumSpec, draw_all
from sampling.frame import FrameColumns

__all__ = ["Difference", "DifferenceKind", "VerifyReport", "verify"]


class DifferenceKind(StrEnum):
    """What disagrees between the recorded draw and the recomputed one."""

    MISSING_STRATUM = "missing_stratum"  # planned stratum absent from the record
    UNEXPECTED_STRATUM = "unexpected_stratum"  # recorded stratum that is not planned
    DIGEST = "digest"  # the eligible frame is not the one the draw was made from
    ELIGIBLE_COUNT = "eligible_count"
    QUOTA = "quota"
    SELECTION = "selection"  # main sample differs (members or order)
    RESERVES = "reserves"  # reserve list differs (members or order)

    @property
    def label(self) -> str:
        """Vietnamese description."""
        return _KIND_LABELS[self]


_KIND_LABELS: dict[DifferenceKind, str] = {
    DifferenceKind.MISSING_STRATUM: "Thiếu tầng trong kết quả đã lưu",
    DifferenceKind.UNEXPECTED_STRATUM: "Tầng không có trong kế hoạch",
    DifferenceKind.DIGEST: "Mã băm danh sách không khớp",
    DifferenceKind.ELIGIBLE_COUNT: "Số người đủ điều kiện không khớp",
    DifferenceKind.QUOTA: "Chỉ tiêu không khớp",
    DifferenceKind.SELECTION: "Danh sách được chọn không khớp",
    DifferenceKind.RESERVES: "Danh sách dự phòng không khớp",
}


@dataclass(frozen=True, slots=True)
class Difference:
    """One disagreement: ``expected`` is recomputed from the frame, ``found`` is recorded."""

    stratum: str
    kind: DifferenceKind
    expected: str
    found: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """All differences found, in stratum order."""

    strata_checked: int
    differences: tuple[Difference, ...]

    @property
    def ok(self) -> bool:
        """True when the recorded draw is exactly reproduced."""
        return not self.differences

    def by_stratum(self) -> dict[str, list[Difference]]:
        """Differences grouped by stratum key."""
        out: dict[str, list[Difference]] = {}
        for d in self.differences:
            out.setdefault(d.stratum, []).append(d)
        return out


def _describe(keys: np.ndarray) -> str:
    return f"{keys.size} keys"


def _compare_keys(expected: np.ndarray, found: np.ndarray) -> str | None:
    """None when equal, else a short description of the first difference (keys, not people)."""
    expected = np.asarray(expected, np.int64)
    found = np.asarray(found, np.int64)
    if expected.size == found.size and np.array_equal(expected, found):
        return None
    n = min(expected.size, found.size)
    diff = np.flatnonzero(expected[:n] != found[:n])
    first = int(diff[0]) if diff.size else n
    return f"first difference at position {first}"


def verify(
    frame: FrameColumns,
    strata: Sequence[StratumSpec],
    seed: int,
    recorded: DrawResult | Iterable[StratumDraw],
    eligible: np.ndarray | None = None,
) -> VerifyReport:
    """Redraw from ``frame`` (with the same eligibility mask) and compare with ``recorded``.

    ``recorded`` is a ``DrawResult`` or ``StratumDraw`` records rebuilt from storage (key,
    quota, selected and reserve keys in order, eligible count, digest).
    """
    fresh = draw_all(frame, strata, seed, eligible)
    found = {r.key: r for r in recorded}
    diffs: list[Difference] = []
    for exp in fresh:
        got = found.pop(exp.key, None)
        if got is None:
            diffs.append(Difference(exp.key, DifferenceKind.MISSING_STRATUM, "present", "absent"))
            continue
        if got.digest != exp.digest:
            diffs.append(Difference(exp.key, DifferenceKind.DIGEST, exp.digest, got.digest))
        if got.eligible != exp.eligible:
            diffs.append(
                Difference(exp.key, DifferenceKind.ELIGIBLE_COUNT, str(exp.eligible),
                           str(got.eligible))
            )
        if got.quota != exp.quota:
            diffs.append(Difference(exp.key, DifferenceKind.QUOTA, str(exp.quota), str(got.quota)))
        where = _compare_keys(exp.selected, got.selected)
        if where is not None:
            diffs.append(
                Difference(exp.key, DifferenceKind.SELECTION,
                           _describe(exp.selected), f"{_describe(got.selected)}, {where}")
            )
        where = _compare_keys(exp.reserves, got.reserves)
        if where is not None:
            diffs.append(
                Difference(exp.key, DifferenceKind.RESERVES,
                           _describe(exp.reserves), f"{_describe(got.reserves)}, {where}")
            )
    for key in found:
        diffs.append(Difference(key, DifferenceKind.UNEXPECTED_STRATUM, "absent", "present"))
    return VerifyReport(strata_checked=len(fresh), differences=tuple(diffs))
