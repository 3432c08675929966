"""The sampled list of a unit, for calling or mailing (authorised roles only)."""

from __future__ import annotations

import csv
import io
from typing import BinaryIO

from sqlalchemy import select

from ..errors import NotFound
from ..extensions import db
from ..models import Assignment, AuditAction, Campaign, FrameEntry, Stratum, Unit
from ..services.audit import audit
from ..services.spreadsheet import neutralise

COLUMNS = ["Số phiếu", "Thứ tự", "Dự phòng", "Đang dùng", "Nhóm", "Hình thức", "Họ và tên",
           "Số điện thoại", "Địa chỉ", "Tình trạng"]


def sampled_rows(campaign: Campaign, *, unit_code: str | None = None,
                 unit_id: int | None = None,
                 enumerator_id: int | None = None) -> list[list[str]]:
    """Rows of the sampled list of a rated unit, in stratum and draw order (audited). With
    `enumerator_id`, forms handed to another enumerator are left out (as on the fieldwork
    pages and in printing)."""
    stmt = select(Unit).join(Stratum, Stratum.unit_id == Unit.id).where(
        Stratum.campaign_id == campaign.id)
    stmt = stmt.where(Unit.code == unit_code) if unit_code else stmt.where(Unit.id == unit_id)
    unit = db.session.scalars(stmt).first()
    if unit is None:
        raise NotFound("Đơn vị không thuộc chiến dịch này.")
    rows = []
    stmt = (select(Assignment, FrameEntry)
            .outerjoin(FrameEntry, FrameEntry.id == Assignment.frame_entry_id)
            .where(Assignment.campaign_id == campaign.id, Assignment.unit_id == unit.id)
            .order_by(Assignment.group, Assignment.draw_order))
    if enumerator_id is not None:
        stmt = stmt.where(Assignment.enumerator_id.is_(None)
                          | (Assignment.enumerator_id == enumerator_id))
    for a, e in db.session.execute(stmt).all():
        rows.append([a.serial, str(a.draw_order), "x" if a.is_reserve else "",
                     "x" if a.active else "", a.group.label, a.mode.label,
                     e.name if e else "", e.phone or "" if e else "", e.address if e else "",
                     a.outcome.label])
    audit(AuditAction.SAMPLE_EXPORTED, target=f"campaign:{campaign.id}", unit=unit.id,
          rows=len(rows))
    return rows


def write_sampled_csv(rows: list[list[str]], out: BinaryIO) -> None:
    """UTF-8 with BOM (Excel opens it right), formula-like cells neutralised."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([neutralise(c) for c in row])
    out.write(text.getvalue().encode("utf-8-sig"))
