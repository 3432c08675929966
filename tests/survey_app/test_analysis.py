"""Analysis: scores through the full service against hand-computed values, exclusions,
quality flags, exports (formula neutralisation, no identities), freeze and purge, demo data."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json

import numpy as np
import openpyxl
import pytest
from helpers import csrf_from, login, make_assignments, make_campaign, make_frame, make_user
from sqlalchemy import func, select

from questionnaires.catalog import get_questionnaire
from questionnaires.model import Mode, QuestionKind, RespondentGroup
from survey_app.analysis.cli import purge
from survey_app.analysis.demo import fill_synthetic_responses
from survey_app.analysis.exports import (
    MICRODATA_HEADER,
    ExportFormat,
    write_microdata,
    write_scores,
)
from survey_app.analysis.services import (
    flag_responses,
    freeze_scores,
    latest_snapshot,
    score_campaign,
    set_exclusion,
)
from survey_app.extensions import db
from survey_app.models import (
    Answer,
    Assignment,
    AuditAction,
    AuditEntry,
    CampaignGroup,
    CampaignStatus,
    FrameEntry,
    Outcome,
    Response,
    ResponseLink,
    ResponseSource,
    Unit,
)

_ids = itertools.count(1)
CITIZEN = get_questionnaire("sipas-citizen@2026.1")
SERVANT = get_questionnaire("par-civil-servant@2026.1")


def add_response(campaign, unit_code, group, answers, *, weight=1.0, duration=None,
                 network=None, submitted_at=None):
    """A stored response with its answers (bypassing the form)."""
    unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
    group = RespondentGroup(group)
    ref = CITIZEN.ref if group is RespondentGroup.CITIZEN else SERVANT.ref
    r = Response(campaign_id=campaign.id, unit_id=unit.id, group=group, questionnaire_ref=ref,
                 mode=Mode.PHONE, source=ResponseSource.WEB, submission_id=f"t-{next(_ids)}",
                 weight=weight, duration_seconds=duration, network_hash=network, flags=[],
                 submitted_at=submitted_at or dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC))
    for qid, value in answers.items():
        r.answers.append(Answer(question_id=qid, value=value))
    db.session.add(r)
    db.session.commit()
    return r


def citizen_answers(b, c, d, e, f0="khong", f=()):
    """Citizen answers: one code per section B, C, D, E; f1.. given explicitly."""
    answers = {f"b{i}": b for i in range(1, 5)}
    answers |= {f"c{i}": c for i in range(1, 6)}
    answers |= {f"d{i}": d for i in range(1, 7)}
    answers |= {f"e{i}": e for i in range(1, 4)}
    answers["f0"] = f0
    answers |= {f"f{i}": v for i, v in enumerate(f, start=1)}
    return answers


def servant_answers(code="4"):
    return {q.id: code for q in SERVANT.questions() if q.kind is QuestionKind.RATING}


@pytest.fixture
def small(app_ctx):
    """Two units; hand-computable answers. Citizen weight 3, civil servants 1.

    X1 citizens: r1 all 5 (feedback: no) → E1..E4 satisfied; r2 B=2, C=4, D=don't know,
    E=3, feedback yes with f1=5, f2=1 → E1 50, E2 100, E3 100, E4 50, E5 (50 % of (100, 0)) 50
    → citizen overall 70. X1 civil servant: all 4 on 1..5 → 75. X1 = (3·70 + 75)/4 = 71.25.
    X2 citizen: all 4 → 100 (E5 not asked); no civil servant → X2 = 100.
    """
    campaign = make_campaign(units=("X1", "X2"), quota=4)
    db.session.scalar(select(CampaignGroup).where(
        CampaignGroup.campaign_id == campaign.id,
        CampaignGroup.group == RespondentGroup.CITIZEN)).weight = 3.0
    db.session.commit()
    make_assignments(campaign, "citizen", 4)  # issued for X1 citizens (first stratum)
    r1 = add_response(campaign, "X1", "citizen", citizen_answers("5", "5", "5", "5"), weight=3.0)
    r2 = add_response(campaign, "X1", "citizen",
                      citizen_answers("2", "4", "9", "3", f0="co", f=("5", "1")), weight=1.0)
    add_response(campaign, "X1", "civil_servant", servant_answers("4"))
    add_response(campaign, "X2", "citizen", citizen_answers("4", "4", "4", "4"))
    return campaign, r1, r2


def test_scores_equal_hand_computed_values(small):
    campaign, _, _ = small
    scores = score_campaign(campaign, weighted=False)
    x1, x2 = scores.units  # ordered by unit code
    assert (x1.code, x2.code) == ("X1", "X2")
    cit = x1.groups["citizen"]
    assert [cit.elements[e][0] for e in ("E1", "E2", "E3", "E4", "E5")] == \
        pytest.approx([50, 100, 100, 50, 50])
    assert cit.criteria["E5.1"][0] == pytest.approx(100)
    assert cit.criteria["E5.2"][0] == pytest.approx(0)
    assert cit.criteria["E5.3"][0] is None and cit.criteria["E5.3"][3] == 0
    assert cit.criteria["E3.1"][3] == 1  # the don't-know is not in the denominator
    assert cit.overall == pytest.approx(70)
    assert x1.groups["civil_servant"].overall == pytest.approx(75)
    assert x1.survey_pct == pytest.approx(71.25)
    assert x1.points == pytest.approx(71.25 * 30 / 100)
    assert x2.survey_pct == pytest.approx(100) and x2.points == pytest.approx(30)
    assert (x2.rank, x1.rank) == (1, 2)
    # Response rate: 2 citizen responses of 4 issued forms; n below the plan minimum (10).
    assert cit.issued == 4 and cit.response_rate == pytest.approx(0.5)
    assert "low_n" in x1.flags
    assert cit.low <= cit.overall <= cit.high
    assert x1.low is None  # one civil servant: no standard error, so no combined interval
    # Design weights (3 for r1, 1 for r2): E1 = 3/4 satisfied.
    weighted = score_campaign(campaign, weighted=True)
    assert weighted.units[0].groups["citizen"].elements["E1"][0] == pytest.approx(75)


def test_exclusion_recomputes_and_is_audited(small, client):
    campaign, _, r2 = small
    make_user("phan-tich", "analyst")
    login(client, "phan-tich", "password-123")
    page = client.get(f"/analysis/{campaign.key}/quality?all=1")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    url = f"/analysis/{campaign.key}/responses/{r2.id}/exclusion"
    # Without a reason: refused, nothing changes.
    bad = client.post(url, data={"csrf_token": token, "action": "exclude", "reason": " "})
    assert bad.status_code == 400
    assert not db.session.get(Response, r2.id).excluded
    # Without a CSRF token: refused.
    assert client.post(url, data={"action": "exclude", "reason": "x"}).status_code == 400
    ok = client.post(url, data={"csrf_token": token, "action": "exclude",
                                "reason": "Trả lời quá nhanh"})
    assert ok.status_code == 302
    db.session.expire_all()
    assert db.session.get(Response, r2.id).excluded
    # X1 citizens now only r1 (100) → (3·100 + 75) / 4.
    assert score_campaign(campaign, weighted=False).units[0].survey_pct == pytest.approx(93.75)
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == AuditAction.RESPONSE_EXCLUDED))
    assert entry.target == f"response:{r2.id}" and entry.details["excluded"] is True
    assert entry.user_id is not None
    data = client.get(f"/api/v1/campaigns/{campaign.key}/scores").get_json()
    assert data["units"][0]["survey_pct"] == pytest.approx(93.75)
    # Included again: back to the hand-computed value, audited again.
    client.post(url, data={"csrf_token": token, "action": "include"})
    db.session.expire_all()
    assert score_campaign(campaign, weighted=False).units[0].survey_pct == pytest.approx(71.25)
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == AuditAction.RESPONSE_EXCLUDED)) == 2


def test_quality_flags_are_stored(app_ctx):
    campaign = make_campaign(units=("X1",))
    t0 = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
    straight = add_response(campaign, "X1", "citizen", citizen_answers("5", "5", "5", "5"),
                            duration=600)
    fast = add_response(campaign, "X1", "citizen", citizen_answers("4", "3", "4", "2"),
                        duration=5)
    same_a = add_response(campaign, "X1", "citizen", citizen_answers("4", "2", "3", "1"),
                          duration=500)
    same_b = add_response(campaign, "X1", "citizen", citizen_answers("4", "2", "3", "1"),
                          duration=500)
    burst = [add_response(campaign, "X1", "civil_servant", servant_answers(str(1 + i % 4)),
                          network="abcd", submitted_at=t0 + dt.timedelta(minutes=i))
             for i in range(6)]
    summary = flag_responses(campaign)
    db.session.commit()
    db.session.expire_all()

    def flags(r):
        return db.session.get(Response, r.id).flags

    assert "straight_lining" in flags(straight)
    assert "too_fast" in flags(fast) and "too_fast" not in flags(straight)
    assert "duplicate_answers" in flags(same_a) and "duplicate_answers" in flags(same_b)
    assert all("network_burst" in flags(r) for r in burst)
    assert summary.per_flag["network_burst"] == 6


def test_score_exports_neutralise_formulas(small):
    campaign, _, _ = small
    unit = db.session.scalar(select(Unit).where(Unit.code == "X1"))
    unit.name = '=HYPERLINK("http://evil.example","bấm")'
    db.session.commit()
    scores = score_campaign(campaign, weighted=False)
    out = io.BytesIO()
    write_scores(scores, ExportFormat.CSV, out)
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    x1 = next(r for r in rows if r[0] == "X1")
    assert x1[1] == "'" + unit.name
    assert float(x1[5]) == pytest.approx(71.25)
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row
                   if not _is_number(cell))

    xbuf = io.BytesIO()
    write_scores(scores, ExportFormat.XLSX, xbuf)
    xbuf.seek(0)
    ws = openpyxl.load_workbook(xbuf).active
    cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
    name_cell = next(c for c in cells if isinstance(c.value, str) and "HYPERLINK" in c.value)
    assert name_cell.data_type == "s" and name_cell.value.startswith("'=")
    assert not any(c.data_type == "f" for c in cells)
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[1][0] == "X1" and values[1][5] == pytest.approx(71.25)

    as_json = io.BytesIO()
    write_scores(scores, ExportFormat.JSON, as_json)
    assert json.loads(as_json.getvalue())["units"][0]["survey_pct"] == pytest.approx(71.25)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_microdata_text_answers_dropped_or_neutralised(small):
    campaign, r1, _ = small
    db.session.add(Answer(response_id=r1.id, question_id="g2",
                          value='=HYPERLINK("http://x","gọi 0912345678")'))
    db.session.commit()
    out = io.BytesIO()
    n = write_microdata(campaign, ExportFormat.CSV, out)
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert rows[0] == MICRODATA_HEADER and len(rows) == n + 1
    # Free text (citizen g2) left out by default; the civil servants' g2 is a rating.
    assert not any(r[1] == "citizen" and r[6] == "g2" for r in rows[1:])
    assert any(r[1] == "civil_servant" and r[6] == "g2" for r in rows[1:])
    b1 = next(r for r in rows[1:] if r[2] == str(r1.id) and r[6] == "b1")
    assert b1 == ["X1", "citizen", str(r1.id), CITIZEN.ref, "phone", "0", "b1", "E1", "E1.1",
                  "5"]
    with_text = io.BytesIO()
    write_microdata(campaign, ExportFormat.XLSX, with_text, include_text=True)
    with_text.seek(0)
    ws = openpyxl.load_workbook(with_text).active
    g2 = next(row for row in ws.iter_rows(values_only=True)
              if row[1] == "citizen" and row[6] == "g2")
    assert g2[9].startswith("'=HYPERLINK") and "0912345678" not in g2[9]


def _fielded_campaign(rng_seed=5):
    """A drawn campaign with frame entries (names, phones) and synthetic linked responses."""
    from survey_app.draws.services import draw_campaign

    campaign = make_campaign(units=("X1", "X2"), quota=6, reserves=1)
    for code in ("X1", "X2"):
        make_frame(campaign, code, "citizen", 12)
        make_frame(campaign, code, "civil_servant", 5, phones=False)
    draw_campaign(campaign)
    db.session.commit()
    created = fill_synthetic_responses(campaign, np.random.default_rng(rng_seed), share=1.0)
    db.session.commit()
    return campaign, created


def test_demo_fill_creates_linked_completed_responses(app_ctx):
    campaign, created = _fielded_campaign()
    active = db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.campaign_id == campaign.id, Assignment.active.is_(True)))
    assert created == active > 0
    assert db.session.scalar(select(func.count(ResponseLink.id))) == created
    assert db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.outcome == Outcome.COMPLETED)) == created
    scores = score_campaign(campaign, weighted=False)
    assert all(u.survey_pct is not None and 0 <= u.survey_pct <= 100 for u in scores.units)
    assert all(u.response_rate == pytest.approx(1.0) for u in scores.units)
    # A second call finds nothing open.
    assert fill_synthetic_responses(campaign, np.random.default_rng(1)) == 0


def test_purge_keeps_scores_and_removes_identities(app_ctx, runner):
    campaign, _ = _fielded_campaign()
    names = {e.name for e in db.session.scalars(select(FrameEntry))}
    phones = {e.phone for e in db.session.scalars(select(FrameEntry)) if e.phone}
    assert names and phones
    before = score_campaign(campaign, weighted=False).to_dict()
    before_w = score_campaign(campaign, weighted=True).to_dict()

    # Not closed yet: refused.
    result = runner.invoke(purge, [campaign.key, "--yes"])
    assert result.exit_code == 2 and "kết thúc" in result.output
    campaign.status = CampaignStatus.CLOSED
    campaign.closed_at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    db.session.commit()
    # Retention period (365 days) not over yet.
    result = runner.invoke(purge, [campaign.key, "--yes", "--now", "2027-06-01"])
    assert result.exit_code == 2 and "thời hạn" in result.output
    assert db.session.scalar(select(func.count(ResponseLink.id))) > 0

    # A packed copy of a list (phones, birth years) goes with the identities.
    from survey_app.models import FramePack
    db.session.add(FramePack(batch_id=1, part=0, campaign_id=campaign.id, first_id=1, rows=1,
                             data=b"\x00" * 32))
    db.session.commit()
    result = runner.invoke(purge, [campaign.key, "--yes", "--now", "2027-11-02"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.scalar(select(func.count(ResponseLink.id))) == 0
    assert db.session.scalar(select(func.count()).select_from(FramePack)) == 0
    entries = list(db.session.scalars(select(FrameEntry)))
    assert entries and all(e.name == "" and e.phone is None and e.address == ""
                           for e in entries)
    assert db.session.get(type(campaign), campaign.id).purged_at is not None
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.PURGE))
    # Scores are reproducible from the anonymised data, and equal the frozen snapshot.
    after = score_campaign(campaign, weighted=False).to_dict()
    assert after == before
    assert score_campaign(campaign, weighted=True).to_dict() == before_w
    snapshot = latest_snapshot(campaign)
    assert snapshot.payload["unweighted"] == json.loads(json.dumps(before))
    assert snapshot.questionnaires["citizen"]["ref"] == CITIZEN.ref

    out = io.BytesIO()
    write_microdata(campaign, ExportFormat.CSV, out, include_text=True)
    text = out.getvalue().decode("utf-8-sig")
    assert text.count("\n") > 10
    for secret in names | phones | {p.replace("+84", "0") for p in phones}:
        assert secret not in text


def test_microdata_before_purge_has_no_identity(app_ctx):
    campaign, _ = _fielded_campaign(rng_seed=9)
    entries = list(db.session.scalars(select(FrameEntry)))
    out = io.BytesIO()
    write_microdata(campaign, ExportFormat.CSV, out, include_text=True)
    text = out.getvalue().decode("utf-8-sig")
    serials = {a.serial for a in db.session.scalars(select(Assignment))}
    for e in entries:
        assert e.name not in text
        if e.phone:
            assert e.phone not in text and e.phone.replace("+84", "0") not in text
    assert not any(s in text for s in serials)


def test_freeze_scores_records_versions(small):
    campaign, _, _ = small
    snapshot = freeze_scores(campaign)
    db.session.commit()
    assert snapshot.questionnaires["civil_servant"] == {"ref": SERVANT.ref,
                                                        "digest": SERVANT.digest}
    assert snapshot.payload["unweighted"]["units"][0]["survey_pct"] == pytest.approx(71.25)
    assert len(snapshot.responses_digest) == 64


def test_set_exclusion_checks_campaign_and_reason(small):
    from survey_app.errors import NotFound, SurveyError

    campaign, r1, _ = small
    other = make_campaign(units=("Y1",), key="other-2026")
    with pytest.raises(NotFound):
        set_exclusion(other, r1.id, excluded=True, reason="x")
    with pytest.raises(SurveyError):
        set_exclusion(campaign, r1.id, excluded=True, reason="   ")
    set_exclusion(campaign, r1.id, excluded=True, reason="  Trùng   phiếu ")
    assert db.session.get(Response, r1.id).exclusion_reason == "Trùng phiếu"
    scores = score_campaign(campaign, weighted=False)
    assert scores.responses_excluded == 1 and scores.responses_scored == 3
    everything = score_campaign(campaign, weighted=False, include_excluded=True)
    assert everything.units[0].survey_pct == pytest.approx(71.25)


def test_unknown_option_is_reported_not_scored_as_missing(small):
    from survey_app.analysis.services import AnalysisError

    campaign, _, _ = small
    bad = add_response(campaign, "X2", "citizen", citizen_answers("4", "4", "4", "7"))
    with pytest.raises(AnalysisError) as info:
        score_campaign(campaign, weighted=False)
    assert any(f"phiếu {bad.id}: câu e1" in d for d in info.value.details)


def test_xlsx_continues_on_new_sheet_when_full(monkeypatch):
    from survey_app.analysis import exports

    monkeypatch.setattr(exports, "XLSX_MAX_DATA_ROWS", 3)
    out = io.BytesIO()
    rows = [[f"@row{i}", i, float("nan")] for i in range(7)]
    assert exports.write_xlsx(["a", "b", "c"], rows, out, sheet="Vi dữ liệu") == 7
    out.seek(0)
    book = openpyxl.load_workbook(out)
    assert [len(list(ws.iter_rows())) for ws in book.worksheets] == [4, 4, 2]
    firsts = [ws.cell(row=2, column=1).value for ws in book.worksheets]
    assert firsts == ["'@row0", "'@row3", "'@row6"]
    assert book.worksheets[2].cell(row=2, column=2).value == 6
    assert book.worksheets[2].cell(row=2, column=3).value is None


def test_closing_a_campaign_freezes_its_scores(small):
    from survey_app.services.campaigns import set_status

    campaign, _, _ = small
    set_status(campaign, CampaignStatus.FIELDING)
    db.session.commit()
    assert latest_snapshot(campaign) is None
    set_status(campaign, CampaignStatus.CLOSED)
    db.session.commit()
    snapshot = latest_snapshot(campaign)
    assert snapshot is not None
    assert snapshot.payload["unweighted"]["units"][0]["survey_pct"] == pytest.approx(71.25)
    # Committing again does not freeze again; a rolled-back closing freezes nothing.
    db.session.commit()
    other = make_campaign(units=("Y1",), key="other-2026")
    set_status(other, CampaignStatus.FIELDING)
    set_status(other, CampaignStatus.CLOSED)
    db.session.rollback()
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(type(snapshot))) == 1


def test_review_rows_lists_flagged_and_excluded_only(app_ctx):
    from survey_app.analysis.services import review_rows

    campaign = make_campaign(units=("X1",))
    plain = add_response(campaign, "X1", "citizen", citizen_answers("4", "3", "4", "2"))
    straight = add_response(campaign, "X1", "citizen", citizen_answers("5", "5", "5", "5"))
    dropped = add_response(campaign, "X1", "citizen", citizen_answers("3", "3", "4", "2"))
    flag_responses(campaign)
    set_exclusion(campaign, dropped.id, excluded=True, reason="Phiếu thử")
    db.session.commit()
    rows = review_rows(campaign)
    assert {r.id for r in rows} == {straight.id, dropped.id}
    assert next(r for r in rows if r.id == straight.id).flags == ["straight_lining"]
    assert next(r for r in rows if r.id == straight.id).answers == 19
    assert {r.id for r in review_rows(campaign, only_flagged=False)} == \
        {plain.id, straight.id, dropped.id}


def test_free_text_contacts_are_masked_in_microdata():
    from survey_app.analysis.exports import mask_contacts

    text = ("Gọi tôi 0912 345 678 hoặc +84.912.345.679, 84912345680, email "
            "nguyen.van-an+cchc@so-noivu.gov.vn; thủ tục mất 15 ngày, phí 200.000 đồng")
    masked = mask_contacts(text)
    for contact in ("0912 345 678", "+84.912.345.679", "84912345680", "nguyen.van-an",
                    "so-noivu.gov.vn"):
        assert contact not in masked
    assert masked.count("[đã ẩn]") == 4
    assert "15 ngày" in masked and "200.000 đồng" in masked
