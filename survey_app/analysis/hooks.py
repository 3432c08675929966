"""Closing a campaign freezes its scores.

`set_status` (survey_app/services/campaigns.py) moves a campaign to CLOSED; this module notices
the change on the session and, just before that transaction commits, stores a `ScoreSnapshot`
with `freeze_scores` — unless one newer than the closing already exists (e.g. when the caller
froze explicitly). A campaign whose scores cannot be computed still closes; the purge freezes
it later.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import event
from sqlalchemy.orm import Session, object_session

from ..errors import SurveyError
from ..models import Campaign, CampaignStatus

log = logging.getLogger(__name__)
PENDING_KEY = "analysis_campaigns_closed"


@event.listens_for(Campaign.status, "set")
def _status_set(target: Campaign, value, oldvalue, _initiator) -> None:
    """Remember campaigns moved to CLOSED in this session's transaction."""
    if value is CampaignStatus.CLOSED and oldvalue is not CampaignStatus.CLOSED:
        session = object_session(target)
        if session is not None:
            session.info.setdefault(PENDING_KEY, []).append(target)


@event.listens_for(Session, "before_commit")
def _freeze_closed(session: Session) -> None:
    """Freeze the scores of the campaigns closed in the committing transaction."""
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    from .services import freeze_scores, latest_snapshot

    for campaign in {id(c): c for c in pending}.values():
        if campaign.status is not CampaignStatus.CLOSED or campaign.id is None:
            continue
        snapshot = latest_snapshot(campaign)
        if snapshot is not None and campaign.closed_at is not None and \
                _aware(snapshot.frozen_at) >= _aware(campaign.closed_at):
            continue
        try:
            freeze_scores(campaign)  # reads everything first; writes only the snapshot
        except SurveyError as exc:  # scores not computable: close anyway, say why
            log.warning("campaign %s closed without frozen scores: %s", campaign.id,
                        exc.message)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    """A rolled-back closing freezes nothing."""
    session.info.pop(PENDING_KEY, None)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
