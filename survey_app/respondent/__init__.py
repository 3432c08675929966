"""The respondent's mobile form: `/f/<token>` from the QR code or link, `/f` for a typed code.

Plain HTML forms, one section per page; JavaScript only hides skipped questions early.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, generate_csrf
from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import SurveyError
from ..extensions import autocommit_connection, csrf, db, release_autocommit
from ..models import CampaignStatus, FormDraft
from ..models._types import utcnow
from ..ratelimit import enforce
from ..services.responses import (
    checked_questionnaire,
    clean_answer,
    missing_required,
    network_hash,
    shown_answers,
    store_web_submission,
)
from ..services.tokens import (
    FormState,
    find_by_short_code,
    form_state_by_id,
    form_state_by_token,
    hash_secret,
    token_use,
)

bp = Blueprint("respondent", __name__, url_prefix="/f")
SESSION_KEY = "form_access"


class FormGone(SurveyError):
    """The campaign no longer accepts answers."""

    status = 410
    code = "closed"


@bp.route("", methods=["GET", "POST"])
def enter_code():
    """Type the short code printed on a paper form (rate-limited per client)."""
    error = None
    status = 200
    if request.method == "POST":
        cfg = current_app.config
        enforce("short_code", cfg["SHORT_CODE_LIMIT"], cfg["SHORT_CODE_WINDOW"],
                "Bạn đã nhập mã quá nhiều lần. Vui lòng đợi một phút rồi thử lại.")
        record = find_by_short_code(request.form.get("code", ""))
        if record is not None:
            session[SESSION_KEY] = record.id
            return redirect(url_for("respondent.by_code"))
        error = "Mã phiếu không đúng. Vui lòng kiểm tra lại mã in trên phiếu (10 ký tự)."
        status = 404
    return render_template("respondent/code.html", error=error), status


def _db() -> Session | Connection:
    """Where this request's form statements run. On PostgreSQL each step of the form is
    atomic on its own (a read, a draft insert or update, the submission's single statement,
    see store_web_submission), so it runs on a pooled connection in autocommit: no BEGIN and
    COMMIT round trips, none of the ORM session's bookkeeping. Other engines: the session,
    in one transaction the handler commits. Both take `execute`, `commit`, `rollback`."""
    conn = g.get("form_db")
    if conn is None:
        if db.engine.dialect.name == "postgresql":
            conn = autocommit_connection()
        else:
            conn = db.session
        g.form_db = conn
    return conn


@bp.teardown_request
def _release_connection(exc: BaseException | None) -> None:
    conn = g.pop("form_db", None)
    if isinstance(conn, Connection):
        release_autocommit(conn)


@bp.route("/ma", methods=["GET", "POST"])
def by_code():
    """The form opened through a typed code (the token id is kept in the signed session)."""
    record_id = session.get(SESSION_KEY)
    state = form_state_by_id(record_id, _db()) if record_id else None
    if state is None or state.revoked:
        return redirect(url_for("respondent.enter_code"))
    return _form(state, lambda: form_state_by_id(record_id, _db()),
                 url_for("respondent.by_code"), None)


@csrf.exempt  # its own token below: no session cookie on the link's pages
@bp.route("/<token>", methods=["GET", "POST"])
def by_token(token: str):
    """The form opened from the QR code or link."""
    digest = hash_secret(token) if token and len(token) <= 64 else ""
    if request.method == "POST" and not _form_csrf_valid(digest):
        raise CSRFError("The CSRF token is missing or invalid.")
    state = form_state_by_token(token, _db())
    if state is None:
        raise SurveyError("Đường dẫn phiếu không đúng hoặc đã hết hiệu lực.", status=404,
                          code="unknown_token")
    return _form(state, lambda: form_state_by_token(token, _db()), request.path, digest)


# The link's pages carry no cookie: their CSRF token is an HMAC of the token's hash under
# the secret key (a fixed value per form, as Flask-WTF's is per session without a time
# limit), so neither the GET nor the POST signs, sends or verifies a session cookie. The
# typed-code pages keep the session (it holds the token id) and Flask-WTF's token.
_FORM_CSRF_PURPOSE = b"survey_app.respondent.form-csrf\x00"


@cache
def _form_csrf_mac(secret: str | bytes) -> hmac.HMAC:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, _FORM_CSRF_PURPOSE, hashlib.sha256)


def form_csrf_token(digest: str, secret: str | bytes | None = None) -> str:
    """The CSRF token of the form of the access token whose hash is `digest` (under the
    app's secret key, or `secret`)."""
    mac = _form_csrf_mac(secret or current_app.secret_key).copy()
    mac.update(digest.encode())
    return mac.hexdigest()


def _form_csrf_valid(digest: str) -> bool:
    """Whether the POSTed csrf_token is this form's, under the secret key or a fallback."""
    sent = request.form.get("csrf_token", "")
    if not digest or len(sent) != 64:
        return False
    return any(hmac.compare_digest(sent, form_csrf_token(digest, key)) for key in
               (current_app.secret_key, *(current_app.config.get("SECRET_KEY_FALLBACKS") or ())))


# The hot path works on the plain row of `form_state_by_*` and Core statements built once.
_DRAFTS = FormDraft.__table__
_INSERT_DRAFT = insert(_DRAFTS)
_SAVE_DRAFT = (
    update(_DRAFTS)
    .where(_DRAFTS.c.token_id == bindparam("b_token_id"))
    .values(answers=bindparam("b_answers", type_=_DRAFTS.c.answers.type),
            page=bindparam("b_page", type_=_DRAFTS.c.page.type),
            updated_at=bindparam("b_now", type_=_DRAFTS.c.updated_at.type))
)


@dataclass(frozen=True, slots=True)
class _Campaign:
    """What the respondent pages show of the campaign."""

    name: str


@dataclass(slots=True)
class _Draft:
    answers: dict
    page: int
    submission_id: str
    started_at: object
    created: bool  # inserted by this request


def _draft(state: FormState) -> _Draft:
    if state.draft_submission_id is not None:
        return _Draft(state.draft_answers or {}, state.draft_page, state.draft_submission_id,
                      state.draft_started_at, False)
    now = utcnow()
    draft = _Draft({}, 0, uuid.uuid4().hex, now, True)
    # A concurrent first request may insert it too: the unique token_id refuses one.
    _db().execute(_INSERT_DRAFT, {"token_id": state.id, "answers": {}, "page": 0,
                                  "submission_id": draft.submission_id,
                                  "started_at": now, "updated_at": now})
    return draft


def _form(state: FormState, reload: Callable[[], FormState | None], action_url: str,
          link_digest: str | None):
    """Show or advance the form; a race lost to a concurrent request is resolved once.
    `link_digest`: on the link's pages, the token's hash (their CSRF token is derived from
    it, see form_csrf_token); None on the typed-code pages (Flask-WTF's token, and the
    session that holds the token id)."""
    try:
        return _form_once(state, action_url, link_digest)
    except IntegrityError:
        # Two requests created the draft (or a response) at the same moment: the database
        # kept one; start again from what it holds.
        _db().rollback()
        state = reload()
        if state is None:
            raise SurveyError("Đường dẫn phiếu không đúng hoặc đã hết hiệu lực.", status=404,
                              code="unknown_token") from None
        return _form_once(state, action_url, link_digest)


def _form_once(state: FormState, action_url: str, link_digest: str | None):
    # Status and questionnaire come live from the same row as the token (one round trip).
    if state.campaign_status is CampaignStatus.CLOSED:
        raise FormGone("Đợt khảo sát này đã kết thúc, phiếu không còn nhận trả lời.")
    campaign = _Campaign(state.campaign_name)
    questionnaire = checked_questionnaire(state.questionnaire_ref, state.questionnaire_digest)
    sections = questionnaire.sections
    if state.used_at is not None:
        return _already_used(state.submission_id, campaign)
    draft = _draft(state)
    if request.method == "POST" and draft.created:
        # The token and an existing draft were read in one statement (one snapshot); a draft
        # created just now may follow a concurrent submission that deleted the old one and
        # has committed by now: read the token again, that submission must win.
        used_at, used_sid = token_use(state.id, _db())
        if used_at is not None:
            return _already_used(used_sid, campaign)

    answers = dict(draft.answers)
    errors: dict[str, str] = {}
    page = draft.page
    shown = None
    if request.method == "POST":
        page = min(max(request.form.get("page", type=int) or 0, 0), len(sections) - 1)
        action = request.form.get("action", "next")
        for q in sections[page].questions:
            raw = request.form.getlist(q.id) if q.kind.value == "multi" else request.form.get(q.id)
            try:
                value = clean_answer(q, raw)
            except ValueError as exc:
                errors[q.id] = str(exc)
                continue
            if value is None:
                answers.pop(q.id, None)
            else:
                answers[q.id] = value
        shown = shown_answers(questionnaire, answers)
        if action in ("next", "submit") and not errors:
            for qid in missing_required(questionnaire, answers, list(sections[page].questions),
                                        shown):
                errors[qid] = "Câu này bắt buộc trả lời."
        if not errors:
            if action == "back":
                page = max(page - 1, 0)
            elif action == "next":
                page = min(page + 1, len(sections) - 1)
            elif action == "submit":
                missing = missing_required(questionnaire, answers, shown=shown)
                if missing:
                    first = next(i for i, s in enumerate(sections)
                                 if any(q.id in missing for q in s.questions))
                    page = first
                    errors = {qid: "Câu này bắt buộc trả lời." for qid in missing}
                else:
                    return _submit(state, draft, campaign, questionnaire, answers, shown,
                                   forget_code=link_digest is None)
        # Saved only now: a submission must not touch a draft another request may delete.
        saved = _db().execute(_SAVE_DRAFT, {"b_token_id": state.id, "b_answers": answers,
                                            "b_page": page, "b_now": utcnow()})
        if saved.rowcount == 0:
            # A concurrent submission deleted the draft (it waited for that commit).
            _db().rollback()
            used_at, used_sid = token_use(state.id, _db())
            if used_at is not None:
                return _already_used(used_sid, campaign)
        if not errors and action != "save":
            _db().commit()
            return redirect(action_url)  # post/redirect/get keeps the back button sane
    status = 422 if errors else 200
    section = sections[page]
    if shown is None:
        shown = shown_answers(questionnaire, answers)
    html = _render(
        "respondent/form.html", campaign=campaign, questionnaire=questionnaire,
        section=section, questions=_page_questions(section, shown), page=page,
        pages=len(sections), answers=answers, shown=shown, errors=errors,
        action_url=action_url, submission_id=draft.submission_id,
        form_csrf=generate_csrf() if link_digest is None else form_csrf_token(link_digest),
        saved=request.method == "POST" and not errors,
    )
    _db().commit()
    return html, status


def _page_questions(section, shown: dict) -> list:
    """The questions a page shows: all but those that depend on an earlier page's answer
    that rules them out (a condition on this page's own answers is left to the respondent,
    or to the script, which hides them as they answer)."""
    on_page = {q.id for q in section.questions}
    return [q for q in section.questions
            if not (q.show_if and q.show_if.question not in on_page and not q.is_shown(shown))]


def _render(name: str, **context) -> str:
    """A respondent page (form, done, used), rendered by its Jinja template directly: what
    Flask's render_template adds (about a third of the form's rendering time) these pages
    do not use: the context processors' current_user, csrf_token and roles helpers, the
    render signals. request, session, g, url_for and static_url stay Jinja globals."""
    return current_app.jinja_env.get_template(name).render(context)


@cache
def _static_path(script_root: str, static_url_path: str | None, filename: str) -> str:
    return url_for("static", filename=filename)


@bp.app_template_global()
def static_url(filename: str) -> str:
    """url_for("static", filename=…), computed once per deployment prefix and file: the
    respondent's pages ask for their two static files on every render."""
    return _static_path(request.script_root, current_app.static_url_path, filename)


def _already_used(used_sid: str | None, campaign: _Campaign):
    """A retried POST of the same submission gets the same confirmation; anything else the
    "already sent" page (409 for a POST)."""
    sid = request.form.get("submission_id") if request.method == "POST" else None
    if sid and sid == used_sid:
        return _render("respondent/done.html", campaign=campaign, receipt=sid[:8].upper())
    return _render("respondent/used.html", campaign=campaign), (
        409 if request.method == "POST" else 200)


def _submit(state: FormState, draft: _Draft, campaign: _Campaign, questionnaire, answers: dict,
            shown: dict, forget_code: bool):
    sid = request.form.get("submission_id") or draft.submission_id
    has_assignment = state.assignment_mode is not None
    stored = store_web_submission(
        conn=_db(), token_id=state.id, submission_id=sid, campaign_id=state.campaign_id,
        unit_id=state.unit_id, group=state.group, questionnaire=questionnaire,
        answers=answers, mode=state.assignment_mode if has_assignment else state.group_mode,
        weight=state.assignment_weight if has_assignment else 1.0,
        assignment_id=state.assignment_id if has_assignment else None,
        started_at=draft.started_at, shown=shown,
        net=network_hash(request.remote_addr, current_app.config["SECRET_KEY"]),
    )
    if stored is None:  # the token was used meanwhile (or by a retry of this submission)
        _db().rollback()
        _, used_sid = token_use(state.id, _db())
        if used_sid == sid:
            return _render("respondent/done.html", campaign=campaign, receipt=sid[:8].upper())
        return _render("respondent/used.html", campaign=campaign), 409
    done = _render("respondent/done.html", campaign=campaign, receipt=sid[:8].upper())
    _db().commit()
    if forget_code:
        session.pop(SESSION_KEY, None)
    return done
