"""Uploaded lists: import batches, their issues, and the frame entries they produced."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from questionnaires.model import RespondentGroup

from ..extensions import db
from ._types import JSONType, UTCDateTime, enum_column, utcnow


class BatchStatus(StrEnum):
    """Life cycle of an uploaded file."""

    PREVIEW = "preview"  # parsed, counts shown, waiting for confirmation
    IMPORTING = "importing"  # confirmed, rows being written in one transaction by a job
    ACTIVE = "active"  # its entries are part of the frame
    REPLACED = "replaced"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def label(self) -> str:
        """Vietnamese name of the status."""
        return BATCH_STATUS_LABELS[self]


BATCH_STATUS_LABELS = {
    BatchStatus.PREVIEW: "Chờ xác nhận",
    BatchStatus.IMPORTING: "Đang nhập",
    BatchStatus.ACTIVE: "Đang dùng",
    BatchStatus.REPLACED: "Đã thay thế",
    BatchStatus.WITHDRAWN: "Đã rút",
    BatchStatus.CANCELLED: "Đã huỷ",
    BatchStatus.FAILED: "Lỗi",
}


class IssueSeverity(StrEnum):
    """What happened to a row that did not load cleanly."""

    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    WARNING = "warning"


class PhoneKind(StrEnum):
    """Kind of a normalised phone number."""

    MOBILE = "mobile"
    LANDLINE = "landline"
    NONE = "none"


class ImportBatch(db.Model):
    """One uploaded file for a campaign × unit × group."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    group: Mapped[RespondentGroup] = mapped_column(enum_column(RespondentGroup))
    status: Mapped[BatchStatus] = mapped_column(enum_column(BatchStatus))
    filename: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    stored_path: Mapped[str] = mapped_column(Text, default="")
    sheet: Mapped[str] = mapped_column(String(128), default="")
    accepted: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    warnings: Mapped[int] = mapped_column(default=0)
    preview: Mapped[dict] = mapped_column(JSONType, default=dict)  # columns + first rows
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    used_by_draw: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ImportIssue(db.Model):
    """A rejected, duplicate or warned row: row number in the original file and a reason."""

    __tablename__ = "import_issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key, as for frame entries: written by COPY in the batch's own transaction
    # (100k+ rows for a large list); batches are never deleted.
    batch_id: Mapped[int] = mapped_column(index=True)
    source_row: Mapped[int]
    severity: Mapped[IssueSeverity] = mapped_column(enum_column(IssueSeverity))
    code: Mapped[str] = mapped_column(String(48))
    message: Mapped[str] = mapped_column(Text)


class FrameEntry(db.Model):
    """One person of a list (the sampling frame of a campaign × unit × group)."""

    __tablename__ = "frame_entries"
    # The duplicate checks and per-batch updates of an import select by (campaign, unit) and
    # (campaign, unit, batch). On PostgreSQL a BRIN index serves them: an import writes a
    # batch's rows together, so each range of 32 pages (~1,300 rows) holds a few batches, and
    # keeping its summary costs a COPY'd row next to nothing (a b-tree entry cost ~1-1.5 µs,
    # a fifth of the server's COPY time). min/max-multi summaries keep the exact values
    # (unit ids of consecutive imports are not in order, and rows moved by an update may land
    # in another batch's range): a unit's rows of a 5 M-row campaign in 2-6 ms. Pages written
    # since the last summary are read by every query until summarised (vacuum, or
    # brin_summarize_new_values after an import). Other engines: a plain b-tree.
    __table_args__ = (
        Index("ix_frame_entries_campaign_unit_batch", "campaign_id", "unit_id", "batch_id",
              postgresql_using="brin",
              postgresql_ops={"campaign_id": "int4_minmax_multi_ops",
                              "unit_id": "int4_minmax_multi_ops",
                              "batch_id": "int4_minmax_multi_ops"},
              postgresql_with={"pages_per_range": 32}),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign keys on this table: a million-row COPY spent more than half of its server
    # time in per-row FK triggers (each locks the referenced row). Entries are only written
    # by the import, for a batch created in the same transaction, and batches are never
    # deleted (they change status), so the references hold by construction.
    batch_id: Mapped[int]
    # Copies of the batch's campaign and unit for the draw's stratum index.
    campaign_id: Mapped[int]
    unit_id: Mapped[int]
    group: Mapped[RespondentGroup] = mapped_column(enum_column(RespondentGroup))
    source_row: Mapped[int]
    # Engine-independent identity for sampling: hash of (file digest, source row), and a hash
    # of the row's content that enters the frame digest (see survey_app/draws/frame.py).
    stable_key: Mapped[int] = mapped_column(BigInteger)
    fingerprint: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    phone_kind: Mapped[PhoneKind] = mapped_column(enum_column(PhoneKind), default=PhoneKind.NONE)
    procedure: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[str] = mapped_column(String(255), default="")
    workplace: Mapped[str] = mapped_column(String(255), default="")
    transaction_date: Mapped[dt.date | None]
    birth_year: Mapped[int | None]
    transactions: Mapped[int] = mapped_column(default=1)
    extra: Mapped[dict | None] = mapped_column(JSONType)


class FramePack(db.Model):
    """What the draw reads of an imported list's entries, packed (PostgreSQL only).

    Each part holds, for `rows` consecutive entries of a batch (ids `first_id`,
    `first_id + 1`, ...), four big-endian int64 per entry: stable_key, fingerprint, the
    phone's E.164 digits (0 = none) and `days since 1970 << 32 | birth year` (days -2**31 =
    no date, birth year 0 = unknown): exactly the values of the entries' own columns. A
    national draw reads 5 M entries from these parts in a fraction of the time PostgreSQL
    needs to build the same bytes from the rows (survey_app/draws/frame.py); lists without
    parts (ids not consecutive, written before packs existed, other engines) are read from
    the rows. Written by the import in the transaction of its entries (frames.packs); entry
    columns that enter a pack never change afterwards, except in a purge, which deletes the
    campaign's packs too.
    """

    __tablename__ = "frame_packs"
    __table_args__ = (Index("ix_frame_packs_campaign", "campaign_id"),)

    batch_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    part: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    campaign_id: Mapped[int]
    first_id: Mapped[int]  # frame_entries.id of the part's first entry
    rows: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
