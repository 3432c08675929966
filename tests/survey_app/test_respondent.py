"""The mobile form: tokens, short codes, drafts, skip logic, single use, retries, CSRF."""

from __future__ import annotations

import re
import threading
from collections import Counter

import pytest
from helpers import csrf_from, make_assignments, make_campaign
from sqlalchemy import func, select

from questionnaires.catalog import get_questionnaire
from survey_app.extensions import db
from survey_app.models import AccessToken, Assignment, Outcome, Response, ResponseLink


def _path(issued) -> str:
    return "/f/" + issued.url.rsplit("/", 1)[1]


def _answer_page(client, path, html, answers=None, action="next"):
    q = re.findall(r'<fieldset class="q[^"]*" id="q-([^"]+)"', html)
    data = {"csrf_token": csrf_from(html), "action": action,
            "page": re.search(r'name="page" value="(\d+)"', html).group(1),
            "submission_id": re.search(r'name="submission_id" value="([^"]+)"', html).group(1)}
    questionnaire = get_questionnaire("sipas-citizen@2026.1")
    for qid in q:
        question = questionnaire.question(qid)
        if answers and qid in answers:
            data[qid] = answers[qid]
        elif question.kind.value == "multi":
            data[qid] = [question.options[0].code]
        elif question.kind.has_options:
            data[qid] = question.options[-2].code if len(question.options) > 1 else \
                question.options[0].code
        elif question.kind.value == "number":
            data[qid] = "1"
        else:
            data[qid] = "Ý kiến thử"
    return client.post(path, data=data), data


def _complete(client, path, answers=None):
    html = client.get(path).get_data(as_text=True)
    for _ in range(20):
        action = "submit" if "Gửi phiếu" in html else "next"
        response, data = _answer_page(client, path, html, answers, action)
        if action == "submit":
            return response, data
        assert response.status_code == 302, (_, action, sorted(data), client.get_cookie("session"))
        html = client.get(path).get_data(as_text=True)
    raise AssertionError("form never reached its last page")


def test_token_is_stored_hashed_only(client):
    campaign = make_campaign()
    (_, issued), = make_assignments(campaign)
    token = issued.url.rsplit("/", 1)[1]
    assert len(token) >= 22  # 128 bits, URL-safe base64
    record = db.session.scalar(select(AccessToken))
    assert token not in (record.token_hash, record.short_code_hash)
    assert issued.short_code not in (record.token_hash, record.short_code_hash)


def test_full_flow_leave_come_back_submit_and_reopen(client):
    campaign = make_campaign()
    (assignment, issued), = make_assignments(campaign)
    path = _path(issued)
    first = client.get(path)
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert "Phần 1/" in html and "Thư ngỏ" in html
    # Answer page 1, save, "leave" (new client), come back: answers are kept.
    r, data = _answer_page(client, path, html, action="save")
    assert r.status_code == 200 and "Đã lưu" in r.get_data(as_text=True)
    other = client.application.test_client()
    again = other.get(path).get_data(as_text=True)
    assert 'value="nam" checked' in again or "checked" in again
    response, _ = _complete(other, path)
    assert response.status_code == 200
    assert "Cảm ơn" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Response.id))) == 1
    db.session.expire_all()
    assert db.session.get(Assignment, assignment.id).outcome is Outcome.COMPLETED
    reopened = client.get(path)
    assert "đã được gửi" in reopened.get_data(as_text=True)


def test_required_question_blocks_next(client):
    campaign = make_campaign()
    (_, issued), = make_assignments(campaign)
    path = _path(issued)
    html = client.get(path).get_data(as_text=True)
    r, _ = _answer_page(client, path, html, answers={"a3": ""})
    assert r.status_code == 422
    assert "Câu này bắt buộc trả lời." in r.get_data(as_text=True)


def test_invalid_option_is_refused(client):
    campaign = make_campaign()
    (_, issued), = make_assignments(campaign)
    path = _path(issued)
    html = client.get(path).get_data(as_text=True)
    r, _ = _answer_page(client, path, html, answers={"a3": "khong-co"})
    assert r.status_code == 422 and "Lựa chọn không hợp lệ" in r.get_data(as_text=True)


def test_skip_logic_drops_hidden_answers(client):
    campaign = make_campaign()
    (_, issued), = make_assignments(campaign)
    q = get_questionnaire("sipas-citizen@2026.1")
    conditional = [x for x in q.questions() if x.show_if]
    assert conditional
    gate = conditional[0].show_if
    failing = next(o.code for o in q.question(gate.question).options
                   if o.code not in gate.values)
    answers = {gate.question: failing}
    for x in conditional:
        answers[x.id] = x.options[0].code
    response, _ = _complete(client, _path(issued), answers)
    assert response.status_code == 200
    stored = {a.question_id for a in db.session.scalar(select(Response)).answers}
    assert gate.question in stored
    assert not stored & {x.id for x in conditional}


def test_retry_same_submission_is_one_response_and_other_gets_409(client):
    campaign = make_campaign()
    (_, issued), = make_assignments(campaign)
    path = _path(issued)
    response, data = _complete(client, path)
    assert response.status_code == 200
    retry = client.post(path, data=data)
    assert retry.status_code == 200 and "Cảm ơn" in retry.get_data(as_text=True)
    data2 = dict(data, submission_id="khac-hoan-toan")
    other = client.post(path, data=data2)
    assert other.status_code == 409 and "đã được gửi" in other.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Response.id))) == 1


def test_draft_created_by_a_concurrent_request_is_reused(client, monkeypatch):
    """A request that read the token before a concurrent first visit created the draft
    loses the insert race (unique token_id) and carries on with the stored draft."""
    import survey_app.respondent as respondent

    campaign = make_campaign()
    (_, issued), = make_assignments(campaign)
    path = _path(issued)
    first = client.get(path).get_data(as_text=True)
    sid = re.search(r'name="submission_id" value="([^"]+)"', first).group(1)
    real = respondent.form_state_by_token
    stale = iter([True])

    def read_before_the_draft(token, conn=None):
        state = real(token, conn)
        if next(stale, False):  # as read before the other request inserted its draft
            state = state._replace(draft_answers=None, draft_page=None,
                                   draft_submission_id=None, draft_started_at=None)
        return state

    monkeypatch.setattr(respondent, "form_state_by_token", read_before_the_draft)
    again = client.application.test_client().get(path)
    assert again.status_code == 200
    assert f'name="submission_id" value="{sid}"' in again.get_data(as_text=True)


def test_submission_stores_response_link_outcome_and_drops_the_draft(client):
    from survey_app.models import FormDraft

    campaign = make_campaign()
    (assignment, issued), = make_assignments(campaign)
    path = _path(issued)
    response, data = _complete(client, path)
    assert response.status_code == 200
    db.session.expire_all()
    stored = db.session.scalar(select(Response))
    assert stored.submission_id == data["submission_id"]
    assert stored.source.value == "web" and stored.group is assignment.group
    assert stored.mode is assignment.mode and stored.weight == assignment.weight
    assert stored.duration_seconds is not None and stored.network_hash
    assert {a.question_id for a in stored.answers} >= {"a1", "g1"}
    token = db.session.scalar(select(AccessToken))
    assert token.used_at is not None and token.submission_id == data["submission_id"]
    link = db.session.scalar(select(ResponseLink))
    assert (link.assignment_id, link.response_id) == (assignment.id, stored.id)
    assert db.session.get(Assignment, assignment.id).outcome is Outcome.COMPLETED
    assert db.session.scalar(select(func.count(FormDraft.id))) == 0


def test_missing_csrf_is_rejected(client):
    campaign = make_campaign()
    (_, issued), = make_assignments(campaign)
    path = _path(issued)
    client.get(path)
    r = client.post(path, data={"page": "0", "action": "next", "a3": "ho_tich"})
    assert r.status_code == 400
    assert db.session.scalar(select(func.count(Response.id))) == 0


def test_csrf_of_another_form_is_rejected(client):
    campaign = make_campaign()
    (_, first), (_, second) = make_assignments(campaign, count=2)
    other_html = client.get(_path(second)).get_data(as_text=True)
    html = client.get(_path(first)).get_data(as_text=True)
    assert csrf_from(html) != csrf_from(other_html)
    data = {"csrf_token": csrf_from(other_html), "page": "0", "action": "save", "a3": "ho_tich",
            "submission_id": re.search(r'name="submission_id" value="([^"]+)"', html).group(1)}
    r = client.post(_path(first), data=data)
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    r = client.post(_path(first), data=dict(data, csrf_token=csrf_from(html)))
    assert r.status_code == 200 and "Đã lưu" in r.get_data(as_text=True)


def test_link_pages_set_no_cookie_and_accept_https_posts_without_referrer(client):
    """The link's form keeps no session (its CSRF token is derived from the token), so it
    works over HTTPS although its pages tell the browser to send no Referer."""
    campaign = make_campaign()
    (_, issued), = make_assignments(campaign)
    path = _path(issued)
    page = client.get(path, base_url="https://localhost")
    assert "Set-Cookie" not in page.headers
    assert page.headers["Referrer-Policy"] == "no-referrer"
    html = page.get_data(as_text=True)
    data = {"csrf_token": csrf_from(html), "page": "0", "action": "save", "a3": "ho_tich",
            "submission_id": re.search(r'name="submission_id" value="([^"]+)"', html).group(1)}
    saved = client.post(path, data=data, base_url="https://localhost")
    assert saved.status_code == 200 and "Set-Cookie" not in saved.headers
    response, _ = _complete(client.application.test_client(), path)
    assert response.status_code == 200 and "Set-Cookie" not in response.headers


def test_form_connections_return_to_the_pool_out_of_autocommit(client):
    """PostgreSQL: the link's pages run in autocommit on a pooled connection, which must go
    back to the pool as every other user expects it (in transactions), whatever the
    request did: show, save, submit, or fail."""
    from sqlalchemy import event

    if db.engine.dialect.name != "postgresql":
        pytest.skip("the form runs in the session's transaction on other databases")
    campaign = make_campaign()
    (_, issued), = make_assignments(campaign)
    path = _path(issued)
    returned: list[bool] = []

    def on_checkin(dbapi_connection, record):
        if dbapi_connection is not None:
            returned.append(dbapi_connection.autocommit)

    event.listen(db.engine, "checkin", on_checkin)
    try:
        html = client.get(path).get_data(as_text=True)
        saved = client.post(path, data={"csrf_token": csrf_from(html), "page": "0",
                                        "action": "save", "submission_id": "x"})
        assert saved.status_code == 200
        response, _ = _complete(client, path)
        assert response.status_code == 200
        assert client.post(path, data={"csrf_token": "0" * 64}).status_code == 400
    finally:
        event.remove(db.engine, "checkin", on_checkin)
    assert returned and not any(returned)


def test_unknown_token_is_404(client):
    assert client.get("/f/khong-ton-tai-abcdefghijkl").status_code == 404


def test_short_code_opens_form_and_is_rate_limited(client, app_ctx):
    campaign = make_campaign()
    (_, issued), = make_assignments(campaign)
    page = client.get("/f")
    token = csrf_from(page.get_data(as_text=True))
    typed = issued.short_code.lower().replace("-", " ")
    r = client.post("/f", data={"code": typed, "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].endswith("/f/ma")
    assert "Phần 1/" in client.get("/f/ma").get_data(as_text=True)
    # One wrong character: refused (check character), then the limit applies.
    bad = issued.short_code[:-1] + ("0" if issued.short_code[-1] != "0" else "1")
    fresh = client.application.test_client()
    token = csrf_from(fresh.get("/f").get_data(as_text=True))
    codes = [fresh.post("/f", data={"code": bad, "csrf_token": token}).status_code
             for _ in range(app_ctx.config["SHORT_CODE_LIMIT"] + 2)]
    assert codes[0] == 404
    assert codes[-1] == 429


@pytest.mark.slow
def test_concurrent_submissions_on_one_token_make_one_response(app, tmp_path):
    """50 threads submit the same finished form at once, with distinct submission ids."""
    from survey_app.services.responses import record_response  # noqa: F401

    with app.app_context():
        campaign = make_campaign()
        (assignment, issued), = make_assignments(campaign)
        path = _path(issued)
        client = app.test_client()
        # Fill every page but the last with one client.
        html = client.get(path).get_data(as_text=True)
        while "Gửi phiếu" not in html:
            _answer_page(client, path, html)
            html = client.get(path).get_data(as_text=True)
        base = {}
        q = re.findall(r'<fieldset class="q[^"]*" id="q-([^"]+)"', html)
        for qid in q:
            question = get_questionnaire("sipas-citizen@2026.1").question(qid)
            base[qid] = question.options[0].code if question.kind.has_options else "x"
        base.update(csrf_token=csrf_from(html), action="submit",
                    page=re.search(r'name="page" value="(\d+)"', html).group(1))
        results = []
        barrier = threading.Barrier(50)

        def submit(i):
            c = app.test_client()  # a new browser: the link's form needs no cookie
            barrier.wait()
            results.append(c.post(path, data=dict(base, submission_id=f"sid-{i}")).status_code)

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        db.session.remove()
        try:
            assert db.session.scalar(select(func.count(Response.id))) == 1
            assert db.session.scalar(select(func.count(ResponseLink.id))) == 1
            assert sorted(Counter(results).items()) == [(200, 1), (409, 49)]
        finally:
            from helpers import empty_tables

            db.session.remove()
            empty_tables()
