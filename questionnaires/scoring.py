"""The scorer: answers of one questionnaire version → criterion, element and overall scores.

Pure core (NumPy/SciPy only). Two layers:

* `score_unit_reference` — a deliberately plain per-response implementation of the rules, used
  as the executable specification (tests compare the fast path with it).
* the columnar fast path — `compile_rules(questionnaire)` once, `encode_answers` to an
  `AnswerMatrix` (responses × scored items, int option index, -1 missing), then
  `score_units(...)` scores every rated unit of a campaign with grouped sums (`np.bincount`),
  no Python loop over responses or units.

Rules (DOMAIN.md, "Common scoring rules"):

* SHARE_SATISFIED: criterion % = positive answers / valid answers × 100.
* MEAN: option coefficients rescaled with (v - scale_min) / (scale_max - scale_min) × 100,
  averaged over valid answers.
* A valid answer is an answered option that is not "don't know" (and, for MEAN, has a value).
  "Don't know" and missing answers are excluded from numerators and denominators.
* A criterion pools the valid answers of all its questions.
* element % = mean of its criteria weighted by `Criterion.weight`; overall % = plain mean of the
  elements, or weighted by `Element.weight` when `ScoringRules.weighted_elements`.
* A criterion (element) without any valid answer in a unit is left out and the weights of the
  others renormalised; a unit with no valid answer at all has NaN scores and `UnitFlag.NO_SCORE`.
* With design weights w (one per response) every sum becomes a weighted sum: Σw·y / Σw·x.

Uncertainty (95 %):

* criteria scored by share: Wilson interval on the Kish effective size
  n_eff = (Σ w·x)² / Σ (w·x)² (x = valid answers of the respondent for the criterion, so a
  criterion with two questions counts respondents, not answers — conservative);
* criteria scored by mean, elements and overall ("analytic"): t interval with a linearised
  (Taylor) standard error of the ratio estimator, computed over respondents, which honours the
  composite nature of the overall score;
* elements and overall ("bootstrap"): percentile interval over `n_boot` resamples of
  respondents within each unit, drawn from the `numpy.random.Generator` passed in;
* finite population correction sqrt((N - n) / (N - 1)) wherever the unit's frame size N is given.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntFlag, StrEnum

import numpy as np
from scipy import sparse

from questionnaires.model import (
    Band,
    ConversionMethod,
    GroupPlan,
    QuestionKind,
    Questionnaire,
    ScoringMethod,
)
from questionnaires.stats import (
    UNRANKED,
    Z95,
    fpc_factor,
    kish_n_eff,
    nanquantile_first_axis,
    rank_competition,
    t_quantile,
    wilson_interval,
)

__all__ = [
    "UNRANKED",
    "AnswerMatrix",
    "CiMethod",
    "CombinedScores",
    "CompiledRules",
    "QualityFlag",
    "ReferenceScores",
    "ScoringError",
    "UnitFlag",
    "UnitScores",
    "change_from_previous",
    "combine_groups",
    "compile_rules",
    "design_weights",
    "encode_answers",
    "flag_duplicate_answers",
    "flag_network_bursts",
    "flag_straight_lining",
    "flag_too_fast",
    "quality_flags",
    "rank_units",
    "score_unit_reference",
    "score_units",
    "score_units_both",
    "to_points",
]

AnswerMatrix = np.ndarray
"""responses × scored items (order `CompiledRules.item_ids`), option index into
`Question.options`, -1 for a missing answer. Integer dtype (int8 unless options are many)."""

MISSING = -1


class ScoringError(ValueError):
    """Scoring rules or answer data that cannot be scored."""


class UnitFlag(IntFlag):
    """Warnings attached to a unit score (combined as a bit set per unit)."""

    LOW_N = 1  # fewer valid responses than the plan's minimum
    LOW_RESPONSE_RATE = 2  # responses / forms issued below the plan's minimum
    NO_SCORE = 4  # no valid answer at all


class QualityFlag(IntFlag):
    """Data-quality warnings attached to one response (combined as a bit set per response)."""

    STRAIGHT_LINING = 1  # the same answer to every scored item (over at least k items)
    TOO_FAST = 2  # completed faster than the plausible seconds per answered item
    NETWORK_BURST = 4  # part of more than m submissions from one network within t minutes
    DUPLICATE_ANSWERS = 8  # identical answer vector to another response of the same unit


class CiMethod(StrEnum):
    """How element and overall confidence intervals are computed."""

    ANALYTIC = "analytic"  # linearised standard error, t interval
    BOOTSTRAP = "bootstrap"  # percentile bootstrap over respondents within unit


# --------------------------------------------------------------------------------------------
# Compiled rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CompiledRules:
    """The scoring rules of one questionnaire version as lookup tables.

    Tables have one row per scored item and one column per option index, plus a last column
    that the missing code -1 lands on (so `table[j, codes]` needs no special case).
    """

    ref: str
    method: ScoringMethod
    item_ids: tuple[str, ...]
    option_codes: tuple[tuple[str, ...], ...]  # per item: option index → option code
    score_table: np.ndarray  # float (items × width): 1/0 satisfied, or rescaled value 0..1
    valid_table: np.ndarray  # bool (items × width): counts in the denominator
    answered_table: np.ndarray  # bool (items × width): any option chosen (don't know included)
    criterion_ids: tuple[str, ...]
    criterion_items: tuple[tuple[int, ...], ...]  # per criterion: item columns
    criterion_element: np.ndarray  # int (criteria,): element index of each criterion
    criterion_weight: np.ndarray  # float (criteria,)
    element_ids: tuple[str, ...]
    element_weight: np.ndarray  # float (elements,): ones unless weighted_elements

    @property
    def n_items(self) -> int:
        """Number of scored items (columns of the answer matrix)."""
        return len(self.item_ids)

    @property
    def code_dtype(self) -> np.dtype:
        """Smallest integer dtype holding every option index and -1."""
        return np.dtype(np.int8 if self.score_table.shape[1] <= 127 else np.int16)


def compile_rules(questionnaire: Questionnaire) -> CompiledRules:
    """Turn a questionnaire version's `ScoringRules` into lookup tables for `score_units`.

    Raises `ScoringError` when the questionnaire has no scoring rules, a criterion names an
    unknown or non-option question, a MEAN scale is empty or weights are not positive.
    """
    rules = questionnaire.scoring
    if rules is None:
        raise ScoringError(f"{questionnaire.ref}: no scoring rules")
    if not rules.elements:
        raise ScoringError(f"{questionnaire.ref}: scoring rules without elements")
    if rules.method is ScoringMethod.MEAN and not rules.scale_max > rules.scale_min:
        raise ScoringError(f"{questionnaire.ref}: scale_max must exceed scale_min")
    questions = {q.id: q for q in questionnaire.questions()}
    positive = set(rules.positive_codes)

    item_ids: list[str] = []
    item_pos: dict[str, int] = {}
    criterion_ids: list[str] = []
    criterion_items: list[tuple[int, ...]] = []
    criterion_element: list[int] = []
    criterion_weight: list[float] = []
    for e_idx, element in enumerate(rules.elements):
        if not element.criteria:
            raise ScoringError(f"{questionnaire.ref}: element {element.id} has no criteria")
        if not element.weight > 0:
            raise ScoringError(f"{questionnaire.ref}: element {element.id} weight must be > 0")
        for criterion in element.criteria:
            if not criterion.questions:
                raise ScoringError(f"{questionnaire.ref}: criterion {criterion.id} has no question")
            if not criterion.weight > 0:
                raise ScoringError(
                    f"{questionnaire.ref}: criterion {criterion.id} weight must be > 0"
                )
            cols: list[int] = []
            for qid in criterion.questions:
                q = questions.get(qid)
                if q is None:
                    raise ScoringError(f"{questionnaire.ref}: unknown question {qid}")
                if not q.kind.has_options or q.kind is QuestionKind.MULTI or not q.options:
                    raise ScoringError(f"{questionnaire.ref}: question {qid} cannot be scored")
                if qid not in item_pos:
                    item_pos[qid] = len(item_ids)
                    item_ids.append(qid)
                cols.append(item_pos[qid])
            criterion_ids.append(criterion.id)
            criterion_items.append(tuple(cols))
            criterion_element.append(e_idx)
            criterion_weight.append(float(criterion.weight))

    width = max(len(questions[qid].options) for qid in item_ids) + 1  # + missing column
    n_items = len(item_ids)
    score = np.zeros((n_items, width))
    valid = np.zeros((n_items, width), dtype=bool)
    answered = np.zeros((n_items, width), dtype=bool)
    span = rules.scale_max - rules.scale_min
    for j, qid in enumerate(item_ids):
        for k, opt in enumerate(questions[qid].options):
            answered[j, k] = True
            if opt.dont_know:
                continue
            if rules.method is ScoringMethod.SHARE_SATISFIED:
                valid[j, k] = True
                score[j, k] = 1.0 if opt.code in positive else 0.0
            elif opt.value is not None:
                valid[j, k] = True
                score[j, k] = (opt.value - rules.scale_min) / span
    return CompiledRules(
        ref=questionnaire.ref,
        method=rules.method,
        item_ids=tuple(item_ids),
        option_codes=tuple(tuple(o.code for o in questions[q].options) for q in item_ids),
        score_table=score,
        valid_table=valid,
        answered_table=answered,
        criterion_ids=tuple(criterion_ids),
        criterion_items=tuple(criterion_items),
        criterion_element=np.asarray(criterion_element, dtype=np.intp),
        criterion_weight=np.asarray(criterion_weight),
        element_ids=tuple(e.id for e in rules.elements),
        element_weight=(
            np.asarray([float(e.weight) for e in rules.elements])
            if rules.weighted_elements
            else np.ones(len(rules.elements))
        ),
    )


def encode_answers(
    compiled: CompiledRules, answers: Iterable[Mapping[str, object]]
) -> AnswerMatrix:
    """Encode answer dicts (question id → option code) as an `AnswerMatrix`.

    Absent, None and "" answers become -1. An option code the question does not have raises
    `ScoringError` (bad data must not be silently scored as missing).
    """
    lookups = [{c: k for k, c in enumerate(codes)} for codes in compiled.option_codes]
    rows: list[list[int]] = []
    for answer in answers:
        row = []
        for qid, lookup in zip(compiled.item_ids, lookups, strict=True):
            given = answer.get(qid)
            if given is None or given == "":
                row.append(MISSING)
                continue
            idx = lookup.get(str(given))
            if idx is None:
                raise ScoringError(f"{compiled.ref}: {qid} has no option {given!r}")
            row.append(idx)
        rows.append(row)
    return np.asarray(rows, dtype=compiled.code_dtype).reshape(len(rows), compiled.n_items)


# --------------------------------------------------------------------------------------------
# Reference implementation (plain Python, one unit)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceScores:
    """Scores of one unit from `score_unit_reference` (None where nothing is valid)."""

    criteria: dict[str, float | None]
    elements: dict[str, float | None]
    overall: float | None


def _weighted_mean(pairs: list[tuple[float, float]]) -> float | None:
    """Σ weight·value / Σ weight over (value, weight) pairs; None when empty."""
    total = sum(w for _, w in pairs)
    if not pairs or total <= 0:
        return None
    return sum(v * w for v, w in pairs) / total


def score_unit_reference(
    questionnaire: Questionnaire,
    answers: Sequence[Mapping[str, object]],
    weights: Sequence[float] | None = None,
) -> ReferenceScores:
    """Score one unit's responses the obvious way, one answer at a time (the specification).

    `answers` holds one dict per response (question id → option code); `weights` one design
    weight per response (default 1). Returns percentages 0..100.
    """
    rules = questionnaire.scoring
    if rules is None:
        raise ScoringError(f"{questionnaire.ref}: no scoring rules")
    if weights is None:
        weights = [1.0] * len(answers)
    criteria: dict[str, float | None] = {}
    elements: dict[str, float | None] = {}
    element_pairs: list[tuple[float, float]] = []
    for element in rules.elements:
        criterion_pairs: list[tuple[float, float]] = []
        for criterion in element.criteria:
            points: list[tuple[float, float]] = []  # (answer score 0..100, response weight)
            for answer, w in zip(answers, weights, strict=True):
                for qid in criterion.questions:
                    code = answer.get(qid)
                    if code is None or code == "":
                        continue  # missing: not in the denominator
                    option = questionnaire.question(qid).option(str(code))
                    if option is None:
                        raise ScoringError(f"{qid} has no option {code!r}")
                    if option.dont_know:
                        continue  # "don't know": not in the denominator
                    if rules.method is ScoringMethod.SHARE_SATISFIED:
                        points.append((100.0 if option.code in rules.positive_codes else 0.0, w))
                    elif option.value is not None:
                        span = rules.scale_max - rules.scale_min
                        points.append((100.0 * (option.value - rules.scale_min) / span, w))
            pct = _weighted_mean(points)
            criteria[criterion.id] = pct
            if pct is not None:
                criterion_pairs.append((pct, criterion.weight))
        element_pct = _weighted_mean(criterion_pairs)
        elements[element.id] = element_pct
        if element_pct is not None:
            weight = element.weight if rules.weighted_elements else 1.0
            element_pairs.append((element_pct, weight))
    return ReferenceScores(criteria, elements, _weighted_mean(element_pairs))


# --------------------------------------------------------------------------------------------
# Columnar scorer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class UnitScores:
    """Scores of every unit for one questionnaire version (arrays indexed by unit).

    Percentages are 0..100; NaN where a unit has nothing to score. `criterion_n` counts valid
    answers (pooled over a criterion's questions), unweighted.
    """

    criterion_ids: tuple[str, ...]
    element_ids: tuple[str, ...]
    weighted: bool
    ci_method: CiMethod
    criterion_pct: np.ndarray  # (units, criteria)
    criterion_low: np.ndarray  # Wilson (share) or t (mean), 95 %
    criterion_high: np.ndarray
    criterion_n: np.ndarray  # int (units, criteria)
    element_pct: np.ndarray  # (units, elements)
    element_low: np.ndarray
    element_high: np.ndarray
    overall_pct: np.ndarray  # (units,)
    overall_low: np.ndarray
    overall_high: np.ndarray
    overall_se: np.ndarray  # standard error (percentage points), FPC applied
    n_responses: np.ndarray  # int: responses mapped to the unit
    n_valid: np.ndarray  # int: responses with at least one valid scored answer
    response_rate: np.ndarray  # n_responses / issued (NaN when issued unknown)
    flags: np.ndarray  # int: `UnitFlag` bits

    @property
    def n_units(self) -> int:
        """Number of units scored."""
        return int(self.overall_pct.shape[0])

    def unit_flags(self, unit: int) -> UnitFlag:
        """The flags of one unit as a `UnitFlag` set."""
        return UnitFlag(int(self.flags[unit]))


def _criterion_columns(
    compiled: CompiledRules, codes_t: np.ndarray, c: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per response: (sum of answer scores 0..1, number of valid answers) for criterion c."""
    y: np.ndarray | None = None
    x: np.ndarray | None = None
    for j in compiled.criterion_items[c]:
        col = codes_t[j]
        yj = compiled.score_table[j][col]
        xj = compiled.valid_table[j][col].astype(np.float64)
        y = yj if y is None else y + yj
        x = xj if x is None else x + xj
    assert y is not None and x is not None
    return y, x


def _composite_coefficients(
    compiled: CompiledRules, available: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients turning criterion proportions into element and overall scores per unit.

    `available` (units × criteria) marks criteria with valid answers. Returns
    (beta: units × criteria, within-element weights summing to 1 over available criteria;
    gamma: units × criteria, overall = Σ gamma·p; element_available: units × elements).
    """
    n_elements = len(compiled.element_ids)
    cw = compiled.criterion_weight * available  # (U, C)
    onehot = np.zeros((len(compiled.criterion_ids), n_elements))
    onehot[np.arange(len(compiled.criterion_ids)), compiled.criterion_element] = 1.0
    element_total = cw @ onehot  # (U, E)
    element_available = element_total > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(available, cw / element_total[:, compiled.criterion_element], 0.0)
        ew = compiled.element_weight * element_available  # (U, E)
        alpha = ew / ew.sum(axis=1, keepdims=True)
    alpha = np.nan_to_num(alpha, nan=0.0)
    beta = np.nan_to_num(beta, nan=0.0)
    gamma = beta * alpha[:, compiled.criterion_element]
    return beta, gamma, element_available


def _composites(
    compiled: CompiledRules, p: np.ndarray, available: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Element and overall proportions (0..1) from criterion proportions, plus coefficients."""
    beta, gamma, element_available = _composite_coefficients(compiled, available)
    p0 = np.where(available, p, 0.0)
    n_elements = len(compiled.element_ids)
    element = np.zeros((p.shape[0], n_elements))
    for e in range(n_elements):  # a handful of elements: cheap
        cols = compiled.criterion_element == e
        element[:, e] = (beta[:, cols] * p0[:, cols]).sum(axis=1)
    element = np.where(element_available, element, np.nan)
    overall = (gamma * p0).sum(axis=1)
    overall = np.where(element_available.any(axis=1), overall, np.nan)
    return element, overall, beta, gamma


def score_units(
    compiled: CompiledRules,
    codes: AnswerMatrix,
    unit_index: np.ndarray,
    n_units: int,
    weights: np.ndarray | None = None,
    frame_sizes: np.ndarray | None = None,
    issued: np.ndarray | None = None,
    ci: CiMethod | str = CiMethod.ANALYTIC,
    rng: np.random.Generator | None = None,
    n_boot: int = 500,
    min_n: int = 10,
    min_response_rate: float = 0.5,
) -> UnitScores:
    """Score every unit at once.

    `codes`: `AnswerMatrix` (responses × `compiled.item_ids`); `unit_index`: the rated unit of
    each response, 0..n_units-1; `weights`: design weights (None: unweighted); `frame_sizes`:
    per unit frame size N for the finite population correction (NaN/None: unknown);
    `issued`: per unit forms issued, for the response rate. `ci`: ANALYTIC (linearised, fast)
    or BOOTSTRAP (needs `rng`; `n_boot` resamples; elements and overall only — criteria keep
    Wilson/t). Units with fewer than `min_n` valid responses or a response rate below
    `min_response_rate` are flagged.
    """
    ci = CiMethod(ci)
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != compiled.n_items:
        raise ScoringError(f"answer matrix must be (responses, {compiled.n_items})")
    n_resp = codes.shape[0]
    unit_index = np.asarray(unit_index, dtype=np.intp)
    if unit_index.shape != (n_resp,):
        raise ScoringError("unit_index must have one entry per response")
    if n_resp and (unit_index.min() < 0 or unit_index.max() >= n_units):
        raise ScoringError("unit_index out of range")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (n_resp,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ScoringError("weights must be finite, >= 0, one per response")
    if ci is CiMethod.BOOTSTRAP and (rng is None or n_boot < 2):
        raise ScoringError("bootstrap intervals need a numpy Generator (rng) and n_boot >= 2")

    n_crit = len(compiled.criterion_ids)
    n_el = len(compiled.element_ids)
    codes_t = np.ascontiguousarray(codes.T)  # item-major: each item column contiguous
    n_u = np.bincount(unit_index, minlength=n_units)

    def by_unit(values: np.ndarray) -> np.ndarray:
        return np.bincount(unit_index, weights=values, minlength=n_units)

    # Pass 1: per unit × criterion weighted sums.
    sum_a = np.zeros((n_units, n_crit))  # Σ w·y
    sum_b = np.zeros((n_units, n_crit))  # Σ w·x
    sum_b2 = np.zeros((n_units, n_crit))  # Σ (w·x)², for Kish n_eff over respondents
    n_answers = np.zeros((n_units, n_crit), dtype=np.int64)
    n_resp_c = np.zeros((n_units, n_crit))  # respondents with a valid answer
    any_valid = np.zeros(n_resp, dtype=bool)
    for c in range(n_crit):
        y, x = _criterion_columns(compiled, codes_t, c)
        has = x > 0
        any_valid |= has
        n_answers[:, c] = np.rint(by_unit(x)).astype(np.int64)
        n_resp_c[:, c] = by_unit(has.astype(np.float64))
        if weights is not None:
            y = y * weights
            x = x * weights
        sum_a[:, c] = by_unit(y)
        sum_b[:, c] = by_unit(x)
        sum_b2[:, c] = by_unit(x * x)

    available = sum_b > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(available, sum_a / np.where(available, sum_b, 1.0), np.nan)
    element, overall, beta, gamma = _composites(compiled, p, available)

    # Pass 2: linearised (Taylor) residuals e_i = (a_i - p·b_i) / B per criterion, combined into
    # respondent-level influence values for elements and overall.
    z_overall = np.zeros(n_resp)
    z_element = np.zeros((n_el, n_resp)) if ci is CiMethod.ANALYTIC else None
    crit_ss = np.zeros((n_units, n_crit))
    # Per-unit coefficients, criterion-major so each gather below reads a contiguous row.
    inv_b = np.ascontiguousarray((1.0 / np.where(available, sum_b, 1.0)).T)
    p_over_b = np.ascontiguousarray(np.nan_to_num(p, nan=0.0).T) * inv_b
    gamma_t, beta_t = np.ascontiguousarray(gamma.T), np.ascontiguousarray(beta.T)
    for c in range(n_crit):
        y, x = _criterion_columns(compiled, codes_t, c)
        if weights is not None:
            y = y * weights
            x = x * weights
        e = y * inv_b[c][unit_index] - p_over_b[c][unit_index] * x
        crit_ss[:, c] = by_unit(e * e)
        if ci is CiMethod.ANALYTIC:
            z_overall += gamma_t[c][unit_index] * e
            assert z_element is not None
            z_element[compiled.criterion_element[c]] += beta_t[c][unit_index] * e

    n_valid = np.bincount(unit_index, weights=any_valid, minlength=n_units).astype(np.int64)
    fpc_unit = fpc_factor(n_u, frame_sizes)

    # Criterion intervals.
    fpc_c = fpc_factor(n_resp_c, None if frame_sizes is None else np.asarray(frame_sizes)[:, None])
    if compiled.method is ScoringMethod.SHARE_SATISFIED:
        n_eff = kish_n_eff(sum_b, sum_b2)
        with np.errstate(divide="ignore"):
            n_eff = np.minimum(n_eff / np.square(fpc_c), 1e12)  # FPC enlarges the effective n
        lo, hi = wilson_interval(p, n_eff)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(n_resp_c > 1, n_resp_c / (n_resp_c - 1.0) * crit_ss, np.nan)
        se = np.sqrt(var) * fpc_c
        tq = t_quantile(kish_n_eff(sum_b, sum_b2) - 1.0)
        lo, hi = np.clip(p - tq * se, 0.0, 1.0), np.clip(p + tq * se, 0.0, 1.0)
    crit_low = np.where(available, lo, np.nan)
    crit_high = np.where(available, hi, np.nan)

    # Element and overall intervals.
    if ci is CiMethod.ANALYTIC:
        assert z_element is not None
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(n_u > 1, n_u / (n_u - 1.0), np.nan)
        tq = t_quantile(n_u - 1.0)
        overall_se = np.sqrt(scale * by_unit(z_overall * z_overall)) * fpc_unit
        overall_low = np.clip(overall - tq * overall_se, 0.0, 1.0)
        overall_high = np.clip(overall + tq * overall_se, 0.0, 1.0)
        el_se = np.stack([np.sqrt(scale * by_unit(z * z)) for z in z_element], axis=1)
        el_se = el_se * fpc_unit[:, None]
        element_low = np.clip(element - tq[:, None] * el_se, 0.0, 1.0)
        element_high = np.clip(element + tq[:, None] * el_se, 0.0, 1.0)
    else:
        assert rng is not None
        (overall_low, overall_high, overall_se, element_low, element_high) = _bootstrap(
            compiled,
            codes_t,
            unit_index,
            n_units,
            weights,
            overall,
            element,
            fpc_unit,
            rng,
            n_boot,
        )

    overall_low = np.where(np.isfinite(overall), overall_low, np.nan)
    overall_high = np.where(np.isfinite(overall), overall_high, np.nan)

    if issued is not None:
        issued_f = np.asarray(issued, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            response_rate = np.where(issued_f > 0, n_u / issued_f, np.nan)
    else:
        response_rate = np.full(n_units, np.nan)

    flags = np.zeros(n_units, dtype=np.int64)
    flags |= np.where(n_valid < min_n, int(UnitFlag.LOW_N), 0)
    flags |= np.where(response_rate < min_response_rate, int(UnitFlag.LOW_RESPONSE_RATE), 0)
    flags |= np.where(np.isnan(overall), int(UnitFlag.NO_SCORE), 0)

    return UnitScores(
        criterion_ids=compiled.criterion_ids,
        element_ids=compiled.element_ids,
        weighted=weights is not None,
        ci_method=ci,
        criterion_pct=100.0 * p,
        criterion_low=100.0 * crit_low,
        criterion_high=100.0 * crit_high,
        criterion_n=n_answers,
        element_pct=100.0 * element,
        element_low=100.0 * element_low,
        element_high=100.0 * element_high,
        overall_pct=100.0 * overall,
        overall_low=100.0 * overall_low,
        overall_high=100.0 * overall_high,
        overall_se=100.0 * overall_se,
        n_responses=n_u.astype(np.int64),
        n_valid=n_valid,
        response_rate=response_rate,
        flags=flags,
    )


def _bootstrap(
    compiled: CompiledRules,
    codes_t: np.ndarray,
    unit_index: np.ndarray,
    n_units: int,
    weights: np.ndarray | None,
    overall: np.ndarray,
    element: np.ndarray,
    fpc_unit: np.ndarray,
    rng: np.random.Generator,
    n_boot: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bootstrap over respondents within each unit for overall and elements.

    Each replicate redraws n_u respondents with replacement inside every unit at once
    (a sparse resampling matrix times the per-response sums). Returns proportions
    (0..1): overall low/high/se, element low/high. The interval is shrunk around the estimate
    by the finite population correction.
    """
    n_crit = len(compiled.criterion_ids)
    n_el = len(compiled.element_ids)
    n_resp = unit_index.size
    order = np.argsort(unit_index, kind="stable")
    u_sorted = unit_index[order]
    counts = np.bincount(unit_index, minlength=n_units)
    indptr = np.concatenate(([0], np.cumsum(counts)))
    nonempty = np.flatnonzero(counts > 0)
    # Per-response criterion sums (Σ w·y | Σ w·x) in unit order.
    ab = np.empty((n_resp, 2 * n_crit))
    for c in range(n_crit):
        y, x = _criterion_columns(compiled, codes_t, c)
        if weights is not None:
            y, x = y * weights, x * weights
        ab[:, c], ab[:, n_crit + c] = y[order], x[order]
    row_start = indptr[:-1][u_sorted]
    row_count = counts[u_sorted].astype(np.float64)

    # A replicate is a sparse (units × responses) matrix whose row u holds n_u draws among
    # unit u's rows (repeats add up); one sparse-dense product gives every unit's resampled
    # sums. Several replicates are stacked per product to amortise the overhead.
    batch = max(1, min(n_boot, 2_000_000 // max(n_resp, 1)))
    rep_overall = np.empty((n_boot, n_units))
    rep_element = np.empty((n_boot, n_units, n_el))
    for r0 in range(0, n_boot, batch):
        b = min(batch, n_boot - r0)
        draws = rng.random((b, n_resp))
        pick = (row_start + (draws * row_count).astype(np.intp)).ravel()
        resample = sparse.csr_matrix(
            (np.ones(b * n_resp), pick, _stacked_indptr(indptr, b)),
            shape=(b * n_units, n_resp),
        )
        sums = resample @ ab  # (b·units, 2C)
        sa, sb = sums[:, :n_crit], sums[:, n_crit:]
        avail = sb > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(avail, sa / np.where(avail, sb, 1.0), np.nan)
        el, ov, _, _ = _composites(compiled, p, avail)  # row-wise: replicates stack as rows
        rep_overall[r0 : r0 + b] = ov.reshape(b, n_units)
        rep_element[r0 : r0 + b] = el.reshape(b, n_units, n_el)
    rep_overall = rep_overall[:, nonempty]
    rep_element = rep_element[:, nonempty]

    def interval(est: np.ndarray, reps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN units
            q_lo = nanquantile_first_axis(reps, 0.025)
            q_hi = nanquantile_first_axis(reps, 0.975)
            sd = np.nanstd(reps, axis=0, ddof=1)
        f = fpc_unit[nonempty].reshape((-1,) + (1,) * (est.ndim - 1))
        lo = np.clip(est - f * (est - q_lo), 0.0, 1.0)
        hi = np.clip(est + f * (q_hi - est), 0.0, 1.0)
        return lo, hi, sd * f

    ov_lo, ov_hi, ov_se = (np.full(n_units, np.nan) for _ in range(3))
    el_lo = np.full_like(element, np.nan)
    el_hi = np.full_like(element, np.nan)
    lo, hi, se = interval(overall[nonempty], rep_overall)
    ov_lo[nonempty], ov_hi[nonempty], ov_se[nonempty] = lo, hi, se
    lo, hi, _ = interval(element[nonempty], rep_element)
    el_lo[nonempty], el_hi[nonempty] = lo, hi
    return ov_lo, ov_hi, ov_se, el_lo, el_hi


def _stacked_indptr(indptr: np.ndarray, copies: int) -> np.ndarray:
    """CSR row pointer of `copies` row-blocks each shaped like `indptr` (one per replicate)."""
    total = indptr[-1]
    blocks = indptr[:-1][None, :] + total * np.arange(copies)[:, None]
    return np.concatenate((blocks.ravel(), [total * copies]))


def score_units_both(
    compiled: CompiledRules,
    codes: AnswerMatrix,
    unit_index: np.ndarray,
    n_units: int,
    weights: np.ndarray,
    **kwargs: object,
) -> tuple[UnitScores, UnitScores]:
    """(unweighted, weighted) scores of the same data; keyword arguments as `score_units`."""
    unweighted = score_units(compiled, codes, unit_index, n_units, None, **kwargs)  # type: ignore[arg-type]
    weighted = score_units(compiled, codes, unit_index, n_units, weights, **kwargs)  # type: ignore[arg-type]
    return unweighted, weighted


def design_weights(stratum_index: np.ndarray, frame_sizes: np.ndarray) -> np.ndarray:
    """Design weights N_h / r_h (inverse inclusion probability, adjusted for nonresponse).

    `stratum_index`: the sampling stratum (e.g. unit × group) of each response;
    `frame_sizes[h]`: the size N_h of stratum h's list; r_h is the number of responses in h.
    """
    stratum_index = np.asarray(stratum_index, dtype=np.intp)
    frame = np.asarray(frame_sizes, dtype=np.float64)
    if stratum_index.size and (stratum_index.min() < 0 or stratum_index.max() >= frame.size):
        raise ScoringError("stratum_index out of range")
    used = frame[np.unique(stratum_index)]
    if not np.all(np.isfinite(used) & (used > 0)):
        raise ScoringError("every stratum with responses needs a frame size > 0")
    r = np.bincount(stratum_index, minlength=frame.size).astype(np.float64)
    return frame[stratum_index] / r[stratum_index]


# --------------------------------------------------------------------------------------------
# Groups, points, ranking, change
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CombinedScores:
    """Unit scores combined over respondent groups (arrays indexed by unit, 0..100)."""

    overall_pct: np.ndarray
    overall_low: np.ndarray
    overall_high: np.ndarray
    overall_se: np.ndarray
    n_groups: np.ndarray  # int: groups that contributed a score to the unit


def combine_groups(parts: Sequence[tuple[GroupPlan, UnitScores]]) -> CombinedScores:
    """Combine each group's overall score into a unit score weighted by `GroupPlan.weight`.

    Groups that do not rate a unit (NaN score) are left out and the weights renormalised.
    Groups are independent samples, so the standard error is sqrt(Σ (w_g/W)² se_g²); the 95 %
    interval is normal.
    """
    if not parts:
        raise ScoringError("no group to combine")
    n_units = parts[0][1].n_units
    if any(s.n_units != n_units for _, s in parts):
        raise ScoringError("group scores cover different units")
    scores = np.stack([s.overall_pct for _, s in parts])  # (G, U)
    ses = np.stack([s.overall_se for _, s in parts])
    w = np.array([g.weight for g, _ in parts], dtype=np.float64)[:, None]
    if np.any(w <= 0):
        raise ScoringError("group weights must be > 0")
    present = np.isfinite(scores)
    wp = np.where(present, w, 0.0)
    total = wp.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = wp / total
        overall = np.where(total > 0, (share * np.nan_to_num(scores)).sum(axis=0), np.nan)
        # A contributing group without a standard error leaves the combination without one.
        var = np.where(present, share**2 * ses**2, 0.0).sum(axis=0)
        se = np.where(total > 0, np.sqrt(var), np.nan)
    return CombinedScores(
        overall_pct=overall,
        overall_low=np.clip(overall - Z95 * se, 0.0, 100.0),
        overall_high=np.clip(overall + Z95 * se, 0.0, 100.0),
        overall_se=se,
        n_groups=present.sum(axis=0).astype(np.int64),
    )


def to_points(
    overall_pct: np.ndarray,
    points: float,
    method: ConversionMethod = ConversionMethod.LINEAR,
    bands: Sequence[Band] = (),
) -> np.ndarray:
    """Convert overall percentages into the points the campaign allots to the survey.

    LINEAR: overall % / 100 × points. BANDS: the points of the highest band whose `min_percent`
    the score reaches (bands may be listed in any order); 0 below every band. NaN stays NaN.
    """
    pct = np.asarray(overall_pct, dtype=np.float64)
    if method is ConversionMethod.LINEAR:
        return pct / 100.0 * points
    if not bands:
        raise ScoringError("band conversion needs bands")
    ordered = sorted(bands, key=lambda b: b.min_percent)
    lows = np.array([b.min_percent for b in ordered])
    pts = np.concatenate(([0.0], [b.points for b in ordered]))
    # searchsorted(side="right") counts the bands whose lower bound is <= pct.
    idx = np.searchsorted(lows, np.nan_to_num(pct, nan=-np.inf), side="right")
    return np.where(np.isnan(pct), np.nan, pts[idx])


def rank_units(scores: np.ndarray, decimals: int = 2) -> np.ndarray:
    """Competition ranks ("1224") of units on scores rounded to `decimals`; -1 when unscored.

    See `questionnaires.stats.rank_competition`.
    """
    return rank_competition(scores, decimals)


def change_from_previous(
    unit_codes: Sequence[str], scores: np.ndarray, previous: Mapping[str, float]
) -> np.ndarray:
    """Score minus the same unit's previous-campaign score (NaN when there is none)."""
    prev = np.array([previous.get(code, math.nan) for code in unit_codes], dtype=np.float64)
    return np.asarray(scores, dtype=np.float64) - prev


# --------------------------------------------------------------------------------------------
# Data-quality flags per response
# --------------------------------------------------------------------------------------------


def flag_straight_lining(
    compiled: CompiledRules, codes: AnswerMatrix, min_items: int = 10
) -> np.ndarray:
    """True where a response gives the same valid answer to every scored item it answered,
    over at least `min_items` items ("don't know" and missing answers are ignored)."""
    codes = np.asarray(codes).astype(np.int32)  # room for the sentinels below
    valid = compiled.valid_table[np.arange(compiled.n_items), codes]
    big = np.iinfo(np.int32).max
    lo = np.where(valid, codes, big).min(axis=1)
    hi = np.where(valid, codes, -big).max(axis=1)
    return (valid.sum(axis=1) >= min_items) & (lo == hi)


def flag_too_fast(
    codes: AnswerMatrix, durations_s: np.ndarray, min_seconds_per_item: float = 2.0
) -> np.ndarray:
    """True where duration / answered items is below `min_seconds_per_item`.

    Unknown durations (NaN, e.g. paper forms) and responses with no answer are not flagged.
    """
    answered = (np.asarray(codes) >= 0).sum(axis=1)
    d = np.asarray(durations_s, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (answered > 0) & np.isfinite(d) & (d < min_seconds_per_item * answered)


def _to_seconds(times: np.ndarray) -> np.ndarray:
    """Timestamps (datetime64 or numbers of seconds) as float seconds."""
    t = np.asarray(times)
    if np.issubdtype(t.dtype, np.datetime64):
        return t.astype("datetime64[ms]").astype(np.int64) / 1000.0
    return t.astype(np.float64)


def flag_network_bursts(
    network: np.ndarray,
    submitted_at: np.ndarray,
    max_submissions: int = 5,
    window_minutes: float = 10.0,
) -> np.ndarray:
    """True for responses in a burst: more than `max_submissions` from one network (hash)
    within `window_minutes`. Every submission inside such a window is flagged.

    `network`: hashed network identifier per response ("" or None when unknown, never
    flagged); `submitted_at`: datetime64 or seconds.
    """
    net = np.asarray(network).astype(str)
    t = _to_seconds(submitted_at)
    known = ~np.isin(net, ["", "None", "nan"])
    flagged = np.zeros(net.size, dtype=bool)
    idx = np.flatnonzero(known)
    m = max_submissions
    if idx.size <= m:
        return flagged
    _, key = np.unique(net[idx], return_inverse=True)
    order = idx[np.lexsort((t[idx], key))]
    key_sorted = np.sort(key)  # lexsort is primary on key, so keys come out sorted
    ts = t[order]
    # Window starting at sorted position i holds i..i+m (m+1 submissions): a burst if same
    # network and the span fits in the window. Mark i..i+m with a difference array.
    first = np.arange(order.size - m)
    burst = (key_sorted[first] == key_sorted[first + m]) & (
        ts[first + m] - ts[first] <= window_minutes * 60.0
    )
    diff = np.zeros(order.size + 1, dtype=np.int64)
    np.add.at(diff, first[burst], 1)
    np.add.at(diff, first[burst] + m + 1, -1)
    flagged[order] = np.cumsum(diff[:-1]) > 0
    return flagged


def flag_duplicate_answers(
    codes: AnswerMatrix, unit_index: np.ndarray, min_answered: int = 5
) -> np.ndarray:
    """True where another response of the same unit has the identical answer vector.

    Responses with fewer than `min_answered` answered items are not compared (near-empty
    forms are alike by nature).
    """
    codes = np.asarray(codes)
    flagged = np.zeros(codes.shape[0], dtype=bool)
    eligible = np.flatnonzero((codes >= 0).sum(axis=1) >= min_answered)
    if eligible.size < 2:
        return flagged
    # One byte string per response: unit id (8 bytes) + its answer codes; equal strings are
    # duplicates within a unit. np.unique on a void view sorts them without Python loops.
    sub = np.ascontiguousarray(codes[eligible])
    row_bytes = sub.view(np.uint8).reshape(eligible.size, -1)
    unit_bytes = np.asarray(unit_index, dtype=np.int64)[eligible].view(np.uint8).reshape(-1, 8)
    packed = np.ascontiguousarray(np.concatenate([unit_bytes, row_bytes], axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    flagged[eligible] = counts[inverse.ravel()] > 1
    return flagged


def quality_flags(
    compiled: CompiledRules,
    codes: AnswerMatrix,
    unit_index: np.ndarray,
    durations_s: np.ndarray | None = None,
    network: np.ndarray | None = None,
    submitted_at: np.ndarray | None = None,
    *,
    straight_min_items: int = 10,
    min_seconds_per_item: float = 2.0,
    burst_max_submissions: int = 5,
    burst_window_minutes: float = 10.0,
    duplicate_min_answered: int = 5,
) -> np.ndarray:
    """All data-quality flags per response as an int array of `QualityFlag` bits.

    Checks whose inputs are not given (durations, network + times) are skipped. Convert one
    entry with `QualityFlag(int(flags[i]))`.
    """
    out = np.zeros(np.asarray(codes).shape[0], dtype=np.int64)
    out |= np.where(
        flag_straight_lining(compiled, codes, straight_min_items),
        int(QualityFlag.STRAIGHT_LINING),
        0,
    )
    if durations_s is not None:
        out |= np.where(
            flag_too_fast(codes, durations_s, min_seconds_per_item), int(QualityFlag.TOO_FAST), 0
        )
    if network is not None and submitted_at is not None:
        out |= np.where(
            flag_network_bursts(network, submitted_at, burst_max_submissions, burst_window_minutes),
            int(QualityFlag.NETWORK_BURST),
            0,
        )
    out |= np.where(
        flag_duplicate_answers(codes, unit_index, duplicate_min_answered),
        int(QualityFlag.DUPLICATE_ANSWERS),
        0,
    )
    return out
