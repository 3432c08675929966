"""The vectorised scorer agrees with the plain reference on random questionnaires and answers,
and its 95 % intervals cover known population values about 95 % of the time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from questionnaires.model import (
    Criterion,
    Element,
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
    compile_rules,
    encode_answers,
    score_unit_reference,
    score_units,
)

OPTIONS = (
    Option("1", "Rất không hài lòng", 1.0),
    Option("2", "Không hài lòng", 2.0),
    Option("3", "Bình thường", 3.0),
    Option("4", "Hài lòng", 4.0),
    Option("5", "Rất hài lòng", 5.0),
    Option("na", "Không áp dụng", None),  # no coefficient: invalid for MEAN, valid for share
    Option("dk", "Không biết", None, dont_know=True),
)
CODES = [o.code for o in OPTIONS]


@st.composite
def questionnaires(draw: st.DrawFn) -> Questionnaire:
    n_q = draw(st.integers(1, 6))
    qids = [f"q{i}" for i in range(n_q)]
    elements = []
    for e in range(draw(st.integers(1, 3))):
        criteria = []
        for c in range(draw(st.integers(1, 3))):
            qs = draw(st.lists(st.sampled_from(qids), min_size=1, max_size=3, unique=True))
            w = draw(st.sampled_from([1.0, 0.5, 2.0, 3.0]))
            criteria.append(Criterion(f"C{e}.{c}", "c", tuple(qs), w))
        elements.append(
            Element(f"E{e}", "e", tuple(criteria), draw(st.sampled_from([1.0, 2.0, 0.25])))
        )
    rules = ScoringRules(
        method=draw(st.sampled_from(list(ScoringMethod))),
        elements=tuple(elements),
        positive_codes=tuple(draw(st.sampled_from([("4", "5"), ("5",), ("3", "4", "5", "na")]))),
        scale_min=draw(st.sampled_from([1.0, 0.0])),
        scale_max=draw(st.sampled_from([5.0, 10.0])),
        weighted_elements=draw(st.booleans()),
    )
    questions = tuple(Question(q, q, QuestionKind.SATISFACTION, OPTIONS) for q in qids)
    return Questionnaire(
        "prop", "1", "p", RespondentGroup.CITIZEN, (Section("s", "s", questions),), scoring=rules
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data(), q=questionnaires())
def test_vectorised_matches_reference(data: st.DataObject, q: Questionnaire) -> None:
    qids = [x.id for x in q.questions()]
    n_units = data.draw(st.integers(1, 4))
    n = data.draw(st.integers(0, 25))
    answers = [{qid: data.draw(st.sampled_from([None, *CODES])) for qid in qids} for _ in range(n)]
    units = np.array([data.draw(st.integers(0, n_units - 1)) for _ in range(n)], dtype=int)
    weighted = data.draw(st.booleans())
    weights = np.array([data.draw(st.floats(0.1, 5.0)) for _ in range(n)]) if weighted else None

    compiled = compile_rules(q)
    got = score_units(compiled, encode_answers(compiled, answers), units, n_units, weights)
    for u in range(n_units):
        members = [i for i in range(n) if units[i] == u]
        ref = score_unit_reference(
            q,
            [answers[i] for i in members],
            None if weights is None else [float(weights[i]) for i in members],
        )
        for k, cid in enumerate(compiled.criterion_ids):
            assert_same(got.criterion_pct[u, k], ref.criteria[cid])
        for k, eid in enumerate(compiled.element_ids):
            assert_same(got.element_pct[u, k], ref.elements[eid])
        assert_same(got.overall_pct[u], ref.overall)
        lo, hi = got.overall_low[u], got.overall_high[u]
        if np.isfinite(lo) and np.isfinite(hi):  # NaN when a unit has fewer than 2 responses
            assert lo - 1e-9 <= got.overall_pct[u] <= hi + 1e-9


def assert_same(vectorised: float, reference: float | None) -> None:
    if reference is None:
        assert math.isnan(vectorised)
    else:
        assert vectorised == pytest.approx(reference, abs=1e-9)


# ---- coverage by simulation -----------------------------------------------------------------


def one_question(method: ScoringMethod = ScoringMethod.SHARE_SATISFIED) -> Questionnaire:
    q = Question("q", "q", QuestionKind.SATISFACTION, OPTIONS)
    rules = ScoringRules(method, (Element("E", "E", (Criterion("C", "C", ("q",)),)),), ("4", "5"))
    return Questionnaire(
        "c", "1", "c", RespondentGroup.CITIZEN, (Section("s", "s", (q,)),), scoring=rules
    )


def test_wilson_covers_known_proportion():
    """400 samples of 40 from a population with p = 0.15: Wilson covers p in 92-98 %."""
    rng = np.random.default_rng(20250301)
    compiled = compile_rules(one_question())
    p, n, reps = 0.15, 40, 400
    satisfied = rng.random((reps, n)) < p
    codes = np.where(satisfied, 4, 1).reshape(-1, 1).astype(np.int8)  # "5" or "2"
    units = np.repeat(np.arange(reps), n)  # each simulated sample is one unit
    s = score_units(compiled, codes, units, reps)
    covered = (s.criterion_low[:, 0] <= 100 * p) & (100 * p <= s.criterion_high[:, 0])
    assert 0.92 <= covered.mean() <= 0.98


def test_wilson_with_weights_and_fpc_covers_finite_population():
    """Samples of 60 without replacement from frames of 100: the FPC keeps coverage near 95 %
    (without it the interval would be too wide); random weights use Kish n_eff."""
    rng = np.random.default_rng(7)
    compiled = compile_rules(one_question())
    reps, big_n, n = 400, 100, 60
    codes_rows, truth = [], []
    for _ in range(reps):
        population = rng.random(big_n) < 0.4
        truth.append(population.mean())
        sample = rng.choice(big_n, size=n, replace=False)
        codes_rows.append(np.where(population[sample], 3, 1))
    codes = np.concatenate(codes_rows).reshape(-1, 1).astype(np.int8)
    units = np.repeat(np.arange(reps), n)
    truth_pct = 100 * np.array(truth)
    s = score_units(compiled, codes, units, reps, frame_sizes=np.full(reps, big_n))
    covered = (s.criterion_low[:, 0] <= truth_pct) & (truth_pct <= s.criterion_high[:, 0])
    assert 0.92 <= covered.mean() <= 0.98
    no_fpc = score_units(compiled, codes, units, reps)
    wide = (no_fpc.criterion_low[:, 0] <= truth_pct) & (truth_pct <= no_fpc.criterion_high[:, 0])
    assert wide.mean() > 0.985  # the correction matters at n/N = 0.6

    # Weights unrelated to the answers: weighted Wilson on Kish n_eff still covers p = 0.4.
    w = rng.choice([1.0, 4.0], size=codes.shape[0])
    sample_codes = np.where(rng.random(codes.shape[0]) < 0.4, 3, 1).reshape(-1, 1).astype(np.int8)
    sw = score_units(compiled, sample_codes, units, reps, weights=w)
    covered = (sw.criterion_low[:, 0] <= 40.0) & (40.0 <= sw.criterion_high[:, 0])
    assert 0.92 <= covered.mean() <= 0.98


def composite_questionnaire() -> Questionnaire:
    qs = tuple(Question(f"q{i}", "q", QuestionKind.SATISFACTION, OPTIONS) for i in range(4))
    rules = ScoringRules(
        ScoringMethod.SHARE_SATISFIED,
        (
            Element("E1", "e", (Criterion("C1", "c", ("q0",)), Criterion("C2", "c", ("q1", "q2")))),
            Element("E2", "e", (Criterion("C3", "c", ("q3",)),)),
        ),
        ("4", "5"),
    )
    return Questionnaire(
        "m", "1", "m", RespondentGroup.CITIZEN, (Section("s", "s", qs),), scoring=rules
    )


def simulate_composite(rng: np.random.Generator, reps: int, n: int) -> tuple[np.ndarray, float]:
    """Answers with a respondent effect (correlated items) and 10 % "don't know"."""
    p_items = np.array([0.3, 0.6, 0.6, 0.8])
    mood = rng.random((reps * n, 1)) < 0.5  # half the respondents are more positive
    p = np.clip(p_items + np.where(mood, 0.15, -0.15), 0, 1)
    sat = rng.random((reps * n, 4)) < p
    codes = np.where(sat, 4, 1).astype(np.int8)
    codes[rng.random(codes.shape) < 0.1] = 6  # "don't know" (independent of the answer)
    truth = ((p_items[0] + p_items[1]) / 2 + p_items[3]) / 2  # mood averages out
    return codes, 100 * truth


def test_overall_analytic_interval_covers_truth():
    rng = np.random.default_rng(11)
    compiled = compile_rules(composite_questionnaire())
    reps, n = 400, 50
    codes, truth = simulate_composite(rng, reps, n)
    s = score_units(compiled, codes, np.repeat(np.arange(reps), n), reps)
    covered = (s.overall_low <= truth) & (truth <= s.overall_high)
    assert 0.92 <= covered.mean() <= 0.98


def test_overall_bootstrap_interval_covers_truth():
    rng = np.random.default_rng(12)
    compiled = compile_rules(composite_questionnaire())
    reps, n = 300, 50
    codes, truth = simulate_composite(rng, reps, n)
    weights = rng.choice([1.0, 2.0], size=codes.shape[0])
    s = score_units(
        compiled,
        codes,
        np.repeat(np.arange(reps), n),
        reps,
        weights=weights,
        ci="bootstrap",
        rng=np.random.default_rng(99),
        n_boot=300,
    )
    covered = (s.overall_low <= truth) & (truth <= s.overall_high)
    assert 0.91 <= covered.mean() <= 0.98
