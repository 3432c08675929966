"""Queue runner of draw jobs."""

from __future__ import annotations

from ..extensions import db
from ..models import JobKind, User
from ..services.campaigns import get_campaign
from ..services.jobs import runs
from .services import draw_campaign


@runs(JobKind.DRAW)
def run_draw(job, progress) -> dict:
    """Draw a campaign; the job's params carry the public value and the force flag."""
    campaign = get_campaign(job.campaign_id)
    user = db.session.get(User, job.created_by_id) if job.created_by_id else None
    progress(0, 1)
    draw = draw_campaign(campaign, public_value=job.params.get("public_value") or None,
                         force=bool(job.params.get("force")), user=user)
    db.session.commit()
    return {"draw": draw.id, "assignments": draw.summary["assignments"],
            "url": f"/draws/{campaign.key}/protocol"}
