"""The respondent's mobile form: `/f/<token>` from the QR code or link, `/f` for a typed code.

Plain HTML forms, one section per page; JavaScript only hides skipped questions early.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ..errors import SurveyError
from ..extensions import db
from ..models import AccessToken, Assignment, Campaign, CampaignStatus, FormDraft, ResponseSource
from ..models._types import utcnow
from ..ratelimit import enforce
from ..services.responses import (
    clean_answer,
    missing_required,
    network_hash,
    questionnaire_for,
    record_response,
    shown_answers,
)
from ..services.tokens import claim, find_by_short_code, find_by_token

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


@bp.route("/ma", methods=["GET", "POST"])
def by_code():
    """The form opened through a typed code (the token id is kept in the signed session)."""
    record_id = session.get(SESSION_KEY)
    record = db.session.get(AccessToken, record_id) if record_id else None
    if record is None or record.revoked:
        return redirect(url_for("respondent.enter_code"))
    return _form(record, url_for("respondent.by_code"))


@bp.route("/<token>", methods=["GET", "POST"])
def by_token(token: str):
    """The form opened from the QR code or link."""
    record = find_by_token(token)
    if record is None:
        raise SurveyError("Đường dẫn phiếu không đúng hoặc đã hết hiệu lực.", status=404,
                          code="unknown_token")
    return _form(record, request.path)


def _draft(record: AccessToken) -> FormDraft:
    draft = db.session.scalar(select(FormDraft).where(FormDraft.token_id == record.id))
    if draft is None:
        draft = FormDraft(token_id=record.id, answers={}, page=0,
                          submission_id=uuid.uuid4().hex)
        db.session.add(draft)
        db.session.flush()
    return draft


def _form(record: AccessToken, action_url: str):
    """Show or advance the form; a race lost to a concurrent request is resolved once."""
    try:
        return _form_once(record, action_url)
    except IntegrityError:
        # Two requests created the draft (or a response) at the same moment: the database
        # kept one; start again from what it holds.
        db.session.rollback()
        db.session.refresh(record)
        return _form_once(record, action_url)


def _form_once(record: AccessToken, action_url: str):
    campaign = db.session.get(Campaign, record.campaign_id)
    if campaign.status is CampaignStatus.CLOSED:
        raise FormGone("Đợt khảo sát này đã kết thúc, phiếu không còn nhận trả lời.")
    questionnaire, cg = questionnaire_for(record.campaign_id, record.group)
    sections = questionnaire.sections
    if record.used_at is not None:
        return _already_used(record, campaign)
    draft = _draft(record)
    if request.method == "POST":
        # Read the token again after the draft: a concurrent submission that deleted the
        # draft has committed by now, and must win over this request.
        db.session.refresh(record)
        if record.used_at is not None:
            return _already_used(record, campaign)

    answers = dict(draft.answers)
    errors: dict[str, str] = {}
    page = draft.page
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
        if action in ("next", "submit") and not errors:
            for qid in missing_required(questionnaire, answers, list(sections[page].questions)):
                errors[qid] = "Câu này bắt buộc trả lời."
        if not errors:
            if action == "back":
                page = max(page - 1, 0)
            elif action == "next":
                page = min(page + 1, len(sections) - 1)
            elif action == "submit":
                missing = missing_required(questionnaire, answers)
                if missing:
                    first = next(i for i, s in enumerate(sections)
                                 if any(q.id in missing for q in s.questions))
                    page = first
                    errors = {qid: "Câu này bắt buộc trả lời." for qid in missing}
                else:
                    return _submit(record, draft, campaign, questionnaire, cg, answers)
        # Saved only now: a submission must not touch a draft another request may delete.
        draft.answers = answers
        draft.updated_at = utcnow()
        draft.page = page
        if not errors and action != "save":
            db.session.commit()
            return redirect(action_url)  # post/redirect/get keeps the back button sane
    status = 422 if errors else 200
    html = render_template(
        "respondent/form.html", campaign=campaign, questionnaire=questionnaire,
        section=sections[page], page=page, pages=len(sections), answers=answers,
        shown=shown_answers(questionnaire, answers), errors=errors, action_url=action_url,
        submission_id=draft.submission_id, saved=request.method == "POST" and not errors,
    )
    # Committed after rendering: the page reads loaded rows instead of reloading the rows a
    # commit expires (the response is still only sent once the commit succeeded).
    db.session.commit()
    return html, status


def _already_used(record: AccessToken, campaign: Campaign):
    """A retried POST of the same submission gets the same confirmation; anything else the
    "already sent" page (409 for a POST)."""
    sid = request.form.get("submission_id") if request.method == "POST" else None
    if sid and sid == record.submission_id:
        return render_template("respondent/done.html", campaign=campaign,
                               receipt=sid[:8].upper())
    return render_template("respondent/used.html", campaign=campaign), (
        409 if request.method == "POST" else 200)


def _submit(record, draft, campaign, questionnaire, cg, answers):
    sid = request.form.get("submission_id") or draft.submission_id
    if not claim(record.id, sid):
        db.session.rollback()
        db.session.refresh(record)
        if record.submission_id == sid:
            return render_template("respondent/done.html", campaign=campaign,
                                   receipt=sid[:8].upper())
        return render_template("respondent/used.html", campaign=campaign), 409
    assignment = (db.session.get(Assignment, record.assignment_id)
                  if record.assignment_id else None)
    record_response(
        record, assignment, campaign_id=record.campaign_id, unit_id=record.unit_id,
        group=record.group, questionnaire=questionnaire, answers=answers, submission_id=sid,
        source=ResponseSource.WEB, mode=assignment.mode if assignment else cg.mode,
        started_at=draft.started_at,
        net=network_hash(request.remote_addr, current_app.config["SECRET_KEY"]),
    )
    db.session.execute(delete(FormDraft).where(FormDraft.token_id == record.id))
    done = render_template("respondent/done.html", campaign=campaign, receipt=sid[:8].upper())
    db.session.commit()  # after rendering: no reload of the expired campaign row
    session.pop(SESSION_KEY, None)
    return done
