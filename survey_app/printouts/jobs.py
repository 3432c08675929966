"""Queue runner of print jobs: output under `<instance>/prints/<job id>.<ext>`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from flask import current_app

from questionnaires.model import RespondentGroup

from ..extensions import db
from ..models import BackgroundJob, JobKind
from ..services.campaigns import get_campaign
from ..services.jobs import runs
from .services import PrintKind, run_print


def prints_dir() -> Path:
    """Where print jobs leave their files (personal data: served to authorised roles only)."""
    return Path(current_app.instance_path) / "prints"


def output_path(job: BackgroundJob) -> Path:
    """The file of a print job."""
    return prints_dir() / f"{job.id}.{PrintKind(job.params['kind']).extension}"


def remove_old_prints(days: int, *, now: float | None = None) -> int:
    """Delete print files older than `days` (they hold names and addresses; the batch can be
    printed again). Returns the number of files removed."""
    folder = prints_dir()
    if not folder.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - days * 86400
    removed = 0
    for path in folder.iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def print_params(kind: PrintKind, *, unit_id: int | None, group: RespondentGroup | None,
                 count: int = 0, enumerator_id: int | None = None) -> dict:
    """The JSON parameters of a print job (`enumerator_id`: an enumerator's print, which
    leaves out forms handed to another enumerator)."""
    return {"kind": kind.value, "unit_id": unit_id, "group": group.value if group else None,
            "count": count, "enumerator_id": enumerator_id}


def _start_only(progress: Callable) -> Callable:
    def report(done: int, total: int | None = None) -> None:
        if done == 0:
            progress(done, total)

    return report


@runs(JobKind.PRINT_BATCH)
def run_print_job(job, progress) -> dict:
    """Print what the job's params ask for; the file exists only once the batch is committed."""
    params = job.params
    kind = PrintKind(params["kind"])
    campaign = get_campaign(job.campaign_id)
    group = RespondentGroup(params["group"]) if params.get("group") else None
    path = output_path(job)
    if db.engine.dialect.name == "sqlite":
        # SQLite has one writer: once the batch has issued its first token, a progress write
        # on another connection would wait for the batch itself. Report the start only.
        progress = _start_only(progress)
    try:
        result = run_print(kind, campaign, out=path, unit_id=params.get("unit_id"), group=group,
                           count=int(params.get("count") or 0), progress=progress,
                           enumerator_id=params.get("enumerator_id"))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        path.unlink(missing_ok=True)
        raise
    result.pop("serials", None)  # may be long; the file holds them
    result["download"] = f"/print/{campaign.key}/jobs/{job.id}/file"
    return result
