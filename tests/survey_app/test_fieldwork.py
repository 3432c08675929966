"""Paper entry (single and blind double), outcomes with reserves, dashboard rates, roles."""

from __future__ import annotations

from helpers import csrf_from, login, make_campaign, make_frame, make_user
from sqlalchemy import func, select

from questionnaires.catalog import get_questionnaire
from survey_app.draws.services import draw_campaign
from survey_app.extensions import db
from survey_app.fieldwork.services import response_rates
from survey_app.models import (
    Assignment,
    AuditAction,
    AuditEntry,
    Outcome,
    Response,
    ResponseSource,
)
from survey_app.services.tokens import issue_for_assignment


def _drawn(double_entry=False):
    campaign = make_campaign(units=("X1", "X2"), quota=3, reserves=2)
    campaign.double_entry = double_entry
    for code in ("X1", "X2"):
        make_frame(campaign, code, "citizen", 8)
        make_frame(campaign, code, "civil_servant", 4, phones=False)
    draw_campaign(campaign)
    db.session.commit()
    return campaign


def _first(campaign, group="civil_servant", unit_code="X1"):
    from survey_app.models import Unit

    unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
    return db.session.scalars(select(Assignment).where(
        Assignment.campaign_id == campaign.id, Assignment.group == group,
        Assignment.unit_id == unit.id, Assignment.active).order_by(Assignment.draw_order)).first()


def _keyed(answers=None):
    q = get_questionnaire("par-civil-servant@2026.1")
    data = {}
    for question in q.questions():
        if question.kind.has_options:
            data[question.id] = "1"
        elif question.kind.value == "number":
            data[question.id] = "3"
        else:
            data[question.id] = ""
    data.update(answers or {})
    return data


def _key_in(client, campaign, assignment, answers=None):
    page = client.get(f"/fieldwork/{campaign.key}/entry").get_data(as_text=True)
    r = client.post(f"/fieldwork/{campaign.key}/entry",
                    data={"csrf_token": csrf_from(page), "code": assignment.serial})
    assert r.status_code == 302, r.get_data(as_text=True)
    form = client.get(r.headers["Location"]).get_data(as_text=True)
    data = _keyed(answers)
    data["csrf_token"] = csrf_from(form)
    return client.post(r.headers["Location"], data=data)


def test_paper_entry_records_a_response_and_kills_the_link(client):
    campaign = _drawn()
    assignment = _first(campaign)
    issued = issue_for_assignment(assignment)
    db.session.commit()
    make_user("dieutra", "enumerator", units=["X1"])
    login(client, "dieutra", "password-123")
    r = _key_in(client, campaign, assignment)
    assert r.status_code == 302
    response = db.session.scalar(select(Response))
    assert response.source is ResponseSource.PAPER and response.unit_id == assignment.unit_id
    db.session.expire_all()
    assert db.session.get(Assignment, assignment.id).outcome is Outcome.COMPLETED
    page = client.get("/f/" + issued.url.rsplit("/", 1)[1]).get_data(as_text=True)
    assert "đã được gửi" in page
    again = _key_in(client, campaign, assignment)
    assert again.status_code == 409
    assert db.session.scalar(select(func.count(Response.id))) == 1


def test_invalid_keyed_code_is_refused(client):
    campaign = _drawn()
    assignment = _first(campaign)
    make_user("dieutra", "enumerator", units=["X1"])
    login(client, "dieutra", "password-123")
    q = get_questionnaire("par-civil-servant@2026.1")
    first_scored = next(x for x in q.questions() if x.kind.has_options)
    r = _key_in(client, campaign, assignment, {first_scored.id: "7"})
    assert r.status_code == 422
    assert "Mã không hợp lệ" in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Response.id))) == 0


def test_blind_double_entry_differences_and_audited_resolution(client):
    campaign = _drawn(double_entry=True)
    assignment = _first(campaign)
    make_user("nhap1", "enumerator", units=["X1"])
    make_user("nhap2", "enumerator", units=["X1"])
    make_user("quantri", "admin")
    q = get_questionnaire("par-civil-servant@2026.1")
    scored = [x for x in q.questions() if x.kind.has_options]
    login(client, "nhap1", "password-123")
    assert _key_in(client, campaign, assignment).status_code == 302
    assert _key_in(client, campaign, assignment).status_code == 409  # same keyer twice
    assert db.session.scalar(select(func.count(Response.id))) == 0
    second = client.application.test_client()
    login(second, "nhap2", "password-123")
    form = second.get(f"/fieldwork/entry/{assignment.id}").get_data(as_text=True)
    assert 'value="1"' not in form  # blind: the first keying is not shown
    assert _key_in(second, campaign, assignment, {scored[0].id: "2"}).status_code == 302
    assert db.session.scalar(select(func.count(Response.id))) == 0
    admin = client.application.test_client()
    login(admin, "quantri", "password-123")
    page = admin.get(f"/fieldwork/entry/{assignment.id}/resolve")
    assert page.status_code == 200
    data = _keyed({scored[0].id: "2"})
    data["csrf_token"] = csrf_from(page.get_data(as_text=True))
    done = admin.post(f"/fieldwork/entry/{assignment.id}/resolve", data=data)
    assert done.status_code == 302
    response = db.session.scalar(select(Response))
    answer = {a.question_id: a.value for a in response.answers}[scored[0].id]
    assert answer == scored[0].options[1].code
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == AuditAction.PAPER_RESOLVED))
    assert entry.details["questions"] == [scored[0].id]


def test_refusal_activates_reserve_from_the_web(client):
    campaign = _drawn()
    assignment = _first(campaign, "citizen")
    make_user("dieutra", "enumerator", units=["X1"])
    login(client, "dieutra", "password-123")
    page = client.get(f"/fieldwork/{campaign.key}/assignments").get_data(as_text=True)
    assert assignment.serial in page
    r = client.post(f"/fieldwork/assignments/{assignment.id}/outcome",
                    data={"csrf_token": csrf_from(page), "outcome": "refused"})
    assert r.status_code == 302
    activated = db.session.scalars(select(Assignment).where(
        Assignment.stratum_id == assignment.stratum_id, Assignment.is_reserve,
        Assignment.active)).all()
    assert len(activated) == 1 and activated[0].draw_order == 4
    assert "Đã kích hoạt phiếu dự phòng" in client.get(r.headers["Location"]).get_data(as_text=True)


def test_outcome_redirects_only_within_the_site(client):
    campaign = _drawn()
    make_user("dieutra", "enumerator", units=["X1"])
    login(client, "dieutra", "password-123")
    page = client.get(f"/fieldwork/{campaign.key}/assignments").get_data(as_text=True)
    from survey_app.models import Unit

    x1_id = db.session.scalar(select(Unit.id).where(Unit.code == "X1"))
    x1 = db.session.scalars(select(Assignment).where(
        Assignment.campaign_id == campaign.id, Assignment.active, Assignment.unit_id == x1_id,
        Assignment.is_reserve.is_(False)).order_by(Assignment.id)).all()
    targets = ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/fieldwork/"]
    for assignment, target in zip(x1, targets, strict=False):
        r = client.post(f"/fieldwork/assignments/{assignment.id}/outcome",
                        data={"csrf_token": csrf_from(page), "outcome": "non_contact",
                              "next": target})
        assert r.status_code == 302
        location = r.headers["Location"]
        if target == "/fieldwork/":
            assert location == "/fieldwork/"
        else:
            assert "evil" not in location and location.endswith("/assignments")


def test_response_rates_follow_aapor():
    counts = {Outcome.COMPLETED: 6, Outcome.PARTIAL: 2, Outcome.REFUSED: 1,
              Outcome.NON_CONTACT: 1, Outcome.ISSUED: 2, Outcome.INELIGIBLE: 3}
    rates = response_rates(counts)
    assert rates["rr1"] == 6 / 12 and rates["rr2"] == 8 / 12


def test_dashboard_counts(client):
    campaign = _drawn()
    make_user("quantri", "admin")
    login(client, "quantri", "password-123")
    html = client.get(f"/fieldwork/{campaign.key}").get_data(as_text=True)
    assert "Xã Thử X1" in html and "RR1" in html


def test_roles_on_fieldwork_routes(client):
    campaign = _drawn()
    a1 = _first(campaign)
    make_user("dieutra_b", "enumerator", units=["X2"])
    make_user("donvi_a", "uploader", units=["X1"])
    make_user("phantich", "analyst")
    login(client, "dieutra_b", "password-123")
    token = csrf_from(client.get(f"/fieldwork/{campaign.key}/entry").get_data(as_text=True))
    assert client.get(f"/fieldwork/entry/{a1.id}").status_code == 404
    assert client.post(f"/fieldwork/assignments/{a1.id}/outcome",
                       data={"csrf_token": token, "outcome": "refused"}).status_code == 404
    listing = client.get(f"/fieldwork/{campaign.key}/assignments").get_data(as_text=True)
    assert a1.serial not in listing
    for user, expected in (("donvi_a", 403), ("phantich", 403)):
        c = client.application.test_client()
        login(c, user, "password-123")
        assert c.get(f"/fieldwork/entry/{a1.id}").status_code == expected
        assert c.get(f"/fieldwork/{campaign.key}/assignments").status_code == expected
    c = client.application.test_client()
    login(c, "phantich", "password-123")
    assert c.get(f"/fieldwork/{campaign.key}").status_code == 200
    anon = client.application.test_client()
    assert anon.get(f"/fieldwork/{campaign.key}").status_code == 302


def test_entry_finds_a_form_by_its_exact_serial_in_its_campaign_only(app_ctx):
    """The serial is looked up through the (stratum, draw order) index: only the exact
    printed text of an assignment of this campaign finds it."""
    import pytest

    from survey_app.errors import NotFound
    from survey_app.fieldwork.services import find_for_entry

    campaign = _drawn()
    assignment = _first(campaign)
    other = make_campaign(key="khac-2026", units=("X9",))
    assert find_for_entry(campaign, f"  {assignment.serial} ") == assignment
    c, s, o = assignment.serial.split("-")
    for wrong in (f"{c}-{s}-{int(o)}", f"{c}-{s}-0{o}", f"{int(c) + 1}-{s}-{o}", f"{c}-{s}",
                  f"x{assignment.serial}", ""):
        with pytest.raises(NotFound):
            find_for_entry(campaign, wrong)
    with pytest.raises(NotFound):
        find_for_entry(other, assignment.serial)
    assert find_for_entry(campaign, issue_for_assignment(assignment).short_code) == assignment


def test_handing_forms_to_an_enumerator_hides_them_from_the_others(client, runner):
    """An administrator hands two of X1's citizen forms to one enumerator: the unit's other
    enumerator no longer lists, prints or records them; the CLI moves them back and forth;
    mistakes are refused with a message and change nothing."""
    from survey_app.models import AuditAction, AuditEntry, Unit, User

    campaign = _drawn()
    make_user("quantri", "admin")
    make_user("dtv-a", "enumerator", units=["X1"])
    make_user("dtv-b", "enumerator", units=["X1"])
    make_user("dtv-x2", "enumerator", units=["X2"])
    ids = {u.username: u.id for u in db.session.scalars(select(User))}
    x1 = db.session.scalar(select(Unit).where(Unit.code == "X1"))
    login(client, "quantri", "password-123")
    page = client.get(f"/fieldwork/{campaign.key}/assignments?unit={x1.id}").get_data(
        as_text=True)
    assert "Giao phiếu cho điều tra viên" in page and 'value="X1"' in page

    def post(**form):
        return client.post(f"/fieldwork/{campaign.key}/handout",
                           data={"csrf_token": csrf_from(page), **form})

    r = post(unit="X1", group="citizen", enumerator=str(ids["dtv-a"]), count="2")
    assert r.status_code == 302
    handed = db.session.scalars(select(Assignment).where(
        Assignment.enumerator_id == ids["dtv-a"]).order_by(Assignment.draw_order)).all()
    assert [(a.unit_id, a.group.value, a.draw_order) for a in handed] == [
        (x1.id, "citizen", 1), (x1.id, "citizen", 2)]
    assert "dtv-a" in client.get(r.headers["Location"]).get_data(as_text=True)
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == AuditAction.FORMS_HANDED_OUT))
    assert entry.details["forms"] == 2 and entry.details["enumerator"] == ids["dtv-a"]
    from survey_app.printouts.services import stratum_counts

    def printable(enumerator):  # X1 citizens counted on the print page of `enumerator`
        return [(r["active"], r["to_print"]) for r in stratum_counts(
            campaign, {x1.id}, enumerator_id=ids.get(enumerator))
            if r["group"].value == "citizen"]

    assert printable("dtv-a") == printable(None) == [(3, 3)]
    assert printable("dtv-b") == [(1, 1)]

    # Refused, nothing changes: enumerator of another unit, not an enumerator, bad count,
    # a unit the campaign does not rate, no CSRF token.
    for form, message in (
            ({"unit": "X1", "enumerator": str(ids["dtv-x2"])}, "không phụ trách"),
            ({"unit": "X1", "enumerator": str(ids["quantri"])}, "điều tra viên"),
            ({"unit": "X1", "enumerator": str(ids["dtv-b"]), "count": "0"}, "số nguyên dương"),
            ({"unit": "X1", "enumerator": str(ids["dtv-b"]), "count": "hai"}, "số nguyên"),
            ({"unit": "ZZ", "enumerator": str(ids["dtv-b"])}, "mã một đơn vị")):
        r = post(**form)
        assert r.status_code == 400 and message in r.get_data(as_text=True), form
    assert client.post(f"/fieldwork/{campaign.key}/handout",
                       data={"unit": "X1", "enumerator": str(ids["dtv-b"])}).status_code == 400
    assert db.session.scalar(select(func.count(Assignment.id)).where(
        Assignment.enumerator_id.is_not(None))) == 2

    client.post("/logout", data={"csrf_token": csrf_from(page)})
    login(client, "dtv-b", "password-123")
    listing = client.get(f"/fieldwork/{campaign.key}/assignments").get_data(as_text=True)
    assert all(a.serial not in listing for a in handed)
    assert _first(campaign, "citizen", "X1").serial not in listing
    assert client.post(f"/fieldwork/assignments/{handed[0].id}/outcome",
                       data={"csrf_token": csrf_from(listing), "outcome": "refused"}
                       ).status_code == 404
    assert client.post(f"/fieldwork/{campaign.key}/handout", data={
        "csrf_token": csrf_from(listing), "unit": "X1",
        "enumerator": str(ids["dtv-b"])}).status_code == 403

    # The CLI moves one form from dtv-a to dtv-b, then hands the rest of X1 to dtv-b.
    result = runner.invoke(args=["fieldwork", "handout", campaign.key, "--unit", "X1",
                                 "--enumerator", "dtv-b", "--from", "dtv-a", "--count", "1"])
    assert result.exit_code == 0 and "Đã giao 1 phiếu" in result.output, result.output
    result = runner.invoke(args=["fieldwork", "handout", campaign.key, "--unit", "X1",
                                 "--enumerator", "dtv-b"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    owners = dict(db.session.execute(select(Assignment.enumerator_id, func.count()).where(
        Assignment.unit_id == x1.id, Assignment.active).group_by(Assignment.enumerator_id)
    ).all())
    assert owners == {ids["dtv-a"]: 1, ids["dtv-b"]: 3 + 1 - 1}  # 3 citizens, 1 servant
    result = runner.invoke(args=["fieldwork", "handout", campaign.key, "--unit", "X1",
                                 "--enumerator", "dtv-x2"])
    assert result.exit_code == 2 and "không phụ trách" in result.output
