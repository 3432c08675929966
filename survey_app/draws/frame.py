"""Engine-independent identities of frame rows, and reading a campaign's frame as columns."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

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


def load_campaign_frame(campaign: Campaign, *, recompute_fingerprints: bool = False
                        ) -> CampaignFrame:
    """Read the active frame entries of every stratum.

    Rows of a SHARED group's list belong to every stratum of that group, so they appear once
    per stratum. With `recompute_fingerprints` the fingerprint is computed from the stored
    content instead of read (verification: detects rows edited after the draw).
    """
    strata = list(db.session.scalars(
        select(Stratum).where(Stratum.campaign_id == campaign.id).order_by(Stratum.id)))
    units = {u.id: u for u in db.session.scalars(
        select(Unit).where(Unit.id.in_({s.unit_id for s in strata})))}
    specs = [StratumSpec(stratum_key(units[s.unit_id], s.group), s.quota, s.reserves)
             for s in strata]
    scope = {g.group: g.frame_scope for g in db.session.scalars(
        select(CampaignGroup).where(CampaignGroup.campaign_id == campaign.id))}
    index = {(s.unit_id, s.group): i for i, s in enumerate(strata)}
    by_group: dict[RespondentGroup, list[int]] = {}
    for i, s in enumerate(strata):
        by_group.setdefault(s.group, []).append(i)

    columns = [FrameEntry.id, FrameEntry.unit_id, FrameEntry.group, FrameEntry.stable_key,
               FrameEntry.phone, FrameEntry.transaction_date, FrameEntry.birth_year,
               FrameEntry.fingerprint]
    if recompute_fingerprints:
        columns += [FrameEntry.name, FrameEntry.address, FrameEntry.procedure]
    rows = db.session.execute(
        select(*columns)
        .join(ImportBatch, ImportBatch.id == FrameEntry.batch_id)
        .where(FrameEntry.campaign_id == campaign.id, ImportBatch.status == BatchStatus.ACTIVE)
    ).all()
    ids, strat, keys, phones, dates, births, fps = [], [], [], [], [], [], []
    epoch = dt.date(1970, 1, 1)
    for row in rows:
        if scope.get(row.group) is FrameScope.SHARED:
            targets = by_group.get(row.group, [])
        else:
            h = index.get((row.unit_id, row.group))
            targets = [] if h is None else [h]
        if not targets:
            continue
        fp = row.fingerprint
        if recompute_fingerprints:
            fp = fingerprint(row.name, row.phone, row.address, row.procedure,
                             row.transaction_date, row.birth_year)
        date = (row.transaction_date - epoch).days if row.transaction_date else None
        for h in targets:
            ids.append(row.id)
            strat.append(h)
            keys.append(row.stable_key)
            phones.append(phone_digits(row.phone))
            dates.append(date)
            births.append(row.birth_year or 0)
            fps.append(fp)
    date_arr = np.array([d if d is not None else -(2**62) for d in dates], dtype=np.int64)
    date_col = date_arr.astype("datetime64[D]")
    date_col[date_arr == -(2**62)] = np.datetime64("NaT")
    frame = FrameColumns(
        key=np.array(keys, dtype=np.int64), stratum=np.array(strat, dtype=np.int32),
        phone=np.array(phones, dtype=np.int64), transaction_date=date_col,
        birth_year=np.array(births, dtype=np.int32), fingerprint=np.array(fps, dtype=np.int64),
    )
    counts = np.bincount(frame.stratum, minlength=len(strata)) if len(strata) else np.zeros(0)
    return CampaignFrame(strata, specs, frame, np.array(ids, dtype=np.int64), counts)
