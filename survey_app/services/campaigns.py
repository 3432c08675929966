"""Creating campaigns from plans and moving them through their life cycle."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from questionnaires.catalog import get_questionnaire
from questionnaires.errors import QuestionnaireFormatError
from questionnaires.loader import load_plan
from questionnaires.model import Plan

from ..errors import Conflict, NotFound, SurveyError
from ..extensions import db
from ..models import (
    AuditAction,
    Campaign,
    CampaignGroup,
    CampaignStatus,
    RatedUnit,
    Stratum,
    Unit,
    UnitLevel,
)
from .audit import audit

CUSTOM_SCHEME = "custom"


class PlanRejected(SurveyError):
    """A plan file that cannot become a campaign; nothing is created."""

    status = 422
    code = "invalid_plan"


def read_plan(source: str | Path | bytes) -> Plan:
    """Load and validate a plan file, translating its problems into one error."""
    try:
        return load_plan(source)
    except QuestionnaireFormatError as exc:
        raise PlanRejected("Kế hoạch không hợp lệ, chưa tạo chiến dịch.",
                           details=[str(p) for p in exc.problems]) from exc


def _resolve_units(plan: Plan) -> list[Unit]:
    scheme = str(plan.extra.get("unit_scheme", CUSTOM_SCHEME))
    units: list[Unit] = []
    problems = []
    by_code = {u.code: u for u in db.session.scalars(
        select(Unit).where(Unit.scheme == scheme, Unit.code.in_([r.code for r in plan.units]))
    )}
    for i, ref in enumerate(plan.units):
        unit = by_code.get(ref.code)
        if unit is None:
            if not ref.name or not ref.level:
                problems.append(f"units[{i}]: đơn vị {ref.code} chưa có trong hệ thống; "
                                "cần ghi tên và cấp để tạo mới.")
                continue
            try:
                level = UnitLevel(ref.level)
            except ValueError:
                problems.append(f"units[{i}].level: cấp không hợp lệ: {ref.level!r}.")
                continue
            parent = None
            if ref.parent:
                parent = by_code.get(ref.parent) or db.session.scalar(
                    select(Unit).where(Unit.scheme == scheme, Unit.code == ref.parent))
            unit = Unit(scheme=scheme, code=ref.code, name=ref.name, level=level, parent=parent)
            db.session.add(unit)
            by_code[ref.code] = unit
        units.append(unit)
    if not plan.units:
        problems.append("units: kế hoạch chưa có danh sách đơn vị được đánh giá.")
    if problems:
        raise PlanRejected("Kế hoạch không hợp lệ, chưa tạo chiến dịch.", details=problems)
    db.session.flush()
    return units


def create_campaign(plan: Plan, *, key: str | None = None, source_digest: str = "") -> Campaign:
    """Create a draft campaign with its groups, rated units and strata (quota per unit × group)."""
    key = key or plan.key
    if db.session.scalar(select(Campaign.id).where(Campaign.key == key)):
        raise Conflict(f"Chiến dịch có mã «{key}» đã tồn tại.")
    units = _resolve_units(plan)
    campaign = Campaign(
        key=key, name=plan.name, year=plan.year, period_start=plan.period_start,
        period_end=plan.period_end, description=plan.description, seed=plan.seed,
        survey_points=plan.survey_points, conversion=plan.conversion,
        bands=[{"min_percent": b.min_percent, "points": b.points} for b in plan.bands],
        min_n=plan.min_n, min_response_rate=plan.min_response_rate, plan_digest=source_digest,
        status=CampaignStatus.DRAFT,
    )
    db.session.add(campaign)
    db.session.flush()
    for unit in units:
        db.session.add(RatedUnit(campaign_id=campaign.id, unit_id=unit.id))
    for g in plan.groups:
        questionnaire = get_questionnaire(g.questionnaire)
        campaign.groups.append(CampaignGroup(
            group=g.group, questionnaire_ref=questionnaire.ref,
            questionnaire_digest=questionnaire.digest, mode=g.mode, quota=g.quota,
            reserves=g.reserves, weight=g.weight, frame_scope=g.frame_scope,
        ))
        for unit in units:
            if g.rated_levels and unit.level.value not in g.rated_levels:
                continue
            campaign.strata.append(Stratum(group=g.group, unit_id=unit.id, quota=g.quota,
                                           reserves=g.reserves))
    db.session.flush()
    audit(AuditAction.CAMPAIGN_CREATED, target=f"campaign:{campaign.id}",
          strata=len(campaign.strata))
    return campaign


def create_campaign_from_file(path: str | Path, *, key: str | None = None) -> Campaign:
    """Read a plan file and create its campaign (all or nothing)."""
    data = Path(path).read_bytes()
    plan = read_plan(data)
    return create_campaign(plan, key=key, source_digest=hashlib.sha256(data).hexdigest())


def get_campaign(key_or_id: str | int) -> Campaign:
    """A campaign by key or id (404 when absent)."""
    stmt = select(Campaign)
    if isinstance(key_or_id, int) or str(key_or_id).isdigit():
        stmt = stmt.where(Campaign.id == int(key_or_id))
    else:
        stmt = stmt.where(Campaign.key == key_or_id)
    campaign = db.session.scalar(stmt)
    if campaign is None:
        raise NotFound(f"Không tìm thấy chiến dịch «{key_or_id}».")
    return campaign


ALLOWED_TRANSITIONS = {
    CampaignStatus.DRAFT: {CampaignStatus.FIELDING},
    CampaignStatus.FIELDING: {CampaignStatus.CLOSED},
    CampaignStatus.CLOSED: set(),
}


def set_status(campaign: Campaign, status: CampaignStatus) -> None:
    """Move a campaign forward (draft → fielding → closed)."""
    if status not in ALLOWED_TRANSITIONS[campaign.status]:
        raise Conflict(f"Không thể chuyển chiến dịch từ «{campaign.status.label}» sang "
                       f"«{status.label}».")
    campaign.status = status
    if status is CampaignStatus.CLOSED:
        from ..models._types import utcnow

        campaign.closed_at = utcnow()
    audit(AuditAction.CAMPAIGN_STATUS, target=f"campaign:{campaign.id}", status=status.value)
    db.session.flush()
