"""Drawing a campaign: counts, reserves, shortfall, reproducibility, verify, redraw rules,
reserve activation, exports and roles."""

from __future__ import annotations

import datetime as dt
import json

from helpers import csrf_from, login, make_campaign, make_frame, make_user
from sqlalchemy import func, select, text, update

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
    # The campaign page tells X2's enumerator the draw happened, not the campaign's total.
    total = db.session.scalar(select(func.count(Assignment.id)))
    page = client.get(f"/admin/campaigns/{campaign.key}").get_data(as_text=True)
    assert "Lần chọn gần nhất" in page and f"{total} người" not in page
    assert "Biên bản chọn mẫu" not in page


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
# Stable keys: sampling.randomness.row_keys (SplitMix64 outputs from the file's SHA-256).
PINNED_X1 = [("citizen", 15), ("citizen", 11), ("citizen", 17), ("citizen", 18),
             ("citizen", 16), ("citizen", 9), ("civil_servant", 2), ("civil_servant", 3),
             ("civil_servant", 4)]


def test_bulk_insert_columns_round_trip(app_ctx):
    """Every column form the draw uses comes back as written (binary COPY on PostgreSQL,
    executemany elsewhere): scalars, arrays, lists with NULLs, bytes arrays, NaT, enums."""
    import numpy as np

    from questionnaires.model import Mode
    from survey_app.draws.services import _serials
    from survey_app.services.bulk import bulk_insert_columns

    campaign = make_campaign(units=("X1",), quota=3, reserves=1)
    stratum = db.session.scalar(select(Stratum).where(Stratum.group == "citizen"))
    now = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)
    orders = np.array([1, 2, 1000])
    serials = _serials(campaign.id, np.full(3, stratum.id), orders)
    assert [s.decode() for s in serials] == [f"{campaign.id}-{stratum.id}-{o:03d}"
                                             for o in orders]
    written = bulk_insert_columns(Assignment.__table__, {
        "campaign_id": campaign.id,
        "stratum_id": np.full(3, stratum.id),
        "unit_id": [stratum.unit_id] * 3,
        "group": np.array([b"citizen"] * 3),
        "mode": Mode.PHONE,
        "frame_entry_id": [None, 7, 8],
        "draw_order": orders,
        "is_reserve": np.array([False, True, False]),
        "active": [True, False, True],
        "outcome": np.array(["pending", "reserve", "pending"], dtype=object),
        "weight": np.array([1.5, 0.0, 2.25]),
        "serial": serials,
        "activated_at": np.array([now.replace(tzinfo=None), "NaT", now.replace(tzinfo=None)],
                                 dtype="datetime64[us]"),
        "updated_at": now,
        "issued_at": [None, now, None],
        "issued_mode": None,
    })
    db.session.commit()
    assert written == 3
    rows = list(db.session.scalars(select(Assignment).order_by(Assignment.draw_order)))
    assert [(a.frame_entry_id, a.draw_order, a.is_reserve, a.active, a.outcome, a.weight,
             a.serial, a.mode, a.group.value, a.issued_mode) for a in rows] == [
        (None, 1, False, True, Outcome.PENDING, 1.5, serials[0].decode(), Mode.PHONE,
         "citizen", None),
        (7, 2, True, False, Outcome.RESERVE, 0.0, serials[1].decode(), Mode.PHONE,
         "citizen", None),
        (8, 1000, False, True, Outcome.PENDING, 2.25, serials[2].decode(), Mode.PHONE,
         "citizen", None)]
    as_utc = [None if t is None else t.astimezone(dt.UTC) for t in
              (rows[0].activated_at, rows[1].activated_at, rows[1].issued_at,
               rows[2].updated_at)]
    assert as_utc == [now, None, now, now]


def test_postgres_frame_read_falls_back_to_copy(app_ctx, monkeypatch):
    """PostgreSQL reads the frame as one aggregated value; when the server refuses it (a frame
    beyond the 1 GB value limit) the per-row COPY gives the same frame and the same sample."""
    import numpy as np
    import pytest

    from survey_app.draws import frame as frame_module
    from survey_app.draws.frame import load_campaign_frame

    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL read path")
    campaign = _setup()
    fast = load_campaign_frame(campaign)
    # array_fill refuses this size before allocating anything (SQLSTATE 54000).
    monkeypatch.setattr(frame_module, "_aggregate_entries_query",
                        lambda *a: "SELECT 0, array_fill(0, "
                                   "ARRAY[%(campaign)s::int * 0 + 200000000])")
    slow = load_campaign_frame(campaign)
    assert len(fast.frame) == len(slow.frame) == 2 * (20 + 3)
    for name in ("key", "stratum", "phone", "transaction_date", "birth_year", "fingerprint"):
        assert np.array_equal(getattr(fast.frame, name), getattr(slow.frame, name))
    assert np.array_equal(fast.entry_ids, slow.entry_ids)
    draw_campaign(campaign)
    db.session.commit()
    assert [(g.value, r) for g, r, _ in db.session.execute(
        select(Stratum.group, FrameEntry.source_row, Assignment.draw_order)
        .join(Stratum, Stratum.id == Assignment.stratum_id)
        .join(FrameEntry, FrameEntry.id == Assignment.frame_entry_id)
        .join(Unit, Unit.id == Assignment.unit_id)
        .where(Unit.code == "X1").order_by(Stratum.group, Assignment.draw_order))] == PINNED_X1


def test_postgres_frame_read_in_page_range_parts(app_ctx, monkeypatch):
    """The frame read in page-range parts (what PostgreSQL aggregates in parallel) holds the
    same rows as the one-part read, whatever the split."""
    import numpy as np
    import pytest

    from survey_app.draws import frame as frame_module
    from survey_app.draws.frame import load_campaign_frame

    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL read path")
    campaign = make_campaign(units=("X1", "X2"), quota=3, reserves=1)
    make_frame(campaign, "X1", "citizen", 400)
    make_frame(campaign, "X2", "citizen", 150, phones=False)
    db.session.commit()
    pages = db.session.execute(text(
        "SELECT pg_relation_size('frame_entries') / current_setting('block_size')::int")
    ).scalar_one()
    assert pages >= 3
    with monkeypatch.context() as patch:
        patch.setattr(frame_module, "_frame_parts", lambda: (1, pages))
        whole = load_campaign_frame(campaign)
    assert len(whole.frame) == 550
    for parts, seen_pages in ((2, pages), (3, pages), (4, 1), (3, pages + 5)):
        with monkeypatch.context() as patch:
            patch.setattr(frame_module, "_frame_parts", lambda: (parts, seen_pages))
            parted = load_campaign_frame(campaign)
        a, b = np.argsort(whole.entry_ids), np.argsort(parted.entry_ids)
        assert np.array_equal(whole.entry_ids[a], parted.entry_ids[b])
        for name in ("key", "stratum", "phone", "transaction_date", "birth_year",
                     "fingerprint"):
            assert np.array_equal(getattr(whole.frame, name)[a],
                                  getattr(parted.frame, name)[b]), name


def test_shared_list_is_drawn_separately_for_every_unit(app_ctx):
    """A SHARED group's list (here uploaded once, under X1) is the frame of that group's
    stratum in every rated unit; inactive (replaced) lists are not drawn from."""
    from questionnaires.model import FrameScope, GroupPlan, Mode, RespondentGroup
    from survey_app.models import BatchStatus, ImportBatch

    campaign = make_campaign(units=("X1", "X2", "X3"), groups=(
        GroupPlan(RespondentGroup.CITIZEN, "sipas-citizen@2026.1", Mode.PHONE, 2, 1),
        GroupPlan(RespondentGroup.HDND_DELEGATE, "par-hdnd@2026.1", Mode.ENUMERATOR, 3, 2,
                  frame_scope=FrameScope.SHARED)))
    make_frame(campaign, "X2", "citizen", 5)
    shared = make_frame(campaign, "X1", "hdnd_delegate", 12, phones=False)
    old = make_frame(campaign, "X1", "hdnd_delegate", 4, phones=False, file_sha="a" * 64)
    old.status = BatchStatus.REPLACED
    db.session.commit()
    record = draw_campaign(campaign)
    db.session.commit()
    by_key = {s["key"]: s for s in record.summary["strata"]}
    for code in ("X1", "X2", "X3"):
        assert (by_key[f"custom:{code}|hdnd_delegate"]["frame"],
                by_key[f"custom:{code}|hdnd_delegate"]["drawn"]) == (12, 3)
    assert by_key["custom:X2|citizen"]["frame"] == 5
    assert by_key["custom:X1|citizen"]["frame"] == by_key["custom:X3|citizen"]["frame"] == 0
    rows = db.session.execute(
        select(Assignment.stratum_id, Assignment.frame_entry_id, FrameEntry.batch_id)
        .join(FrameEntry, FrameEntry.id == Assignment.frame_entry_id)
        .where(Assignment.group == RespondentGroup.HDND_DELEGATE)).all()
    assert len(rows) == 3 * (3 + 2)
    assert {r.batch_id for r in rows} == {shared.id}
    picks = {}
    for r in rows:
        picks.setdefault(r.stratum_id, []).append(r.frame_entry_id)
    assert all(len(set(p)) == 5 for p in picks.values())
    assert len({tuple(p) for p in picks.values()}) == 3  # independent draws per unit
    assert db.session.get(ImportBatch, shared.id).used_by_draw
    assert not db.session.get(ImportBatch, old.id).used_by_draw


def test_redraw_before_fieldwork_replaces_every_position(app_ctx, monkeypatch):
    """A redraw gives the same rows whether the earlier draw's rows are rewritten in place
    (PostgreSQL before fieldwork) or deleted and inserted again; positions the new draw lacks
    go and new ones come, tokens of the earlier draw go, paper keyings force the delete."""
    from survey_app.draws import services
    from survey_app.models import AccessToken, PaperEntry
    from survey_app.services.tokens import issue_for_assignment

    campaign = make_campaign(units=("X1", "X2"), quota=3, reserves=2)
    make_frame(campaign, "X1", "citizen", 20)
    make_frame(campaign, "X2", "citizen", 3)  # 3 of 3 + 2: a shortfall, no reserves
    draw_campaign(campaign)
    db.session.commit()
    first = db.session.scalars(select(Assignment).order_by(Assignment.id)).first()
    issue_for_assignment(first)
    db.session.commit()
    # X1 loses eligible people (outside the period), X2 gains a second list.
    x1_entries = select(FrameEntry.id).join(Unit, Unit.id == FrameEntry.unit_id).where(
        Unit.code == "X1").order_by(FrameEntry.id).limit(17)
    db.session.execute(update(FrameEntry).where(FrameEntry.id.in_(x1_entries))
                       .values(transaction_date=dt.date(2020, 1, 1)))
    make_frame(campaign, "X2", "citizen", 4, file_sha="b" * 64)
    db.session.commit()
    postgres = db.engine.dialect.name == "postgresql"
    assert services._can_rewrite_in_place(campaign, False) is postgres

    def redraw(in_place_allowed):
        if not in_place_allowed:
            monkeypatch.setattr(services, "_can_rewrite_in_place", lambda c, s: False)
        draw_campaign(campaign, public_value="Xổ số 02/11/2026")
        db.session.commit()
        monkeypatch.undo()
        return [(a.stratum_id, a.draw_order, a.frame_entry_id, a.is_reserve, a.active,
                 a.outcome, a.weight, a.serial, a.activated_at is None, a.enumerator_id)
                for a in db.session.scalars(select(Assignment).order_by(
                    Assignment.stratum_id, Assignment.draw_order))]

    in_place = redraw(True)
    assert db.session.scalar(select(func.count(AccessToken.id))) == 0
    rewritten = [(s, o) for s, o, *_ in in_place]
    assert len(rewritten) == len(set(rewritten)) == 3 + (3 + 2)  # X1: 3 eligible left
    deleted = redraw(False)
    assert in_place == deleted
    # A paper keying refers to an assignment: its rows are deleted, never rewritten.
    db.session.add(PaperEntry(assignment_id=db.session.scalars(select(Assignment.id)).first(),
                              pass_no=1, answers={}))
    db.session.commit()
    assert services._can_rewrite_in_place(campaign, False) is False
    assert redraw(True) == in_place
    assert db.session.scalar(select(func.count(PaperEntry.id))) == 0
