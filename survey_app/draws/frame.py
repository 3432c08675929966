"""Engine-independent identities of frame rows, and reading a campaign's frame as columns."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

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


# Binary COPY of fixed-width int8 columns: 19-byte header (signature, flags, extension
# length), then per row an int16 field count and per field an int32 length + int8 value, then
# an int16 -1 trailer. Every value is NOT NULL, so every row has the same layout.
_COPY_FIELDS = ("id", "unit_id", "group", "key", "phone", "date", "birth_year", "fingerprint")
_COPY_ROW = np.dtype([("n", ">i2")] + [
    item for name in _COPY_FIELDS for item in ((f"{name}_len", ">i4"), (name, ">i8"))])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER_SIZE = 19


def _copy_entries_query(campaign_id: int) -> str:
    groups = " ".join(f"WHEN '{g.value}' THEN {i}" for i, g in enumerate(_GROUPS))
    fe, ib = FrameEntry.__tablename__, ImportBatch.__tablename__
    # Every column NOT NULL int8 (NULLs mapped to the sentinels the sampling core expects),
    # so the stream parses with one np.frombuffer. Only ints and enum values are inlined.
    return (
        f"COPY (SELECT fe.id::int8, fe.unit_id::int8, "
        f"(CASE fe.\"group\" {groups} ELSE -1 END)::int8, fe.stable_key::int8, "
        f"COALESCE(NULLIF(substr(fe.phone, 2), '')::int8, 0), "
        f"COALESCE((fe.transaction_date - DATE '1970-01-01')::int8, '{_NAT}'::int8), "
        f"COALESCE(fe.birth_year, 0)::int8, fe.fingerprint::int8 "
        f"FROM {fe} fe JOIN {ib} b ON b.id = fe.batch_id "
        f"WHERE fe.campaign_id = {int(campaign_id)} "
        f"AND b.status = '{BatchStatus.ACTIVE.value}') TO STDOUT (FORMAT binary)"
    )


def _read_entries_copy(campaign_id: int) -> _Entries:
    """PostgreSQL: binary COPY over the session's own connection, parsed by NumPy."""
    raw = db.session.connection().connection.driver_connection
    buffer = bytearray()
    with raw.cursor() as cursor, cursor.copy(_copy_entries_query(campaign_id)) as copy:
        while chunk := copy.read():
            buffer += chunk
    return _parse_binary_copy(buffer)


def _parse_binary_copy(buffer: bytes | bytearray) -> _Entries:
    """Columns of a binary COPY stream of `_COPY_FIELDS` NOT NULL int8 columns."""
    if buffer[:len(_COPY_HEADER)] != _COPY_HEADER:
        raise RuntimeError("unexpected COPY stream header")
    body = memoryview(buffer)[_COPY_HEADER_SIZE:len(buffer) - 2]
    if len(body) % _COPY_ROW.itemsize:
        raise RuntimeError("unexpected COPY stream length")
    rows = np.frombuffer(body, dtype=_COPY_ROW)
    if rows.size and (np.any(rows["n"] != len(_COPY_FIELDS))
                      or any(np.any(rows[f"{f}_len"] != 8) for f in _COPY_FIELDS)):
        raise RuntimeError("unexpected COPY row layout")
    return _Entries(**{f: rows[f].astype(np.int64) for f in _COPY_FIELDS})


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
