"""Access tokens for the mobile form: 128-bit secrets from `secrets`, stored only hashed,
plus a short human-typable code (printed on paper) that opens the same form."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select, update

from printing.codes import (
    MAX_VALUE,
    make_short_code,
    normalise_short_code,
    validate_short_code,
)

from ..extensions import db
from ..models import AccessToken, Assignment
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
    result = db.session.execute(
        update(AccessToken)
        .where(AccessToken.id == record_id, AccessToken.used_at.is_(None),
               AccessToken.revoked.is_(False))
        .values(used_at=utcnow(), submission_id=submission_id)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
