"""Frozen scores: the official figures of a closed campaign, kept with the rules that made them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._types import JSONType, UTCDateTime, utcnow


class ScoreSnapshot(db.Model):
    """Scores of a campaign frozen at closing (weighted and unweighted) with the questionnaire
    versions and digests they were computed with, so that a later recomputation can be checked."""

    __tablename__ = "score_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    frozen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    frozen_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # group value → {"ref": "key@version", "digest": sha256}
    questionnaires: Mapped[dict] = mapped_column(JSONType, default=dict)
    responses_digest: Mapped[str] = mapped_column(String(64), default="")
    # {"unweighted": CampaignScores.to_dict(), "weighted": ...}
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
