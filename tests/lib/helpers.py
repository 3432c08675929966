"""Helpers shared by the tests (importable: tests/ is on pythonpath)."""

from __future__ import annotations

import re
from pathlib import Path


def empty_tables() -> None:
    """Delete every row of every table (PostgreSQL: one TRUNCATE)."""
    from sqlalchemy import text

    from survey_app.extensions import db

    tables = [t for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        with db.engine.begin() as conn:
            for t in tables:
                conn.execute(t.delete())


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token of the first form in a page."""
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def login(client, username: str, password: str):
    """Sign in through the real login form."""
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token})


REPO = Path(__file__).resolve().parent.parent


def make_plan(units=("X1", "X2"), *, key="test-2026", quota=4, reserves=2, seed=12345,
              groups=None):
    """A small plan in code: citizens (phone) and civil servants (enumerator) per unit."""
    import datetime as dt

    from questionnaires.model import GroupPlan, Mode, Plan, RespondentGroup, UnitRef

    groups = groups or (
        GroupPlan(RespondentGroup.CITIZEN, "sipas-citizen@2026.1", Mode.PHONE, quota, reserves),
        GroupPlan(RespondentGroup.CIVIL_SERVANT, "par-civil-servant@2026.1", Mode.ENUMERATOR,
                  max(1, quota // 2), 1),
    )
    return Plan(
        key=key, name=f"Chiến dịch thử {key}", year=2026, period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 10, 31), groups=tuple(groups),
        units=tuple(UnitRef(code=c, name=f"Xã Thử {c}", level="commune") for c in units),
        seed=seed,
    )


def make_campaign(**kwargs):
    """Create (and commit) a campaign from `make_plan(**kwargs)`."""
    from survey_app.extensions import db
    from survey_app.services.campaigns import create_campaign

    campaign = create_campaign(make_plan(**kwargs))
    db.session.commit()
    return campaign


def make_user(username, role, units=(), password="password-123"):
    """Create (and commit) a user scoped to unit codes."""
    from survey_app.extensions import db
    from survey_app.models import Role
    from survey_app.services.users import create_user

    user = create_user(username, password, Role(role), unit_codes=list(units))
    db.session.commit()
    return user


def make_assignments(campaign, group="citizen", count=1):
    """Assignments without a draw (for form tests), each with a freshly issued token."""
    from sqlalchemy import select

    from questionnaires.model import RespondentGroup
    from survey_app.extensions import db
    from survey_app.models import Assignment, CampaignGroup, Outcome, Stratum
    from survey_app.services.tokens import issue_for_assignment

    group = RespondentGroup(group)
    stratum = db.session.scalars(select(Stratum).where(
        Stratum.campaign_id == campaign.id, Stratum.group == group).order_by(Stratum.id)).first()
    cg = db.session.scalar(select(CampaignGroup).where(CampaignGroup.campaign_id == campaign.id,
                                                       CampaignGroup.group == group))
    issued = []
    for i in range(count):
        order = 1000 + i + len(issued)
        a = Assignment(campaign_id=campaign.id, stratum_id=stratum.id, unit_id=stratum.unit_id,
                       group=group, draw_order=order, active=True, mode=cg.mode,
                       outcome=Outcome.ISSUED, serial=f"{campaign.id}-{stratum.id}-{order:03d}")
        db.session.add(a)
        db.session.flush()
        issued.append((a, issue_for_assignment(a)))
    db.session.commit()
    return issued


def make_frame(campaign, unit_code, group="citizen", n=20, *, phones=True, start_row=2,
               file_sha="f" * 64, dates=None):
    """An ACTIVE import batch with `n` synthetic frame entries (bypassing the file reader)."""
    import datetime as dt
    import hashlib

    from sqlalchemy import select

    from questionnaires.model import RespondentGroup
    from survey_app.draws.frame import fingerprint, stable_key
    from survey_app.extensions import db
    from survey_app.models import BatchStatus, FrameEntry, ImportBatch, PhoneKind, Unit

    unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
    group = RespondentGroup(group)
    # The file digest (and so every stable key) depends only on the unit code and group,
    # never on database ids: the same frame on SQLite and PostgreSQL.
    digest = hashlib.sha256(f"{file_sha}|{unit_code}|{group.value}".encode()).hexdigest()
    batch = ImportBatch(campaign_id=campaign.id, unit_id=unit.id, group=group,
                        status=BatchStatus.ACTIVE, filename="test.csv", file_sha256=digest,
                        accepted=n)
    db.session.add(batch)
    db.session.flush()
    for i in range(n):
        row = start_row + i
        name = f"Người Thử {unit_code}-{i}"
        phone = f"+8491{int(digest[:4], 16) % 100:02d}{i:05d}" if phones else None
        date = dates[i] if dates else dt.date(2026, 3, 1)
        db.session.add(FrameEntry(
            batch_id=batch.id, campaign_id=campaign.id, unit_id=unit.id, group=group,
            source_row=row, stable_key=stable_key(batch.file_sha256, row),
            fingerprint=fingerprint(name, phone, "Thôn 1", "Khai sinh", date, None),
            name=name, phone=phone, phone_kind=PhoneKind.MOBILE if phones else PhoneKind.NONE,
            procedure="Khai sinh", address="Thôn 1", transaction_date=date))
    db.session.commit()
    return batch
