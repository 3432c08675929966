"""Vectorised statistical helpers used by the scorer: intervals, effective n, ranking.

Everything takes and returns NumPy arrays (scalars broadcast), so one call handles every unit of
a campaign. Percentages are on the 0..100 scale; proportions on 0..1.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

Z95 = float(sps.norm.ppf(0.975))  # 1.959963…
UNRANKED = -1  # rank given to units without a score


def kish_n_eff(sum_w: np.ndarray, sum_w2: np.ndarray) -> np.ndarray:
    """Kish effective sample size (Σw)² / Σw²; 0 where there is no weight at all."""
    sum_w = np.asarray(sum_w, dtype=float)
    sum_w2 = np.asarray(sum_w2, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sum_w2 > 0, sum_w * sum_w / np.where(sum_w2 > 0, sum_w2, 1.0), 0.0)
    return out


def fpc_factor(n: np.ndarray, frame_size: np.ndarray | None) -> np.ndarray:
    """Finite population correction sqrt((N-n)/(N-1)) for standard errors.

    `frame_size` entries that are NaN, missing or < 2 mean "unknown": factor 1. A sample at least
    as large as its frame (a census) gets factor 0.
    """
    n = np.asarray(n, dtype=float)
    if frame_size is None:
        return np.ones_like(n)
    big_n = np.broadcast_to(np.asarray(frame_size, dtype=float), n.shape)
    known = np.isfinite(big_n) & (big_n >= 2)
    safe_n = np.where(known, big_n, 2.0)
    with np.errstate(invalid="ignore"):
        ratio = np.clip((safe_n - n) / (safe_n - 1.0), 0.0, 1.0)
    return np.where(known, np.sqrt(ratio), 1.0)


def wilson_interval(p: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for proportions `p` (0..1) observed on (effective) sizes `n`.

    `n` may be fractional (Kish n_eff, possibly enlarged by a finite population correction).
    Where n <= 0 or p is NaN the bounds are NaN.
    """
    p = np.asarray(p, dtype=float)
    n = np.asarray(n, dtype=float)
    ok = (n > 0) & np.isfinite(p) & np.isfinite(n)
    safe_n = np.where(ok, n, 1.0)
    safe_p = np.where(ok, p, 0.5)
    z2 = z * z
    denom = 1.0 + z2 / safe_n
    centre = (safe_p + z2 / (2.0 * safe_n)) / denom
    half = z * np.sqrt(np.maximum(safe_p * (1.0 - safe_p), 0.0) / safe_n + z2 / (4.0 * safe_n**2))
    half = half / denom
    low = np.where(ok, np.clip(centre - half, 0.0, 1.0), np.nan)
    high = np.where(ok, np.clip(centre + half, 0.0, 1.0), np.nan)
    return low, high


def t_quantile(df: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Two-sided Student t critical value for `df` degrees of freedom (NaN where df < 1)."""
    df = np.asarray(df, dtype=float)
    ok = df >= 1
    q = sps.t.ppf(0.5 + level / 2.0, np.where(ok, df, 1.0))
    return np.where(ok, q, np.nan)


def rank_competition(scores: np.ndarray, decimals: int = 2) -> np.ndarray:
    """Competition ranking ("1224"): highest score ranks 1, equal scores share the best rank.

    Ties are judged on scores rounded to `decimals` (the precision that is published), so two
    units shown as 87.35 % share a rank even if their unrounded scores differ. The next distinct
    score skips the shared places (1, 2, 2, 4). NaN scores get `UNRANKED` (-1).
    """
    s = np.asarray(scores, dtype=float)
    ranks = np.full(s.shape, UNRANKED, dtype=np.int64)
    scored = np.flatnonzero(np.isfinite(s))
    if scored.size == 0:
        return ranks
    rounded = np.round(s[scored], decimals)
    order = np.argsort(-rounded, kind="stable")
    sorted_vals = rounded[order]
    pos = np.arange(sorted_vals.size)
    starts_group = np.ones(sorted_vals.size, dtype=bool)
    starts_group[1:] = sorted_vals[1:] != sorted_vals[:-1]
    first_pos = np.maximum.accumulate(np.where(starts_group, pos, 0))
    ranks[scored[order]] = first_pos + 1
    return ranks


def nanquantile_first_axis(values: np.ndarray, q: float) -> np.ndarray:
    """`np.nanquantile(values, q, axis=0)` (linear interpolation), vectorised.

    NumPy's nanquantile loops over columns in Python when some contain NaN; this sorts once
    (NaN sorts last) and interpolates inside each column's finite part. All-NaN columns → NaN.
    """
    ordered = np.sort(values, axis=0)
    k = np.isfinite(ordered).sum(axis=0)
    pos = q * np.maximum(k - 1, 0)
    below = np.floor(pos).astype(np.intp)
    above = np.minimum(below + 1, np.maximum(k - 1, 0))
    frac = pos - below
    lo = np.take_along_axis(ordered, below[None], axis=0)[0]
    hi = np.take_along_axis(ordered, above[None], axis=0)[0]
    return np.where(k > 0, lo + frac * (hi - lo), np.nan)
