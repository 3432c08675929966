"""Drawing a campaign: counts, reserves, shortfall, reproducibility, verify, redraw rules,
reserve activation, exports and roles."""

from __future__ import annotations

import datetime as dt
import json

from helpers import csrf_from, login, make_campaign, make_frame, make_user
from sqlalchemy import func, select, update

from survey_app.draws.services import draw_campaign, set_outcome
from survey_app.extensions import db
from survey_app.models import (
    Assignment,
    AuditAction,
    AuditEntry,
    FrameEntry,
    Outcome,
    Stratum,
    Unit,
)


def _setup(quota=4, reserves=2, n=20):
    campaign = make_campaign(units=("X1", "X2"), quota=quota, reserves=reserves)
    for code in ("X1", "X2"):
        make_frame(campaign, code, "citizen", n)
        make_frame(campaign, code, "civil_servant", 3, phones=False)
    return campaign


def _sample(campaign):
    return [(a.stratum_id, a.draw_order, a.frame_entry_id, a.is_reserve) for a in
            db.session.scalars(select(Assignment).where(Assignment.campaign_id == campaign.id)
                               .order_by(Assignment.stratum_id, Assignment.draw_order))]


def test_draw_counts_reserves_and_shortfall(runner):
    campaign = _setup()
    result = runner.invoke(args=["sample", "draw", campaign.key, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    by_key = {s["key"]: s for s in data["strata"]}
    citizen = by_key["custom:X1|citizen"]
    assert (citizen["frame"], citizen["eligible"], citizen["drawn"], citizen["reserves"],
            citizen["shortfall"]) == (20, 20, 4, 2, 0)
    servants = by_key["custom:X1|civil_servant"]  # quota 2 + 1 reserve from 3 people
    assert (servants["drawn"], servants["reserves"], servants["shortfall"]) == (2, 1, 0)
    rows = _sample(campaign)
    assert len(rows) == 2 * (4 + 2) + 2 * (2 + 1)
    for stratum_id in {r[0] for r in rows}:
        entries = [r[2] for r in rows if r[0] == stratum_id]
        assert len(entries) == len(set(entries))  # no one twice; reserves disjoint
        mains = [r for r in rows if r[0] == stratum_id and not r[3]]
        assert [r[1] for r in mains] == list(range(1, len(mains) + 1))
    weights = {a.weight for a in db.session.scalars(select(Assignment).where(
        Assignment.group == "citizen", Assignment.is_reserve.is_(False)))}
    assert weights == {20 / 4}


def test_shortfall_takes_everyone(app_ctx):
    campaign = make_campaign(units=("X1",), quota=10, reserves=3)
    make_frame(campaign, "X1", "citizen", 6)
    draw_campaign(campaign)
    db.session.commit()
    stratum = db.session.scalar(select(Stratum).where(Stratum.group == "citizen"))
    assert (stratum.eligible_count, stratum.drawn_count, stratum.shortfall) == (6, 6, 4)
    assert db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.stratum_id == stratum.id, Assignment.is_reserve)) == 0


def test_same_seed_same_sample_and_public_value_seed(app_ctx):
    campaign = _setup()
    draw_campaign(campaign)
    db.session.commit()
    first = _sample(campaign)
    draw_campaign(campaign)
    db.session.commit()
    assert _sample(campaign) == first
    record = draw_campaign(campaign, public_value="  Xổ số 01/11/2026:   123456  ")
    db.session.commit()
    assert record.public_value.startswith("Xổ số")
    assert _sample(campaign) != first
    from sampling import seed_from_public_value

    assert record.seed == seed_from_public_value("Xổ số 01/11/2026: 123456")


def test_eligibility_phone_mode_and_period(app_ctx):
    campaign = make_campaign(units=("X1",), quota=5, reserves=0)
    make_frame(campaign, "X1", "citizen", 4, phones=False, start_row=100)
    make_frame(campaign, "X1", "citizen", 6, file_sha="e" * 64,
               dates=[dt.date(2025, 6, 1)] * 2 + [dt.date(2026, 5, 1)] * 4)
    record = draw_campaign(campaign)
    db.session.commit()
    s = next(x for x in record.summary["strata"] if x["key"] == "custom:X1|citizen")
    assert s["frame"] == 10 and s["eligible"] == 4
    assert s["excluded"] == {"no_phone": 4, "outside_period": 2}
    assert s["shortfall"] == 1


def test_verify_detects_a_changed_row(runner):
    campaign = _setup()
    assert runner.invoke(args=["sample", "draw", campaign.key]).exit_code == 0
    ok = runner.invoke(args=["sample", "verify", campaign.key, "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True
    entry_id = db.session.scalars(select(FrameEntry.id).order_by(FrameEntry.id)).first()
    db.session.execute(update(FrameEntry).where(FrameEntry.id == entry_id)
                       .values(name="Tên Đã Sửa"))
    db.session.commit()
    bad = runner.invoke(args=["sample", "verify", campaign.key, "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["ok"] is False
    assert any(d["kind"] == "digest" for d in report["differences"])


def test_redraw_refused_after_fieldwork_unless_forced(runner):
    campaign = _setup()
    draw_campaign(campaign)
    db.session.commit()
    first = db.session.scalars(select(Assignment).where(Assignment.is_reserve.is_(False))).first()
    set_outcome(first, Outcome.ISSUED)
    db.session.commit()
    refused = runner.invoke(args=["sample", "draw", campaign.key])
    assert refused.exit_code == 2 and "không được chọn mẫu lại" in refused.output
    forced = runner.invoke(args=["sample", "draw", campaign.key, "--force"])
    assert forced.exit_code == 0, forced.output
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == AuditAction.DRAW_FORCED)) == 1


def test_reserves_activate_in_order_never_above_quota(app_ctx):
    campaign = make_campaign(units=("X1",), quota=3, reserves=3)
    make_frame(campaign, "X1", "citizen", 10)
    draw_campaign(campaign)
    db.session.commit()
    stratum = db.session.scalar(select(Stratum).where(Stratum.group == "citizen"))
    rows = list(db.session.scalars(select(Assignment).where(Assignment.stratum_id == stratum.id)
                                   .order_by(Assignment.draw_order)))
    mains, reserves = rows[:3], rows[3:]
    activated = set_outcome(mains[0], Outcome.REFUSED)
    assert activated.id == reserves[0].id and activated.active
    # Recording a completion does not activate anything.
    assert set_outcome(mains[1], Outcome.COMPLETED) is None
    second = set_outcome(mains[2], Outcome.NON_CONTACT)
    assert second.id == reserves[1].id
    # A second refusal outcome on the same assignment does not activate another reserve.
    assert set_outcome(mains[0], Outcome.INELIGIBLE) is None
    db.session.commit()
    live = db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.stratum_id == stratum.id, Assignment.active,
        Assignment.outcome.not_in(["refused", "non_contact", "ineligible", "returned_blank"])))
    assert live == 3


def test_export_roles_and_draw_button(client):
    campaign = _setup()
    make_user("quantri", "admin")
    make_user("phantich", "analyst")
    make_user("dieutra_b", "enumerator", units=["X2"])
    login(client, "quantri", "password-123")
    page = client.get(f"/admin/campaigns/{campaign.key}").get_data(as_text=True)
    r = client.post(f"/draws/{campaign.key}", data={"csrf_token": csrf_from(page),
                                                    "public_value": "Xổ số 123"})
    assert r.status_code == 302 and "/admin/jobs/" in r.headers["Location"]
    job_page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Xong" in job_page
    protocol = client.get(f"/draws/{campaign.key}/protocol").get_data(as_text=True)
    assert "Xổ số 123" in protocol and "custom:X1|citizen" in protocol
    x1 = db.session.scalar(select(Stratum.unit_id).where(Stratum.group == "citizen")
                           .order_by(Stratum.unit_id))
    csv_response = client.get(f"/draws/{campaign.key}/units/{x1}/sample.csv")
    assert csv_response.status_code == 200
    text = csv_response.get_data().decode("utf-8-sig")
    assert "Người Thử X1" in text and "+8491" in text
    client.post("/logout", data={"csrf_token": csrf_from(page)})
    login(client, "phantich", "password-123")
    assert client.get(f"/draws/{campaign.key}/units/{x1}/sample.csv").status_code == 403
    index = client.get("/admin/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_from(index)})
    login(client, "dieutra_b", "password-123")
    assert client.get(f"/draws/{campaign.key}/units/{x1}/sample.csv").status_code == 404


def test_sample_is_pinned_across_engines(app_ctx):
    """The same lists and seed give this exact sample on SQLite and on PostgreSQL (CI runs the
    suite on both): stable keys come from file digests and row numbers, never from ids."""
    campaign = _setup()
    draw_campaign(campaign)
    db.session.commit()
    rows = db.session.execute(
        select(Stratum.group, FrameEntry.source_row, Assignment.draw_order)
        .join(Stratum, Stratum.id == Assignment.stratum_id)
        .join(FrameEntry, FrameEntry.id == Assignment.frame_entry_id)
        .join(Unit, Unit.id == Assignment.unit_id)
        .where(Unit.code == "X1").order_by(Stratum.group, Assignment.draw_order)).all()
    picked = [(g.value, r) for g, r, _ in rows]
    assert picked == PINNED_X1
PINNED_X1 = [("citizen", 12), ("citizen", 13), ("citizen", 8), ("citizen", 11),
             ("citizen", 14), ("citizen", 9), ("civil_servant", 4), ("civil_servant", 3),
             ("civil_servant", 2)]
