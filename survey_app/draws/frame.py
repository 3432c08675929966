"""Engine-independent identities of frame rows, and reading a campaign's frame as columns."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Select, String, select, type_coerce

from questionnaires.model import FrameScope, RespondentGroup
from sampling import FrameColumns, StratumSpec
from sampling.randomness import row_keys

from ..extensions import db
from ..frames.packs import NO_DATE, PACK_WIDTH
from ..models import BatchStatus, Campaign, CampaignGroup, FrameEntry, ImportBatch, Stratum, Unit

_MASK63 = (1 << 63) - 1


def stable_key(file_sha256: str, source_row: int) -> int:
    """63-bit key of a frame row: the same on every engine, platform and insertion order, and
    recomputable by an auditor from the uploaded file itself (`sampling.randomness.row_keys`,
    which the import applies to whole chunks)."""
    return int(row_keys(file_sha256, np.array([source_row]))[0])


def fingerprint(name: str, phone: str | None, address: str, procedure: str,
                transaction_date: dt.date | None, birth_year: int | None) -> int:
    """63-bit hash of the content that matters for sampling; enters the frame digest, so a
    changed row changes the digest."""
    text = "\x1f".join((name, phone or "", address, procedure,
                        transaction_date.isoformat() if transaction_date else "",
                        str(birth_year or "")))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") & _MASK63


def phone_digits(e164: str | None) -> int:
    """E.164 as an int64 (0 = no phone), the encoding the sampling core expects."""
    return int(e164[1:]) if e164 else 0


class StratumRow(NamedTuple):
    """What the draw needs of a stratum (a plain row: a national campaign has 16,605)."""

    id: int
    unit_id: int
    group: RespondentGroup
    quota: int
    reserves: int
    eligible_count: int | None  # figures of the last draw (verification)
    frame_digest: str | None


@dataclass
class CampaignFrame:
    """A campaign's frame as columns, with the strata it is drawn for (in id order)."""

    strata: list[StratumRow]
    specs: list[StratumSpec]
    frame: FrameColumns
    entry_ids: np.ndarray  # frame_entries.id aligned with frame rows
    frame_counts: np.ndarray  # rows per stratum before eligibility


def stratum_key(unit: Unit, group: RespondentGroup) -> str:
    """`scheme:code|group`: stable across engines (unlike database ids)."""
    return f"{unit.scheme}:{unit.code}|{group.value}"


def _as_text(column: Any) -> Any:
    """An enum column read as its plain stored string (SQLAlchemy's enum conversion costs
    ~5 µs per value; the callers map the 16,605 values themselves)."""
    return type_coerce(column, String).label(column.key)


@dataclass
class _Entries:
    """Active frame entries as columns, one element per entry (before strata expansion).

    The unit and group are the entry's import batch's (the entry's own columns are copies of
    them, written by the import), on every engine.
    """

    id: np.ndarray  # int64
    unit_id: np.ndarray  # int64
    group: np.ndarray  # int64 position in RespondentGroup, -1 = unknown or inactive: not drawn
    key: np.ndarray  # int64 stable_key
    phone: np.ndarray  # int64 E.164 digits, 0 = none
    date: np.ndarray  # int64 days since 1970-01-01, NaT's int64 = none
    birth_year: np.ndarray  # int32 or int64, 0 = unknown
    fingerprint: np.ndarray  # int64


_GROUPS = list(RespondentGroup)
_NAT = int(np.datetime64("NaT", "D").view(np.int64))  # int64 minimum
_EPOCH = dt.date(1970, 1, 1)


def _drawn_batches(used_by_draw_only: bool) -> list:
    """Conditions on ImportBatch of the lists a frame is made of."""
    conditions = [ImportBatch.status == BatchStatus.ACTIVE]
    if used_by_draw_only:
        conditions.append(ImportBatch.used_by_draw.is_(True))
    return conditions


def _active_entries_select(columns: list, used_by_draw_only: bool) -> Select:
    return (select(*columns)
            .join(ImportBatch, ImportBatch.id == FrameEntry.batch_id)
            .where(*_drawn_batches(used_by_draw_only)))


def _read_entries_select(campaign_id: int, recompute_fingerprints: bool,
                         used_by_draw_only: bool) -> _Entries:
    """Any engine: a select streamed in chunks, rows converted in Python (SQLite, and
    verification). Only the int64 columns are kept, so a national frame fits in a few
    hundred MB even when names and addresses are read to recompute fingerprints."""
    columns = [FrameEntry.id, ImportBatch.unit_id, _as_text(ImportBatch.group),
               FrameEntry.stable_key, FrameEntry.phone, FrameEntry.transaction_date,
               FrameEntry.birth_year, FrameEntry.fingerprint]
    if recompute_fingerprints:
        columns += [FrameEntry.name, FrameEntry.address, FrameEntry.procedure]
    stmt = (_active_entries_select(columns, used_by_draw_only)
            .where(FrameEntry.campaign_id == campaign_id)
            .execution_options(yield_per=_SELECT_CHUNK))
    group_code = {g.value: i for i, g in enumerate(_GROUPS)}
    parts: list[list[np.ndarray]] = []
    # Core execution streams (a server-side cursor on PostgreSQL); the option sits on the
    # statement so that it does not stick to the connection.
    result = db.session.connection().execute(stmt)
    try:
        for rows in result.partitions():
            if recompute_fingerprints:
                fps = [fingerprint(r.name, r.phone, r.address, r.procedure,
                                   r.transaction_date, r.birth_year) for r in rows]
            else:
                fps = [r.fingerprint for r in rows]
            parts.append([
                np.array([r.id for r in rows], dtype=np.int64),
                np.array([r.unit_id for r in rows], dtype=np.int64),
                np.array([group_code.get(r.group, -1) for r in rows], dtype=np.int64),
                np.array([r.stable_key for r in rows], dtype=np.int64),
                np.array([phone_digits(r.phone) for r in rows], dtype=np.int64),
                np.array([(r.transaction_date - _EPOCH).days if r.transaction_date else _NAT
                          for r in rows], dtype=np.int64),
                np.array([r.birth_year or 0 for r in rows], dtype=np.int32),
                np.array(fps, dtype=np.int64),
            ])
    finally:
        result.close()
    dtypes = (np.int64,) * 6 + (np.int32, np.int64)
    columns_out = [np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, t)
                   for k, t in enumerate(dtypes)]
    return _Entries(*columns_out)


# PostgreSQL path. Lists written by the import come with packed copies of the values the
# draw needs (frame_packs, see FramePack and survey_app/frames/packs.py): reading those is
# reading ~32 bytes per entry as a few large values, with no per-row work on the server
# (5 M entries: ~0.5 s instead of 2.5-4.5 s). Lists without packs are read from their rows:
#
# The server's per-row work dominates a 5 M-row read: its scan and
# expressions cost ~0.6 s, and turning each value into bytes (one send-function call and
# allocation per value) ~0.1 µs more per value, so the select is kept to five NOT NULL int8
# values with several fields packed per value by integer arithmetic:
#   id << 32 | batch_id        (both int4 ids, non-negative)
#   stable_key, fingerprint
#   phone digits               (E.164 cast directly: int8 input accepts the leading '+')
#   days << 32 | birth_year    (days since 1970 as int4, -2**31 = no date; birth int4)
# The unit and group come from the batch (one small query), and so does the active-batch
# filter, applied in NumPy: no join and no per-row CASE on the server (the group column was
# ~0.4 s of it).
#
# The rows come back as one value per part: string_agg of each row's five big-endian int8
# (40 bytes). The aggregate costs the server ~0.7 µs per row on one core; the parts (page
# ranges of the table) let PostgreSQL's Parallel Append aggregate them in its worker processes
# at once (4.4 s -> 2.5-3 s for 5 M rows on 2 cores; without free workers the leader runs the
# parts one after the other, as one query would).
#
# A binary COPY sends a message per row, which costs the client ~0.5 µs each (2.5 s of CPU
# for 5 M rows, on a machine whose two cores the server also needs) and the server ~0.1 µs
# more per row than the aggregate; an aggregate arrives in one message that NumPy reads in
# place. A value is limited to 1 GB (~26 M rows per part): a bigger part falls back to the
# COPY. Binary COPY layout: 19-byte header (signature, flags, extension length), then per row
# an int16 field count and per field an int32 length + big-endian value, then an int16 -1
# trailer.
_NO_DATE = NO_DATE  # below PostgreSQL's smallest date (4713 BC): never a real day number
_PACKED_VALUES = (
    "(id::int8 << 32) | batch_id",
    "stable_key",
    "fingerprint",
    "COALESCE(NULLIF(phone, '')::int8, 0)",
    f"(COALESCE(transaction_date - DATE '1970-01-01', {_NO_DATE})::int8 << 32) "
    "| (COALESCE(birth_year, 0)::int8 & 4294967295)",
)
_COPY_FIELDS = ("id_batch", "key", "fingerprint", "phone", "date_birth")
_COPY_ROW = np.dtype([("n", ">i2")] + [
    item for name in _COPY_FIELDS for item in ((f"{name}_len", ">i4"), (name, ">i8"))])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER_SIZE = 19
_COPY_TRAILER = b"\xff\xff"
_SELECT_CHUNK = 50_000  # rows per chunk of a streamed select
_DENSE_BATCH_IDS = 1 << 24  # batch ids below this are looked up in a table, else searched
_PARALLEL_FROM_PAGES = 4096  # 32 MB (~170,000 rows): below, worker start-up costs more


def _aggregate_entries_query(parts: int = 1, pages: int = 0, some_batches: bool = False
                             ) -> str:
    """The frame as `parts` rows (part, packed bytes): each part aggregates the campaign's rows
    of its own range of the table's pages (a TID range scan), so that PostgreSQL's Parallel
    Append runs the parts at once in its worker processes. A row added beyond `pages` in the
    meantime falls in the last part, which has no upper bound. `some_batches`: only rows of
    the batches in the `batches` parameter."""
    packed = " || ".join(f"int8send({value})" for value in _PACKED_VALUES)
    branches = []
    for k in range(parts):
        bounds = ["batch_id = ANY(%(batches)s)"] if some_batches else []
        if k:  # TIDs are inlined integers (no user data in the statement)
            bounds.append(f"ctid >= '({pages * k // parts},0)'::tid")
        if k < parts - 1:
            bounds.append(f"ctid < '({pages * (k + 1) // parts},0)'::tid")
        where = " AND ".join(["campaign_id = %(campaign)s", *bounds])
        branches.append(f"SELECT {k} AS part, string_agg({packed}, ''::bytea) "
                        f"FROM {FrameEntry.__tablename__} WHERE {where}")
    return " UNION ALL ".join(branches)


def _frame_parts() -> tuple[int, int]:
    """(parts, pages): one part per process PostgreSQL may run a query on (leader and
    parallel workers, at most 4), for a table of at least `_PARALLEL_FROM_PAGES` pages."""
    raw = db.session.connection().connection.driver_connection
    pages, workers = raw.execute(
        "SELECT pg_relation_size(%s) / current_setting('block_size')::int, "
        "current_setting('max_parallel_workers_per_gather')::int",
        (FrameEntry.__tablename__,)).fetchone()
    if pages < _PARALLEL_FROM_PAGES:
        return 1, int(pages)
    return max(1, min(int(workers) + 1, 4)), int(pages)


def _copy_entries_query(campaign_id: int, batches: list[int] | None = None) -> str:
    # Only ints are inlined (no user data in the statement).
    where = f"campaign_id = {int(campaign_id)}"
    if batches is not None:
        where += f" AND batch_id = ANY('{{{','.join(str(int(b)) for b in batches)}}}'::int[])"
    return (f"COPY (SELECT {', '.join(_PACKED_VALUES)} FROM {FrameEntry.__tablename__} "
            f"WHERE {where}) TO STDOUT (FORMAT binary)")


def _read_packed(campaign_id: int, active: list[int]) -> list[np.ndarray]:
    """The five packed int64 columns of a campaign's frame entries (any row order; the
    columns may be strided views): from the stored packs of the `active` batches that have
    them, and from the rows for the others (for every batch of the campaign, active or not,
    when it has no packs at all: the caller drops inactive batches)."""
    stored = _read_stored_packs(campaign_id, active)
    if stored is None:
        return _read_rows_packed(campaign_id, None)
    packed_batches, columns = stored
    rest = sorted(set(active) - packed_batches)
    if not rest:
        return columns
    others = _read_rows_packed(campaign_id, rest)
    return [np.concatenate([a, b]) for a, b in zip(columns, others, strict=True)]


def _read_stored_packs(campaign_id: int, active: list[int]
                       ) -> tuple[set[int], list[np.ndarray]] | None:
    """(batches read, five columns) from the `frame_packs` of the `active` batches, or None
    when none of them has packs.

    A pack holds four of the five columns; the first (`id << 32 | batch_id`) follows from the
    part's first id, its row count and its batch.
    """
    raw = db.session.connection().connection.driver_connection
    with raw.cursor(binary=True) as cursor:  # replaced lists' packs are not even sent
        parts = cursor.execute(
            "SELECT batch_id, first_id, rows, data FROM frame_packs "
            "WHERE campaign_id = %s AND batch_id = ANY(%s)",
            (int(campaign_id), [int(b) for b in active])).fetchall()
    if not parts:
        return None
    batch = np.array([p[0] for p in parts], dtype=np.int64)
    first = np.array([p[1] for p in parts], dtype=np.int64)
    rows = np.array([p[2] for p in parts], dtype=np.int64)
    if any(len(p[3]) != 8 * PACK_WIDTH * n for p, n in zip(parts, rows.tolist(), strict=True)):
        raise RuntimeError("unexpected length of a frame pack")
    total = int(rows.sum())
    packed = _int64_rows([p[3] for p in parts], PACK_WIDTH)
    start = np.cumsum(rows) - rows  # position of each part's first row
    ids = np.repeat(first - start, rows) + np.arange(total, dtype=np.int64)
    id_batch = (ids << 32) | np.repeat(batch, rows)
    return set(batch.tolist()), [id_batch, *(packed[:, k] for k in range(PACK_WIDTH))]


def _read_rows_packed(campaign_id: int, batches: list[int] | None) -> list[np.ndarray]:
    """The five packed columns built by the server from the rows of the campaign (of
    `batches` only, if given)."""
    from psycopg.errors import OutOfMemory, ProgramLimitExceeded

    params: dict[str, Any] = {"campaign": int(campaign_id)}
    if batches is not None:
        params["batches"] = [int(b) for b in batches]
    try:
        with db.session.begin_nested():  # a failed aggregate leaves the transaction usable
            # connection() opens the savepoint (the session would only do it on first use).
            raw = db.session.connection().connection.driver_connection
            parts, pages = _frame_parts()
            with raw.cursor(binary=True) as cursor:
                rows = cursor.execute(
                    _aggregate_entries_query(parts, pages, batches is not None), params
                ).fetchall()
            values = [value for _, value in sorted(rows) if value]
    except (ProgramLimitExceeded, OutOfMemory):  # more than ~26 M rows: one message per row
        raw = db.session.connection().connection.driver_connection
        copied = _parse_binary_copy(_read_copy_stream(
            raw, _copy_entries_query(campaign_id, batches)))
        return [copied[name].astype(np.int64) for name in _COPY_FIELDS]
    width = len(_PACKED_VALUES)
    if any(len(value) % (8 * width) for value in values):
        raise RuntimeError("unexpected length of the packed frame")
    packed = _int64_rows(values, width)
    return [packed[:, k] for k in range(width)]


def _int64_rows(blocks: list[bytes], width: int) -> np.ndarray:
    """(rows, width) int64 from blocks of big-endian int64 rows: one byte swap of each whole
    block straight into the result (the callers take column views: a swap per strided
    column costs twice as much)."""
    flat = np.empty(sum(len(block) for block in blocks) // 8, dtype=np.int64)
    at = 0
    for block in blocks:
        values = np.frombuffer(block, dtype=">i8")
        flat[at:at + values.size] = values
        at += values.size
    return flat.reshape(-1, width)


def _read_copy_stream(raw: Any, query: str) -> bytearray:
    """The whole COPY TO stream of `query`.

    psycopg's `Copy.read()` costs a few µs per row (one generator and wait per CopyData
    message, i.e. per row); messages libpq has already buffered are taken with the
    non-blocking `PGconn.get_copy_data(1)` instead, and `read()` is only called to wait for
    more data and, after the trailer, to let psycopg finish the COPY.
    """
    buffer = bytearray()
    get_copy_data = raw.pgconn.get_copy_data
    trailer_sizes = (len(_COPY_TRAILER), _COPY_HEADER_SIZE + len(_COPY_TRAILER))
    with raw.cursor() as cursor, cursor.copy(query) as copy:
        while True:
            n, data = get_copy_data(1)  # (size, message) or (0, _) when nothing is buffered
            if n == 0:  # wait for more the usual way
                data = copy.read()
                n = len(data)
                if not n:
                    break
            elif n < 0:  # end or error before the trailer
                raise RuntimeError("COPY ended before its trailer")
            buffer += data
            # The trailer comes in its own message (with the header when there are no rows);
            # after it, read() lets psycopg take the end of the COPY and its result.
            if n in trailer_sizes and data[-2:] == _COPY_TRAILER:
                if copy.read():
                    raise RuntimeError("data after the COPY trailer")
                break
    return buffer


def _read_entries_postgres(campaign_id: int, used_by_draw_only: bool) -> _Entries:
    """PostgreSQL: packed int8 values over the session's own connection, parsed by NumPy."""
    # Active batches first, entries second: a batch activated in between only adds entries
    # that are then skipped (as if read a moment earlier), never a list half read.
    batches = db.session.execute(
        select(ImportBatch.id, ImportBatch.unit_id, _as_text(ImportBatch.group))
        .where(ImportBatch.campaign_id == campaign_id, *_drawn_batches(used_by_draw_only))
    ).all()
    id_batch, key, fp, phone, date_birth = _read_packed(
        campaign_id, [b.id for b in batches])
    # Entries of inactive batches stay, with group -1, so that strata expansion drops them
    # (no extra gather of every column here).
    slot = _batch_slots(id_batch & 0xFFFFFFFF, np.array([b.id for b in batches], np.int64))
    group_code = {g.value: i for i, g in enumerate(_GROUPS)}
    unit = np.array([b.unit_id for b in batches] + [-1], dtype=np.int64)
    group = np.array([group_code.get(b.group, -1) for b in batches] + [-1], dtype=np.int64)
    days = date_birth >> 32
    return _Entries(
        id=id_batch >> 32, unit_id=unit[slot], group=group[slot],  # slot -1: the last, -1
        key=key, phone=phone, date=np.where(days == _NO_DATE, _NAT, days),
        birth_year=(date_birth & 0xFFFFFFFF).astype(np.uint32).view(np.int32),
        fingerprint=fp,
    )


def _batch_slots(batch: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Position of each row's batch in `active`, -1 for a batch that is not active."""
    if batch.size == 0 or active.size == 0:
        return np.full(batch.size, -1, dtype=np.int64)
    top = max(int(batch.max()), int(active.max()))
    if top < _DENSE_BATCH_IDS:
        table = np.full(top + 1, -1, dtype=np.int64)
        table[active] = np.arange(active.size)
        return table[batch]
    order = np.argsort(active)
    at = np.minimum(np.searchsorted(active[order], batch), active.size - 1)
    return np.where(active[order][at] == batch, order[at], -1)


def _parse_binary_copy(buffer: bytes | bytearray) -> np.ndarray:
    """Rows of a binary COPY stream of `_COPY_FIELDS` NOT NULL int8 columns."""
    if buffer[:len(_COPY_HEADER)] != _COPY_HEADER or buffer[-2:] != _COPY_TRAILER:
        raise RuntimeError("unexpected COPY stream")
    body = memoryview(buffer)[_COPY_HEADER_SIZE:len(buffer) - 2]
    if len(body) % _COPY_ROW.itemsize:
        raise RuntimeError("unexpected COPY stream length")
    rows = np.frombuffer(body, dtype=_COPY_ROW)
    # A NULL (length -1) or a wider value would shift every later row: the field counts of
    # all rows and the lengths in the last row catch any such shift.
    if rows.size and (np.any(rows["n"] != len(_COPY_FIELDS))
                      or any(int(rows[f"{f}_len"][-1]) != 8 for f in _COPY_FIELDS)):
        raise RuntimeError("unexpected COPY row layout")
    return rows


def _read_entries(campaign_id: int, recompute_fingerprints: bool, used_by_draw_only: bool
                  ) -> _Entries:
    if db.session.get_bind().dialect.name == "postgresql" and not recompute_fingerprints:
        return _read_entries_postgres(campaign_id, used_by_draw_only)
    return _read_entries_select(campaign_id, recompute_fingerprints, used_by_draw_only)


def _expand_to_strata(entries: _Entries, strata: list[StratumRow],
                      scope: dict[RespondentGroup, FrameScope]) -> tuple[np.ndarray, np.ndarray]:
    """(entry positions, stratum index) of every frame row.

    A PER_UNIT entry belongs to the stratum of its (unit, group), if any; an entry of a SHARED
    group belongs to every stratum of that group, in stratum order.
    """
    n_groups = len(_GROUPS)
    if not strata or entries.id.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    s_unit = np.array([s.unit_id for s in strata], dtype=np.int64)
    s_group = np.array([_GROUPS.index(s.group) for s in strata], dtype=np.int64)
    # Dense (unit + 1, group + 1) -> stratum table, bounded by the largest unit id of the
    # strata; row 0 / column 0 (unit or group -1) and the last row (a unit above) hold -1.
    width = int(s_unit.max()) + 1
    table = np.full((width + 2) * (n_groups + 1), -1, dtype=np.int64)
    table[(s_unit + 1) * (n_groups + 1) + s_group + 1] = np.arange(len(strata))
    cell = np.clip(entries.unit_id, -1, width) + 1
    cell *= n_groups + 1
    cell += entries.group
    cell += 1
    own = table[cell]
    shared = np.array([scope.get(g) is FrameScope.SHARED for g in _GROUPS], dtype=bool)
    if not shared.any():
        row = np.flatnonzero(own >= 0)
        return row, own[row].astype(np.int32)
    # Strata of each group, grouped by group in stratum order, for SHARED groups.
    by_group = np.argsort(s_group, kind="stable")
    group_start = np.searchsorted(s_group[by_group], np.arange(n_groups + 1))
    group_size = np.diff(group_start)
    g = np.where(entries.group >= 0, entries.group, 0)
    is_shared = (entries.group >= 0) & shared[g]
    targets = np.where(is_shared, group_size[g], own >= 0)
    row = np.repeat(np.arange(entries.id.size), targets)
    if not is_shared.any():
        return row, own[row].astype(np.int32)
    first = np.cumsum(targets) - targets  # position of each entry's first frame row
    rank = np.arange(row.size) - first[row]  # 0.. within an entry's copies
    stratum = np.where(is_shared[row], by_group[group_start[g[row]] + rank * is_shared[row]],
                       own[row])
    return row, stratum.astype(np.int32)


def load_campaign_frame(campaign: Campaign, *, recompute_fingerprints: bool = False,
                        used_by_draw_only: bool = False) -> CampaignFrame:
    """Read the active frame entries of every stratum (with `used_by_draw_only`, only those
    of lists marked as used by a draw: the draw marks the lists first, then reads them).

    Rows of a SHARED group's list belong to every stratum of that group, so they appear once
    per stratum. With `recompute_fingerprints` the fingerprint is computed from the stored
    content instead of read (verification: detects rows edited after the draw). PostgreSQL
    reads the entries as packed binary values (5 M rows in seconds); other engines with a
    select.
    """
    rows = db.session.execute(
        select(Stratum.id, Stratum.unit_id, _as_text(Stratum.group), Stratum.quota,
               Stratum.reserves, Stratum.eligible_count, Stratum.frame_digest, Unit.scheme,
               Unit.code)
        .join(Unit, Unit.id == Stratum.unit_id)
        .where(Stratum.campaign_id == campaign.id).order_by(Stratum.id)).all()
    by_value = {g.value: g for g in RespondentGroup}
    strata = [StratumRow(sid, unit_id, by_value[group], quota, reserves, eligible, digest)
              for sid, unit_id, group, quota, reserves, eligible, digest, scheme, code in rows]
    specs = [StratumSpec(f"{scheme}:{code}|{group}", quota, reserves)  # = stratum_key
             for _, _, group, quota, reserves, _, _, scheme, code in rows]
    scope = {g.group: g.frame_scope for g in db.session.scalars(
        select(CampaignGroup).where(CampaignGroup.campaign_id == campaign.id))}

    entries = _read_entries(campaign.id, recompute_fingerprints, used_by_draw_only)
    row, strat = _expand_to_strata(entries, strata, scope)
    date = entries.date[row].view("datetime64[D]")  # the NaT sentinel is NaT's int64
    frame = FrameColumns(
        key=entries.key[row], stratum=strat, phone=entries.phone[row], transaction_date=date,
        birth_year=entries.birth_year[row],
        fingerprint=entries.fingerprint[row],
    )
    counts = np.bincount(frame.stratum, minlength=len(strata)) if len(strata) else np.zeros(0)
    return CampaignFrame(strata, specs, frame, entries.id[row], counts)
