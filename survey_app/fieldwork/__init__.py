"""Fieldwork: dashboard with response rates, assignment outcomes, paper entry."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from printing.layout import keying_codes
from questionnaires.model import RespondentGroup

from ..admin import visible_campaign
from ..auth.access import check_unit, local_target, roles_required, unit_scope
from ..errors import Forbidden, NotFound, SurveyError
from ..extensions import db
from ..models import (
    Assignment,
    Campaign,
    FrameEntry,
    Outcome,
    PaperEntry,
    Role,
    Unit,
    User,
)
from ..printouts.services import rated_unit
from ..services.responses import questionnaire_for
from .services import (
    dashboard,
    enter_paper,
    entry_differences,
    find_for_entry,
    hand_out,
    printed_codes,
    read_keyed,
    resolve_double_entry,
)

bp = Blueprint("fieldwork", __name__, url_prefix="/fieldwork")
SETTABLE = [o for o in Outcome if o not in (Outcome.RESERVE, Outcome.COMPLETED)]
PAGE_SIZE = 100


def _assignment(assignment_id: int) -> Assignment:
    """An assignment the current user may work on (404 outside scope)."""
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound("Không tìm thấy phiếu.")
    check_unit(current_user, assignment.unit_id)
    if (current_user.role is Role.ENUMERATOR and assignment.enumerator_id
            and assignment.enumerator_id != current_user.id):
        raise NotFound("Phiếu này được giao cho người khác.")
    return assignment


@bp.route("/<key>")
@roles_required(Role.ADMIN, Role.ENUMERATOR, Role.ANALYST)
def overview(key: str):
    """Issued, completed, refused… and AAPOR RR1/RR2 per unit × group and per mode."""
    campaign = visible_campaign(key)
    data = dashboard(campaign, unit_scope(current_user))
    return render_template("fieldwork/dashboard.html", campaign=campaign, data=data,
                           outcomes=list(Outcome))


@bp.route("/<key>/assignments")
@roles_required(Role.ADMIN, Role.ENUMERATOR)
def assignments(key: str):
    """Active assignments to deliver and track, with their outcome controls."""
    campaign = visible_campaign(key)
    scope = unit_scope(current_user)
    page = max(request.args.get("page", 1, type=int), 1)
    stmt = (select(Assignment, FrameEntry, Unit, User.username)
            .outerjoin(FrameEntry, FrameEntry.id == Assignment.frame_entry_id)
            .join(Unit, Unit.id == Assignment.unit_id)
            .outerjoin(User, User.id == Assignment.enumerator_id)
            .where(Assignment.campaign_id == campaign.id, Assignment.active)
            .order_by(Unit.code, Assignment.group, Assignment.draw_order))
    if scope is not None:
        stmt = stmt.where(Assignment.unit_id.in_(scope))
    if current_user.role is Role.ENUMERATOR:
        stmt = stmt.where((Assignment.enumerator_id.is_(None))
                          | (Assignment.enumerator_id == current_user.id))
    unit_id = request.args.get("unit", type=int)
    if unit_id:
        stmt = stmt.where(Assignment.unit_id == unit_id)
    rows = db.session.execute(stmt.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)).all()
    handout = None
    if current_user.role is Role.ADMIN:  # who may receive forms, for the hand-out form
        handout = {
            "unit_code": getattr(db.session.get(Unit, unit_id) if unit_id else None, "code", ""),
            "groups": [g.group for g in campaign.groups],
            "enumerators": db.session.scalars(
                select(User).where(User.role == Role.ENUMERATOR, User.active)
                .order_by(User.username)).all(),
        }
    return render_template("fieldwork/assignments.html", campaign=campaign,
                           rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE, page=page,
                           settable=SETTABLE, unit_id=unit_id, handout=handout)


def _form_int(name: str, label: str) -> int | None:
    """An optional whole number from the posted form (400 with a message otherwise)."""
    value = request.form.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise SurveyError(f"{label} phải là số nguyên dương.")
    return int(value)


@bp.route("/<key>/handout", methods=["POST"])
@roles_required(Role.ADMIN)
def handout(key: str):
    """Hand a unit's forms still to be worked on to an enumerator (or move them)."""
    campaign = visible_campaign(key)
    try:
        unit = rated_unit(campaign, unit_code=request.form.get("unit", "").strip())
    except NotFound as exc:  # a form field typed wrong: 400, as for the other fields
        raise SurveyError("Nhập mã một đơn vị được đánh giá của chiến dịch.") from exc
    enumerator = db.session.get(User, _form_int("enumerator", "Điều tra viên") or 0)
    if enumerator is None:
        raise SurveyError("Chọn điều tra viên nhận phiếu.")
    source_id = _form_int("from", "Người đang giữ phiếu")
    source = db.session.get(User, source_id) if source_id else None
    if source_id and source is None:
        raise SurveyError("Không tìm thấy người đang giữ phiếu.")
    try:
        group = RespondentGroup(request.form["group"]) if request.form.get("group") else None
    except ValueError as exc:
        raise SurveyError("Nhóm người trả lời không hợp lệ.") from exc
    handed = hand_out(campaign, unit, enumerator, group=group,
                      count=_form_int("count", "Số phiếu"), from_enumerator=source,
                      user=current_user)
    db.session.commit()
    flash(f"Đã giao {handed} phiếu của {unit.name} cho {enumerator.username}.", "success")
    return redirect(url_for("fieldwork.assignments", key=campaign.key, unit=unit.id))


@bp.route("/assignments/<int:assignment_id>/outcome", methods=["POST"])
@roles_required(Role.ADMIN, Role.ENUMERATOR)
def set_outcome_view(assignment_id: int):
    """Record an outcome; refusals and the like call in the next reserve."""
    from ..draws.services import set_outcome

    assignment = _assignment(assignment_id)
    try:
        outcome = Outcome(request.form.get("outcome", ""))
    except ValueError as exc:
        raise SurveyError("Kết quả không hợp lệ.") from exc
    if outcome not in SETTABLE:
        raise SurveyError("Kết quả này không đặt bằng tay được.")
    activated = set_outcome(assignment, outcome, current_user)
    db.session.commit()
    message = f"Phiếu {assignment.serial}: {outcome.label}."
    if activated is not None:
        message += f" Đã kích hoạt phiếu dự phòng {activated.serial}."
    flash(message, "success")
    campaign = db.session.get(Campaign, assignment.campaign_id)
    return redirect(local_target(request.form.get("next"))
                    or url_for("fieldwork.assignments", key=campaign.key))


@bp.route("/<key>/entry", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.ENUMERATOR)
def entry_lookup(key: str):
    """Type the serial or the code of a paper form to key it in."""
    campaign = visible_campaign(key)
    if request.method == "POST":
        assignment = find_for_entry(campaign, request.form.get("code", ""))
        _assignment(assignment.id)
        return redirect(url_for("fieldwork.entry", assignment_id=assignment.id))
    return render_template("fieldwork/lookup.html", campaign=campaign)


@bp.route("/entry/<int:assignment_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.ENUMERATOR)
def entry(assignment_id: int):
    """Keyboard-friendly keying of one paper form (blind: never shows another keying)."""
    assignment = _assignment(assignment_id)
    campaign = db.session.get(Campaign, assignment.campaign_id)
    questionnaire, _ = questionnaire_for(campaign.id, assignment.group)
    typed = {q.id: request.form.get(q.id, "") for q in questionnaire.questions()}
    errors: list[str] = []
    if request.method == "POST":
        try:
            answers = read_keyed(questionnaire, typed)
            result = enter_paper(assignment, answers, current_user)
        except SurveyError as exc:
            db.session.rollback()
            if exc.status != 422:
                raise
            errors = exc.details
        else:
            db.session.commit()
            if result.recorded:
                flash(f"Đã ghi nhận phiếu {assignment.serial}.", "success")
            elif result.waiting_second_pass:
                flash(f"Đã lưu lần nhập 1 của phiếu {assignment.serial}; chờ người thứ hai "
                      "nhập lại để đối chiếu.", "success")
            else:
                flash(f"Hai lần nhập phiếu {assignment.serial} khác nhau ở "
                      f"{len(result.differences)} câu; quản trị viên cần đối chiếu.", "error")
            return redirect(url_for("fieldwork.entry_lookup", key=campaign.key))
    return render_template("fieldwork/entry.html", campaign=campaign, assignment=assignment,
                           questionnaire=questionnaire, typed=typed, errors=errors,
                           keying_codes=keying_codes), (422 if errors else 200)


@bp.route("/entry/<int:assignment_id>/resolve", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def resolve(assignment_id: int):
    """Settle two differing keyings against the paper (audited)."""
    assignment = _assignment(assignment_id)
    campaign = db.session.get(Campaign, assignment.campaign_id)
    questionnaire, _ = questionnaire_for(campaign.id, assignment.group)
    passes = list(db.session.scalars(select(PaperEntry).where(
        PaperEntry.assignment_id == assignment.id).order_by(PaperEntry.pass_no)))
    if len(passes) != 2:
        abort(404)
    diffs = set(entry_differences(questionnaire, passes[0].answers, passes[1].answers))
    errors: list[str] = []
    if request.method == "POST":
        typed = {q.id: request.form.get(q.id, "") for q in questionnaire.questions()}
        try:
            answers = read_keyed(questionnaire, typed)
            resolve_double_entry(assignment, answers, current_user)
        except SurveyError as exc:
            db.session.rollback()
            if exc.status != 422:
                raise
            errors = exc.details
        else:
            db.session.commit()
            flash(f"Đã đối chiếu và ghi nhận phiếu {assignment.serial}.", "success")
            return redirect(url_for("fieldwork.entry_lookup", key=campaign.key))
    if current_user.role is not Role.ADMIN:
        raise Forbidden("Chỉ quản trị viên được đối chiếu.")
    return render_template("fieldwork/resolve.html", campaign=campaign, assignment=assignment,
                           questionnaire=questionnaire, passes=passes, diffs=diffs,
                           errors=errors, printed_codes=printed_codes)
