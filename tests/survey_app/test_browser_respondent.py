"""The mobile form in a real browser (Debian's chromium via Playwright) at phone size:
leave and come back, submit once, JavaScript off, skip logic, short codes, page weight,
no third-party requests, no horizontal scroll, thumb-sized targets.

Set SURVEY_SCREENSHOT_DIR to keep 360 px screenshots of the first and a satisfaction page
(docs/mobile-form.png is that directory's mobile-form.png).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE_VIEWPORT,
    LiveServer,
    TrafficRecorder,
    answer_visible_questions,
    layout_problems,
)
from helpers import make_assignments, make_campaign
from sqlalchemy import select

from survey_app.extensions import db
from survey_app.models import Response

PAGE_BUDGET = 50 * 1024  # bytes per page load, all requests included
SUBMIT = "Gửi phiếu"
NEXT = "Tiếp theo →"


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless; the module is skipped when it is not installed."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def server(app):
    """The session app served over HTTP on 127.0.0.1 from a background thread."""
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def form(app):
    """One citizen assignment with a fresh token; tables emptied afterwards.

    Returns (form path, printed short code)."""
    with app.app_context():
        campaign = make_campaign()
        (_, issued), = make_assignments(campaign)
        path = "/f/" + issued.url.rsplit("/", 1)[1]
        code = issued.short_code
    yield path, code
    from helpers import empty_tables

    with app.app_context():
        db.session.remove()
        empty_tables()


def _responses(app) -> list[dict[str, str]]:
    """Stored responses as {question id: value} (read in a fresh app context)."""
    with app.app_context():
        rows = db.session.scalars(select(Response)).all()
        out = [{a.question_id: a.value for a in r.answers} for r in rows]
        db.session.remove()
    return out


def _phone(browser, **kwargs):
    return browser.new_context(viewport=PHONE_VIEWPORT, locale="vi-VN", **kwargs)


def _tap(page, button: str) -> None:
    """Tap a form button and wait until the page it leads to has loaded."""
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("button", name=button).click()


def _finish(page, traffic: TrafficRecorder | None = None, overrides=None
            ) -> tuple[list[str], dict[str, str]]:
    """Answer the remaining pages and submit; returns the section titles seen and the
    answers given."""
    titles: list[str] = []
    given: dict[str, str] = {}
    for _ in range(20):
        titles.append(page.locator("h1").inner_text())
        given.update(answer_visible_questions(page, overrides))
        last = page.get_by_role("button", name=SUBMIT).count() > 0
        _tap(page, SUBMIT if last else NEXT)
        if traffic is not None:
            _check_page(page, traffic)
        if last:
            return titles, given
    raise AssertionError("the form never reached its last page")


def _check_page(page, traffic: TrafficRecorder) -> None:
    """The page just loaded: light, local only, fits 360 px, thumb-sized targets."""
    transfers = traffic.take()
    assert transfers, ("no request recorded for this page load", page.url)
    total = sum(t.body + t.headers for t in transfers)
    assert total < PAGE_BUDGET, (page.url, total, transfers)
    assert all(t.status < 500 for t in transfers), transfers
    assert layout_problems(page) == [], page.url


# --------------------------------------------------------------------------- tests

@pytest.mark.browser
@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_leave_come_back_submit_and_reopen(browser, server, form, app, javascript):
    path, _ = form
    url = server.url + path
    first = _phone(browser, java_script_enabled=javascript)
    page = first.new_page()
    page.goto(url)
    assert "Phần 1/7" in page.locator(".progress-text").inner_text()
    first_answers = {"a3": "ho_tich", "a1": "nu"}
    given = answer_visible_questions(page, first_answers)
    _tap(page, "Lưu, làm tiếp sau")
    assert "Đã lưu câu trả lời" in page.locator(".saved").inner_text()
    first.close()  # the respondent leaves: cookies and page gone

    later = _phone(browser, java_script_enabled=javascript)
    page = later.new_page()
    page.goto(url)
    assert "Phần 1/7" in page.locator(".progress-text").inner_text()
    for qid, code in given.items():
        assert page.locator(f'input[name="{qid}"][value="{code}"]').is_checked(), qid
    titles, answered = _finish(page, overrides=first_answers)  # page 1 again: same choices
    assert len(titles) == 7 and titles[-1] == "Ý kiến chung"
    assert answered["f0"] == "khong"
    # Without script the follow-ups of f0 stay on screen (with a note) and get answered;
    # with script they are hidden. Either way the server keeps none of them.
    assert ("f1" in answered) is not javascript
    assert "Cảm ơn" in page.locator("h1").inner_text()
    receipt = page.locator("strong").inner_text()
    assert re.fullmatch(r"[0-9A-F]{8}", receipt)
    (stored,) = _responses(app)
    assert {q: stored.get(q) for q in given} == given
    assert stored["f0"] == "khong" and not {"f1", "f2", "f3", "f4"} & stored.keys()
    later.close()

    again = _phone(browser, java_script_enabled=javascript)
    page = again.new_page()
    page.goto(url)
    assert "đã được gửi" in page.locator("h1").inner_text()
    assert page.locator("form").count() == 0
    again.close()
    assert len(_responses(app)) == 1


def _advance_to_section(page, title: str) -> None:
    for _ in range(10):
        if page.locator("h1").inner_text() == title:
            return
        answer_visible_questions(page)
        _tap(page, NEXT)
    raise AssertionError(f"section {title!r} not reached")


@pytest.mark.browser
def test_skip_logic_hides_follow_ups_until_yes(browser, server, form, app):
    path, _ = form
    ctx = _phone(browser)
    page = ctx.new_page()
    page.goto(server.url + path)
    _advance_to_section(page, "Tiếp nhận, xử lý góp ý, phản ánh, kiến nghị")
    follow_ups = [page.locator(f"#q-f{i}") for i in range(1, 5)]
    assert page.locator("#q-f0").is_visible()
    assert all(q.is_hidden() for q in follow_ups)
    f0 = page.locator("#q-f0")
    yes = f0.locator('label.opt:has(input[value="co"])')
    assert yes.inner_text().strip() == "Có"
    yes.click()
    assert all(q.is_visible() for q in follow_ups)
    f0.locator('label.opt:has(input[value="khong_biet"])').click()
    assert all(q.is_hidden() for q in follow_ups)
    yes.click()
    assert all(q.is_visible() for q in follow_ups)
    _finish(page, overrides={"f0": "co", "f1": "5"})
    assert "Cảm ơn" in page.locator("h1").inner_text()
    (stored,) = _responses(app)
    assert stored["f0"] == "co" and stored["f1"] == "5" and "f4" in stored
    ctx.close()


@pytest.mark.browser
def test_printed_short_code_opens_the_form(browser, server, form):
    _, code = form
    ctx = _phone(browser)
    page = ctx.new_page()
    page.goto(server.url + "/f")
    page.locator("#code").fill(code.lower().replace("-", " "))  # as typed on a phone
    _tap(page, "Mở phiếu")
    assert page.url.endswith("/f/ma")
    assert "Phần 1/7" in page.locator(".progress-text").inner_text()
    assert page.locator("h1").inner_text() == "Thông tin chung"
    ctx.close()


@pytest.mark.browser
def test_wrong_short_code_is_explained(browser, server, form):
    _, code = form
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    ctx = _phone(browser)
    page = ctx.new_page()
    page.goto(server.url + "/f")
    page.locator("#code").fill(wrong)
    _tap(page, "Mở phiếu")
    assert "Mã phiếu không đúng" in page.locator(".error").inner_text()
    assert page.url.endswith("/f")
    ctx.close()


@pytest.mark.browser
def test_every_page_is_light_local_and_fits_a_phone(browser, server, form):
    path, code = form
    ctx = _phone(browser)
    page = ctx.new_page()
    traffic = TrafficRecorder().attach(page)
    shots = os.environ.get("SURVEY_SCREENSHOT_DIR")

    page.goto(server.url + "/f")
    _check_page(page, traffic)
    page.locator("#code").fill(code)
    _tap(page, "Mở phiếu")
    _check_page(page, traffic)
    answer_visible_questions(page)
    if shots:
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(Path(shots) / "form-first-page.png"), full_page=True)
    _tap(page, NEXT)
    _check_page(page, traffic)
    answer_visible_questions(page, {"b1": "4", "b2": "5"})
    if shots:
        page.evaluate("() => window.scrollTo(0, 0)")  # the sticky header back on top
        page.screenshot(path=str(Path(shots) / "form-satisfaction-page.png"), full_page=True)
        page.screenshot(path=str(Path(shots) / "mobile-form.png"))  # one phone screen
    _tap(page, NEXT)
    _check_page(page, traffic)
    _finish(page, traffic)  # checks each following page, the confirmation included
    assert "Cảm ơn" in page.locator("h1").inner_text()
    page.goto(server.url + path)
    _check_page(page, traffic)
    assert "đã được gửi" in page.locator("h1").inner_text()
    assert traffic.hosts == {server.host}, traffic.hosts
    ctx.close()


def test_form_pages_weigh_well_under_budget(client, app_ctx):
    """Without a browser: each form page plus its stylesheet and script stays light."""
    campaign = make_campaign()
    (_, issued), = make_assignments(campaign)
    path = "/f/" + issued.url.rsplit("/", 1)[1]
    html = client.get(path).get_data()
    assets = re.findall(rb'(?:href|src)="(/static/[^"]+)"', html)
    assert {a.rsplit(b"/", 1)[1] for a in assets} == {b"form.css", b"form.js"}
    asset_bytes = sum(len(client.get(a.decode()).get_data()) for a in assets)
    assert asset_bytes < 8 * 1024
    assert len(html) + asset_bytes < PAGE_BUDGET // 2
    assert not re.search(rb'(?:href|src)="(?:https?:)?//', html)  # nothing off-site
    assert b"style=" not in html and b"<script>" not in html  # CSP: no inline code
