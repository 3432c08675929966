"""Administrative units: a generic tree with validity dates."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import enum_column


class UnitLevel(StrEnum):
    """Levels found in the pre-2025 and current trees and in provincial structures."""

    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"
    WARD = "ward"
    TOWN = "town"  # thị trấn (pre-2025)
    SPECIAL_ZONE = "special_zone"  # đặc khu
    DEPARTMENT = "department"  # sở, ban, ngành
    DIVISION = "division"  # phòng chuyên môn
    AGENCY = "agency"
    OTHER = "other"

    @property
    def label(self) -> str:
        """Vietnamese name of the level."""
        return LEVEL_LABELS[self]


LEVEL_LABELS = {
    UnitLevel.PROVINCE: "Tỉnh/Thành phố",
    UnitLevel.DISTRICT: "Huyện/Quận",
    UnitLevel.COMMUNE: "Xã",
    UnitLevel.WARD: "Phường",
    UnitLevel.TOWN: "Thị trấn",
    UnitLevel.SPECIAL_ZONE: "Đặc khu",
    UnitLevel.DEPARTMENT: "Sở, ban, ngành",
    UnitLevel.DIVISION: "Phòng",
    UnitLevel.AGENCY: "Cơ quan",
    UnitLevel.OTHER: "Khác",
}


class Unit(db.Model):
    """A node of an administrative tree (`scheme` separates e.g. the 2025 tree from older ones)."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("scheme", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scheme: Mapped[str] = mapped_column(String(32), default="vn-2025")
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    level: Mapped[UnitLevel] = mapped_column(enum_column(UnitLevel))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    valid_from: Mapped[dt.date | None]
    valid_to: Mapped[dt.date | None]

    parent: Mapped[Unit | None] = relationship(remote_side=[id])

    def __repr__(self) -> str:
        return f"<Unit {self.scheme}:{self.code}>"
