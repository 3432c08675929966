"""Scorer on small hand-made data: every expected value is computed by hand in the test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from questionnaires.model import (
    Band,
    ConversionMethod,
    Criterion,
    Element,
    GroupPlan,
    Mode,
    Option,
    Question,
    QuestionKind,
    Questionnaire,
    RespondentGroup,
    ScoringMethod,
    ScoringRules,
    Section,
)
from questionnaires.scoring import (
    UNRANKED,
    CiMethod,
    QualityFlag,
    ScoringError,
    UnitFlag,
    change_from_previous,
    combine_groups,
    compile_rules,
    design_weights,
    encode_answers,
    flag_duplicate_answers,
    flag_network_bursts,
    flag_straight_lining,
    flag_too_fast,
    quality_flags,
    rank_units,
    score_unit_reference,
    score_units,
    score_units_both,
    to_points,
)
from questionnaires.stats import Z95, t_quantile

SAT_OPTIONS = (
    Option("1", "Rất không hài lòng", 1.0),
    Option("2", "Không hài lòng", 2.0),
    Option("3", "Bình thường", 3.0),
    Option("4", "Hài lòng", 4.0),
    Option("5", "Rất hài lòng", 5.0),
    Option("dk", "Không biết / không trả lời", None, dont_know=True),
)


def sat(qid: str) -> Question:
    return Question(qid, f"Câu {qid}", QuestionKind.SATISFACTION, SAT_OPTIONS)


def make_questionnaire(
    method: ScoringMethod = ScoringMethod.SHARE_SATISFIED,
    weighted_elements: bool = False,
    n_items: int = 4,
) -> Questionnaire:
    """E1 = {C1: q1 (weight 1), C2: q2+q3 (weight 3)} (weight 2), E2 = {C3: q4} (weight 1)."""
    extra = tuple(sat(f"x{i}") for i in range(n_items - 4))
    rules = ScoringRules(
        method=method,
        elements=(
            Element(
                "E1",
                "Tiếp cận dịch vụ",
                (Criterion("C1", "a", ("q1",), 1.0), Criterion("C2", "b", ("q2", "q3"), 3.0)),
                weight=2.0,
            ),
            Element(
                "E2",
                "Kết quả",
                (Criterion("C3", "c", ("q4",) + tuple(q.id for q in extra)),),
                weight=1.0,
            ),
        ),
        positive_codes=("4", "5"),
        weighted_elements=weighted_elements,
    )
    return Questionnaire(
        key="sipas-test",
        version="1",
        title="Thử",
        group=RespondentGroup.CITIZEN,
        sections=(Section("s1", "Phần 1", (sat("q1"), sat("q2"), sat("q3"), sat("q4")) + extra),),
        scoring=rules,
    )


# Unit 0: four responses; unit 1: one response, all "don't know"; unit 2: nobody.
ANSWERS = [
    {"q1": "5", "q2": "4", "q3": "dk", "q4": "2"},
    {"q1": "3", "q2": "5", "q3": "5", "q4": "4"},
    {"q1": "dk", "q2": "2", "q4": "5"},
    {"q1": "4", "q2": None, "q3": "1", "q4": "dk"},
    {"q1": "dk", "q2": "dk", "q3": "dk", "q4": "dk"},
]
UNITS = np.array([0, 0, 0, 0, 1])


def run(method=ScoringMethod.SHARE_SATISFIED, weighted_elements=False, **kw):
    q = make_questionnaire(method, weighted_elements)
    compiled = compile_rules(q)
    codes = encode_answers(compiled, ANSWERS)
    return score_units(compiled, codes, UNITS, 3, **kw)


def test_share_satisfied_by_hand():
    s = run()
    # C1: valid q1 answers 5, 3, 4 (dk excluded) → satisfied 5, 4 → 2/3.
    # C2: pooled q2+q3: 4, (dk), 5, 5, 2, (missing), 1 → 5 valid, satisfied 4, 5, 5 → 3/5.
    # C3: q4: 2, 4, 5, (dk) → 2/3.
    c1, c2, c3 = 2 / 3, 3 / 5, 2 / 3
    np.testing.assert_allclose(s.criterion_pct[0], [100 * c1, 100 * c2, 100 * c3])
    np.testing.assert_array_equal(s.criterion_n[0], [3, 5, 3])
    e1 = (1 * c1 + 3 * c2) / (1 + 3)  # = 37/60
    e2 = c3
    np.testing.assert_allclose(s.element_pct[0], [100 * e1, 100 * e2])
    assert s.overall_pct[0] == pytest.approx(100 * (e1 + e2) / 2)  # 64.1667
    assert s.overall_pct[0] == pytest.approx(100 * 77 / 120)


def test_weighted_elements_by_hand():
    s = run(weighted_elements=True)
    e1, e2 = 37 / 60, 2 / 3
    assert s.overall_pct[0] == pytest.approx(100 * (2 * e1 + 1 * e2) / 3)  # 63.333


def test_mean_method_by_hand():
    s = run(method=ScoringMethod.MEAN)
    r = lambda v: (v - 1) / 4  # noqa: E731 - rescale 1..5 → 0..1
    c1 = (r(5) + r(3) + r(4)) / 3  # 0.75
    c2 = (r(4) + r(5) + r(5) + r(2) + r(1)) / 5  # 0.6
    c3 = (r(2) + r(4) + r(5)) / 3  # 2/3
    np.testing.assert_allclose(s.criterion_pct[0], [75.0, 60.0, 100 * 2 / 3])
    assert (c1, c2) == pytest.approx((0.75, 0.6))
    e1 = (c1 + 3 * c2) / 4
    assert s.overall_pct[0] == pytest.approx(100 * (e1 + c3) / 2)  # 65.2083


def test_unit_without_valid_answers_and_empty_unit():
    s = run(issued=np.array([8, 2, 5]), min_n=2, min_response_rate=0.6)
    assert math.isnan(s.overall_pct[1]) and math.isnan(s.overall_pct[2])
    assert np.isnan(s.criterion_pct[1]).all()
    np.testing.assert_array_equal(s.n_responses, [4, 1, 0])
    np.testing.assert_array_equal(s.n_valid, [4, 0, 0])
    np.testing.assert_allclose(s.response_rate, [4 / 8, 1 / 2, 0 / 5])
    assert s.unit_flags(0) == UnitFlag.LOW_RESPONSE_RATE  # n=4 >= 2 but 50 % < 60 %
    assert s.unit_flags(1) == UnitFlag.LOW_N | UnitFlag.LOW_RESPONSE_RATE | UnitFlag.NO_SCORE
    assert UnitFlag.NO_SCORE in s.unit_flags(2)


def test_dont_know_is_excluded_from_denominators():
    q = make_questionnaire()
    compiled = compile_rules(q)
    base = [{"q1": "5"}, {"q1": "2"}]
    with_dk = base + [{"q1": "dk"}, {"q1": "dk"}, {"q1": None}]
    with_neutral = base + [{"q1": "3"}]
    score = lambda a: score_units(  # noqa: E731
        compiled, encode_answers(compiled, a), np.zeros(len(a), int), 1
    ).criterion_pct[0, 0]
    assert score(base) == pytest.approx(50.0)  # 1 satisfied of 2 valid
    assert score(with_dk) == pytest.approx(50.0)  # don't know and missing change nothing
    assert score(with_neutral) == pytest.approx(100 / 3)  # a real answer does count


def test_weighted_differs_from_unweighted_by_hand():
    w = np.array([1.0, 3.0, 1.0, 1.0, 1.0])
    q = make_questionnaire()
    compiled = compile_rules(q)
    codes = encode_answers(compiled, ANSWERS)
    unweighted, weighted = score_units_both(compiled, codes, UNITS, 3, w)
    assert not unweighted.weighted and weighted.weighted
    # C1 valid: r1 satisfied (w 1), r2 not (w 3), r4 satisfied (w 1) → (1 + 1) / 5.
    assert weighted.criterion_pct[0, 0] == pytest.approx(40.0)
    assert unweighted.criterion_pct[0, 0] == pytest.approx(200 / 3)
    # C2 pooled: r1 q2 sat (1), r2 q2 sat (3), r2 q3 sat (3), r3 q2 not (1), r4 q3 not (1).
    assert weighted.criterion_pct[0, 1] == pytest.approx(100 * 7 / 9)
    assert weighted.overall_pct[0] != pytest.approx(unweighted.overall_pct[0])
    # Equal weights give the unweighted answer.
    same = score_units(compiled, codes, UNITS, 3, weights=np.full(5, 2.5))
    np.testing.assert_allclose(same.overall_pct, unweighted.overall_pct)


def wilson(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_criterion_wilson_interval_with_kish_and_fpc():
    s = run()
    lo, hi = wilson(2 / 3, 3)
    assert s.criterion_low[0, 0] == pytest.approx(100 * lo)
    assert s.criterion_high[0, 0] == pytest.approx(100 * hi)
    # C2 pools two questions: n_eff counts respondents, Σ(x)² with x = (1, 2, 1, 1) valid answers.
    lo, hi = wilson(3 / 5, 5 * 5 / (1 + 4 + 1 + 1))
    assert s.criterion_low[0, 1] == pytest.approx(100 * lo)
    # Weighted: C1 valid weights 1, 3, 1 → n_eff = 5² / (1 + 9 + 1) = 25/11.
    w = np.array([1.0, 3.0, 1.0, 1.0, 1.0])
    sw = run(weights=w)
    lo, hi = wilson(0.4, 25 / 11)
    assert (sw.criterion_low[0, 0], sw.criterion_high[0, 0]) == pytest.approx((100 * lo, 100 * hi))
    # Frame of 10: 3 respondents answered C1 validly, fpc² = (10 - 3) / 9 → n_eff = 3 / (7/9).
    sf = run(frame_sizes=np.array([10.0, np.nan, np.nan]))
    lo, hi = wilson(2 / 3, 3 / (7 / 9))
    assert sf.criterion_low[0, 0] == pytest.approx(100 * lo)
    assert sf.criterion_high[0, 0] < s.criterion_high[0, 0]


def single_item_questionnaire(method=ScoringMethod.SHARE_SATISFIED) -> Questionnaire:
    return Questionnaire(
        key="one",
        version="1",
        title="Một câu",
        group=RespondentGroup.CITIZEN,
        sections=(Section("s", "S", (sat("q1"),)),),
        scoring=ScoringRules(
            method, (Element("E", "E", (Criterion("C", "C", ("q1",)),)),), ("4", "5")
        ),
    )


def test_overall_analytic_interval_by_hand():
    compiled = compile_rules(single_item_questionnaire())
    answers = [{"q1": c} for c in ["5", "4", "1", "2", "3", "4", "dk", "5"] * 3]
    n = 24
    s = score_units(compiled, encode_answers(compiled, answers), np.zeros(n, int), 1)
    p = 12 / 21  # 12 satisfied of 21 valid; the don't-know respondents are still sampled
    # Linearised variance of the ratio: n/(n-1) Σ ((y_i - p x_i) / Σx)².
    resid = [(1 - p), (1 - p), -p, -p, -p, (1 - p), 0.0, (1 - p)] * 3
    se = math.sqrt(n / (n - 1) * sum((r / 21) ** 2 for r in resid))
    assert s.overall_se[0] == pytest.approx(100 * se)
    t = float(t_quantile(np.array(n - 1.0)))
    assert s.overall_low[0] == pytest.approx(100 * (p - t * se))
    assert s.overall_high[0] == pytest.approx(100 * (p + t * se))
    # Frame of 12: the standard error shrinks by sqrt((12 - 8) / 11).
    sf = score_units(
        compiled, encode_answers(compiled, answers), np.zeros(n, int), 1, frame_sizes=[30]
    )
    assert sf.overall_se[0] == pytest.approx(100 * se * math.sqrt((30 - 24) / 29))


def test_mean_criterion_t_interval_by_hand():
    compiled = compile_rules(single_item_questionnaire(ScoringMethod.MEAN))
    values = [5, 4, 1, 2, 4, 3, 3, 2, 5, 4, 4, 3]
    n = len(values)
    answers = [{"q1": str(v)} for v in values]
    s = score_units(compiled, encode_answers(compiled, answers), np.zeros(n, int), 1)
    ys = [(v - 1) / 4 for v in values]
    m = sum(ys) / n
    sd = math.sqrt(sum((y - m) ** 2 for y in ys) / (n - 1))
    half = float(t_quantile(np.array(n - 1.0))) * sd / math.sqrt(n)
    assert s.criterion_pct[0, 0] == pytest.approx(100 * m)
    assert s.criterion_low[0, 0] == pytest.approx(100 * (m - half))
    assert s.criterion_high[0, 0] == pytest.approx(100 * (m + half))


def test_bootstrap_is_seeded_and_brackets_estimate():
    q = make_questionnaire(n_items=10)
    compiled = compile_rules(q)
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 6, size=(300, compiled.n_items)).astype(np.int8)
    units = rng.integers(0, 5, size=300)
    a = score_units(compiled, codes, units, 5, ci="bootstrap", rng=np.random.default_rng(7))
    b = score_units(compiled, codes, units, 5, ci="bootstrap", rng=np.random.default_rng(7))
    an = score_units(compiled, codes, units, 5)
    np.testing.assert_array_equal(a.overall_low, b.overall_low)
    assert a.ci_method is CiMethod.BOOTSTRAP
    assert np.all(a.overall_low <= a.overall_pct) and np.all(a.overall_pct <= a.overall_high)
    assert np.all(a.element_low <= a.element_pct) and np.all(a.element_pct <= a.element_high)
    # Same estimates as the analytic run; standard errors agree within 25 %.
    np.testing.assert_allclose(a.overall_pct, an.overall_pct)
    np.testing.assert_allclose(a.overall_se, an.overall_se, rtol=0.25)
    with pytest.raises(ScoringError):
        score_units(compiled, codes, units, 5, ci=CiMethod.BOOTSTRAP)


def test_reference_matches_hand_values():
    q = make_questionnaire()
    ref = score_unit_reference(q, ANSWERS[:4])
    assert ref.criteria == pytest.approx({"C1": 200 / 3, "C2": 60.0, "C3": 200 / 3})
    assert ref.overall == pytest.approx(100 * 77 / 120)
    assert score_unit_reference(q, ANSWERS[4:]).overall is None


def test_linear_and_band_conversion():
    pct = np.array([95.0, 85.0, 80.0, 49.9, 50.0, np.nan])
    np.testing.assert_allclose(to_points(pct, 30.0), [28.5, 25.5, 24.0, 14.97, 15.0, np.nan])
    bands = (Band(80.0, 25.0), Band(90.0, 30.0), Band(50.0, 10.0))  # any order
    got = to_points(pct, 30.0, ConversionMethod.BANDS, bands)
    np.testing.assert_array_equal(got, [30.0, 25.0, 25.0, 0.0, 10.0, np.nan])
    with pytest.raises(ScoringError):
        to_points(pct, 30.0, ConversionMethod.BANDS, ())


def test_ranking_ties_competition_style():
    scores = np.array([90.001, 85.0, 90.004, 70.0, np.nan, 85.0, 90.006])
    # Rounded to 2 decimals: 90.00, 85.00, 90.00, 70.00, -, 85.00, 90.01.
    np.testing.assert_array_equal(rank_units(scores), [2, 4, 2, 6, UNRANKED, 4, 1])
    # Unrounded (many decimals) there is no tie between the 90s.
    np.testing.assert_array_equal(rank_units(scores, decimals=6), [3, 4, 2, 6, UNRANKED, 4, 1])


def test_change_from_previous():
    got = change_from_previous(["A", "B", "C"], np.array([80.0, 70.0, 60.0]), {"A": 75, "C": 65})
    np.testing.assert_array_equal(got, [5.0, np.nan, -5.0])


def test_combine_groups_by_hand():
    q = make_questionnaire()
    compiled = compile_rules(q)
    citizens = score_units(compiled, encode_answers(compiled, ANSWERS), UNITS, 3)
    leaders_answers = [{"q1": "5", "q2": "5", "q3": "5", "q4": "1"}, {"q1": "1", "q4": "4"}]
    leaders = score_units(compiled, encode_answers(compiled, leaders_answers), [0, 0], 3)
    g_cit = GroupPlan(RespondentGroup.CITIZEN, q.ref, Mode.PHONE, 20, weight=3.0)
    g_lead = GroupPlan(RespondentGroup.LEADER, q.ref, Mode.POSTAL, 5, weight=1.0)
    comb = combine_groups([(g_cit, citizens), (g_lead, leaders)])
    s_c, s_l = citizens.overall_pct[0], leaders.overall_pct[0]
    assert comb.overall_pct[0] == pytest.approx((3 * s_c + 1 * s_l) / 4)
    se = math.sqrt(
        (3 / 4) ** 2 * citizens.overall_se[0] ** 2 + (1 / 4) ** 2 * leaders.overall_se[0] ** 2
    )
    assert comb.overall_se[0] == pytest.approx(se)
    assert comb.overall_low[0] == pytest.approx(comb.overall_pct[0] - Z95 * se)
    assert math.isnan(comb.overall_pct[2]) and comb.n_groups[2] == 0
    np.testing.assert_array_equal(comb.n_groups, [2, 0, 0])


def test_design_weights():
    w = design_weights(np.array([0, 0, 1, 1, 1]), np.array([10.0, 30.0, np.nan]))
    np.testing.assert_allclose(w, [5.0, 5.0, 10.0, 10.0, 10.0])
    with pytest.raises(ScoringError):
        design_weights(np.array([2]), np.array([10.0, 30.0, np.nan]))


def test_compile_and_encode_errors():
    q = make_questionnaire()
    bad_rules = ScoringRules(
        ScoringMethod.SHARE_SATISFIED, (Element("E", "E", (Criterion("C", "C", ("zz",)),)),)
    )
    with pytest.raises(ScoringError):
        compile_rules(
            Questionnaire("k", "1", "t", RespondentGroup.CITIZEN, q.sections, scoring=bad_rules)
        )
    with pytest.raises(ScoringError):
        compile_rules(Questionnaire("k", "1", "t", RespondentGroup.CITIZEN, q.sections))
    compiled = compile_rules(q)
    with pytest.raises(ScoringError):
        encode_answers(compiled, [{"q1": "9"}])
    assert compiled.item_ids == ("q1", "q2", "q3", "q4")
    np.testing.assert_array_equal(
        encode_answers(compiled, [{"q1": "dk", "q3": 5}]), [[5, -1, 4, -1]]
    )


# ---- data-quality flags ---------------------------------------------------------------------


def test_flag_straight_lining():
    compiled = compile_rules(make_questionnaire(n_items=12))
    c = np.full((4, 12), 3, dtype=np.int8)  # option index 3 = "Hài lòng" everywhere
    c[1, 5] = 5  # a "don't know" among identical answers: still straight
    c[2, 0] = 4  # one different answer
    c[3, 6:] = -1  # only 6 answered
    np.testing.assert_array_equal(flag_straight_lining(compiled, c, 10), [True, True, False, False])
    np.testing.assert_array_equal(flag_straight_lining(compiled, c, 6), [True, True, False, True])


def test_flag_too_fast():
    c = np.zeros((4, 10), dtype=np.int8)
    c[3] = -1  # nothing answered
    d = np.array([15.0, 25.0, np.nan, 1.0])
    # 10 answered items × 2 s = 20 s minimum.
    np.testing.assert_array_equal(flag_too_fast(c, d, 2.0), [True, False, False, False])


def test_flag_network_bursts():
    minute = 60.0
    net = ["a"] * 6 + ["b"] * 6 + [""] * 8 + ["c"] * 2
    t = (
        [0, 1, 2, 3, 4, 5]  # a: 6 within 5 minutes → burst
        + [0, 3, 6, 9, 12, 15]  # b: 6 spread over 15 minutes, never 6 within 10
        + [0] * 8  # unknown network: never flagged
        + [0, 0]
    )
    got = flag_network_bursts(np.array(net), np.array(t) * minute, 5, 10.0)
    np.testing.assert_array_equal(got, [True] * 6 + [False] * 16)
    # b has 4 submissions in 9 minutes: a burst when m = 3.
    got = flag_network_bursts(np.array(net), np.array(t) * minute, 3, 10.0)
    assert got[6:12].all() and got[:6].all() and not got[12:].any()
    # datetime64 input behaves like seconds.
    times = np.datetime64("2025-03-01T08:00") + (np.array(t) * 60).astype("timedelta64[s]")
    np.testing.assert_array_equal(
        flag_network_bursts(np.array(net), times, 5, 10.0), [True] * 6 + [False] * 16
    )


def test_flag_duplicate_answers_within_unit_only():
    c = np.array(
        [
            [1, 2, 3, 4, 5, 1],
            [1, 2, 3, 4, 5, 1],  # duplicate of row 0 in unit 0
            [1, 2, 3, 4, 5, 1],  # same answers, other unit: not a duplicate
            [1, 2, 3, 4, 5, 2],
            [-1, -1, -1, -1, -1, 0],  # too few answers to compare
            [-1, -1, -1, -1, -1, 0],
        ],
        dtype=np.int8,
    )
    units = np.array([0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(
        flag_duplicate_answers(c, units, 5), [True, True, False, False, False, False]
    )


def test_quality_flags_combined():
    compiled = compile_rules(make_questionnaire(n_items=10))
    c = np.full((3, 10), 4, dtype=np.int8)
    c[2] = np.arange(10) % 5
    flags = quality_flags(
        compiled,
        c,
        np.array([0, 0, 1]),
        durations_s=np.array([100.0, 5.0, 100.0]),
        network=np.array(["h", "h", "h"]),
        submitted_at=np.array([0.0, 1.0, 2.0]),
        burst_max_submissions=2,
    )
    assert QualityFlag(int(flags[0])) == (
        QualityFlag.STRAIGHT_LINING | QualityFlag.DUPLICATE_ANSWERS | QualityFlag.NETWORK_BURST
    )
    assert QualityFlag.TOO_FAST in QualityFlag(int(flags[1]))
    assert QualityFlag(int(flags[2])) == QualityFlag.NETWORK_BURST


# ---- statistical helpers --------------------------------------------------------------------


def test_stats_helpers_by_hand():
    from questionnaires.stats import fpc_factor, kish_n_eff, nanquantile_first_axis, wilson_interval

    # Kish: weights 1, 3, 1 → 25 / 11; no weight → 0.
    np.testing.assert_allclose(
        kish_n_eff(np.array([5.0, 0.0]), np.array([11.0, 0.0])), [25 / 11, 0]
    )
    # FPC: sqrt((N - n) / (N - 1)); unknown N → 1; census → 0.
    np.testing.assert_allclose(
        fpc_factor(np.array([10, 10, 10, 12]), np.array([50, np.nan, 10, 10])),
        [math.sqrt(40 / 49), 1.0, 0.0, 0.0],
    )
    lo, hi = wilson_interval(np.array([0.0, 1.0, 0.5]), np.array([10, 10, 0]))
    assert (
        lo[0] == 0.0 and 0.0 < hi[0] < 0.35 and hi[1] == pytest.approx(1.0) and 0.65 < lo[1] < 1.0
    )
    assert np.isnan(lo[2]) and np.isnan(hi[2])
    x = np.array([[1.0, np.nan, np.nan], [3.0, 2.0, np.nan], [2.0, np.nan, np.nan]])
    np.testing.assert_allclose(nanquantile_first_axis(x, 0.5), [2.0, 2.0, np.nan])
    np.testing.assert_allclose(nanquantile_first_axis(x, 0.25), [1.5, 2.0, np.nan])
