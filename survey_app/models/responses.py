"""Responses and answers. Analyst-visible tables hold no identity; the link to the
assignment lives in its own table so that it can be removed when the campaign closes."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from questionnaires.model import Mode, RespondentGroup

from ..extensions import db
from ._types import JSONType, UTCDateTime, enum_column, utcnow


class ResponseSource(StrEnum):
    """How the answers reached the system."""

    WEB = "web"  # respondent on the mobile form
    PAPER = "paper"  # keyed in from a paper form


class Response(db.Model):
    """One submitted questionnaire."""

    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)  # rated unit
    group: Mapped[RespondentGroup] = mapped_column(enum_column(RespondentGroup))
    questionnaire_ref: Mapped[str] = mapped_column(String(128))
    mode: Mapped[Mode] = mapped_column(enum_column(Mode))
    source: Mapped[ResponseSource] = mapped_column(enum_column(ResponseSource))
    submission_id: Mapped[str] = mapped_column(String(64), unique=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    complete: Mapped[bool] = mapped_column(default=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    network_hash: Mapped[str | None] = mapped_column(String(16))  # truncated salted hash
    flags: Mapped[list] = mapped_column(JSONType, default=list)
    excluded: Mapped[bool] = mapped_column(default=False)
    exclusion_reason: Mapped[str] = mapped_column(Text, default="")

    answers: Mapped[list[Answer]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class Answer(db.Model):
    """One answer: an option code, several codes joined by ',', a number or text."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("response_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"))
    question_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)


class ResponseLink(db.Model):
    """Assignment ↔ response, for fieldwork status only; removed by the purge."""

    __tablename__ = "response_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), unique=True
    )
    response_id: Mapped[int] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), unique=True
    )


class FormDraft(db.Model):
    """Answers saved so far on a mobile form, so a respondent can leave and come back."""

    __tablename__ = "form_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(
        ForeignKey("access_tokens.id", ondelete="CASCADE"), unique=True
    )
    answers: Mapped[dict] = mapped_column(JSONType, default=dict)
    page: Mapped[int] = mapped_column(default=0)
    submission_id: Mapped[str] = mapped_column(String(64))  # same id for every retry
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PaperEntry(db.Model):
    """One keying of a paper form (blind double entry keeps two, then resolves)."""

    __tablename__ = "paper_entries"
    __table_args__ = (UniqueConstraint("assignment_id", "pass_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    pass_no: Mapped[int]  # 1 or 2
    keyed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answers: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
