"""Importing lists: preview (counts, first rows, every issue), confirm (all or nothing),
cancel, replace and withdraw. Files are read by the pure `reader`/`rows` modules."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ClassVar

import numpy as np
import polars as pl
from flask import current_app
from sqlalchemy import bindparam, func, insert, select

from questionnaires.model import FrameScope, Mode, RespondentGroup
from sampling.randomness import row_keys

from ..errors import Conflict, NotFound, SurveyError
from ..extensions import autocommit_connection, db, release_autocommit
from ..models import (
    AuditAction,
    BatchStatus,
    Campaign,
    CampaignGroup,
    FrameEntry,
    ImportBatch,
    ImportIssue,
    IssueSeverity,
    PhoneKind,
    Unit,
    User,
)
from ..models._types import utcnow
from ..services.audit import audit
from .packs import PackSpool, reserve_ids
from .phones import PhoneKind as ReadPhoneKind
from .reader import FrameFileError, open_table
from .rows import (
    WARNING_MESSAGES_VI,
    FrameRecord,
    RowIssue,
    RowReason,
    RowStatus,
    records_of,
    validate_rows,
)

PREVIEW_ROWS = 20
PHONE_KINDS = {ReadPhoneKind.MOBILE: PhoneKind.MOBILE, ReadPhoneKind.LANDLINE: PhoneKind.LANDLINE}
DUPLICATE_REASONS = frozenset({RowReason.DUPLICATE_PHONE, RowReason.DUPLICATE_EXISTING})
USED_STATUSES = (BatchStatus.PREVIEW, BatchStatus.IMPORTING, BatchStatus.ACTIVE)


class FrameImportError(SurveyError):
    """A file refused as a whole (nothing is stored)."""

    status = 422
    code = "frame_file"


Issue = tuple[int, IssueSeverity, str, str]  # (source row, severity, code, message)


class IssueLog:
    """The issues of one pass in file order, kept as columns (polars frames of source row,
    severity, code, message); past `limit` rows they wait in a temporary file (Arrow IPC),
    so that a file with a million rejected rows costs no more memory than a small one, and
    storing them is one CSV block per frame, written by polars (no Python step per issue:
    that was ~0.7 s of the serial tail of a million-row import)."""

    SCHEMA: ClassVar[dict] = {"source_row": pl.Int64, "severity": pl.String,
                              "code": pl.String, "message": pl.String}

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._frames: list[pl.DataFrame] = []
        self._held = 0
        self._count = 0
        self._file: IO[bytes] | None = None
        self._spilled: list[tuple[int, int]] = []  # (offset, length) of each IPC stream

    def extend(self, items: Iterable[Issue]) -> None:
        """Add issues (in file order); the severity may be given as its value."""
        items = list(items)
        if not items:
            return
        rows, severities, codes, messages = zip(*items, strict=True)
        frame = pl.DataFrame([rows, [str(s) for s in severities], codes, messages],
                             schema=self.SCHEMA, orient="col")
        self._frames.append(frame)
        self._held += len(frame)
        self._count += len(frame)
        if self._held >= self.limit:
            if self._file is None:
                self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the log
            block = io.BytesIO()
            pl.concat(self._frames).write_ipc_stream(block)
            self._file.seek(0, io.SEEK_END)
            self._spilled.append((self._file.tell(), block.tell()))
            self._file.write(block.getvalue())
            self._frames, self._held = [], 0

    def append(self, item: Issue) -> None:
        """Add one issue."""
        self.extend((item,))

    def frames(self) -> Iterator[pl.DataFrame]:
        """The issues as frames (columns as in `SCHEMA`), in file order."""
        for offset, length in self._spilled:
            assert self._file is not None
            self._file.seek(offset)
            yield pl.read_ipc_stream(io.BytesIO(self._file.read(length)))
        yield from self._frames

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[Issue]:
        for frame in self.frames():
            for r, s, c, m in frame.iter_rows():
                yield r, IssueSeverity(s), c, m

    def __getitem__(self, index: slice) -> list[Issue]:
        return list(itertools.islice(self, index.start, index.stop, index.step))

    def __del__(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass
class ParseOutcome:
    """What one pass over a file found."""

    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    warnings: int = 0
    issues: IssueLog = field(default_factory=IssueLog)
    preview: dict = field(default_factory=dict)
    transaction_counts: dict[str, int] = field(default_factory=dict)
    transaction_rows: list[int] = field(default_factory=list)  # kept row of each, same order
    existing_hits: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """The four counts shown everywhere."""
        return {"accepted": self.accepted, "rejected": self.rejected,
                "duplicates": self.duplicates, "warnings": self.warnings}


def upload_dir() -> Path:
    """Where confirmed-later uploads wait (instance/uploads)."""
    path = Path(current_app.instance_path) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _group(campaign: Campaign, group: RespondentGroup) -> CampaignGroup:
    cg = db.session.scalar(select(CampaignGroup).where(CampaignGroup.campaign_id == campaign.id,
                                                       CampaignGroup.group == group))
    if cg is None:
        raise NotFound("Nhóm đối tượng này không thuộc chiến dịch.")
    return cg


def existing_phones(campaign: Campaign, unit: Unit, cg: CampaignGroup,
                    exclude_batch: int | None = None) -> set[str]:
    """Phones already in the campaign's active frame for this unit × group (whole group when
    the list is shared)."""
    stmt = (select(FrameEntry.phone).join(ImportBatch, ImportBatch.id == FrameEntry.batch_id)
            .where(FrameEntry.campaign_id == campaign.id, FrameEntry.group == cg.group,
                   ImportBatch.status == BatchStatus.ACTIVE, FrameEntry.phone.is_not(None)))
    if cg.frame_scope is not FrameScope.SHARED:
        stmt = stmt.where(FrameEntry.unit_id == unit.id)
    if exclude_batch:
        stmt = stmt.where(ImportBatch.id != exclude_batch)
    return set(db.session.scalars(stmt))


def _issue(result: RowIssue) -> tuple[int, IssueSeverity, str, str]:
    severity = (IssueSeverity.DUPLICATE if result.reason in DUPLICATE_REASONS
                else IssueSeverity.REJECTED)
    return (result.source_row, severity, result.reason.value, result.message_vi)


def parse_file(source: Path | bytes, filename: str, *, sheet: str | int | None,
               phone_required: bool, existing: set[str], reference_year: int,
               on_chunk: Callable[[pl.DataFrame], None] | None = None,
               progress: Callable[[int], None] | None = None) -> ParseOutcome:
    """One streaming pass: counts, issues (row, severity, code, message) and preview rows.
    `on_chunk` receives the accepted rows of each chunk (`rows.ACCEPTED_SCHEMA`): the confirm
    step writes them."""
    out = ParseOutcome()
    try:
        with open_table(source, filename, sheet=sheet) as table:
            columns = [f.value for f in table.columns]
            out.preview = {"columns": columns, "extra": list(table.extra_columns.values()),
                           "header_row": table.header_row, "rows": [],
                           "encoding": table.encoding, "sheet": table.sheet_name}
            validator = validate_rows(table, phone_required=phone_required,
                                      existing_phones=existing, reference_year=reference_year)
            preview_rows = out.preview["rows"]
            issues = out.issues
            warning_messages = WARNING_MESSAGES_VI
            WARNING, SKIPPED = IssueSeverity.WARNING, RowStatus.SKIPPED
            seen = 0
            for chunk in validator.chunks():
                items: list[tuple[int, IssueSeverity, str, str]] = []
                for row, warnings in chunk.warnings.items():
                    out.warnings += len(warnings)
                    items.extend((row, WARNING, w.code.value,
                                  warning_messages[w.code].format(row=w.related_row))
                                 for w in warnings)
                for issue in chunk.issues:
                    if issue.status is SKIPPED:
                        continue
                    if issue.reason in DUPLICATE_REASONS:
                        out.duplicates += 1
                    else:
                        out.rejected += 1
                    items.append(_issue(issue))
                items.sort(key=_row_of)  # stable: a row's warnings keep their order
                issues.extend(items)
                out.accepted += len(chunk.accepted)
                if len(preview_rows) < PREVIEW_ROWS and len(chunk.accepted):
                    head = chunk.accepted.head(PREVIEW_ROWS - len(preview_rows))
                    preview_rows.extend(_preview_row(record)
                                        for record in records_of(chunk._replace(accepted=head)))
                if on_chunk is not None and len(chunk.accepted):
                    on_chunk(chunk.accepted)
                seen += chunk.rows_read
                if progress is not None:
                    progress(seen)
            out.transaction_counts = dict(validator.transaction_counts)
            out.transaction_rows = validator.first_rows(out.transaction_counts)
            out.existing_hits = dict(validator.existing_hits)
    except FrameFileError as exc:
        raise FrameImportError(exc.message_vi, code=exc.code.value) from exc
    if out.accepted == 0 and not out.issues:
        raise FrameImportError("Tệp không có dòng dữ liệu nào dưới dòng tiêu đề.",
                               code="no_rows")
    return out


def _row_of(item: tuple) -> int:
    return item[0]


def _preview_row(r: FrameRecord) -> dict:
    return {"row": r.source_row, "name": r.name, "phone": r.phone_e164 or "",
            "procedure": r.procedure or "", "address": r.address or "",
            "position": r.position or "", "workplace": r.workplace or "",
            "date": r.transaction_date.isoformat() if r.transaction_date else "",
            "extra": r.extra}


def preview_upload(campaign: Campaign, unit: Unit, group: RespondentGroup, data: bytes,
                   filename: str, *, sheet: str | None = None, user: User | None = None,
                   replaces: ImportBatch | None = None) -> ImportBatch:
    """Parse an uploaded file and keep a PREVIEW batch with its counts and issues; the file
    waits under instance/uploads until confirmed or cancelled."""
    cg = _group(campaign, group)
    digest = hashlib.sha256(data).hexdigest()
    _refuse_twin(campaign, digest)
    if replaces is not None:
        _check_replaceable(replaces, campaign, unit, group)
    outcome = parse_file(data, filename, sheet=sheet, phone_required=cg.mode is Mode.PHONE,
                         existing=existing_phones(campaign, unit, cg,
                                                  exclude_batch=replaces.id if replaces else None),
                         reference_year=campaign.year)
    suffix = Path(filename).suffix.lower()[:8]
    stored = upload_dir() / f"{digest}{suffix}"
    stored.write_bytes(data)
    batch = ImportBatch(campaign_id=campaign.id, unit_id=unit.id, group=group,
                        status=BatchStatus.PREVIEW, filename=Path(filename).name[:255],
                        file_sha256=digest, stored_path=str(stored), sheet=sheet or "",
                        preview=outcome.preview, uploaded_by_id=user.id if user else None,
                        replaces_id=replaces.id if replaces else None, **outcome.counts())
    db.session.add(batch)
    db.session.flush()
    _store_issues(batch, outcome)
    return batch


def _store_issues(batch: ImportBatch, outcome: ParseOutcome) -> None:
    """Insert the outcome's issues: COPY on PostgreSQL (a million-row file can have 100k+),
    chunked executemany elsewhere."""
    if not outcome.issues:
        return
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(
                "COPY import_issues (batch_id, source_row, severity, code, message) "
                "FROM STDIN (FORMAT csv)") as copy:
            for frame in outcome.issues.frames():
                data = io.BytesIO()
                frame.select(pl.lit(batch.id), pl.all()).write_csv(data, include_header=False)
                copy.write(data.getvalue())
        return
    rows = [{"batch_id": batch.id, "source_row": r, "severity": s, "code": c, "message": m}
            for r, s, c, m in outcome.issues]
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(ImportIssue), rows[start:start + 5000])


def _check_replaceable(old: ImportBatch, campaign: Campaign, unit: Unit,
                       group: RespondentGroup) -> None:
    if (old.campaign_id, old.unit_id, old.group) != (campaign.id, unit.id, group):
        raise SurveyError("Chỉ thay thế được lô của cùng đơn vị và nhóm đối tượng.")
    if old.status is not BatchStatus.ACTIVE:
        raise Conflict("Chỉ thay thế được lô đang dùng.")
    if old.used_by_draw:
        raise Conflict("Lô này đã được dùng để chọn mẫu, không thay thế được.")


class _EntryWriter:
    """Writes the accepted rows of each chunk as frame entries: COPY (CSV format) on
    PostgreSQL, executemany elsewhere.

    A chunk becomes one CSV block written by polars; per row, Python only computes the
    content hash (`fingerprint` of survey_app/draws/frame.py, same bytes; stable keys are
    vectorised; the benchmark checks stored values against those functions). On PostgreSQL
    a thread of its own hashes, formats and sends each chunk while the caller validates the
    next one: polars releases the GIL, so the two overlap.
    """

    def __init__(self, batch: ImportBatch) -> None:
        self.batch = batch
        self.connection = db.session.connection()
        self.postgres = self.connection.dialect.name == "postgresql"
        if self.postgres:
            raw = self.connection.connection.driver_connection
            self._packs = PackSpool(raw, batch.id, batch.campaign_id)
            # Ids are reserved per chunk on a second pooled connection (this one is busy
            # with the COPY): no nextval per row on the server (~0.8 s a million rows).
            self._id_connection = autocommit_connection()
            self._id_conn = self._id_connection.connection.driver_connection
            self._cursor = raw.cursor()
            self._copy_cm = self._cursor.copy(
                f"COPY frame_entries (id, {', '.join(_COPY_COLUMNS)}) FROM STDIN (FORMAT csv)")
            self._copy = self._copy_cm.__enter__()
            # At most two chunks wait (~8 MB): memory stays bounded.
            self._queue: queue.Queue[pl.DataFrame | None] = queue.Queue(maxsize=2)
            self._failure: BaseException | None = None
            self._thread = threading.Thread(target=self._send_loop, name="frame-copy",
                                            daemon=True)
            self._thread.start()

    def _with_hashes(self, accepted: pl.DataFrame) -> pl.DataFrame:
        return accepted.with_columns(
            stable_key=row_keys(self.batch.file_sha256, accepted["source_row"].to_numpy()),
            fingerprint=_fingerprints(accepted),
            phone_kind=pl.col("phone_kind").replace_strict(_KIND_VALUES, default=_KIND_NONE),
            procedure=pl.col("procedure").fill_null(""),
            address=pl.col("address").fill_null(""),
            position=pl.col("position").fill_null(""),
            workplace=pl.col("workplace").fill_null(""),
        )

    def add_chunk(self, accepted: pl.DataFrame) -> None:
        """Write (COPY) or insert the accepted rows of one chunk."""
        if self.postgres:
            self._raise_failure()
            self._queue.put(accepted)
            return
        b = self.batch
        frame = self._with_hashes(accepted)
        rows = [{"batch_id": b.id, "campaign_id": b.campaign_id, "unit_id": b.unit_id,
                 "group": b.group, "source_row": r["source_row"], "stable_key": r["stable_key"],
                 "fingerprint": r["fingerprint"], "name": r["name"], "phone": r["phone"],
                 "phone_kind": PhoneKind(r["phone_kind"]), "procedure": r["procedure"],
                 "address": r["address"], "position": r["position"],
                 "workplace": r["workplace"], "transaction_date": r["transaction_date"],
                 "birth_year": r["birth_year"], "transactions": 1,
                 "extra": json.loads(r["extra"]) if r["extra"] else None}
                for r in frame.iter_rows(named=True)]
        for start in range(0, len(rows), 5000):
            self.connection.execute(insert(FrameEntry), rows[start:start + 5000])

    def _send_loop(self) -> None:
        """The COPY thread: hash, format and send the chunks in order until None."""
        b = self.batch
        try:
            while (accepted := self._queue.get()) is not None:
                if self._failure is not None:  # aborted by the caller: skip the rest
                    continue
                frame = self._with_hashes(accepted)
                first = reserve_ids(self._id_conn, len(frame))
                out = frame.select(
                    id=pl.int_range(first, first + len(frame), dtype=pl.Int64),
                    batch_id=pl.lit(b.id), campaign_id=pl.lit(b.campaign_id),
                    unit_id=pl.lit(b.unit_id), group=pl.lit(b.group.value),
                    source_row="source_row", stable_key="stable_key",
                    fingerprint="fingerprint", phone="phone", phone_kind="phone_kind",
                    transaction_date="transaction_date", birth_year="birth_year",
                    transactions=pl.lit(1), extra="extra", name="name", procedure="procedure",
                    address="address", position="position", workplace="workplace")
                # Bytes straight from polars: write_csv() without a file decodes them to
                # str, which psycopg would encode again (2/3 of the formatting time).
                data = io.BytesIO()
                out.write_csv(data, include_header=False)
                self._copy.write(data.getvalue())
                self._packs.add(frame, first)
        except BaseException as exc:  # noqa: BLE001 - handed over to the caller's thread
            self._failure = exc
            while self._queue.get() is not None:  # keep the producer unblocked, drop the rest
                pass

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def entry_ids(self, source_rows: list[int]) -> np.ndarray | None:
        """After `close`: ids of these written rows (PostgreSQL; None elsewhere)."""
        if not self.postgres:
            return None
        try:
            return self._packs.entry_ids(source_rows) if source_rows else None
        finally:
            self._packs.close()

    def close(self, ok: bool) -> None:
        """End the COPY (or abort it, so that nothing of a failed import is kept)."""
        if not self.postgres:
            return
        if not ok and self._failure is None:
            self._failure = RuntimeError("import aborted")  # the sender skips what is queued
        self._queue.put(None)
        self._thread.join()
        release_autocommit(self._id_connection)
        try:
            if self._failure is None:
                self._copy_cm.__exit__(None, None, None)
                self._packs.store()
            else:
                self._copy_cm.__exit__(RuntimeError, RuntimeError("aborted"), None)
                self._packs.close()
        finally:
            self._cursor.close()
        if ok:
            self._raise_failure()


_COPY_COLUMNS = ("batch_id", "campaign_id", "unit_id", '"group"', "source_row", "stable_key",
                 "fingerprint", "phone", "phone_kind", "transaction_date", "birth_year",
                 "transactions", "extra", "name", "procedure", "address", "position",
                 "workplace")
_KIND_VALUES = {k.value: v.value for k, v in PHONE_KINDS.items()}
_KIND_NONE = PhoneKind.NONE.value
_MASK63 = np.uint64((1 << 63) - 1)


def _fingerprints(accepted: pl.DataFrame) -> pl.Series:
    """`fingerprint` of each row: blake2b of the same \x1f-joined text."""
    texts = accepted.select(pl.concat_str(
        [pl.col("name"), pl.col("phone").fill_null(""), pl.col("address").fill_null(""),
         pl.col("procedure").fill_null(""),
         pl.col("transaction_date").dt.to_string("%Y-%m-%d").fill_null(""),
         pl.col("birth_year").cast(pl.String).fill_null("")],
        separator="\x1f")).to_series().cast(pl.Binary).to_list()  # UTF-8 bytes
    digests = []
    append = digests.append
    empty = _EMPTY_BLAKE8  # copying a fresh state skips blake2b()'s keyword parsing per row
    for text in texts:
        h = empty.copy()
        h.update(text)
        append(h.digest())
    return _int63(digests)


_EMPTY_BLAKE8 = hashlib.blake2b(digest_size=8)


def _int63(digests: list[bytes]) -> pl.Series:
    """8-byte big-endian digests → their low 63 bits as int64, vectorised."""
    values = np.frombuffer(b"".join(digests), dtype=">u8") & _MASK63
    return pl.Series(values.astype(np.int64))


def confirm_batch(batch: ImportBatch, *, user: User | None = None,
                  progress: Callable[[int], None] | None = None) -> ImportBatch:
    """Write a previewed batch's entries (re-reading its stored file) in the caller's
    transaction: all or nothing."""
    if batch.status is not BatchStatus.PREVIEW:
        raise Conflict("Lô này không ở trạng thái chờ xác nhận.")
    path = Path(batch.stored_path)
    if not path.is_file():
        raise SurveyError("Tệp tải lên không còn trên máy chủ; vui lòng tải lại.", status=410)
    return _ingest(batch, path, user=user, progress=progress)


def _ingest(batch: ImportBatch, source: Path | bytes, *, user: User | None,
            progress: Callable[[int], None] | None = None) -> ImportBatch:
    """Parse `source` writing every accepted row, store the issues and counts, count repeated
    phones as transactions of one person, retire the replaced batch, mark ACTIVE."""
    _ingest_outcome(batch, source, user=user, progress=progress)
    return batch


def _ingest_outcome(batch: ImportBatch, source: Path | bytes, *, user: User | None,
                    progress: Callable[[int], None] | None = None) -> ParseOutcome:
    """`_ingest`, returning what the pass found (issues in file order)."""
    campaign = db.session.get(Campaign, batch.campaign_id)
    unit = db.session.get(Unit, batch.unit_id)
    cg = _group(campaign, batch.group)
    replaces = db.session.get(ImportBatch, batch.replaces_id) if batch.replaces_id else None
    if replaces is not None:
        _check_replaceable(replaces, campaign, unit, batch.group)
    # Query before COPY starts: the connection can run nothing else until COPY ends.
    existing = existing_phones(campaign, unit, cg,
                               exclude_batch=replaces.id if replaces else None)
    writer = _EntryWriter(batch)
    ok = False
    try:
        outcome = parse_file(source, batch.filename, sheet=batch.sheet or None,
                             phone_required=cg.mode is Mode.PHONE, existing=existing,
                             reference_year=campaign.year, on_chunk=writer.add_chunk,
                             progress=progress)
        ok = True
    finally:
        writer.close(ok)
    db.session.execute(ImportIssue.__table__.delete().where(ImportIssue.batch_id == batch.id))
    _store_issues(batch, outcome)
    _apply_transactions(batch, outcome, writer.entry_ids(outcome.transaction_rows))
    for name, value in outcome.counts().items():
        setattr(batch, name, value)
    if replaces is not None:
        replaces.status = BatchStatus.REPLACED
        audit(AuditAction.BATCH_REPLACED, user=user, target=f"batch:{replaces.id}",
              by=batch.id)
    batch.status = BatchStatus.ACTIVE
    batch.confirmed_at = utcnow()
    db.session.flush()
    audit(AuditAction.BATCH_CONFIRMED, user=user, target=f"batch:{batch.id}",
          accepted=outcome.accepted)
    return outcome


def _apply_transactions(batch: ImportBatch, outcome: ParseOutcome,
                        kept_ids: np.ndarray | None = None) -> None:
    """Repeated phones in this file add to the kept entry; phones already in the frame add
    to the existing entry (one person, several transactions).

    PostgreSQL: by primary key when the kept entries' ids are known (`kept_ids`, aligned
    with `outcome.transaction_counts`): a few thousand index probes, where joining the
    phones read back every entry of the batch just written (~0.6 s a million rows, pages
    mostly already evicted by the COPY). Otherwise one UPDATE joined to the arrays of phones
    and counts (a single hash join). Elsewhere: one executemany.
    """
    table = FrameEntry.__table__
    connection = db.session.connection()
    postgres = connection.dialect.name == "postgresql"
    if outcome.transaction_counts:
        if postgres and kept_ids is not None:
            _pg_execute(
                "UPDATE frame_entries AS fe SET transactions = v.n "
                "FROM unnest(%s::bigint[], %s::int[]) AS v(id, n) WHERE fe.id = v.id",
                (kept_ids.tolist(), list(outcome.transaction_counts.values())))
        elif postgres:
            _no_nested_loops()  # put back below
            _pg_execute(
                "UPDATE frame_entries AS fe SET transactions = v.n "
                "FROM unnest(%s::text[], %s::int[]) AS v(phone, n) "
                "WHERE fe.campaign_id = %s AND fe.unit_id = %s AND fe.batch_id = %s "
                "AND fe.phone = v.phone",
                (list(outcome.transaction_counts), list(outcome.transaction_counts.values()),
                 batch.campaign_id, batch.unit_id, batch.id))
        else:
            connection.execute(
                table.update().where(table.c.campaign_id == batch.campaign_id,
                                     table.c.unit_id == batch.unit_id,
                                     table.c.batch_id == batch.id,
                                     table.c.phone == bindparam("p_phone"))
                .values(transactions=bindparam("p_rows")),
                [{"p_phone": phone, "p_rows": rows}
                 for phone, rows in outcome.transaction_counts.items()])
    if outcome.existing_hits:
        active = select(ImportBatch.id).where(ImportBatch.campaign_id == batch.campaign_id,
                                              ImportBatch.status == BatchStatus.ACTIVE)
        # The person already listed is the one of this unit's frame (existing_phones), not
        # the same phone in another unit's list, unless the group's list is shared.
        shared = db.session.scalar(select(CampaignGroup.frame_scope).where(
            CampaignGroup.campaign_id == batch.campaign_id,
            CampaignGroup.group == batch.group)) is FrameScope.SHARED
        if postgres:
            _no_nested_loops()  # put back below
            _pg_execute(
                "UPDATE frame_entries AS fe SET transactions = fe.transactions + v.n "
                "FROM unnest(%s::text[], %s::int[]) AS v(phone, n), import_batches AS b "
                "WHERE fe.campaign_id = %s AND fe.\"group\" = %s AND fe.phone = v.phone "
                "AND (%s OR fe.unit_id = %s) "
                "AND b.id = fe.batch_id AND b.campaign_id = %s AND b.status = %s",
                (list(outcome.existing_hits), list(outcome.existing_hits.values()),
                 batch.campaign_id, batch.group.value, shared, batch.unit_id,
                 batch.campaign_id, BatchStatus.ACTIVE.value))
        else:
            same_unit = [] if shared else [table.c.unit_id == batch.unit_id]
            connection.execute(
                table.update().where(table.c.campaign_id == batch.campaign_id,
                                     table.c.group == batch.group, *same_unit,
                                     table.c.phone == bindparam("p_phone"),
                                     table.c.batch_id.in_(active))
                .values(transactions=table.c.transactions + bindparam("p_rows")),
                [{"p_phone": phone, "p_rows": rows}
                 for phone, rows in outcome.existing_hits.items()])
    if postgres and (outcome.existing_hits or (outcome.transaction_counts
                                               and kept_ids is None)):
        _pg_execute("SET LOCAL enable_nestloop TO DEFAULT", ())


def _no_nested_loops() -> None:
    """Until put back: the rows just written are not in the statistics yet;
    estimated at one row, a nested loop would compare every entry with every phone (hours
    for a million rows; the BRIN index does not make up for it as a b-tree did)."""
    _pg_execute("SET LOCAL enable_nestloop = off", ())


def summarize_frame_index() -> None:
    """Summarise the pages of frame_entries written since the last summary (PostgreSQL's
    BRIN index; a no-op elsewhere). Until then, queries by unit or batch read those pages
    whole (correct, slower); vacuum summarises them too. Run after an import commits: inside
    its transaction the lock it takes would make concurrent imports wait for each other.
    The caller commits."""
    if db.session.connection().dialect.name == "postgresql":
        _pg_execute("SELECT brin_summarize_new_values(%s::regclass)",
                    ("ix_frame_entries_campaign_unit_batch",))


def _pg_execute(sql: str, params: tuple) -> None:
    """Run one statement on the session's own psycopg connection (arrays bind natively)."""
    raw = db.session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute(sql, params)


def cancel_batch(batch: ImportBatch, user: User | None = None) -> None:
    """Drop a batch still waiting for confirmation (and its stored file)."""
    if batch.status is not BatchStatus.PREVIEW:
        raise Conflict("Chỉ huỷ được lô đang chờ xác nhận.")
    batch.status = BatchStatus.CANCELLED
    _delete_file(batch)
    db.session.flush()


def withdraw_batch(batch: ImportBatch, user: User | None = None) -> None:
    """Take an active batch out of the frame, unless sampling has used it."""
    if batch.status is not BatchStatus.ACTIVE:
        raise Conflict("Chỉ rút được lô đang dùng.")
    if batch.used_by_draw:
        raise Conflict("Lô này đã được dùng để chọn mẫu, không rút được.")
    batch.status = BatchStatus.WITHDRAWN
    db.session.flush()
    audit(AuditAction.BATCH_WITHDRAWN, user=user, target=f"batch:{batch.id}")


def _delete_file(batch: ImportBatch) -> None:
    if batch.stored_path:
        still_used = db.session.scalar(select(func.count(ImportBatch.id)).where(
            ImportBatch.stored_path == batch.stored_path, ImportBatch.id != batch.id,
            ImportBatch.status.in_(USED_STATUSES)))
        if not still_used:
            Path(batch.stored_path).unlink(missing_ok=True)


def import_path(campaign: Campaign, unit: Unit, group: RespondentGroup, path: Path, *,
                sheet: str | None = None, dry_run: bool = False, user: User | None = None
                ) -> tuple[ImportBatch | None, ParseOutcome]:
    """The CLI's one-pass import: parse and (unless `dry_run`) write, in one transaction."""
    cg = _group(campaign, group)
    if dry_run:
        outcome = parse_file(path, path.name, sheet=sheet, phone_required=cg.mode is Mode.PHONE,
                             existing=existing_phones(campaign, unit, cg),
                             reference_year=campaign.year)
        return None, outcome
    digest = file_sha256(path)
    _refuse_twin(campaign, digest)
    batch = ImportBatch(campaign_id=campaign.id, unit_id=unit.id, group=group,
                        status=BatchStatus.PREVIEW, filename=path.name[:255],
                        file_sha256=digest, sheet=sheet or "",
                        uploaded_by_id=user.id if user else None)
    db.session.add(batch)
    db.session.flush()
    parsed = _ingest_outcome(batch, path, user=user)
    # The issues as stored, in file order, without reading them back.
    outcome = ParseOutcome(accepted=batch.accepted, rejected=batch.rejected,
                           duplicates=batch.duplicates, warnings=batch.warnings,
                           issues=parsed.issues)
    return batch, outcome


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _refuse_twin(campaign: Campaign, digest: str) -> None:
    twin = db.session.scalar(select(ImportBatch).where(
        ImportBatch.campaign_id == campaign.id, ImportBatch.file_sha256 == digest,
        ImportBatch.status.in_(USED_STATUSES)))
    if twin is not None:
        raise Conflict(f"Tệp này đã được tải lên trước đó (lô #{twin.id}, "
                       f"{twin.status.label.lower()}).", code="duplicate_file")


def issue_rows(batch: ImportBatch) -> Iterator[list[object]]:
    """Rejected, duplicate and warned rows for the downloadable report."""
    for issue in db.session.scalars(select(ImportIssue).where(ImportIssue.batch_id == batch.id)
                                    .order_by(ImportIssue.source_row, ImportIssue.id)):
        yield [issue.source_row, SEVERITY_LABELS[issue.severity], issue.code, issue.message]


SEVERITY_LABELS = {IssueSeverity.REJECTED: "Bị loại", IssueSeverity.DUPLICATE: "Trùng",
                   IssueSeverity.WARNING: "Cảnh báo"}


def resolve_unit(campaign: Campaign, code: str) -> Unit:
    """A unit by code, preferring the campaign's rated units when codes repeat across trees."""
    from ..models import RatedUnit

    units = list(db.session.scalars(select(Unit).where(Unit.code == code)))
    if len(units) > 1:
        rated = set(db.session.scalars(select(RatedUnit.unit_id).where(
            RatedUnit.campaign_id == campaign.id)))
        units = [u for u in units if u.id in rated] or units
    if len(units) != 1:
        raise NotFound(f"Không xác định được đơn vị có mã {code}.")
    return units[0]
