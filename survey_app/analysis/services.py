"""Scores of a campaign from its stored responses, data-quality flags, exclusions, frozen
snapshots and the purge of personal data after the retention period.

Loading is columnar: one query for the responses, one for all their answers; each respondent
group's answers become an `AnswerMatrix` that the pure scorer (`questionnaires.scoring`) turns
into criterion, element and overall scores for every rated unit at once. Nothing here returns
a name, a phone number, an address, a serial or a token: analysts see scores, not identities.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from flask import current_app
from sqlalchemy import String, cast, delete, func, or_, select, update

from questionnaires.model import Band, ConversionMethod, GroupPlan, RespondentGroup
from questionnaires.scoring import (
    MISSING,
    CompiledRules,
    QualityFlag,
    ScoringError,
    UnitFlag,
    UnitScores,
    change_from_previous,
    combine_groups,
    compile_rules,
    flag_network_bursts,
    quality_flags,
    rank_units,
    score_units,
    to_points,
)

from ..errors import Conflict, NotFound, SurveyError
from ..extensions import db
from ..models import (
    AccessToken,
    Answer,
    Assignment,
    AuditAction,
    Campaign,
    CampaignStatus,
    FormDraft,
    FrameEntry,
    FramePack,
    ImportBatch,
    ImportIssue,
    PaperEntry,
    PhoneKind,
    RatedUnit,
    Response,
    ResponseLink,
    Stratum,
    Unit,
    User,
)
from ..models._types import utcnow
from ..models.analysis import ScoreSnapshot
from ..services.audit import audit
from ..services.responses import questionnaire_for

# Groups whose element columns head the scoreboard (SIPAS: citizens first, then businesses).
HEADLINE_GROUPS = (RespondentGroup.CITIZEN, RespondentGroup.BUSINESS)

UNIT_FLAG_LABELS = {
    "low_n": "Ít phiếu hợp lệ",
    "low_response_rate": "Tỷ lệ phản hồi thấp",
    "no_score": "Chưa có điểm",
}
QUALITY_FLAG_LABELS = {
    "straight_lining": "Trả lời một kiểu cho mọi câu",
    "too_fast": "Trả lời quá nhanh",
    "network_burst": "Nhiều phiếu từ một mạng trong thời gian ngắn",
    "duplicate_answers": "Trùng toàn bộ câu trả lời với phiếu khác",
}


class AnalysisError(SurveyError):
    """Answers or rules that cannot be scored."""

    status = 422
    code = "analysis_error"


def _flag_names(bits: int, enum_cls: type[UnitFlag] | type[QualityFlag]) -> list[str]:
    """Lower-case names of the bits set, in declaration order."""
    return [m.name.lower() for m in enum_cls if bits & int(m)]  # type: ignore[union-attr]


def _num(value: float) -> float | None:
    """NaN → None for JSON and templates."""
    value = float(value)
    return None if math.isnan(value) else value


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass
class GroupInfo:
    """A respondent group of the campaign as scored: questionnaire version and structure."""

    group: str
    label: str
    questionnaire_ref: str
    questionnaire_digest: str
    weight: float
    method: str
    elements: list[tuple[str, str]]  # (element id, title)
    criteria: list[tuple[str, str, str]]  # (criterion id, title, element id)


@dataclass
class GroupUnitScore:
    """One group's scores of one unit (percentages 0..100, None where nothing is valid)."""

    overall: float | None
    low: float | None
    high: float | None
    n_responses: int
    n_valid: int
    issued: int
    response_rate: float | None
    flags: list[str]
    elements: dict[str, list[float | None]]  # element id → [pct, low, high]
    criteria: dict[str, list[float | None]]  # criterion id → [pct, low, high, n answers]


@dataclass
class UnitResult:
    """A rated unit's survey component, combined over groups, with its rank and change."""

    unit_id: int
    code: str
    name: str
    survey_pct: float | None
    low: float | None
    high: float | None
    se: float | None
    points: float | None
    points_low: float | None
    points_high: float | None
    rank: int | None
    previous_pct: float | None
    change: float | None  # percentage points against the previous campaign
    n_responses: int
    issued: int
    response_rate: float | None
    flags: list[str]
    self_assessment_points: float | None
    total_points: float | None
    groups: dict[str, GroupUnitScore] = field(default_factory=dict)


@dataclass
class CampaignScores:
    """Every rated unit's scores for a campaign (`to_dict` gives the JSON of API and exports)."""

    campaign_id: int
    campaign_key: str
    campaign_name: str
    weighted: bool
    include_excluded: bool
    survey_points: float
    conversion: str
    groups: list[GroupInfo]
    units: list[UnitResult]
    headline_group: str | None
    responses_scored: int
    responses_excluded: int
    responses_outside: int  # responses for units the campaign does not rate

    def unit(self, unit_id: int) -> UnitResult:
        """The result of one unit (NotFound when the campaign does not rate it)."""
        for u in self.units:
            if u.unit_id == unit_id:
                return u
        raise NotFound("Đơn vị không thuộc chiến dịch này.")

    def group_info(self, group: str) -> GroupInfo | None:
        """The scored structure of a group."""
        return next((g for g in self.groups if g.group == group), None)

    @property
    def headline_elements(self) -> list[tuple[str, str]]:
        """(id, title) of the element columns shown on the scoreboard."""
        info = self.group_info(self.headline_group) if self.headline_group else None
        return info.elements if info else []

    def to_dict(self) -> dict:
        """Plain JSON-able data (NaN already None); stable for a given database state."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass
class _Loaded:
    """Responses of a campaign as arrays, and their answers encoded per group."""

    response_ids: np.ndarray  # int64
    unit_ids: np.ndarray  # int64 (rated unit as stored)
    group_of: np.ndarray  # intp: index into `groups`
    weights: np.ndarray
    excluded: np.ndarray  # bool
    durations: np.ndarray  # float, NaN when unknown
    networks: np.ndarray  # str, "" when unknown
    submitted: np.ndarray  # float seconds
    groups: list  # CampaignGroup rows
    compiled: list[CompiledRules]
    questionnaires: list
    rows: list[np.ndarray]  # per group: indexes of its responses
    codes: list[np.ndarray]  # per group: AnswerMatrix aligned with rows


def _compile_groups(campaign: Campaign) -> tuple[list, list, list[CompiledRules]]:
    groups, questionnaires, compiled = [], [], []
    for cg in campaign.groups:
        questionnaire, _ = questionnaire_for(campaign.id, cg.group)
        try:
            rules = compile_rules(questionnaire)
        except ScoringError as exc:
            raise AnalysisError("Bảng hỏi không có quy tắc tính điểm hợp lệ.",
                                details=[str(exc)]) from exc
        groups.append(cg)
        questionnaires.append(questionnaire)
        compiled.append(rules)
    return groups, questionnaires, compiled


def _load(campaign: Campaign, *, include_excluded: bool) -> _Loaded:
    """One query for the responses, one for their answers; encode answers per group."""
    groups, questionnaires, compiled = _compile_groups(campaign)
    group_pos = {cg.group: i for i, cg in enumerate(groups)}
    cond = [Response.campaign_id == campaign.id]
    if not include_excluded:
        cond.append(Response.excluded.is_(False))
    rows = db.session.execute(
        select(Response.id, Response.unit_id, Response.group, Response.weight,
               Response.excluded, Response.duration_seconds, Response.network_hash,
               Response.submitted_at)
        .where(*cond).order_by(Response.id)
    ).all()
    rows = [r for r in rows if r.group in group_pos]  # a group removed from the plan: ignored
    n = len(rows)
    response_ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=n)
    group_of = np.fromiter((group_pos[r.group] for r in rows), dtype=np.intp, count=n)
    # Position of each response inside its group's matrix.
    row_in_group = np.zeros(n, dtype=np.intp)
    members = []
    for g in range(len(groups)):
        idx = np.flatnonzero(group_of == g)
        row_in_group[idx] = np.arange(idx.size)
        members.append(idx)
    codes = [np.full((m.size, c.n_items), MISSING, dtype=c.code_dtype)
             for m, c in zip(members, compiled, strict=True)]
    # Answers as three columns (Core execution: no ORM row overhead). Each distinct
    # (question, value) pair gets a small integer key; a (group × key) table then gives the
    # matrix column and option index, so the placement itself is vectorised.
    answer_stmt = (select(Answer.response_id, Answer.question_id, Answer.value)
                   .join(Response, Response.id == Answer.response_id).where(*cond))
    result = db.session.connection().execute(answer_stmt)
    # Plain int/str columns need no type processing: read the DBAPI cursor directly, which
    # skips building a Row object per answer (the bulk of the loading time).
    answer_rows = result.cursor.fetchall()
    result.close()
    keys: dict[tuple[str, str], int] = {}
    key_of = np.fromiter((keys.setdefault((r[1], r[2]), len(keys)) for r in answer_rows),
                         dtype=np.intp, count=len(answer_rows))
    rid = np.fromiter((r[0] for r in answer_rows), dtype=np.int64, count=len(answer_rows))
    del answer_rows
    pos = np.searchsorted(response_ids, rid)  # response_ids are sorted (ORDER BY id)
    pos_ok = pos < n
    pos_ok[pos_ok] = response_ids[pos[pos_ok]] == rid[pos_ok]  # a group left out above

    UNSCORED, UNKNOWN = -1, -2
    col_table = np.full((len(groups), len(keys)), UNSCORED, dtype=np.intp)
    code_table = np.full((len(groups), len(keys)), UNSCORED, dtype=np.intp)
    for g, c in enumerate(compiled):
        cols = {q: j for j, q in enumerate(c.item_ids)}
        opts = [{code: k for k, code in enumerate(o)} for o in c.option_codes]
        for (qid, value), key in keys.items():
            j = cols.get(qid)
            if j is not None:
                k = opts[j].get(value)
                col_table[g, key] = j
                code_table[g, key] = UNKNOWN if k is None else k
    problems: list[str] = []
    for g in range(len(groups)):
        sel = np.flatnonzero(pos_ok)
        sel = sel[group_of[pos[sel]] == g]
        code = code_table[g, key_of[sel]]
        bad = sel[code == UNKNOWN]
        for i in bad[:20]:
            qid, value = next(k for k, v in keys.items() if v == key_of[i])
            problems.append(f"phiếu {rid[i]}: câu {qid} không có lựa chọn {value!r}")
        take = sel[code >= 0]
        codes[g][row_in_group[pos[take]], col_table[g, key_of[take]]] = code_table[
            g, key_of[take]]
    if problems:
        raise AnalysisError("Có câu trả lời không khớp với bảng hỏi; chưa tính điểm.",
                            details=problems)

    def stamp(t: dt.datetime | None) -> float:
        return t.timestamp() if t is not None else math.nan

    return _Loaded(
        response_ids=response_ids,
        unit_ids=np.fromiter((r.unit_id for r in rows), dtype=np.int64, count=n),
        group_of=group_of,
        weights=np.fromiter((r.weight if r.weight is not None else 1.0 for r in rows),
                            dtype=np.float64, count=n),
        excluded=np.fromiter((bool(r.excluded) for r in rows), dtype=bool, count=n),
        durations=np.fromiter((r.duration_seconds if r.duration_seconds is not None
                               else math.nan for r in rows), dtype=np.float64, count=n),
        networks=np.array([r.network_hash or "" for r in rows], dtype=object),
        submitted=np.fromiter((stamp(r.submitted_at) for r in rows), dtype=np.float64, count=n),
        groups=groups, compiled=compiled, questionnaires=questionnaires, rows=members,
        codes=codes,
    )


def _rated_units(campaign: Campaign) -> list[tuple[Unit, RatedUnit]]:
    return [(unit, rated) for unit, rated in db.session.execute(
        select(Unit, RatedUnit).join(RatedUnit, RatedUnit.unit_id == Unit.id)
        .where(RatedUnit.campaign_id == campaign.id).order_by(Unit.code)
    )]


def _strata_figures(campaign: Campaign, unit_pos: dict[int, int], groups: list
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group × unit: rated (has a stratum), frame size N (eligible, NaN unknown), issued
    (active assignments of the stratum)."""
    g_pos = {cg.group: i for i, cg in enumerate(groups)}
    shape = (len(groups), len(unit_pos))
    rated = np.zeros(shape, dtype=bool)
    frame = np.full(shape, np.nan)
    issued = np.zeros(shape, dtype=np.int64)
    for s in db.session.scalars(select(Stratum).where(Stratum.campaign_id == campaign.id)):
        if s.group in g_pos and s.unit_id in unit_pos:
            g, u = g_pos[s.group], unit_pos[s.unit_id]
            rated[g, u] = True
            if s.eligible_count:
                frame[g, u] = float(s.eligible_count)
    counts = db.session.execute(
        select(Assignment.group, Assignment.unit_id, func.count(Assignment.id))
        .where(Assignment.campaign_id == campaign.id, Assignment.active.is_(True))
        .group_by(Assignment.group, Assignment.unit_id)
    ).all()
    for group, unit_id, count in counts:
        if group in g_pos and unit_id in unit_pos:
            issued[g_pos[group], unit_pos[unit_id]] = int(count)
    return rated, frame, issued


def _bands(campaign: Campaign) -> list[Band]:
    return [Band(float(b["min_percent"]), float(b["points"])) for b in campaign.bands or []]


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


def score_campaign(campaign: Campaign, *, weighted: bool, include_excluded: bool = False,
                   with_previous: bool = True) -> CampaignScores:
    """Score every rated unit of a campaign from its stored responses.

    Per group: the questionnaire's compiled rules, the answers encoded as a matrix, and
    `score_units` with frame sizes (strata eligible counts) and issued forms (active
    assignments) for response rates. Groups are combined with the campaign's group weights
    into the unit survey score, converted to points, ranked on the survey percentage and
    compared with the previous campaign (same unit id). Excluded responses are left out
    unless `include_excluded`. `weighted` uses the design weights stored on the responses.
    """
    data = _load(campaign, include_excluded=include_excluded)
    units = _rated_units(campaign)
    unit_pos = {u.id: i for i, (u, _) in enumerate(units)}
    n_units = len(units)
    rated, frame, issued = _strata_figures(campaign, unit_pos, data.groups)

    group_infos: list[GroupInfo] = []
    parts: list[tuple[GroupPlan, UnitScores]] = []
    outside = 0
    for g, (cg, questionnaire, compiled) in enumerate(
            zip(data.groups, data.questionnaires, data.compiled, strict=True)):
        idx = data.rows[g]
        unit_index = np.array([unit_pos.get(int(u), -1) for u in data.unit_ids[idx]],
                              dtype=np.intp)
        inside = unit_index >= 0
        outside += int((~inside).sum())
        scores = score_units(
            compiled, data.codes[g][inside], unit_index[inside], n_units,
            weights=data.weights[idx][inside] if weighted else None,
            frame_sizes=frame[g], issued=issued[g],
            min_n=campaign.min_n, min_response_rate=campaign.min_response_rate,
        )
        rules = questionnaire.scoring
        element_titles = {e.id: e.title for e in rules.elements}
        group_infos.append(GroupInfo(
            group=cg.group.value, label=cg.group.label, questionnaire_ref=questionnaire.ref,
            questionnaire_digest=questionnaire.digest, weight=float(cg.weight),
            method=rules.method.value,
            elements=[(e, element_titles[e]) for e in compiled.element_ids],
            criteria=[(c.id, c.title, e.id) for e in rules.elements for c in e.criteria],
        ))
        plan = GroupPlan(group=cg.group, questionnaire=cg.questionnaire_ref, mode=cg.mode,
                         quota=cg.quota, weight=float(cg.weight))
        parts.append((plan, scores))

    if parts:
        combined = combine_groups(parts)
        pct, low, high, se = (combined.overall_pct, combined.overall_low, combined.overall_high,
                              combined.overall_se)
    else:
        pct = low = high = se = np.full(n_units, np.nan)
    method = ConversionMethod(campaign.conversion)
    bands = _bands(campaign)
    points = to_points(pct, campaign.survey_points, method, bands)
    points_low = to_points(low, campaign.survey_points, method, bands)
    points_high = to_points(high, campaign.survey_points, method, bands)
    ranks = rank_units(pct)

    previous = _previous_scores(campaign, weighted) if with_previous else {}
    change = change_from_previous([str(u.id) for u, _ in units], pct, previous)

    results: list[UnitResult] = []
    for i, (unit, rated_unit) in enumerate(units):
        group_scores: dict[str, GroupUnitScore] = {}
        flag_bits = 0
        n_total = 0
        issued_total = 0
        for g, (plan, s) in enumerate(parts):
            if not rated[g, i] and s.n_responses[i] == 0:
                continue  # the group does not rate this unit
            flag_bits |= int(s.flags[i])
            n_total += int(s.n_responses[i])
            issued_total += int(issued[g, i])
            group_scores[plan.group.value] = GroupUnitScore(
                overall=_num(s.overall_pct[i]), low=_num(s.overall_low[i]),
                high=_num(s.overall_high[i]), n_responses=int(s.n_responses[i]),
                n_valid=int(s.n_valid[i]), issued=int(issued[g, i]),
                response_rate=_num(s.response_rate[i]),
                flags=_flag_names(int(s.flags[i]), UnitFlag),
                elements={e: [_num(s.element_pct[i, k]), _num(s.element_low[i, k]),
                              _num(s.element_high[i, k])]
                          for k, e in enumerate(s.element_ids)},
                criteria={c: [_num(s.criterion_pct[i, k]), _num(s.criterion_low[i, k]),
                              _num(s.criterion_high[i, k]), int(s.criterion_n[i, k])]
                          for k, c in enumerate(s.criterion_ids)},
            )
        if math.isnan(pct[i]):
            flag_bits |= int(UnitFlag.NO_SCORE)
        else:
            flag_bits &= ~int(UnitFlag.NO_SCORE)  # another group scored the unit
        sa = rated_unit.self_assessment_points
        pts = _num(points[i])
        results.append(UnitResult(
            unit_id=unit.id, code=unit.code, name=unit.name, survey_pct=_num(pct[i]),
            low=_num(low[i]), high=_num(high[i]), se=_num(se[i]), points=pts,
            points_low=_num(points_low[i]), points_high=_num(points_high[i]),
            rank=int(ranks[i]) if ranks[i] > 0 else None,
            previous_pct=_num(previous.get(str(unit.id), math.nan)),
            change=_num(change[i]), n_responses=n_total, issued=issued_total,
            response_rate=(n_total / issued_total) if issued_total else None,
            flags=_flag_names(flag_bits, UnitFlag), self_assessment_points=sa,
            total_points=(sa + pts) if sa is not None and pts is not None else None,
            groups=group_scores,
        ))

    headline = next((g.value for g in HEADLINE_GROUPS
                     if any(i.group == g.value for i in group_infos)),
                    group_infos[0].group if group_infos else None)
    return CampaignScores(
        campaign_id=campaign.id, campaign_key=campaign.key, campaign_name=campaign.name,
        weighted=weighted, include_excluded=include_excluded,
        survey_points=float(campaign.survey_points), conversion=method.value,
        groups=group_infos, units=results, headline_group=headline,
        responses_scored=int(data.response_ids.size) - outside,
        responses_excluded=_count_excluded(campaign), responses_outside=outside,
    )


def _count_excluded(campaign: Campaign) -> int:
    return int(db.session.scalar(select(func.count(Response.id)).where(
        Response.campaign_id == campaign.id, Response.excluded.is_(True))) or 0)


def _previous_scores(campaign: Campaign, weighted: bool) -> dict[str, float]:
    """Survey % of the previous campaign's units keyed by unit id: its frozen snapshot when it
    has one (the published figures), else a fresh computation."""
    if campaign.previous_campaign_id is None:
        return {}
    previous = db.session.get(Campaign, campaign.previous_campaign_id)
    if previous is None:
        return {}
    snapshot = latest_snapshot(previous)
    if snapshot is not None:
        units = snapshot.payload.get("weighted" if weighted else "unweighted", {}).get("units", [])
        return {str(u["unit_id"]): u["survey_pct"] for u in units
                if u.get("survey_pct") is not None}
    try:
        scores = score_campaign(previous, weighted=weighted, with_previous=False)
    except SurveyError:
        return {}
    return {str(u.unit_id): u.survey_pct for u in scores.units if u.survey_pct is not None}


SORT_KEYS: dict[str, Callable[[UnitResult], object]] = {
    "code": lambda u: u.code,
    "name": lambda u: u.name,
    "points": lambda u: u.points,
    "pct": lambda u: u.survey_pct,
    "n": lambda u: u.n_responses,
    "rr": lambda u: u.response_rate,
    "rank": lambda u: u.rank,
    "change": lambda u: u.change,
}


def sorted_units(scores: CampaignScores, key: str, descending: bool) -> list[UnitResult]:
    """Units sorted by a scoreboard column (`SORT_KEYS`, `overall` or an element id of the
    headline group); units without a value always come last."""
    head = scores.headline_group or ""
    if key == "overall":
        def get(u: UnitResult) -> object:
            gs = u.groups.get(head)
            return gs.overall if gs else None
    elif key in {e for e, _ in scores.headline_elements}:
        def get(u: UnitResult) -> object:
            gs = u.groups.get(head)
            return gs.elements.get(key, [None])[0] if gs else None
    else:
        get = SORT_KEYS.get(key, SORT_KEYS["rank"])
    present = [u for u in scores.units if get(u) is not None]
    missing = [u for u in scores.units if get(u) is None]
    present.sort(key=get, reverse=descending)  # type: ignore[arg-type]
    return present + missing


# --------------------------------------------------------------------------------------------
# Data quality and exclusions
# --------------------------------------------------------------------------------------------


@dataclass
class QualitySummary:
    """Outcome of a data-quality pass: responses checked and flagged, counts per flag."""

    checked: int
    flagged: int
    per_flag: dict[str, int]


def flag_responses(campaign: Campaign) -> QualitySummary:
    """Compute the data-quality flags of every response (excluded ones too) and store them in
    `Response.flags` (straight-lining, too fast, duplicate answers per group; network bursts
    across the whole campaign)."""
    data = _load(campaign, include_excluded=True)
    n = data.response_ids.size
    bits = np.zeros(n, dtype=np.int64)
    for g, compiled in enumerate(data.compiled):
        idx = data.rows[g]
        if idx.size == 0:
            continue
        bits[idx] |= quality_flags(compiled, data.codes[g], data.unit_ids[idx],
                                   durations_s=data.durations[idx])
    if n:
        bursts = flag_network_bursts(data.networks.astype(str), data.submitted)
        bits |= np.where(bursts, int(QualityFlag.NETWORK_BURST), 0)
    current = dict(db.session.execute(
        select(Response.id, Response.flags).where(Response.campaign_id == campaign.id)).all())
    changes = []
    per_flag = {m.name.lower(): 0 for m in QualityFlag}
    for rid, b in zip(data.response_ids.tolist(), bits.tolist(), strict=True):
        names = _flag_names(int(b), QualityFlag)
        for name in names:
            per_flag[name] += 1
        if list(current.get(rid) or []) != names:
            changes.append({"id": rid, "flags": names})
    if changes:
        db.session.execute(update(Response), changes)
    db.session.flush()
    return QualitySummary(checked=n, flagged=int((bits > 0).sum()), per_flag=per_flag)


@dataclass
class ResponseRow:
    """A response as the quality page shows it: no identity, only what judges its quality."""

    id: int
    unit_code: str
    unit_name: str
    group: str
    group_label: str
    mode: str
    submitted_at: dt.datetime
    duration_seconds: float | None
    answers: int
    flags: list[str]
    excluded: bool
    exclusion_reason: str


def review_rows(campaign: Campaign, *, only_flagged: bool = True,
                limit: int = 500) -> list[ResponseRow]:
    """Flagged (or all) responses and every excluded one, newest first, for review."""
    answers = (select(Answer.response_id, func.count(Answer.id).label("n"))
               .join(Response, Response.id == Answer.response_id)
               .where(Response.campaign_id == campaign.id)
               .group_by(Answer.response_id).subquery())
    stmt = (select(Response, Unit.code, Unit.name, answers.c.n)
            .join(Unit, Unit.id == Response.unit_id)
            .outerjoin(answers, answers.c.response_id == Response.id)
            .where(Response.campaign_id == campaign.id)
            .order_by(Response.submitted_at.desc(), Response.id.desc())
            .limit(limit))
    if only_flagged:
        # Flags are a JSON list: "[]" as text on every engine when there is none.
        stmt = stmt.where(or_(Response.excluded.is_(True),
                              func.coalesce(cast(Response.flags, String), "[]") != "[]"))
    out = []
    for r, code, name, n in db.session.execute(stmt):
        if only_flagged and not r.flags and not r.excluded:
            continue
        out.append(ResponseRow(
            id=r.id, unit_code=code, unit_name=name, group=r.group.value,
            group_label=r.group.label, mode=r.mode.label, submitted_at=r.submitted_at,
            duration_seconds=r.duration_seconds, answers=int(n or 0), flags=list(r.flags or []),
            excluded=r.excluded, exclusion_reason=r.exclusion_reason or "",
        ))
    return out


def set_exclusion(campaign: Campaign, response_id: int, *, excluded: bool, reason: str = "",
                  user: User | None = None) -> Response:
    """Exclude a response from the scores (a reason is required) or include it again; audited
    with `AuditAction.RESPONSE_EXCLUDED`. Scores computed afterwards reflect the change."""
    response = db.session.get(Response, response_id)
    if response is None or response.campaign_id != campaign.id:
        raise NotFound("Không tìm thấy phiếu trả lời này trong chiến dịch.")
    reason = " ".join((reason or "").split())[:500]
    if excluded and not reason:
        raise SurveyError("Cần ghi lý do khi loại một phiếu khỏi kết quả.")
    response.excluded = excluded
    response.exclusion_reason = reason if excluded else ""
    # The reason stays on the response; the log keeps ids and flags only.
    audit(AuditAction.RESPONSE_EXCLUDED, user=user, target=f"response:{response.id}",
          campaign=campaign.id, excluded=excluded, flags=list(response.flags or []))
    db.session.flush()
    return response


# --------------------------------------------------------------------------------------------
# Frozen scores
# --------------------------------------------------------------------------------------------


def responses_digest(campaign: Campaign) -> str:
    """SHA-256 over the scored data (responses' unit, group, weight, exclusion and answers),
    in id order: equal digests mean a recomputation uses the same data."""
    h = hashlib.sha256()
    for r in db.session.execute(
        select(Response.id, Response.unit_id, Response.group, Response.weight, Response.excluded)
        .where(Response.campaign_id == campaign.id).order_by(Response.id)
    ):
        h.update(f"R|{r.id}|{r.unit_id}|{r.group.value}|{r.weight!r}|{int(r.excluded)}\n"
                 .encode())
    for rid, qid, value in db.session.execute(
        select(Answer.response_id, Answer.question_id, Answer.value)
        .join(Response, Response.id == Answer.response_id)
        .where(Response.campaign_id == campaign.id)
        .order_by(Answer.response_id, Answer.question_id)
    ):
        h.update(f"A|{rid}|{qid}|{value}\n".encode())
    return h.hexdigest()


def freeze_scores(campaign: Campaign, *, user: User | None = None) -> ScoreSnapshot:
    """Store the campaign's scores (weighted and unweighted) as a snapshot with the
    questionnaire refs and digests and a digest of the scored data. Call it when the campaign
    closes; calling it again adds a newer snapshot (the latest one is the official one)."""
    unweighted = score_campaign(campaign, weighted=False)
    weighted = score_campaign(campaign, weighted=True)
    snapshot = ScoreSnapshot(
        campaign_id=campaign.id, frozen_at=utcnow(),
        frozen_by_id=user.id if user is not None else None,
        questionnaires={g.group: {"ref": g.questionnaire_ref, "digest": g.questionnaire_digest}
                        for g in unweighted.groups},
        responses_digest=responses_digest(campaign),
        payload={"unweighted": unweighted.to_dict(), "weighted": weighted.to_dict()},
    )
    db.session.add(snapshot)
    db.session.flush()
    return snapshot


def latest_snapshot(campaign: Campaign) -> ScoreSnapshot | None:
    """The newest frozen snapshot of a campaign, if any."""
    return db.session.scalars(
        select(ScoreSnapshot).where(ScoreSnapshot.campaign_id == campaign.id)
        .order_by(ScoreSnapshot.frozen_at.desc(), ScoreSnapshot.id.desc())
    ).first()


# --------------------------------------------------------------------------------------------
# Purge after the retention period
# --------------------------------------------------------------------------------------------


@dataclass
class PurgeResult:
    """What the purge removed or de-identified (counts only)."""

    frame_entries: int
    response_links: int
    paper_entries: int
    drafts: int
    import_issues: int
    files: int
    snapshot_id: int | None


def purge_due(campaign: Campaign, retention_days: int) -> dt.datetime | None:
    """When the campaign's personal data may be purged (None while it is not closed)."""
    if campaign.status is not CampaignStatus.CLOSED or campaign.closed_at is None:
        return None
    closed = campaign.closed_at
    if closed.tzinfo is None:
        closed = closed.replace(tzinfo=dt.UTC)
    return closed + dt.timedelta(days=retention_days)


def purge_campaign(campaign: Campaign, *, now: dt.datetime | None = None,
                   user: User | None = None) -> PurgeResult:
    """De-identify the lists and cut the response ↔ person links of a closed campaign whose
    retention period (`closed_at` + app.config["RETENTION_DAYS"]) has passed.

    Frame entries lose name, phone, address, position, workplace, birth year, transaction date,
    extra columns and content fingerprint; assignment ↔ response links, paper keyings, form
    drafts and import issues are deleted; the uploaded list files and their previews are
    removed. Responses, answers, strata and assignments stay, so the scores are reproducible
    from the anonymised data. The scores are frozen first when no snapshot exists.
    """
    now = now or utcnow()
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    due = purge_due(campaign, int(current_app.config.get("RETENTION_DAYS", 365)))
    if due is None:
        raise Conflict("Chỉ xoá dữ liệu cá nhân của chiến dịch đã kết thúc.")
    if now < due:
        raise Conflict(f"Chưa hết thời hạn lưu trữ: được xoá từ {due:%d/%m/%Y}.")
    snapshot = latest_snapshot(campaign) or freeze_scores(campaign, user=user)

    cid = campaign.id
    entries = db.session.execute(
        update(FrameEntry).where(FrameEntry.campaign_id == cid).values(
            name="", phone=None, phone_kind=PhoneKind.NONE, address="", position="",
            workplace="", birth_year=None, transaction_date=None, extra=None, fingerprint=0,
        ).execution_options(synchronize_session=False)
    ).rowcount
    response_ids = select(Response.id).where(Response.campaign_id == cid)
    assignment_ids = select(Assignment.id).where(Assignment.campaign_id == cid)
    links = db.session.execute(
        delete(ResponseLink).where(ResponseLink.response_id.in_(response_ids))
        .execution_options(synchronize_session=False)).rowcount
    paper = db.session.execute(
        delete(PaperEntry).where(PaperEntry.assignment_id.in_(assignment_ids))
        .execution_options(synchronize_session=False)).rowcount
    token_ids = select(AccessToken.id).where(AccessToken.campaign_id == cid)
    drafts = db.session.execute(
        delete(FormDraft).where(FormDraft.token_id.in_(token_ids))
        .execution_options(synchronize_session=False)).rowcount
    # Packed copies of the lists hold phone numbers and birth years.
    db.session.execute(delete(FramePack).where(FramePack.campaign_id == cid))
    batch_ids = select(ImportBatch.id).where(ImportBatch.campaign_id == cid)
    issues = db.session.execute(
        delete(ImportIssue).where(ImportIssue.batch_id.in_(batch_ids))
        .execution_options(synchronize_session=False)).rowcount
    files = 0
    for batch in db.session.scalars(select(ImportBatch).where(ImportBatch.campaign_id == cid)):
        if batch.stored_path:
            path = Path(batch.stored_path)
            if not path.is_absolute():
                path = Path(current_app.instance_path) / path
            if path.is_file():
                path.unlink()
                files += 1
        batch.stored_path = ""
        batch.preview = {}
    # Network hashes could single out a respondent's household network: drop them too.
    db.session.execute(update(Response).where(Response.campaign_id == cid)
                       .values(network_hash=None).execution_options(synchronize_session=False))
    campaign.purged_at = now
    result = PurgeResult(frame_entries=entries or 0, response_links=links or 0,
                         paper_entries=paper or 0, drafts=drafts or 0, import_issues=issues or 0,
                         files=files, snapshot_id=snapshot.id)
    audit(AuditAction.PURGE, user=user, target=f"campaign:{cid}",
          **{k: v for k, v in asdict(result).items()})
    db.session.flush()
    db.session.expire_all()
    return result


def units_for_chart(units: Sequence[UnitResult]) -> list[tuple[str, float | None, float | None,
                                                               float | None]]:
    """(label, pct, low, high) of units, for the CI chart."""
    return [(f"{u.code} · {u.name}", u.survey_pct, u.low, u.high) for u in units]
