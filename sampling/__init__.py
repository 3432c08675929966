"""Pure sampling core: eligibility, allocation, stratified draw with reserves, digests, verify.

No Flask, no database: NumPy arrays in, NumPy arrays and plain dataclasses out. The flow is

    check_eligibility(frame, rules)        → mask + counts per exclusion reason
    frame_digests(frame, strata, mask)     → publish before the seed is known
    seed = seed_from_public_value(text)    → e.g. the lottery result announced in advance
    draw_all(frame, strata, seed, mask)    → selected + reserve keys per stratum, weights
    verify(frame, strata, seed, recorded)  → differences per stratum
"""

from sampling.allocation import (
    AllocationMethod,
    allocate,
    allocate_capped,
    equal_allocation,
    fixed_allocation,
    neyman_allocation,
    pps_systematic,
    proportional_allocation,
    yamane,
    yamane_allocation,
)
from sampling.draw import (
    DrawResult,
    StratumDraw,
    StratumSpec,
    combined_digest,
    draw_all,
    draw_stratum,
    frame_digests,
    stratum_digest,
)
from sampling.eligibility import (
    DedupScope,
    Eligibility,
    EligibilityRules,
    ExclusionReason,
    check_eligibility,
)
from sampling.errors import SamplingError
from sampling.frame import FrameColumns
from sampling.randomness import (
    priorities,
    seed_from_public_value,
    stratum_generator,
    stratum_seed,
)
from sampling.verify import Difference, DifferenceKind, VerifyReport, verify

__all__ = [
    "AllocationMethod",
    "DedupScope",
    "Difference",
    "DifferenceKind",
    "DrawResult",
    "Eligibility",
    "EligibilityRules",
    "ExclusionReason",
    "FrameColumns",
    "SamplingError",
    "StratumDraw",
    "StratumSpec",
    "VerifyReport",
    "allocate",
    "allocate_capped",
    "check_eligibility",
    "combined_digest",
    "draw_all",
    "draw_stratum",
    "equal_allocation",
    "fixed_allocation",
    "frame_digests",
    "neyman_allocation",
    "pps_systematic",
    "priorities",
    "proportional_allocation",
    "seed_from_public_value",
    "stratum_digest",
    "stratum_generator",
    "stratum_seed",
    "verify",
    "yamane",
    "yamane_allocation",
]
