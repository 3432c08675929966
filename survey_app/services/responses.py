"""Recording responses (web and paper) and reading questionnaires in use."""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata

from sqlalchemy import (
    ARRAY,
    Boolean,
    Integer,
    String,
    Text,
    bindparam,
    insert,
    select,
    text,
    update,
)

from questionnaires.catalog import get_questionnaire
from questionnaires.model import Question, QuestionKind, Questionnaire, RespondentGroup

from ..errors import SurveyError
from ..extensions import db
from ..models import (
    AccessToken,
    Answer,
    Assignment,
    CampaignGroup,
    Outcome,
    Response,
    ResponseLink,
    ResponseSource,
)
from ..models._types import utcnow


def questionnaire_for(campaign_id: int, group: RespondentGroup) -> tuple[Questionnaire,
                                                                          CampaignGroup]:
    """The questionnaire version a campaign uses for a group, checked against its digest."""
    cg = db.session.scalar(select(CampaignGroup).where(CampaignGroup.campaign_id == campaign_id,
                                                       CampaignGroup.group == group))
    if cg is None:
        raise SurveyError("Nhóm đối tượng không thuộc chiến dịch này.", status=404)
    return checked_questionnaire(cg.questionnaire_ref, cg.questionnaire_digest), cg


def checked_questionnaire(ref: str | None, digest: str | None) -> Questionnaire:
    """The catalog questionnaire `ref`, checked against the digest a campaign recorded
    (`ref` None: the group is not part of the campaign, 404)."""
    if ref is None:
        raise SurveyError("Nhóm đối tượng không thuộc chiến dịch này.", status=404)
    questionnaire = get_questionnaire(ref)
    if questionnaire.digest != digest:
        # A version in use must never change under a running campaign.
        raise SurveyError("Phiên bản bảng hỏi đã bị thay đổi sau khi chiến dịch sử dụng; "
                          "liên hệ quản trị viên.", status=500, code="questionnaire_changed")
    return questionnaire


class AnswerError(SurveyError):
    """Answers that do not fit the questionnaire (listed per question)."""

    status = 422
    code = "invalid_answers"


def clean_answer(question: Question, raw: object) -> object | None:
    """Validate one raw answer (str or list) against its question; None when empty."""
    if question.kind is QuestionKind.MULTI:
        values = [raw] if isinstance(raw, str) else list(raw or [])
        values = [v for v in values if v]
        if not values:
            return None
        codes = {o.code for o in question.options}
        if any(v not in codes for v in values):
            raise ValueError("Lựa chọn không hợp lệ.")
        return sorted(set(values), key=[o.code for o in question.options].index)
    text = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
    text = unicodedata.normalize("NFC", " ".join(text.split()))
    if not text:
        return None
    if question.kind.has_options:
        if question.option(text) is None:
            raise ValueError("Lựa chọn không hợp lệ.")
        return text
    if question.kind is QuestionKind.NUMBER:
        try:
            number = float(text.replace(",", "."))
        except ValueError as exc:
            raise ValueError("Cần nhập một con số.") from exc
        if question.min_value is not None and number < question.min_value:
            raise ValueError(f"Số phải từ {question.min_value:g} trở lên.")
        if question.max_value is not None and number > question.max_value:
            raise ValueError(f"Số phải không quá {question.max_value:g}.")
        return f"{number:g}"
    if len(text) > question.max_length:
        raise ValueError(f"Tối đa {question.max_length} ký tự.")
    return text


def shown_answers(questionnaire: Questionnaire, answers: dict) -> dict:
    """Answers of the questions that skip logic shows (others are dropped), in order."""
    kept: dict = {}
    for q in questionnaire.questions():
        if q.is_shown(kept) and answers.get(q.id) not in (None, "", []):
            kept[q.id] = answers[q.id]
    return kept


def missing_required(questionnaire: Questionnaire, answers: dict,
                     questions: list[Question] | None = None) -> list[str]:
    """Ids of required, shown questions without an answer."""
    shown = shown_answers(questionnaire, answers)
    missing = []
    for q in questions or questionnaire.questions():
        if q.required and q.is_shown(shown) and q.id not in shown:
            missing.append(q.id)
    return missing


def network_hash(address: str | None, secret: str) -> str:
    """A short salted hash of the client's /24 (IPv4) or /48 (IPv6) network, for burst checks."""
    if not address:
        return ""
    if ":" in address:
        prefix = ":".join(address.split(":")[:3])
    else:
        prefix = ".".join(address.split(".")[:3])
    return hashlib.sha256(f"{secret}|{prefix}".encode()).hexdigest()[:16]


# Plain Core statements, built once: a submission is one INSERT … RETURNING, one executemany
# of the answers (pipelined by psycopg 3, the same statement every time), one link INSERT
# and one assignment UPDATE, with no ORM objects to build, flush or track.
_RESPONSES = Response.__table__
_ASSIGNMENTS = Assignment.__table__
_INSERT_RESPONSE = insert(_RESPONSES).returning(_RESPONSES.c.id)
_INSERT_ANSWERS = insert(Answer.__table__)
_INSERT_LINK = insert(ResponseLink.__table__)
_UPDATE_OUTCOME = (
    update(_ASSIGNMENTS)
    .where(_ASSIGNMENTS.c.id == bindparam("b_assignment_id"))
    .values(outcome=bindparam("b_outcome", type_=_ASSIGNMENTS.c.outcome.type),
            updated_at=bindparam("b_now", type_=_ASSIGNMENTS.c.updated_at.type))
)


def _pg_store_statement():
    """PostgreSQL: the whole response in one statement and one round trip (data-modifying
    CTEs; the answers as two arrays through unnest). Every column of `responses` but the id
    is bound (typed by its column: enums, JSON), so a new column cannot be silently missed."""
    cols = [c for c in _RESPONSES.c if c.key != "id"]
    names = ", ".join(f'"{c.name}"' for c in cols)
    values = ", ".join(f":r_{c.key}" for c in cols)
    sql = f"""
WITH new_response AS (
    INSERT INTO responses ({names}) VALUES ({values}) RETURNING id
), new_answers AS (
    INSERT INTO answers (response_id, question_id, value)
    SELECT new_response.id, a.question_id, a.value
    FROM new_response,
         unnest(CAST(:a_questions AS VARCHAR[]), CAST(:a_values AS TEXT[]))
             AS a(question_id, value)
), new_link AS (
    INSERT INTO response_links (assignment_id, response_id)
    SELECT :l_assignment_id, new_response.id FROM new_response
    WHERE CAST(:l_assignment_id AS INTEGER) IS NOT NULL
), outcome AS (
    UPDATE assignments SET outcome = :o_outcome, updated_at = :o_now
    WHERE id = :l_assignment_id AND CAST(:o_update AS BOOLEAN)
)
SELECT id FROM new_response"""
    return text(sql).bindparams(
        *(bindparam(f"r_{c.key}", type_=c.type) for c in cols),
        bindparam("a_questions", type_=ARRAY(String)), bindparam("a_values", type_=ARRAY(Text)),
        bindparam("l_assignment_id", type_=Integer()),
        bindparam("o_outcome", type_=_ASSIGNMENTS.c.outcome.type),
        bindparam("o_now", type_=_ASSIGNMENTS.c.updated_at.type),
        bindparam("o_update", type_=Boolean()),
    ).columns(id=Integer())


_PG_STORE = _pg_store_statement()
_RESPONSE_DEFAULTS = {  # scalar Python-side defaults, applied by hand for the text statement
    c.key: c.default.arg for c in _RESPONSES.c
    if c.default is not None and c.default.is_scalar
}


def insert_response(*, campaign_id: int, unit_id: int, group: RespondentGroup,
                    questionnaire: Questionnaire, answers: dict, submission_id: str,
                    source: ResponseSource, mode, weight: float = 1.0,
                    assignment_id: int | None = None, started_at: dt.datetime | None = None,
                    net: str = "", complete: bool = True,
                    update_assignment: bool = True) -> int:
    """Store a response with its shown answers (and, with an assignment, its link and
    outcome) through Core statements; returns the response id. The caller has claimed the
    token. `update_assignment=False` leaves the outcome to a caller holding the ORM row."""
    kept = shown_answers(questionnaire, answers)
    now = utcnow()
    duration = None
    if started_at is not None:
        if started_at.tzinfo is None:
            started_at = started_at.replace(tzinfo=dt.UTC)
        duration = max(0.0, (now - started_at).total_seconds())
    row = {
        "campaign_id": campaign_id, "unit_id": unit_id, "group": group,
        "questionnaire_ref": questionnaire.ref, "mode": mode, "source": source,
        "submission_id": submission_id, "weight": weight, "complete": complete,
        "started_at": started_at, "submitted_at": now, "duration_seconds": duration,
        "network_hash": net or None, "flags": [],
    }
    stored = [(qid, ",".join(value) if isinstance(value, list) else str(value))
              for qid, value in kept.items()]
    outcome = Outcome.COMPLETED if complete else Outcome.PARTIAL
    if db.session.get_bind().dialect.name == "postgresql":
        params = {f"r_{k}": v for k, v in (_RESPONSE_DEFAULTS | row).items()}
        params.update(a_questions=[q for q, _ in stored], a_values=[v for _, v in stored],
                      l_assignment_id=assignment_id, o_outcome=outcome, o_now=now,
                      o_update=assignment_id is not None and update_assignment)
        return db.session.execute(_PG_STORE, params).scalar_one()
    response_id = db.session.execute(_INSERT_RESPONSE, row).scalar_one()
    if stored:
        db.session.execute(_INSERT_ANSWERS, [
            {"response_id": response_id, "question_id": qid, "value": value}
            for qid, value in stored
        ])
    if assignment_id is not None:
        db.session.execute(_INSERT_LINK, {"assignment_id": assignment_id,
                                          "response_id": response_id})
        if update_assignment:
            db.session.execute(_UPDATE_OUTCOME, {
                "b_assignment_id": assignment_id, "b_now": now, "b_outcome": outcome})
    return response_id


def record_response(token: AccessToken | None, assignment: Assignment | None, *,
                    campaign_id: int, unit_id: int, group: RespondentGroup,
                    questionnaire: Questionnaire, answers: dict, submission_id: str,
                    source: ResponseSource, mode, started_at: dt.datetime | None = None,
                    net: str = "", complete: bool = True) -> Response:
    """Store a response with its answers and link; the caller has claimed the token.

    Returns the stored response as an ORM object (loaded after the Core inserts of
    `insert_response`); the ORM assignment's outcome is set on the object itself so the
    caller's session never holds a stale copy."""
    db.session.flush()  # Core statements do not autoflush: pending rows they refer to first
    response_id = insert_response(
        campaign_id=campaign_id, unit_id=unit_id, group=group, questionnaire=questionnaire,
        answers=answers, submission_id=submission_id, source=source, mode=mode,
        weight=assignment.weight if assignment else 1.0,
        assignment_id=assignment.id if assignment is not None else None,
        started_at=started_at, net=net, complete=complete, update_assignment=False,
    )
    if assignment is not None:
        assignment.outcome = Outcome.COMPLETED if complete else Outcome.PARTIAL
        assignment.updated_at = utcnow()
    db.session.flush()
    return db.session.get(Response, response_id)
