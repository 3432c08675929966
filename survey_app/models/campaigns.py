"""Campaigns, their respondent groups and strata (rated unit × group quotas)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import BigInteger, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from questionnaires.model import ConversionMethod, FrameScope, Mode, RespondentGroup

from ..extensions import db
from ._types import JSONType, UTCDateTime, enum_column, utcnow
from .units import Unit


class CampaignStatus(StrEnum):
    """Life cycle: draft → fielding → closed."""

    DRAFT = "draft"
    FIELDING = "fielding"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        """Vietnamese name of the status."""
        labels = {"draft": "Dự thảo", "fielding": "Đang điều tra", "closed": "Đã kết thúc"}
        return labels[self.value]


class Campaign(db.Model):
    """One survey round, e.g. "CCHC 2026 tỉnh X"."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    year: Mapped[int]
    period_start: Mapped[dt.date]
    period_end: Mapped[dt.date]
    status: Mapped[CampaignStatus] = mapped_column(
        enum_column(CampaignStatus), default=CampaignStatus.DRAFT
    )
    description: Mapped[str] = mapped_column(Text, default="")
    seed: Mapped[int | None] = mapped_column(BigInteger)
    survey_points: Mapped[float] = mapped_column(Float, default=30.0)
    conversion: Mapped[ConversionMethod] = mapped_column(
        enum_column(ConversionMethod), default=ConversionMethod.LINEAR
    )
    bands: Mapped[list] = mapped_column(JSONType, default=list)
    min_n: Mapped[int] = mapped_column(default=10)
    min_response_rate: Mapped[float] = mapped_column(Float, default=0.5)
    double_entry: Mapped[bool] = mapped_column(default=False)  # blind double keying of paper
    plan_digest: Mapped[str] = mapped_column(String(64), default="")
    previous_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    groups: Mapped[list[CampaignGroup]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="CampaignGroup.id"
    )
    strata: Mapped[list[Stratum]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="Stratum.id"
    )

    def group(self, group: RespondentGroup) -> CampaignGroup | None:
        """The campaign's settings for a respondent group."""
        return next((g for g in self.groups if g.group == group), None)


class CampaignGroup(db.Model):
    """A respondent group of a campaign with its questionnaire version and mode."""

    __tablename__ = "campaign_groups"
    __table_args__ = (UniqueConstraint("campaign_id", "group"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    group: Mapped[RespondentGroup] = mapped_column(enum_column(RespondentGroup))
    questionnaire_ref: Mapped[str] = mapped_column(String(128))
    questionnaire_digest: Mapped[str] = mapped_column(String(64))
    mode: Mapped[Mode] = mapped_column(enum_column(Mode))
    quota: Mapped[int]
    reserves: Mapped[int] = mapped_column(default=0)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    frame_scope: Mapped[FrameScope] = mapped_column(
        enum_column(FrameScope), default=FrameScope.PER_UNIT
    )

    campaign: Mapped[Campaign] = relationship(back_populates="groups")


class Stratum(db.Model):
    """A rated unit × respondent group with its quota; records the last draw's figures."""

    __tablename__ = "strata"
    # Every draw rewrites the figures of all strata (16,605 rows nationally) in one UPDATE:
    # half-empty pages let PostgreSQL update in place (HOT, no index entries), 3-4x cheaper.
    __table_args__ = (UniqueConstraint("campaign_id", "group", "unit_id"),
                      {"postgresql_with": {"fillfactor": 50}})

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    group: Mapped[RespondentGroup] = mapped_column(enum_column(RespondentGroup))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    quota: Mapped[int]
    reserves: Mapped[int] = mapped_column(default=0)
    # Figures of the last draw (None before the first draw).
    frame_count: Mapped[int | None]
    eligible_count: Mapped[int | None]
    drawn_count: Mapped[int | None]
    shortfall: Mapped[int | None]
    frame_digest: Mapped[str | None] = mapped_column(String(64))
    drawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    campaign: Mapped[Campaign] = relationship(back_populates="strata")
    unit: Mapped[Unit] = relationship()

    @property
    def key(self) -> str:
        """Stable stratum key used for seeding and digests: `<unit scheme:code>|<group>`."""
        return f"{self.unit.scheme}:{self.unit.code}|{self.group.value}"


class Draw(db.Model):
    """One sampling run of a campaign: what an auditor needs to re-run it."""

    __tablename__ = "draws"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    seed: Mapped[int] = mapped_column(BigInteger)
    public_value: Mapped[str] = mapped_column(Text, default="")
    method: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[dict] = mapped_column(JSONType, default=dict)
    forced: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RatedUnit(db.Model):
    """A unit rated by a campaign (optionally with its appraised self-assessment points)."""

    __tablename__ = "rated_units"
    __table_args__ = (UniqueConstraint("campaign_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    self_assessment_points: Mapped[float | None] = mapped_column(Float)

    unit: Mapped[Unit] = relationship()
