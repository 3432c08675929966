"""Loading administrative trees: the current one from `vietnam-provinces`, any other from CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from dataclasses import dataclass

from sqlalchemy import select

from ..errors import SurveyError
from ..extensions import db
from ..models import Unit, UnitLevel

CURRENT_SCHEME = "vn-2025"
CURRENT_VALID_FROM = dt.date(2025, 7, 1)  # the 34-province, two-level tree took effect


@dataclass(frozen=True)
class LoadResult:
    """Counts of a tree load."""

    created: int
    updated: int


def load_current_tree() -> LoadResult:
    """Upsert the 34 provinces and ~3,321 communes/wards shipped by `vietnam-provinces`."""
    from vietnam_provinces import Province, VietNamDivisionType, Ward

    ward_levels = {
        VietNamDivisionType.XA: UnitLevel.COMMUNE,
        VietNamDivisionType.PHUONG: UnitLevel.WARD,
        VietNamDivisionType.DAC_KHU: UnitLevel.SPECIAL_ZONE,
    }
    existing = {
        u.code: u for u in db.session.scalars(select(Unit).where(Unit.scheme == CURRENT_SCHEME))
    }
    created = updated = 0

    def upsert(code: str, name: str, level: UnitLevel, parent: Unit | None) -> Unit:
        nonlocal created, updated
        unit = existing.get(code)
        if unit is None:
            unit = Unit(scheme=CURRENT_SCHEME, code=code, name=name, level=level, parent=parent,
                        valid_from=CURRENT_VALID_FROM)
            db.session.add(unit)
            existing[code] = unit
            created += 1
        elif (unit.name, unit.level, unit.parent) != (name, level, parent):
            unit.name, unit.level, unit.parent = name, level, parent
            updated += 1
        return unit

    provinces = {}
    for p in Province.iter_all():
        provinces[int(p.code)] = upsert(f"{int(p.code):02d}", p.name, UnitLevel.PROVINCE, None)
    for w in Ward.iter_all():
        upsert(f"{int(w.code):05d}", w.name, ward_levels.get(w.division_type, UnitLevel.COMMUNE),
               provinces[int(w.province_code)])
    db.session.flush()
    return LoadResult(created, updated)


class UnitImportError(SurveyError):
    """A custom tree file that cannot be loaded (nothing is stored)."""


UNIT_CSV_COLUMNS = ("code", "name", "level", "parent_code", "valid_from", "valid_to")


def _level(raw: str) -> UnitLevel | None:
    text = unicodedata.normalize("NFC", raw.strip().lower())
    aliases = {
        "tinh": UnitLevel.PROVINCE, "tỉnh": UnitLevel.PROVINCE, "thành phố": UnitLevel.PROVINCE,
        "huyện": UnitLevel.DISTRICT, "quận": UnitLevel.DISTRICT, "thị xã": UnitLevel.DISTRICT,
        "xã": UnitLevel.COMMUNE, "phường": UnitLevel.WARD, "thị trấn": UnitLevel.TOWN,
        "sở": UnitLevel.DEPARTMENT, "phòng": UnitLevel.DIVISION, "đặc khu": UnitLevel.SPECIAL_ZONE,
    }
    if text in aliases:
        return aliases[text]
    try:
        return UnitLevel(text)
    except ValueError:
        return None


def _date(raw: str) -> dt.date | None:
    raw = raw.strip()
    if not raw:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise ValueError(raw)


def import_tree_csv(data: bytes, scheme: str) -> LoadResult:
    """Load a custom tree (columns: code,name,level,parent_code[,valid_from,valid_to]).

    Parents may come later in the file or already exist in the scheme. Every problem is
    reported with its line; nothing is stored unless the whole file is valid.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnitImportError("Tệp phải là CSV mã hoá UTF-8.") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = {"code", "name", "level"} - set(reader.fieldnames or ())
    if missing:
        raise UnitImportError(f"Thiếu cột bắt buộc: {', '.join(sorted(missing))}.")
    existing = {u.code: u for u in db.session.scalars(select(Unit).where(Unit.scheme == scheme))}
    rows, problems, seen = [], [], set()
    for line, row in enumerate(reader, start=2):
        code = (row.get("code") or "").strip()
        name = unicodedata.normalize("NFC", " ".join((row.get("name") or "").split()))
        level = _level(row.get("level") or "")
        if not code:
            problems.append(f"Dòng {line}: thiếu mã đơn vị.")
            continue
        if code in seen:
            problems.append(f"Dòng {line}: mã {code} bị trùng.")
        seen.add(code)
        if not name:
            problems.append(f"Dòng {line}: thiếu tên đơn vị.")
        if level is None:
            problems.append(f"Dòng {line}: cấp đơn vị không hợp lệ: {row.get('level')!r}.")
        try:
            start, end = _date(row.get("valid_from") or ""), _date(row.get("valid_to") or "")
        except ValueError as exc:
            problems.append(f"Dòng {line}: ngày không hợp lệ: {exc}.")
            start = end = None
        rows.append((line, code, name, level, (row.get("parent_code") or "").strip(), start, end))
    codes = seen | set(existing)
    for line, code, _, _, parent, _, _ in rows:
        if parent and parent not in codes:
            problems.append(f"Dòng {line}: không tìm thấy đơn vị cấp trên {parent}.")
        if parent == code:
            problems.append(f"Dòng {line}: đơn vị không thể là cấp trên của chính nó.")
    if not rows:
        problems.append("Tệp không có dòng dữ liệu nào.")
    if problems:
        raise UnitImportError("Tệp danh sách đơn vị có lỗi, chưa lưu gì.", details=problems)
    created = updated = 0
    for _, code, name, level, _, start, end in rows:
        unit = existing.get(code)
        if unit is None:
            unit = Unit(scheme=scheme, code=code, name=name, level=level)
            db.session.add(unit)
            existing[code] = unit
            created += 1
        else:
            updated += 1
        unit.name, unit.level, unit.valid_from, unit.valid_to = name, level, start, end
    db.session.flush()
    for _, code, _, _, parent, _, _ in rows:
        existing[code].parent_id = existing[parent].id if parent else None
    db.session.flush()
    return LoadResult(created, updated)
