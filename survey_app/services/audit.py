"""Audit log writes."""

from __future__ import annotations

from ..extensions import db
from ..models import AuditAction, AuditEntry, User


def audit(action: AuditAction, *, user: User | None = None, target: str = "",
          **details: object) -> AuditEntry:
    """Record an action. Callers pass ids and counts only: never names, phones or tokens."""
    if user is None:
        from flask_login import current_user

        try:
            user = current_user if current_user.is_authenticated else None
        except Exception:  # outside a request (CLI, queue)
            user = None
    entry = AuditEntry(action=action, user_id=user.id if user else None, target=target,
                       details=details)
    db.session.add(entry)
    return entry
