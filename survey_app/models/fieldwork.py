"""Sampled respondents (assignments), their access tokens and fieldwork outcomes."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from questionnaires.model import Mode, RespondentGroup

from ..extensions import db
from ._types import UTCDateTime, enum_column, utcnow
from .frames import FrameEntry


class Outcome(StrEnum):
    """Fieldwork state of an assignment, mapped to AAPOR final dispositions."""

    RESERVE = "reserve"  # drawn as a reserve, not (yet) activated
    PENDING = "pending"  # in the sample, not issued yet
    ISSUED = "issued"
    DELIVERED = "delivered"
    COMPLETED = "completed"  # AAPOR 1.1
    PARTIAL = "partial"  # AAPOR 1.2
    REFUSED = "refused"  # AAPOR 2.11
    NON_CONTACT = "non_contact"  # AAPOR 2.2 (unreachable)
    INELIGIBLE = "ineligible"  # AAPOR 4.x (moved / not eligible)
    RETURNED_BLANK = "returned_blank"  # AAPOR 2.11-like implicit refusal

    @property
    def label(self) -> str:
        """Vietnamese name of the outcome."""
        return OUTCOME_LABELS[self]

    @property
    def releases_reserve(self) -> bool:
        """Outcomes that end the assignment without an answer and call in the next reserve."""
        return self in RESERVE_RELEASING


OUTCOME_LABELS = {
    Outcome.RESERVE: "Dự phòng",
    Outcome.PENDING: "Chưa phát",
    Outcome.ISSUED: "Đã phát",
    Outcome.DELIVERED: "Đã đến tay",
    Outcome.COMPLETED: "Hoàn thành",
    Outcome.PARTIAL: "Trả lời một phần",
    Outcome.REFUSED: "Từ chối",
    Outcome.NON_CONTACT: "Không liên lạc được",
    Outcome.INELIGIBLE: "Chuyển đi / không đủ điều kiện",
    Outcome.RETURNED_BLANK: "Gửi lại phiếu trắng",
}
RESERVE_RELEASING = frozenset(
    {Outcome.REFUSED, Outcome.NON_CONTACT, Outcome.INELIGIBLE, Outcome.RETURNED_BLANK}
)


class Assignment(db.Model):
    """A sampled person of a stratum, in draw order; reserves have `is_reserve`."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("stratum_id", "draw_order"),
        Index("ix_assignments_campaign_outcome", "campaign_id", "outcome"),
        # Free space in every page: a redraw before fieldwork rewrites each row in place
        # without changing an indexed column, which PostgreSQL then does on the same page
        # with no index entry (HOT, 4x cheaper); fieldwork updates stay on their page too.
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign keys on campaign_id, stratum_id, unit_id, frame_entry_id. A national draw
    # writes ~270,000 rows in one COPY and PostgreSQL checks every foreign key with one query
    # and one row lock per row: ~5 µs per key and row, and the locks on scattered frame_entries
    # rows dirtied ~1 GB of their pages; together 3/4 of the draw's time. The draw
    # (survey_app/draws/services.py) is the only writer of these columns and takes them, in
    # the same transaction, from the campaign, its strata (campaign_id and unit_id are the
    # stratum's) and the frame entries it has just read. The application never deletes any
    # of those rows (lists are withdrawn or replaced by status, and a batch used by a draw can
    # be neither; a campaign purge de-identifies rows and keeps them), so the former ON DELETE
    # CASCADE / SET NULL never ran; removing a campaign by hand must delete its assignments
    # (and their tokens) first.
    campaign_id: Mapped[int]
    stratum_id: Mapped[int]
    unit_id: Mapped[int]  # rated unit
    group: Mapped[RespondentGroup] = mapped_column(enum_column(RespondentGroup))
    frame_entry_id: Mapped[int | None]
    draw_order: Mapped[int]  # 1..quota main sample, then quota+1.. reserves
    is_reserve: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=False)  # main sample or activated reserve
    mode: Mapped[Mode] = mapped_column(enum_column(Mode))
    outcome: Mapped[Outcome] = mapped_column(enum_column(Outcome))
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    # `<campaign>-<stratum>-<draw order>`: unique because (stratum_id, draw_order) is, and
    # looked up through that index (fieldwork.services.find_for_entry); an index of its own
    # cost ~1 s of a national draw's 272,000-row write.
    serial: Mapped[str] = mapped_column(String(32))
    enumerator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    issued_mode: Mapped[Mode | None] = mapped_column(enum_column(Mode))
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    entry: Mapped[FrameEntry | None] = relationship(
        primaryjoin="foreign(Assignment.frame_entry_id) == FrameEntry.id"
    )


class AccessToken(db.Model):
    """A single-use link secret; only its SHA-256 is stored."""

    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), index=True
    )
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    group: Mapped[RespondentGroup] = mapped_column(enum_column(RespondentGroup))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    short_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    serial: Mapped[str] = mapped_column(String(32), index=True)  # printed on every page
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked: Mapped[bool] = mapped_column(default=False)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    submission_id: Mapped[str | None] = mapped_column(String(64))

    assignment: Mapped[Assignment | None] = relationship()
