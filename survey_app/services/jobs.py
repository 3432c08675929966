"""Background jobs: creation, progress (visible to every worker) and completion."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import update

from ..extensions import db
from ..models import BackgroundJob, JobKind, JobStatus
from ..models._types import utcnow

# kind → callable(job, progress) -> result dict; filled by the areas that own each kind.
JOB_RUNNERS: dict[JobKind, Callable] = {}


def runs(kind: JobKind) -> Callable:
    """Decorator registering the runner of a job kind."""

    def register(fn: Callable) -> Callable:
        JOB_RUNNERS[kind] = fn
        return fn

    return register


def create_job(kind: JobKind, params: dict, *, campaign_id: int | None = None,
               user_id: int | None = None, total: int = 0) -> BackgroundJob:
    """Add a queued job (the caller commits, then calls `start_job`)."""
    job = BackgroundJob(kind=kind, params=params, campaign_id=campaign_id,
                        created_by_id=user_id, total=total, status=JobStatus.QUEUED)
    db.session.add(job)
    db.session.flush()
    return job


def start_job(job: BackgroundJob) -> None:
    """Hand a committed job to the queue."""
    from ..tasks import enqueue

    enqueue("run_job", job_id=job.id)


def update_progress(job_id: int, done: int, total: int | None = None) -> None:
    """Write progress on its own connection so it is visible while the job's work is still
    uncommitted. SQLite may be locked by that very work: progress is then skipped."""
    values = {"done": done}
    if total is not None:
        values["total"] = total
    try:
        with db.engine.begin() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:  # don't wait 30 s for the lock the job itself holds
                conn.exec_driver_sql("PRAGMA busy_timeout = 50")
            try:
                conn.execute(update(BackgroundJob).where(BackgroundJob.id == job_id)
                             .values(**values))
            finally:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA busy_timeout = 30000")
    except Exception:  # noqa: S110 - progress is best-effort
        pass


def finish_job(job_id: int, *, ok: bool, message: str = "", result: dict | None = None) -> None:
    """Mark a job done or failed (own transaction)."""
    job = db.session.get(BackgroundJob, job_id)
    job.status = JobStatus.DONE if ok else JobStatus.FAILED
    job.message = message
    job.result = result or {}
    if ok and job.total:
        job.done = job.total
    job.finished_at = utcnow()
    db.session.commit()
