"""Recording responses (web and paper) and reading questionnaires in use."""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata

import psycopg
from psycopg.types.json import Json, Jsonb
from sqlalchemy import JSON, Connection, String, bindparam, delete, insert, select, update
from sqlalchemy import Enum as SAEnum
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from questionnaires.catalog import get_questionnaire
from questionnaires.model import Question, QuestionKind, Questionnaire, RespondentGroup

from ..errors import SurveyError
from ..extensions import db
from ..models import (
    AccessToken,
    Answer,
    Assignment,
    CampaignGroup,
    FormDraft,
    Outcome,
    Response,
    ResponseLink,
    ResponseSource,
)
from ..models._types import utcnow
from .tokens import claim, connection_of, dialect_name


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
                     questions: list[Question] | None = None,
                     shown: dict | None = None) -> list[str]:
    """Ids of required, shown questions without an answer (`shown`: the answers'
    `shown_answers`, when the caller has them already)."""
    if shown is None:
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
_DRAFTS = FormDraft.__table__
_DELETE_DRAFT = delete(_DRAFTS).where(_DRAFTS.c.token_id == bindparam("b_token_id"))
_UPDATE_OUTCOME = (
    update(_ASSIGNMENTS)
    .where(_ASSIGNMENTS.c.id == bindparam("b_assignment_id"))
    .values(outcome=bindparam("b_outcome", type_=_ASSIGNMENTS.c.outcome.type),
            updated_at=bindparam("b_now", type_=_ASSIGNMENTS.c.updated_at.type))
)


_RESPONSE_COLUMNS = [c for c in _RESPONSES.c if c.key != "id"]
_RESPONSE_DEFAULTS = {  # scalar Python-side defaults, applied by hand for the text statement
    c.key: c.default.arg for c in _RESPONSE_COLUMNS
    if c.default is not None and c.default.is_scalar
}


def _pg_store_sql(claim: bool) -> str:
    """PostgreSQL: the whole response in one statement and one round trip (data-modifying
    CTEs; the answers as one JSON object, question id to text, expanded in its order by
    json_each_text), run on the psycopg connection itself.
    Every column of `responses` but the id is bound and cast to its column's type, so a new
    column cannot be silently missed.

    With `claim`, the statement first claims the token (the conditional UPDATE of `claim`:
    a concurrent claim waits for this one's row lock, then finds `used_at` set) and stores
    nothing, returning no row, unless it did; it also drops the token's draft. One statement
    is atomic on its own, so no transaction needs to be opened around it."""
    pg = postgresql.psycopg.dialect()
    names = ", ".join(f'"{c.name}"' for c in _RESPONSE_COLUMNS)
    # Strings are cast without their length: a value too long must fail on the column as
    # through SQLAlchemy, not be cut by an explicit CAST to VARCHAR(n).
    values = ", ".join(
        f"CAST(%(r_{c.key})s AS "
        f"{'VARCHAR' if isinstance(c.type, String) else c.type.compile(dialect=pg)})"
        for c in _RESPONSE_COLUMNS)
    claimed = """
claimed AS (
    UPDATE access_tokens
    SET used_at = CAST(%(c_now)s AS TIMESTAMP WITH TIME ZONE),
        submission_id = CAST(%(c_sid)s AS VARCHAR)
    WHERE id = CAST(%(c_token_id)s AS INTEGER) AND used_at IS NULL AND revoked IS FALSE
    RETURNING id
),"""
    dropped = """
, dropped_draft AS (
    DELETE FROM form_drafts WHERE token_id IN (SELECT id FROM claimed)
)"""
    return f"""
WITH {claimed if claim else ""} new_response AS (
    INSERT INTO responses ({names}) SELECT {values} {"FROM claimed" if claim else ""}
    RETURNING id
), new_answers AS (
    INSERT INTO answers (response_id, question_id, value)
    SELECT new_response.id, a.key, a.value
    FROM new_response, json_each_text(CAST(%(a_answers)s AS JSON)) AS a
), new_link AS (
    INSERT INTO response_links (assignment_id, response_id)
    SELECT CAST(%(l_assignment_id)s AS INTEGER), new_response.id FROM new_response
    WHERE CAST(%(l_assignment_id)s AS INTEGER) IS NOT NULL
), outcome AS (
    UPDATE assignments
    SET outcome = CAST(%(o_outcome)s AS VARCHAR),
        updated_at = CAST(%(o_now)s AS TIMESTAMP WITH TIME ZONE)
    WHERE id = CAST(%(l_assignment_id)s AS INTEGER) AND CAST(%(o_update)s AS BOOLEAN)
      AND EXISTS (SELECT FROM new_response)
){dropped if claim else ""}
SELECT id FROM new_response"""


_PG_STORE = _pg_store_sql(claim=False)
_PG_CLAIM_AND_STORE = _pg_store_sql(claim=True)


def _pg_value(column):
    """How a value of `column` is passed to psycopg: enums by value (see enum_column), JSON
    wrapped, the rest as is."""
    if isinstance(column.type, SAEnum):
        return lambda v: None if v is None else v.value
    if isinstance(column.type, JSON):
        return Jsonb
    return None


_PG_VALUES = {c.key: _pg_value(c) for c in _RESPONSE_COLUMNS}


def _pg_store(conn: Connection, sql: str, row: dict, stored: list[tuple[str, str]],
              assignment_id: int | None, outcome: Outcome, update_assignment: bool,
              claim: dict | None = None) -> int | None:
    params = {}
    for key, value in (_RESPONSE_DEFAULTS | row).items():
        convert = _PG_VALUES[key]
        params[f"r_{key}"] = value if convert is None else convert(value)
    params.update(a_answers=Json(dict(stored)), l_assignment_id=assignment_id,
                  o_outcome=outcome.value, o_now=row["submitted_at"],
                  o_update=assignment_id is not None and update_assignment)
    if claim:
        params.update(claim)
    # On the psycopg connection itself (in the caller's transaction, or in autocommit for
    # the respondent's form): a prepared statement without SQLAlchemy's per-execution work.
    driver = conn.connection.driver_connection
    try:
        found = driver.execute(sql, params, prepare=True).fetchone()
    except psycopg.IntegrityError as exc:  # the same error as through SQLAlchemy
        raise sa_exc.IntegrityError(sql, params, exc) from exc
    return None if found is None else found[0]


def _response_row(*, campaign_id: int, unit_id: int, group: RespondentGroup,
                  questionnaire: Questionnaire, answers: dict, submission_id: str,
                  source: ResponseSource, mode, weight: float, started_at: dt.datetime | None,
                  net: str, complete: bool, shown: dict | None = None,
                  ) -> tuple[dict, list[tuple[str, str]]]:
    """The `responses` row and the (question id, stored text) answers of a submission
    (`shown`: the answers' `shown_answers`, when the caller has them already)."""
    kept = shown_answers(questionnaire, answers) if shown is None else shown
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
    return row, stored


def insert_response(*, campaign_id: int, unit_id: int, group: RespondentGroup,
                    questionnaire: Questionnaire, answers: dict, submission_id: str,
                    source: ResponseSource, mode, weight: float = 1.0,
                    assignment_id: int | None = None, started_at: dt.datetime | None = None,
                    net: str = "", complete: bool = True,
                    update_assignment: bool = True) -> int:
    """Store a response with its shown answers (and, with an assignment, its link and
    outcome) through Core statements; returns the response id. The caller has claimed the
    token. `update_assignment=False` leaves the outcome to a caller holding the ORM row."""
    row, stored = _response_row(
        campaign_id=campaign_id, unit_id=unit_id, group=group, questionnaire=questionnaire,
        answers=answers, submission_id=submission_id, source=source, mode=mode, weight=weight,
        started_at=started_at, net=net, complete=complete)
    outcome = Outcome.COMPLETED if complete else Outcome.PARTIAL
    if dialect_name(db.session) == "postgresql":
        return _pg_store(connection_of(db.session), _PG_STORE, row, stored, assignment_id,
                         outcome, update_assignment)
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
                "b_assignment_id": assignment_id, "b_now": row["submitted_at"],
                "b_outcome": outcome})
    return response_id


def store_web_submission(*, token_id: int, submission_id: str, campaign_id: int, unit_id: int,
                         group: RespondentGroup, questionnaire: Questionnaire, answers: dict,
                         mode, weight: float, assignment_id: int | None,
                         started_at: dt.datetime | None, net: str,
                         conn: Session | Connection | None = None,
                         shown: dict | None = None) -> int | None:
    """Claim a token for a complete web submission and store it: the response, its shown
    answers, the assignment's link and outcome; the token's draft is dropped. Returns the
    response id, or None when the token was already used (nothing stored: roll back and
    look at who used it). `shown`: the answers' `shown_answers`, when the caller has them.

    PostgreSQL: one statement (atomic by itself, see `_pg_store_sql`) on `conn` (default:
    the session's connection; an autocommit connection needs no transaction around it).
    Other engines: the conditional UPDATE of `claim`, then `insert_response`, in the
    session's transaction."""
    row, stored = _response_row(
        campaign_id=campaign_id, unit_id=unit_id, group=group, questionnaire=questionnaire,
        answers=answers, submission_id=submission_id, source=ResponseSource.WEB, mode=mode,
        weight=weight, started_at=started_at, net=net, complete=True, shown=shown)
    conn = db.session if conn is None else conn
    if dialect_name(conn) == "postgresql":
        return _pg_store(connection_of(conn), _PG_CLAIM_AND_STORE, row, stored,
                         assignment_id, Outcome.COMPLETED, True,
                         claim={"c_now": row["submitted_at"], "c_sid": submission_id,
                                "c_token_id": token_id})
    if not claim(token_id, submission_id):
        return None
    response_id = insert_response(
        campaign_id=campaign_id, unit_id=unit_id, group=group, questionnaire=questionnaire,
        answers=answers, submission_id=submission_id, source=ResponseSource.WEB, mode=mode,
        weight=weight, assignment_id=assignment_id, started_at=started_at, net=net)
    db.session.execute(_DELETE_DRAFT, {"b_token_id": token_id})
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
