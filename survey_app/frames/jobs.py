"""Queue runners: preview of a large upload, and the all-or-nothing import."""

from __future__ import annotations

from pathlib import Path

from questionnaires.model import RespondentGroup

from ..extensions import db
from ..models import Campaign, ImportBatch, JobKind, Unit, User
from ..services.jobs import runs
from .services import confirm_batch, preview_upload, summarize_frame_index


@runs(JobKind.FRAME_PREVIEW)
def run_preview(job, progress) -> dict:
    """Parse a stored upload into a PREVIEW batch."""
    p = job.params
    path = Path(p["path"])
    try:
        batch = preview_upload(
            db.session.get(Campaign, job.campaign_id), db.session.get(Unit, p["unit_id"]),
            RespondentGroup(p["group"]), path.read_bytes(), p["filename"],
            sheet=p.get("sheet") or None,
            user=db.session.get(User, job.created_by_id) if job.created_by_id else None,
            replaces=db.session.get(ImportBatch, p["replaces"]) if p.get("replaces") else None)
    finally:
        path.unlink(missing_ok=True)  # the preview keeps its own copy
    db.session.commit()
    return {"batch": batch.id, "url": f"/frames/batches/{batch.id}"}


@runs(JobKind.FRAME_IMPORT)
def run_import(job, progress) -> dict:
    """Write a confirmed batch; a crash leaves nothing (one transaction)."""
    batch = db.session.get(ImportBatch, job.params["batch"])
    user = db.session.get(User, job.created_by_id) if job.created_by_id else None
    confirm_batch(batch, user=user, progress=lambda n: progress(n, batch.accepted))
    db.session.commit()
    summarize_frame_index()
    db.session.commit()
    return {"batch": batch.id, "url": f"/frames/batches/{batch.id}"}
