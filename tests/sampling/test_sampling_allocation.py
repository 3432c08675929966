"""Allocation of a total across units, Yamane, Neyman, and systematic PPS."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chisquare

from sampling import (
    AllocationMethod,
    SamplingError,
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


def test_yamane_hand_computed_values():
    assert yamane(100) == 80  # 100 / 1.25
    assert yamane(1000) == 286  # 1000 / 3.5 = 285.7
    assert yamane(400) == 200  # exactly 200: no spurious rounding up
    assert yamane(100, 0.1) == 50
    assert yamane(1) == 1 and yamane(0) == 0
    assert yamane(10**7) == 400  # tends to 1/e²


def test_yamane_vectorised_matches_scalar_and_exact_formula():
    sizes = np.arange(0, 5001)
    got = yamane_allocation(sizes)
    assert got.tolist() == [yamane(int(n)) for n in sizes]
    assert all(g == min(n, math.ceil(n * 400 / (400 + n))) for n, g in zip(sizes, got,
                                                                             strict=True))
    assert np.all(got <= sizes)


def test_yamane_bad_margin():
    with pytest.raises(SamplingError):
        yamane(100, 0)
    with pytest.raises(SamplingError):
        yamane_allocation([100], 1.5)


def test_largest_remainder_ties_go_to_the_first_unit():
    assert proportional_allocation(10, [5, 5, 5]).tolist() == [4, 3, 3]
    assert equal_allocation(7, [100, 100, 100, 100]).tolist() == [2, 2, 2, 1]


def test_caps_are_respected_and_freed_quota_redistributed():
    got = allocate_capped(100, [1, 1, 1], [10, 100, 100])
    assert got.tolist() == [10, 45, 45]
    # A cascade: freeing one cap pushes another over its cap.
    got = proportional_allocation(60, [2, 30, 100], measure=[10, 10, 1])
    assert got.tolist() == [2, 30, 28] and got.sum() == 60


def test_total_above_capacity_gives_every_unit_its_cap():
    assert equal_allocation(1000, [3, 0, 7]).tolist() == [3, 0, 7]


def test_zero_weight_units_get_nothing():
    assert allocate_capped(10, [0, 1, 3], [50, 50, 50]).tolist() == [0, 3, 7]


def test_allocation_sums_are_exact_for_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(1, 40))
        sizes = rng.integers(0, 200, k)
        total = int(rng.integers(0, 3000))
        measure = rng.random(k) * rng.integers(0, 2, k)
        sds = rng.random(k) * 5
        capacity = int(sizes.sum())
        for got, cap_total in (
            (equal_allocation(total, sizes), capacity),
            (proportional_allocation(total, sizes), capacity),
            (proportional_allocation(total, sizes, measure), int(sizes[measure > 0].sum())),
            (neyman_allocation(total, sizes, sds), int(sizes[sds > 0].sum())),
        ):
            assert got.sum() == min(total, cap_total)
            assert np.all(got >= 0) and np.all(got <= sizes)


def test_proportional_allocation_is_within_one_of_the_exact_share():
    sizes = np.array([120, 480, 900, 1500, 3000])
    got = proportional_allocation(600, sizes)
    share = 600 * sizes / sizes.sum()
    assert got.sum() == 600 and np.all(np.abs(got - share) < 1)


def test_neyman_proportions():
    assert neyman_allocation(100, [1000, 1000], [1, 3]).tolist() == [25, 75]
    assert neyman_allocation(50, [100, 200], [2, 1]).tolist() == [25, 25]
    got = neyman_allocation(300, [1000, 2000, 3000], [3.0, 2.0, 1.0])
    share = 300 * np.array([3000, 4000, 3000]) / 10000
    assert np.array_equal(got, np.round(share).astype(int))


def test_fixed_allocation_caps_at_size():
    assert fixed_allocation(26, [100, 20, 0]).tolist() == [26, 20, 0]


def test_allocate_dispatch():
    sizes = [100, 1000]
    assert allocate(AllocationMethod.YAMANE, sizes).tolist() == [80, 286]
    assert allocate(AllocationMethod.FIXED, sizes, quota=30).tolist() == [30, 30]
    assert allocate(AllocationMethod.EQUAL, sizes, total=50).tolist() == [25, 25]
    assert allocate(AllocationMethod.PROPORTIONAL, sizes, total=110).tolist() == [10, 100]
    assert allocate(AllocationMethod.NEYMAN, sizes, total=20, std_devs=[10, 1]).tolist() == [
        10, 10]
    with pytest.raises(SamplingError):
        allocate(AllocationMethod.EQUAL, sizes)
    with pytest.raises(SamplingError):
        allocate(AllocationMethod.NEYMAN, sizes, total=5)
    with pytest.raises(SamplingError):
        allocate(AllocationMethod.FIXED, sizes)
    assert AllocationMethod.YAMANE.label.startswith("Công thức")


def test_bad_inputs():
    with pytest.raises(SamplingError):
        allocate_capped(-1, [1], [1])
    with pytest.raises(SamplingError):
        allocate_capped(5, [1, -1], [1, 1])
    with pytest.raises(SamplingError):
        proportional_allocation(5, [1.5, 2])


def test_pps_certainty_units_always_selected():
    sizes = np.array([5000, 10, 20, 30, 40, 50, 60, 70, 80, 90, 1200.0])
    for seed in range(50):
        got = pps_systematic(sizes, 4, np.random.default_rng(seed))
        assert got.size == 4 and np.unique(got).size == 4
        assert 0 in got and 10 in got  # 5000 and 1200 exceed the interval
        assert np.all(np.diff(got) > 0)


def test_pps_certainty_is_found_iteratively():
    # Interval 1200/3 = 400: unit 0 (600) is certain; then 600/2 = 300: unit 1 (350) too.
    sizes = np.array([600, 350, 100, 100, 50])
    for seed in range(20):
        got = pps_systematic(sizes, 3, np.random.default_rng(seed))
        assert {0, 1} <= set(got.tolist()) and got.size == 3


def test_pps_expected_selection_counts():
    sizes = np.array([5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 500.0])  # unit 10 is certain
    n, draws = 4, 4000
    counts = np.zeros(sizes.size)
    for seed in range(draws):
        counts[pps_systematic(sizes, n, np.random.default_rng(seed))] += 1
    assert counts[10] == draws
    rest = sizes[:10]
    expected = draws * (n - 1) * rest / rest.sum()
    assert chisquare(counts[:10], expected).pvalue > 0.001


def test_pps_edge_cases():
    rng = np.random.default_rng(0)
    assert pps_systematic([0, 3, 0, 4], 5, rng).tolist() == [1, 3]
    assert pps_systematic([1, 2, 3], 0, rng).size == 0
    got = pps_systematic([0, 1, 0, 1, 1, 0], 2, rng)
    assert got.size == 2 and not np.isin(got, [0, 2, 5]).any()
    with pytest.raises(SamplingError):
        pps_systematic([1, -1], 1, rng)
