"""The demo: an embedded SQLite database with units, a campaign, users and synthetic lists."""

from __future__ import annotations

from collections.abc import Callable

from flask_migrate import upgrade
from sqlalchemy import func, select

from questionnaires.catalog import plan_path

from ..extensions import db
from ..models import Campaign, Role, Unit, User
from .campaigns import create_campaign_from_file
from .units import load_current_tree
from .users import create_user

DEMO_CAMPAIGN = "demo-2026"
DEMO_USERS = [
    # username, password, role, unit codes (of the demo plan)
    ("admin", "admin-demo-2026", Role.ADMIN, []),
    ("phantich", "phantich-demo-2026", Role.ANALYST, []),
]


def _demo_units(campaign: Campaign) -> list[Unit]:
    from ..models import RatedUnit

    return list(db.session.scalars(
        select(Unit).join(RatedUnit, RatedUnit.unit_id == Unit.id)
        .where(RatedUnit.campaign_id == campaign.id).order_by(Unit.code)
    ))


def prepare_demo(echo: Callable[[str], None] = print) -> dict:
    """Migrate and fill the demo database; safe to run again on an existing database."""
    upgrade()
    if not db.session.scalar(select(func.count(Unit.id)).where(Unit.scheme == "vn-2025")):
        result = load_current_tree()
        db.session.commit()
        echo(f"Đã nạp {result.created} đơn vị hành chính (34 tỉnh, các xã/phường).")
    campaign = db.session.scalar(select(Campaign).where(Campaign.key == DEMO_CAMPAIGN))
    if campaign is None:
        campaign = create_campaign_from_file(plan_path("demo"), key=DEMO_CAMPAIGN)
        db.session.commit()
        echo(f"Đã tạo chiến dịch demo «{campaign.name}».")
    units = _demo_units(campaign)
    users = list(DEMO_USERS)
    if units:
        users.append(("donvi1", "donvi-demo-2026", Role.UPLOADER, [units[0].code]))
        users.append(("dieutra1", "dieutra-demo-2026", Role.ENUMERATOR, [units[0].code]))
    logins = []
    for username, password, role, codes in users:
        if not db.session.scalar(select(User.id).where(User.username == username)):
            create_user(username, password, role, unit_codes=codes,
                        scheme=units[0].scheme if codes else None,
                        full_name=f"Demo {role.label}")
        logins.append({"username": username, "password": password, "role": role.label})
    db.session.commit()
    extra: list[str] = []
    for step in DEMO_STEPS:
        extra.extend(step(campaign, echo) or [])
    db.session.commit()
    return {"logins": logins, "campaign": campaign.key, "extra": extra}


# Later areas (frames, draws, fieldwork, analysis) append idempotent steps here.
DEMO_STEPS: list[Callable[[Campaign, Callable[[str], None]], list[str] | None]] = []
