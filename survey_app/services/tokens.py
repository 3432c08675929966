"""Access tokens for the mobile form: 128-bit secrets from `secrets`, stored only hashed,
plus a short human-typable code (printed on paper) that opens the same form."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

from flask import current_app
from sqlalchemy import Connection, and_, bindparam, select, update
from sqlalchemy.orm import Session

from printing.codes import (
    MAX_VALUE,
    make_short_code,
    normalise_short_code,
    validate_short_code,
)
from questionnaires.model import Mode, RespondentGroup

from ..extensions import db
from ..models import AccessToken, Assignment, Campaign, CampaignGroup, CampaignStatus, FormDraft
from ..models._types import utcnow


def hash_secret(value: str) -> str:
    """SHA-256 of a token or normalised short code (high-entropy input: no salt needed)."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    """The clear values, returned once to be printed or sent, never stored."""

    token: str
    short_code: str
    serial: str
    url: str
    record: AccessToken


def form_url(token: str) -> str:
    """The public link of a token."""
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/f/{token}"


def _new_token_record(campaign_id: int, unit_id: int, group, serial: str,
                      assignment_id: int | None) -> tuple[AccessToken, str, str]:
    token = secrets.token_urlsafe(16)  # 128 bits
    code = make_short_code(secrets.randbelow(MAX_VALUE))
    record = AccessToken(
        assignment_id=assignment_id, campaign_id=campaign_id, unit_id=unit_id, group=group,
        token_hash=hash_secret(token), short_code_hash=hash_secret(normalise_short_code(code)),
        serial=serial,
    )
    db.session.add(record)
    return record, token, code


def issue_for_assignment(assignment: Assignment) -> IssuedToken:
    """A fresh token for an assignment; earlier unused tokens of it are revoked (a reprint
    makes older printed links invalid, never a submitted one)."""
    db.session.execute(
        update(AccessToken)
        .where(AccessToken.assignment_id == assignment.id, AccessToken.used_at.is_(None))
        .values(revoked=True)
    )
    record, token, code = _new_token_record(assignment.campaign_id, assignment.unit_id,
                                            assignment.group, assignment.serial, assignment.id)
    db.session.flush()
    return IssuedToken(token, code, assignment.serial, form_url(token), record)


def issue_anonymous(campaign_id: int, unit_id: int, group, serial: str) -> IssuedToken:
    """A token for an anonymous walk-in form (no assignment, no personal data)."""
    record, token, code = _new_token_record(campaign_id, unit_id, group, serial, None)
    db.session.flush()
    return IssuedToken(token, code, serial, form_url(token), record)


def find_by_token(token: str) -> AccessToken | None:
    """The token record for a clear token (None when unknown or revoked)."""
    if not token or len(token) > 64:
        return None
    digest = hash_secret(token)
    record = db.session.scalar(select(AccessToken).where(AccessToken.token_hash == digest))
    return record if record and not record.revoked else None


def find_by_short_code(code: str) -> AccessToken | None:
    """The token record for a typed short code (None when malformed, unknown or revoked)."""
    if not code or len(code) > 32 or not validate_short_code(code):
        return None
    digest = hash_secret(normalise_short_code(code))
    record = db.session.scalar(select(AccessToken).where(AccessToken.short_code_hash == digest))
    return record if record and not record.revoked else None


def claim(record_id: int, submission_id: str) -> bool:
    """Atomically mark a token used by this submission; False when already used.

    A conditional UPDATE: on PostgreSQL a concurrent claim waits for the first and then
    finds `used_at` set; on SQLite writers are serialised. The unique constraints on
    responses and response links are the second line of defence.
    """
    db.session.flush()  # a plain Core statement does not autoflush pending ORM changes
    result = db.session.execute(_CLAIM, {"token_id": record_id, "now": utcnow(),
                                         "sid": submission_id})
    return result.rowcount == 1


# --------------------------------------------------------------------------- mobile form
# The respondent's form reads everything it needs in one round trip of plain Core rows (no
# ORM identity map): the token, the campaign's live status and name, the questionnaire the
# campaign uses for the group, the assignment's mode and weight, and the saved draft. One
# statement also sees one snapshot, so the token and its draft are always consistent.
_TOKENS = AccessToken.__table__
_CAMPAIGNS = Campaign.__table__
_GROUPS = CampaignGroup.__table__
_ASSIGNMENTS = Assignment.__table__
_DRAFTS = FormDraft.__table__
_FORM_STATE = (
    select(
        _TOKENS.c.id, _TOKENS.c.assignment_id, _TOKENS.c.campaign_id, _TOKENS.c.unit_id,
        _TOKENS.c.group, _TOKENS.c.revoked, _TOKENS.c.used_at, _TOKENS.c.submission_id,
        _CAMPAIGNS.c.name.label("campaign_name"),
        _CAMPAIGNS.c.status.label("campaign_status"),
        _GROUPS.c.questionnaire_ref, _GROUPS.c.questionnaire_digest,
        _GROUPS.c.mode.label("group_mode"),
        _ASSIGNMENTS.c.mode.label("assignment_mode"),
        _ASSIGNMENTS.c.weight.label("assignment_weight"),
        _DRAFTS.c.answers.label("draft_answers"), _DRAFTS.c.page.label("draft_page"),
        _DRAFTS.c.submission_id.label("draft_submission_id"),
        _DRAFTS.c.started_at.label("draft_started_at"),
    )
    .select_from(_TOKENS)
    .join(_CAMPAIGNS, _CAMPAIGNS.c.id == _TOKENS.c.campaign_id)
    .outerjoin(_GROUPS, and_(_GROUPS.c.campaign_id == _TOKENS.c.campaign_id,
                             _GROUPS.c.group == _TOKENS.c.group))
    .outerjoin(_ASSIGNMENTS, _ASSIGNMENTS.c.id == _TOKENS.c.assignment_id)
    .outerjoin(_DRAFTS, _DRAFTS.c.token_id == _TOKENS.c.id)
)
_BY_HASH = _FORM_STATE.where(_TOKENS.c.token_hash == bindparam("digest"))
_BY_ID = _FORM_STATE.where(_TOKENS.c.id == bindparam("token_id"))
_CLAIM = (
    update(_TOKENS)
    .where(_TOKENS.c.id == bindparam("token_id"), _TOKENS.c.used_at.is_(None),
           _TOKENS.c.revoked.is_(False))
    .values(used_at=bindparam("now", type_=_TOKENS.c.used_at.type),
            submission_id=bindparam("sid", type_=_TOKENS.c.submission_id.type))
)
_USE = select(_TOKENS.c.used_at, _TOKENS.c.submission_id).where(
    _TOKENS.c.id == bindparam("token_id"))


class FormState(NamedTuple):
    """The row of `form_state_by_*` (the columns of `_FORM_STATE`, typed as SQLAlchemy
    types them, whether read through it or, on PostgreSQL, through the driver)."""

    id: int
    assignment_id: int | None
    campaign_id: int
    unit_id: int
    group: RespondentGroup
    revoked: bool
    used_at: dt.datetime | None
    submission_id: str | None
    campaign_name: str
    campaign_status: CampaignStatus
    questionnaire_ref: str | None
    questionnaire_digest: str | None
    group_mode: Mode | None
    assignment_mode: Mode | None
    assignment_weight: float | None
    draft_answers: dict | None
    draft_page: int | None
    draft_submission_id: str | None
    draft_started_at: dt.datetime | None


if FormState._fields != tuple(c.key for c in _FORM_STATE.selected_columns):
    raise RuntimeError("FormState must list the columns of _FORM_STATE in order")


_FORM_STATE_ENUMS = [(FormState._fields.index(name), enum_cls) for name, enum_cls in (
    ("group", RespondentGroup), ("campaign_status", CampaignStatus), ("group_mode", Mode),
    ("assignment_mode", Mode))]


@cache
def _pg_sql(statement) -> str:
    """The PostgreSQL text (psycopg `%(name)s` parameters) of a statement built once."""
    from sqlalchemy.dialects.postgresql import psycopg

    return str(statement.compile(dialect=psycopg.dialect()))


def _pg_form_state(conn: Connection, statement, params: dict) -> FormState | None:
    # The hot path of every form request: on the psycopg connection directly (a prepared
    # statement, tuples in, tuples out), without SQLAlchemy's per-execution work (result
    # metadata for 19 columns, type processors) that cost more than the query itself.
    driver = conn.connection.driver_connection
    row = driver.execute(_pg_sql(statement), params, prepare=True).fetchone()
    if row is None:
        return None
    row = list(row)
    for i, enum_cls in _FORM_STATE_ENUMS:  # stored by value (VARCHAR, see enum_column)
        if row[i] is not None:
            row[i] = enum_cls(row[i])
    return FormState._make(row)


def dialect_name(conn: Session | Connection) -> str:
    """"postgresql", "sqlite"…: the database `conn` runs on."""
    return (conn if isinstance(conn, Connection) else conn.get_bind()).dialect.name


def connection_of(conn: Session | Connection | None) -> Connection:
    """The SQLAlchemy Connection of `conn` (default: the request's session)."""
    if conn is None:
        conn = db.session
    return conn if isinstance(conn, Connection) else conn.connection()


def form_state_by_token(token: str, conn: Session | Connection | None = None,
                        ) -> FormState | None:
    """Everything the mobile form needs for a clear token, as one row (None when unknown or
    revoked). Columns: the token's (`id`, `assignment_id`, `campaign_id`, `unit_id`, `group`,
    `revoked`, `used_at`, `submission_id`), `campaign_name`, `campaign_status`,
    `questionnaire_ref`, `questionnaire_digest`, `group_mode` (None without a campaign
    group), `assignment_mode`, `assignment_weight` (None without an assignment),
    `draft_answers`, `draft_page`, `draft_submission_id`, `draft_started_at` (None without
    a draft). Runs on `conn` (a Session or Connection; default: the request's session)."""
    if not token or len(token) > 64:
        return None
    return _form_state(conn, _BY_HASH, {"digest": hash_secret(token)}, revoked=False)


def form_state_by_id(token_id: int, conn: Session | Connection | None = None,
                     ) -> FormState | None:
    """The same row as `form_state_by_token` for a token id (revoked tokens included)."""
    return _form_state(conn, _BY_ID, {"token_id": token_id}, revoked=True)


def _form_state(conn, statement, params: dict, revoked: bool) -> FormState | None:
    conn = db.session if conn is None else conn
    if dialect_name(conn) == "postgresql":
        row = _pg_form_state(connection_of(conn), statement, params)
    else:
        found = conn.execute(statement, params).first()
        row = None if found is None else FormState._make(found)
    return row if row is not None and (revoked or not row.revoked) else None


def token_use(token_id: int, conn: Session | Connection | None = None,
              ) -> tuple[object, str | None]:
    """(`used_at`, `submission_id`) of a token, read now."""
    row = (conn or db.session).execute(_USE, {"token_id": token_id}).one()
    return row.used_at, row.submission_id
