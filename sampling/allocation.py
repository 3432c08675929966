"""How many people to draw from each unit, and systematic PPS selection of units.

Every allocation returns non-negative integers capped at the stratum sizes. Allocations of a
total add up exactly to ``min(total, what the caps allow)``: shares are computed, units whose
share exceeds their cap are fixed at the cap and the freed amount is shared again among the
others; the remaining fractions are rounded by the largest-remainder (Hamilton) method, ties
going to the earlier unit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from fractions import Fraction

import numpy as np

from sampling.errors import SamplingError

__all__ = [
    "AllocationMethod",
    "allocate",
    "allocate_capped",
    "equal_allocation",
    "fixed_allocation",
    "neyman_allocation",
    "pps_systematic",
    "proportional_allocation",
    "yamane",
    "yamane_allocation",
]

ArrayLike = Sequence[float] | np.ndarray


class AllocationMethod(StrEnum):
    """How a campaign sets the per-unit quotas."""

    FIXED = "fixed"  # the same quota for every unit (capped by its size)
    EQUAL = "equal"  # a total split equally
    PROPORTIONAL = "proportional"  # a total split in proportion to frame size or volume
    YAMANE = "yamane"  # n = ceil(N / (1 + N e²)) for each unit
    NEYMAN = "neyman"  # a total split in proportion to N_h × S_h

    @property
    def label(self) -> str:
        """Vietnamese name of the method."""
        return _METHOD_LABELS[self]


_METHOD_LABELS: dict[AllocationMethod, str] = {
    AllocationMethod.FIXED: "Chỉ tiêu cố định mỗi đơn vị",
    AllocationMethod.EQUAL: "Chia đều tổng số phiếu",
    AllocationMethod.PROPORTIONAL: "Tỷ lệ với quy mô danh sách hoặc số giao dịch",
    AllocationMethod.YAMANE: "Công thức Yamane n = N / (1 + N·e²)",
    AllocationMethod.NEYMAN: "Phân bổ tối ưu Neyman",
}


def _sizes(sizes: ArrayLike, name: str = "sizes") -> np.ndarray:
    arr = np.asarray(sizes)
    if arr.ndim != 1:
        raise SamplingError(f"{name} must be one-dimensional")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(arr == np.floor(arr)):
            raise SamplingError(f"{name} must be whole numbers")
    arr = arr.astype(np.int64)
    if np.any(arr < 0):
        raise SamplingError(f"{name} must be non-negative")
    return arr


def _total(total: int) -> int:
    if isinstance(total, bool) or not isinstance(total, int | np.integer) or total < 0:
        raise SamplingError("the total must be a non-negative integer")
    return int(total)


def allocate_capped(total: int, weights: ArrayLike, caps: ArrayLike) -> np.ndarray:
    """Split ``total`` in proportion to ``weights``, each unit at most its cap, exact integers.

    Units with zero weight get nothing. The result sums to ``min(total, sum of caps of units
    with positive weight)``.
    """
    total = _total(total)
    w = np.asarray(weights, dtype=np.float64)
    cap = _sizes(caps, "caps")
    if w.shape != cap.shape:
        raise SamplingError("weights and caps differ in length")
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise SamplingError("weights must be finite and non-negative")
    out = np.zeros(cap.size, dtype=np.int64)
    active = (w > 0) & (cap > 0)
    remaining = min(total, int(cap[active].sum()))
    # Fix units whose share exceeds their cap, then share again what they leave (at most one
    # pass per unit, usually two or three).
    while remaining > 0 and active.any():
        share = np.zeros(cap.size)
        share[active] = remaining * w[active] / w[active].sum()
        over = active & (share >= cap)
        if not over.any():
            break
        out[over] = cap[over]
        remaining -= int(cap[over].sum())
        active &= ~over
    if remaining > 0 and active.any():
        floor = np.minimum(np.floor(share).astype(np.int64), cap)
        floor[~active] = 0
        left = remaining - int(floor.sum())
        frac = np.where(active & (floor < cap), share - floor, -1.0)
        order = np.argsort(-frac, kind="stable")
        floor[order[:left]] += 1
        out += floor
    return out


def fixed_allocation(quota: int, sizes: ArrayLike) -> np.ndarray:
    """The same quota for every unit, capped at the unit's size."""
    return np.minimum(_total(quota), _sizes(sizes))


def equal_allocation(total: int, sizes: ArrayLike) -> np.ndarray:
    """``total`` split equally across units, capped at sizes, what caps free redistributed."""
    n = _sizes(sizes)
    return allocate_capped(total, np.ones(n.size), n)


def proportional_allocation(
    total: int, sizes: ArrayLike, measure: ArrayLike | None = None
) -> np.ndarray:
    """``total`` in proportion to ``measure`` (default: the sizes), capped at ``sizes``.

    ``measure`` is e.g. the unit's transaction volume when quotas follow volume (Hội An).
    """
    n = _sizes(sizes)
    return allocate_capped(total, n if measure is None else measure, n)


def neyman_allocation(total: int, sizes: ArrayLike, std_devs: ArrayLike) -> np.ndarray:
    """Neyman allocation: ``total`` in proportion to N_h × S_h, capped at N_h."""
    n = _sizes(sizes)
    s = np.asarray(std_devs, dtype=np.float64)
    if s.shape != n.shape:
        raise SamplingError("sizes and standard deviations differ in length")
    if np.any(~np.isfinite(s)) or np.any(s < 0):
        raise SamplingError("standard deviations must be finite and non-negative")
    return allocate_capped(total, n * s, n)


def _fraction(value: float) -> Fraction:
    # Through str() so that e = 0.05 means exactly 1/20, not its binary approximation:
    # ceil() must not jump when N/(1+Ne²) is a whole number.
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def yamane(size: int, margin: float = 0.05) -> int:
    """Yamane's n = ceil(N / (1 + N·e²)), capped by N, in exact arithmetic."""
    n = int(size)
    if n < 0:
        raise SamplingError("the population size must be non-negative")
    e = _fraction(margin)
    if not 0 < e < 1:
        raise SamplingError("the margin of error must be between 0 and 1")
    return min(n, math.ceil(Fraction(n) / (1 + n * e * e)))


def yamane_allocation(sizes: ArrayLike, margin: float = 0.05) -> np.ndarray:
    """Yamane's n for every unit (vectorised exact integer arithmetic)."""
    n = _sizes(sizes)
    e = _fraction(margin)
    if not 0 < e < 1:
        raise SamplingError("the margin of error must be between 0 and 1")
    e2 = e * e
    p, q = e2.numerator, e2.denominator
    # N / (1 + N p/q) = N q / (q + N p); ceil(a / b) = -(-a // b).
    return np.minimum(n, -(-(n * q) // (q + n * p)))


def allocate(
    method: AllocationMethod,
    sizes: ArrayLike,
    *,
    total: int | None = None,
    quota: int | None = None,
    measure: ArrayLike | None = None,
    std_devs: ArrayLike | None = None,
    margin: float = 0.05,
) -> np.ndarray:
    """Per-unit sample sizes by ``method`` (see ``AllocationMethod``); one entry per unit."""
    if method is AllocationMethod.FIXED:
        if quota is None:
            raise SamplingError("a fixed allocation needs the quota per unit")
        return fixed_allocation(quota, sizes)
    if method is AllocationMethod.YAMANE:
        return yamane_allocation(sizes, margin)
    if total is None:
        raise SamplingError(f"the {method.value} allocation needs a total")
    if method is AllocationMethod.EQUAL:
        return equal_allocation(total, sizes)
    if method is AllocationMethod.PROPORTIONAL:
        return proportional_allocation(total, sizes, measure)
    if std_devs is None:
        raise SamplingError("Neyman allocation needs standard deviations")
    return neyman_allocation(total, sizes, std_devs)


def pps_systematic(sizes: ArrayLike, n: int, rng: np.random.Generator) -> np.ndarray:
    """Select ``n`` units with probability proportional to size, systematically.

    Units whose size reaches the sampling interval (total size / units still to draw) are taken
    with certainty and removed, repeatedly, until no remaining unit reaches it; the rest are
    drawn with a random start in [0, interval) along the cumulated sizes, in the given order
    (sort the units by a stable key, e.g. geography, before calling). Inclusion probability is
    n'·size/total' for the non-certainty units. Units of size 0 are never selected. Returns the
    selected unit indices in ascending order.
    """
    size = np.asarray(sizes, dtype=np.float64)
    if size.ndim != 1 or np.any(~np.isfinite(size)) or np.any(size < 0):
        raise SamplingError("unit sizes must be finite and non-negative")
    n = _total(n)
    positive = np.flatnonzero(size > 0)
    if n >= positive.size:
        return positive
    certain = np.zeros(size.size, dtype=bool)
    left = n
    while left > 0:
        rest = ~certain & (size > 0)
        interval = size[rest].sum() / left
        big = rest & (size >= interval)
        if not big.any():
            break
        certain |= big
        left = n - int(certain.sum())
    chosen = [np.flatnonzero(certain)]
    if left > 0:
        rest_idx = np.flatnonzero(~certain & (size > 0))
        cum = np.cumsum(size[rest_idx])
        interval = cum[-1] / left
        points = rng.uniform(0.0, interval) + interval * np.arange(left)
        hit = np.minimum(np.searchsorted(cum, points, side="right"), rest_idx.size - 1)
        chosen.append(rest_idx[hit])
    return np.sort(np.concatenate(chosen))
