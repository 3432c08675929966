"""Operational records: background jobs, audit log, rate-limit counters."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._types import JSONType, UTCDateTime, enum_column, utcnow


class JobStatus(StrEnum):
    """State of a background job."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def label(self) -> str:
        """Vietnamese name of the status."""
        return {"queued": "Đang chờ", "running": "Đang chạy", "done": "Xong",
                "failed": "Lỗi"}[self.value]


class JobKind(StrEnum):
    """What a background job does."""

    FRAME_PREVIEW = "frame_preview"
    FRAME_IMPORT = "frame_import"
    DRAW = "draw"
    PRINT_BATCH = "print_batch"
    EXPORT = "export"


class BackgroundJob(db.Model):
    """A queued task; progress lives here so any web worker can show it."""

    __tablename__ = "background_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[JobKind] = mapped_column(enum_column(JobKind))
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus), default=JobStatus.QUEUED)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def percent(self) -> int:
        """Progress in percent (0 when the total is unknown)."""
        return int(100 * self.done / self.total) if self.total else 0


class AuditAction(StrEnum):
    """Audited actions."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    USER_CREATED = "user_created"
    CAMPAIGN_CREATED = "campaign_created"
    CAMPAIGN_STATUS = "campaign_status"
    BATCH_CONFIRMED = "batch_confirmed"
    BATCH_WITHDRAWN = "batch_withdrawn"
    BATCH_REPLACED = "batch_replaced"
    DRAW = "draw"
    DRAW_FORCED = "draw_forced"
    SAMPLE_EXPORTED = "sample_exported"
    FORMS_PRINTED = "forms_printed"
    OUTCOME_SET = "outcome_set"
    FORMS_HANDED_OUT = "forms_handed_out"
    RESERVE_ACTIVATED = "reserve_activated"
    PAPER_RESOLVED = "paper_resolved"
    RESPONSE_EXCLUDED = "response_excluded"
    PURGE = "purge"


class AuditEntry(db.Model):
    """Who did what, when (details never hold names, phones or tokens)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[AuditAction] = mapped_column(enum_column(AuditAction))
    target: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict] = mapped_column(JSONType, default=dict)


class RateLimitHit(db.Model):
    """Fixed-window counter shared by every worker (no per-process memory)."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (UniqueConstraint("key", "window"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    window: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(default=0)
