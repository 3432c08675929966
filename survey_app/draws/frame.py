"""Engine-independent identities of frame rows, and reading a campaign's frame as columns."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Select, select

from questionnaires.model import FrameScope, RespondentGroup
from sampling import FrameColumns, StratumSpec

from ..extensions import db
from ..models import BatchStatus, Campaign, CampaignGroup, FrameEntry, ImportBatch, Stratum, Unit

_MASK63 = (1 << 63) - 1


def stable_key(file_sha256: str, source_row: int) -> int:
    """63-bit key of a frame row: the same on every engine, platform and insertion order, and
    recomputable by an auditor from the uploaded file itself."""
    digest = hashlib.blake2b(f"{file_sha256}:{source_row}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _MASK63


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


@dataclass
class CampaignFrame:
    """A campaign's frame as columns, with the strata it is drawn for."""

    strata: list[Stratum]
    specs: list[StratumSpec]
    frame: FrameColumns
    entry_ids: np.ndarray  # frame_entries.id aligned with frame rows
    frame_counts: np.ndarray  # rows per stratum before eligibility


def stratum_key(unit: Unit, group: RespondentGroup) -> str:
    """`scheme:code|group`: stable across engines (unlike database ids)."""
    return f"{unit.scheme}:{unit.code}|{group.value}"


@dataclass
class _Entries:
    """Active frame entries as columns, one element per entry (before strata expansion)."""

    id: np.ndarray  # int64
    unit_id: np.ndarray  # int64
    group: np.ndarray  # int64 position in RespondentGroup, -1 = unknown
    key: np.ndarray  # int64 stable_key
    phone: np.ndarray  # int64 E.164 digits, 0 = none
    date: np.ndarray  # int64 days since 1970-01-01, NaT's int64 = none
    birth_year: np.ndarray  # int64, 0 = unknown
    fingerprint: np.ndarray  # int64


_GROUPS = list(RespondentGroup)
_NAT = int(np.datetime64("NaT", "D").view(np.int64))  # int64 minimum
_EPOCH = dt.date(1970, 1, 1)


def _active_entries_select(columns: list) -> Select:
    return (select(*columns)
            .join(ImportBatch, ImportBatch.id == FrameEntry.batch_id)
            .where(ImportBatch.status == BatchStatus.ACTIVE))


def _read_entries_select(campaign_id: int, recompute_fingerprints: bool) -> _Entries:
    """Any engine: an ORM select, rows converted in Python (SQLite, and verification)."""
    columns = [FrameEntry.id, FrameEntry.unit_id, FrameEntry.group, FrameEntry.stable_key,
               FrameEntry.phone, FrameEntry.transaction_date, FrameEntry.birth_year,
               FrameEntry.fingerprint]
    if recompute_fingerprints:
        columns += [FrameEntry.name, FrameEntry.address, FrameEntry.procedure]
    rows = db.session.execute(
        _active_entries_select(columns).where(FrameEntry.campaign_id == campaign_id)).all()
    group_code = {g: i for i, g in enumerate(_GROUPS)}
    if recompute_fingerprints:
        fps = [fingerprint(r.name, r.phone, r.address, r.procedure, r.transaction_date,
                           r.birth_year) for r in rows]
    else:
        fps = [r.fingerprint for r in rows]
    return _Entries(
        id=np.array([r.id for r in rows], dtype=np.int64),
        unit_id=np.array([r.unit_id for r in rows], dtype=np.int64),
        group=np.array([group_code.get(r.group, -1) for r in rows], dtype=np.int64),
        key=np.array([r.stable_key for r in rows], dtype=np.int64),
        phone=np.array([phone_digits(r.phone) for r in rows], dtype=np.int64),
        date=np.array([(r.transaction_date - _EPOCH).days if r.transaction_date else _NAT
                       for r in rows], dtype=np.int64),
        birth_year=np.array([r.birth_year or 0 for r in rows], dtype=np.int64),
        fingerprint=np.array(fps, dtype=np.int64),
    )


# PostgreSQL path. The server's per-row work (expressions, one send call per field) and the
# client's per-message work dominate a 5 M-row read, so the select is kept to six NOT NULL
# int8 fields, several values packed per field with integer arithmetic:
#   id << 32 | unit_id         (both int4 ids, non-negative)
#   stable_key, fingerprint
#   phone digits               (E.164 cast directly: int8 input accepts the leading '+')
#   days << 32 | birth_year    (days since 1970 as int4, -2**31 = no date; birth int4)
#   batch_id << 8 | group      (group position in RespondentGroup, 255 = unknown)
# The active-batch filter is applied in NumPy on batch_id (no join on the server).
# Binary COPY layout: 19-byte header (signature, flags, extension length), then per row an
# int16 field count and per field an int32 length + big-endian value, then an int16 -1 trailer.
_COPY_FIELDS = ("id_unit", "key", "fingerprint", "phone", "date_birth", "batch_group")
_COPY_ROW = np.dtype([("n", ">i2")] + [
    item for name in _COPY_FIELDS for item in ((f"{name}_len", ">i4"), (name, ">i8"))])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER_SIZE = 19
_COPY_TRAILER = b"\xff\xff"
_NO_DATE = -(2**31)  # below PostgreSQL's smallest date (4713 BC): never a real day number
# Frequent groups first: CASE stops at the first match.
_CASE_ORDER = (RespondentGroup.CITIZEN, RespondentGroup.BUSINESS, RespondentGroup.CIVIL_SERVANT,
               RespondentGroup.HDND_DELEGATE, RespondentGroup.LEADER)


def _copy_entries_query(campaign_id: int) -> str:
    order = [*_CASE_ORDER, *(g for g in _GROUPS if g not in _CASE_ORDER)]
    groups = " ".join(f"WHEN '{g.value}' THEN {_GROUPS.index(g)}" for g in order)
    # Only ints and enum values are inlined (no user data in the statement).
    return (
        f"COPY (SELECT (id::int8 << 32) | unit_id, stable_key::int8, fingerprint::int8, "
        f"COALESCE(NULLIF(phone, '')::int8, 0), "
        f"(COALESCE(transaction_date - DATE '1970-01-01', {_NO_DATE})::int8 << 32) "
        f"| (COALESCE(birth_year, 0)::int8 & 4294967295), "
        f"(batch_id::int8 << 8) | (CASE \"group\" {groups} ELSE 255 END) "
        f"FROM {FrameEntry.__tablename__} WHERE campaign_id = {int(campaign_id)}) "
        f"TO STDOUT (FORMAT binary)"
    )


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


def _read_entries_copy(campaign_id: int) -> _Entries:
    """PostgreSQL: binary COPY over the session's own connection, parsed by NumPy."""
    raw = db.session.connection().connection.driver_connection
    rows = _parse_binary_copy(_read_copy_stream(raw, _copy_entries_query(campaign_id)))
    active = np.array(db.session.scalars(select(ImportBatch.id).where(
        ImportBatch.campaign_id == campaign_id, ImportBatch.status == BatchStatus.ACTIVE
    )).all() or [0], dtype=np.int64)
    batch_group = rows["batch_group"].astype(np.int64)
    batch = batch_group >> 8
    table = np.zeros(max(int(active.max()), int(batch.max(initial=0))) + 1, dtype=bool)
    table[active] = True
    keep = np.flatnonzero(table[batch]) if rows.size else np.zeros(0, np.int64)
    rows = rows[keep]
    group = (batch_group[keep] & 255).astype(np.int64)
    group[group == 255] = -1
    id_unit = rows["id_unit"].astype(np.int64)
    date_birth = rows["date_birth"].astype(np.int64)
    days = date_birth >> 32
    return _Entries(
        id=id_unit >> 32, unit_id=id_unit & 0xFFFFFFFF, group=group,
        key=rows["key"].astype(np.int64), phone=rows["phone"].astype(np.int64),
        date=np.where(days == _NO_DATE, _NAT, days),
        birth_year=(date_birth & 0xFFFFFFFF).astype(np.uint32).view(np.int32).astype(np.int64),
        fingerprint=rows["fingerprint"].astype(np.int64),
    )


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


def _read_entries(campaign_id: int, recompute_fingerprints: bool) -> _Entries:
    if db.session.get_bind().dialect.name == "postgresql" and not recompute_fingerprints:
        return _read_entries_copy(campaign_id)
    return _read_entries_select(campaign_id, recompute_fingerprints)


def _expand_to_strata(entries: _Entries, strata: list[Stratum],
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
    # Dense (unit, group) -> stratum table, bounded by the largest unit id of the strata.
    width = int(s_unit.max()) + 1
    table = np.full(width * n_groups, -1, dtype=np.int64)
    table[s_unit * n_groups + s_group] = np.arange(len(strata))
    valid = (entries.unit_id >= 0) & (entries.unit_id < width) & (entries.group >= 0)
    cell = np.where(valid, entries.unit_id * n_groups + entries.group, 0)
    own = np.where(valid, table[cell], -1)
    # Strata of each group, grouped by group in stratum order, for SHARED groups.
    shared = np.array([scope.get(g) is FrameScope.SHARED for g in _GROUPS], dtype=bool)
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


def load_campaign_frame(campaign: Campaign, *, recompute_fingerprints: bool = False
                        ) -> CampaignFrame:
    """Read the active frame entries of every stratum.

    Rows of a SHARED group's list belong to every stratum of that group, so they appear once
    per stratum. With `recompute_fingerprints` the fingerprint is computed from the stored
    content instead of read (verification: detects rows edited after the draw). PostgreSQL
    reads the entries with a binary COPY (5 M rows in seconds); other engines with a select.
    """
    strata = list(db.session.scalars(
        select(Stratum).where(Stratum.campaign_id == campaign.id).order_by(Stratum.id)))
    units = {u.id: u for u in db.session.scalars(
        select(Unit).where(Unit.id.in_({s.unit_id for s in strata})))}
    specs = [StratumSpec(stratum_key(units[s.unit_id], s.group), s.quota, s.reserves)
             for s in strata]
    scope = {g.group: g.frame_scope for g in db.session.scalars(
        select(CampaignGroup).where(CampaignGroup.campaign_id == campaign.id))}

    entries = _read_entries(campaign.id, recompute_fingerprints)
    row, strat = _expand_to_strata(entries, strata, scope)
    date = entries.date[row].view("datetime64[D]")  # the NaT sentinel is NaT's int64
    frame = FrameColumns(
        key=entries.key[row], stratum=strat, phone=entries.phone[row], transaction_date=date,
        birth_year=entries.birth_year[row].astype(np.int32),
        fingerprint=entries.fingerprint[row],
    )
    counts = np.bincount(frame.stratum, minlength=len(strata)) if len(strata) else np.zeros(0)
    return CampaignFrame(strata, specs, frame, entries.id[row], counts)
