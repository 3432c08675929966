"""Paper entry (with optional blind double entry), outcomes and response rates."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select, update

from printing.layout import keying_codes
from questionnaires.model import Question, QuestionKind, Questionnaire, RespondentGroup

from ..auth.access import unit_scope
from ..errors import Conflict, Forbidden, NotFound, SurveyError
from ..extensions import db
from ..models import (
    AccessToken,
    Assignment,
    AuditAction,
    Campaign,
    Outcome,
    PaperEntry,
    ResponseLink,
    ResponseSource,
    Role,
    Unit,
    User,
)
from ..models._types import utcnow
from ..services.audit import audit
from ..services.responses import AnswerError, clean_answer, questionnaire_for, record_response
from ..services.tokens import claim, find_by_short_code

PAPER_PREFIX = "paper-"
# An assignment's serial, `<campaign>-<stratum>-<draw order>` (draws.services._serials).
_SERIAL = re.compile(r"\d{1,10}-(?P<stratum>\d{1,10})-(?P<order>\d{3,10})")


def find_for_entry(campaign: Campaign, text: str) -> Assignment:
    """An assignment of the campaign by its printed serial or short code."""
    text = (text or "").strip()
    assignment = None
    position = _SERIAL.fullmatch(text)
    if position:  # through the (stratum, draw order) index: the serial has none of its own
        assignment = db.session.scalar(select(Assignment).where(
            Assignment.campaign_id == campaign.id,
            Assignment.stratum_id == int(position["stratum"]),
            Assignment.draw_order == int(position["order"]), Assignment.serial == text))
    if assignment is None:
        record = find_by_short_code(text)
        if record is not None and record.campaign_id == campaign.id and record.assignment_id:
            assignment = db.session.get(Assignment, record.assignment_id)
    if assignment is None:
        raise NotFound("Không tìm thấy phiếu có số phiếu hoặc mã phiếu này trong chiến dịch.")
    return assignment


def keyed_value(question: Question, typed: str) -> object | None:
    """Turn what a keyer typed (the codes printed beside the boxes) into an answer."""
    typed = (typed or "").strip()
    if not typed:
        return None
    if not question.kind.has_options:
        return clean_answer(question, typed)
    printed = dict(zip(keying_codes(question), (o.code for o in question.options), strict=True))
    if question.kind is QuestionKind.MULTI:
        parts = [p for p in typed.replace(",", " ").split() if p]
        if any(p not in printed for p in parts):
            raise ValueError(f"Mã không hợp lệ; dùng: {', '.join(printed)}.")
        return clean_answer(question, [printed[p] for p in parts])
    if typed not in printed:
        raise ValueError(f"Mã không hợp lệ; dùng: {', '.join(printed)}.")
    return printed[typed]


def read_keyed(questionnaire: Questionnaire, form: dict[str, str]) -> dict:
    """All keyed answers, or AnswerError listing every bad field."""
    answers, problems = {}, []
    for q in questionnaire.questions():
        try:
            value = keyed_value(q, form.get(q.id, ""))
        except ValueError as exc:
            problems.append(f"Câu {q.id}: {exc}")
            continue
        if value is not None:
            answers[q.id] = value
    if problems:
        raise AnswerError("Có mã nhập không hợp lệ.", details=problems)
    return answers


def _finalise(assignment: Assignment, answers: dict, questionnaire: Questionnaire) -> None:
    if db.session.scalar(select(ResponseLink.id).where(
            ResponseLink.assignment_id == assignment.id)):
        raise Conflict("Phiếu này đã có câu trả lời (qua mạng hoặc đã nhập), không nhập lại.")
    sid = f"{PAPER_PREFIX}{assignment.id}"
    # The printed link must stop working once the paper answers are in.
    for token in db.session.scalars(select(AccessToken).where(
            AccessToken.assignment_id == assignment.id, AccessToken.used_at.is_(None))):
        claim(token.id, sid)
    record_response(None, assignment, campaign_id=assignment.campaign_id,
                    unit_id=assignment.unit_id, group=assignment.group,
                    questionnaire=questionnaire, answers=answers, submission_id=sid,
                    source=ResponseSource.PAPER, mode=assignment.mode)


@dataclass
class EntryResult:
    """What happened to a keyed form."""

    recorded: bool
    waiting_second_pass: bool = False
    differences: list[str] | None = None


def enter_paper(assignment: Assignment, answers: dict, user: User) -> EntryResult:
    """Record a keyed paper form; with double entry, wait for a second, blind keying by
    another person and compare."""
    campaign = db.session.get(Campaign, assignment.campaign_id)
    questionnaire, _ = questionnaire_for(campaign.id, assignment.group)
    if not campaign.double_entry:
        _finalise(assignment, answers, questionnaire)
        return EntryResult(recorded=True)
    passes = list(db.session.scalars(select(PaperEntry).where(
        PaperEntry.assignment_id == assignment.id).order_by(PaperEntry.pass_no)))
    if any(p.keyed_by_id == user.id for p in passes):
        raise Conflict("Bạn đã nhập phiếu này; lần nhập thứ hai phải do người khác thực hiện.")
    if len(passes) >= 2:
        raise Conflict("Phiếu đã được nhập hai lần; chờ đối chiếu.")
    db.session.add(PaperEntry(assignment_id=assignment.id, pass_no=len(passes) + 1,
                              keyed_by_id=user.id, answers=answers))
    db.session.flush()
    if not passes:
        return EntryResult(recorded=False, waiting_second_pass=True)
    diffs = entry_differences(questionnaire, passes[0].answers, answers)
    if diffs:
        return EntryResult(recorded=False, differences=diffs)
    _finalise(assignment, answers, questionnaire)
    return EntryResult(recorded=True)


def entry_differences(questionnaire: Questionnaire, first: dict, second: dict) -> list[str]:
    """Question ids where two keyings differ."""
    return [q.id for q in questionnaire.questions() if first.get(q.id) != second.get(q.id)]


def resolve_double_entry(assignment: Assignment, answers: dict, user: User) -> None:
    """An administrator settles differing keyings with the answers read off the paper."""
    from ..models import Role

    if user.role is not Role.ADMIN:
        raise Forbidden("Chỉ quản trị viên được đối chiếu phiếu nhập hai lần.")
    questionnaire, _ = questionnaire_for(assignment.campaign_id, assignment.group)
    passes = list(db.session.scalars(select(PaperEntry).where(
        PaperEntry.assignment_id == assignment.id)))
    diffs = entry_differences(questionnaire, passes[0].answers, passes[1].answers) \
        if len(passes) == 2 else []
    _finalise(assignment, answers, questionnaire)
    audit(AuditAction.PAPER_RESOLVED, user=user, target=f"assignment:{assignment.id}",
          questions=diffs)


# AAPOR: I complete, P partial, R refusal (incl. blank returns), NC non-contact, U unknown
# (issued / delivered / not yet issued: eligibility unknown); ineligible cases leave the base.
AAPOR = {
    Outcome.COMPLETED: "I", Outcome.PARTIAL: "P", Outcome.REFUSED: "R",
    Outcome.RETURNED_BLANK: "R", Outcome.NON_CONTACT: "NC", Outcome.ISSUED: "U",
    Outcome.DELIVERED: "U", Outcome.PENDING: "U", Outcome.INELIGIBLE: "NE",
}


def response_rates(counts: Counter) -> dict[str, float | None]:
    """AAPOR RR1 = I / (I+P+R+NC+U) and RR2 = (I+P) / (I+P+R+NC+U)."""
    by = Counter()
    for outcome, n in counts.items():
        code = AAPOR.get(outcome)
        if code:
            by[code] += n
    base = by["I"] + by["P"] + by["R"] + by["NC"] + by["U"]
    if not base:
        return {"rr1": None, "rr2": None}
    return {"rr1": by["I"] / base, "rr2": (by["I"] + by["P"]) / base}


def dashboard(campaign: Campaign, scope: set[int] | None) -> dict:
    """Counts of active assignments by unit × group × mode × outcome, with rates."""
    stmt = (select(Assignment.unit_id, Assignment.group, Assignment.mode, Assignment.outcome,
                   func.count(Assignment.id))
            .where(Assignment.campaign_id == campaign.id, Assignment.active)
            .group_by(Assignment.unit_id, Assignment.group, Assignment.mode, Assignment.outcome))
    if scope is not None:
        stmt = stmt.where(Assignment.unit_id.in_(scope))
    rows = db.session.execute(stmt).all()
    units = {u.id: u for u in db.session.scalars(select(Unit).where(
        Unit.id.in_({r[0] for r in rows})))}
    by_stratum: dict[tuple, Counter] = defaultdict(Counter)
    by_mode: dict = defaultdict(Counter)
    total: Counter = Counter()
    for unit_id, group, mode, outcome, n in rows:
        by_stratum[(unit_id, group)][outcome] += n
        by_mode[mode][outcome] += n
        total[outcome] += n
    strata = [{"unit": units[u], "group": g, "counts": c, **response_rates(c)}
              for (u, g), c in sorted(by_stratum.items(),
                                      key=lambda kv: (units[kv[0][0]].code, kv[0][1].value))]
    modes = [{"mode": m, "counts": c, **response_rates(c)} for m, c in by_mode.items()]
    return {"strata": strata, "modes": modes, "total": {"counts": total,
                                                        **response_rates(total)}}


def printed_codes(question: Question, value: object) -> str:
    """An answer shown as the codes printed on paper (the inverse of `keyed_value`)."""
    if value is None:
        return ""
    if not question.kind.has_options:
        return str(value)
    printed = dict(zip((o.code for o in question.options), keying_codes(question), strict=True))
    values = value if isinstance(value, list) else [value]
    return " ".join(printed.get(v, "?") for v in values)


# Forms still to be worked on: these can be handed to (or moved between) enumerators.
HANDABLE = (Outcome.PENDING, Outcome.ISSUED, Outcome.DELIVERED, Outcome.PARTIAL)


def hand_out(campaign: Campaign, unit: Unit, enumerator: User, *,
             group: RespondentGroup | None = None, count: int | None = None,
             from_enumerator: User | None = None, user: User | None = None) -> int:
    """Hand active forms of a unit that are still to be worked on to an enumerator.

    Takes the forms nobody has yet (or those of `from_enumerator`, to move work from one
    enumerator to another), in group and draw order, at most `count` of them. The
    enumerator must cover the unit. Once handed out, a form is hidden from the unit's other
    enumerators (lists, prints, paper entry, outcomes). Returns how many were handed out.
    """
    if enumerator.role is not Role.ENUMERATOR or not enumerator.active:
        raise SurveyError("Chỉ giao phiếu được cho tài khoản điều tra viên đang hoạt động.")
    scope = unit_scope(enumerator)
    if scope is not None and unit.id not in scope:
        raise SurveyError(f"Điều tra viên {enumerator.username} không phụ trách đơn vị "
                          f"{unit.name}.")
    if count is not None and count < 1:
        raise SurveyError("Số phiếu giao phải là số nguyên dương.")
    if from_enumerator is not None and from_enumerator.id == enumerator.id:
        raise SurveyError("Người nhận trùng với người đang giữ phiếu.")
    holder = (Assignment.enumerator_id.is_(None) if from_enumerator is None
              else Assignment.enumerator_id == from_enumerator.id)
    chosen = (select(Assignment.id)
              .where(Assignment.campaign_id == campaign.id, Assignment.unit_id == unit.id,
                     Assignment.active, Assignment.outcome.in_(HANDABLE), holder)
              .order_by(Assignment.group, Assignment.draw_order))
    if group is not None:
        chosen = chosen.where(Assignment.group == group)
    ids = db.session.scalars(chosen.limit(count) if count else chosen).all()
    if ids:
        db.session.execute(
            update(Assignment).where(Assignment.id.in_(ids))
            .values(enumerator_id=enumerator.id, updated_at=utcnow())
            .execution_options(synchronize_session="fetch"))
    audit(AuditAction.FORMS_HANDED_OUT, user=user, target=f"campaign:{campaign.id}",
          unit=unit.id, enumerator=enumerator.id,
          previous=from_enumerator.id if from_enumerator else None,
          group=group.value if group else None, forms=len(ids))
    return len(ids)
