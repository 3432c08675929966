"""Benchmark of the sampling hot path.

    python benchmarks/bench_sampling.py --part core --rows 5000000

``core``: the pure core on a synthetic national frame (3,321 communes × 5 groups = 16,605
strata): eligibility filters, frame digests and the stratified draw with reserves.
``all``: the core, then the end-to-end database half when it exists (``bench_end_to_end``,
to be added by the service side: load frame entries, draw, write assignments).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from sampling import (
    DedupScope,
    EligibilityRules,
    FrameColumns,
    StratumSpec,
    check_eligibility,
    draw_all,
    frame_digests,
    seed_from_public_value,
)

T = TypeVar("T")
GROUP_QUOTAS = ((15, 0), (5, 2), (3, 1), (26, 10), (10, 5))  # (quota, reserves) per group


def _timed(label: str, fn: Callable[[], T], timings: dict[str, float]) -> T:
    t0 = time.perf_counter()
    out = fn()
    timings[label] = time.perf_counter() - t0
    return out


def synthetic_frame(
    rows: int, units: int, groups: int, rng: np.random.Generator
) -> tuple[FrameColumns, list[StratumSpec]]:
    """A random frame: keys are shuffled database-like ids, ~3 % rows fail some filter."""
    n_strata = units * groups
    strata = [
        StratumSpec(f"{u:05d}:{g}", *GROUP_QUOTAS[g % len(GROUP_QUOTAS)])
        for u in range(units)
        for g in range(groups)
    ]
    key = rng.permutation(np.arange(1, rows + 1, dtype=np.int64) * 3 + 1_000_000)
    stratum = rng.integers(0, n_strata, rows, dtype=np.int32)
    phone = rng.integers(84_300_000_000, 84_999_999_999, rows, dtype=np.int64)
    phone[rng.random(rows) < 0.01] = 0  # missing phone
    dup = rng.random(rows) < 0.01  # same person listed twice
    phone[dup] = phone[rng.integers(0, rows, int(dup.sum()))]
    day0 = np.datetime64("2025-01-01")
    dates = day0 + rng.integers(-20, 365, rows).astype("timedelta64[D]")
    birth = rng.integers(1940, 2010, rows, dtype=np.int32)
    birth[rng.random(rows) < 0.3] = 0  # unknown birth year
    frame = FrameColumns(key, stratum, phone=phone, transaction_date=dates, birth_year=birth)
    return frame, strata


def bench_core(rows: int = 5_000_000, units: int = 3321, groups: int = 5) -> dict[str, float]:
    """Time eligibility + digests + draw_all on a synthetic frame; print and return timings."""
    rng = np.random.default_rng(20250101)
    frame, strata = synthetic_frame(rows, units, groups, rng)
    previous = rng.choice(frame.phone, 50_000, replace=False)
    rules = EligibilityRules.for_campaign(
        phone_mode=True,
        period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2025, 12, 31),
        reference_year=2025,
        excluded_phones=previous,
        one_per_phone=DedupScope.FRAME,
    )
    seed = seed_from_public_value("Xổ số kiến thiết 01/01/2026: 123456")
    timings: dict[str, float] = {}
    elig = _timed("eligibility", lambda: check_eligibility(frame, rules), timings)
    _timed("digests only", lambda: frame_digests(frame, strata, elig.mask), timings)
    result = _timed("draw_all (incl. digests)", lambda: draw_all(frame, strata, seed, elig.mask),
                    timings)
    core = timings["eligibility"] + timings["draw_all (incl. digests)"]
    timings["core total"] = core

    print(f"frame: {rows:,} rows, {len(strata):,} strata, {elig.eligible_count:,} eligible")
    for reason, count in elig.counts.items():
        print(f"  excluded {reason.name.lower():<20} {count:>10,}")
    print(
        f"drawn: {result.selected_keys.size:,} selected, {result.reserve_keys.size:,} reserves, "
        f"{int((result.shortfall > 0).sum()):,} strata short by {int(result.shortfall.sum()):,}"
    )
    for label, seconds in timings.items():
        print(f"  {label:<26} {seconds * 1000:8.1f} ms  {rows / seconds / 1e6:7.1f} M rows/s")
    return timings


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--units", type=int, default=3321)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--part", choices=("core", "all"), default="core")
    args = parser.parse_args(argv)
    bench_core(args.rows, args.units, args.groups)
    if args.part == "all":
        end_to_end = globals().get("bench_end_to_end")
        if end_to_end is None:
            print("end-to-end (database) half: not written yet")
        else:
            end_to_end(args.rows)


if __name__ == "__main__":
    main()
