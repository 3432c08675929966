"""Queue tasks: thin wrappers over services, run by huey.

The huey instance is built from the app's config (SQLite file under instance/ for the embedded
default, Redis in production, immediate mode in tests). Every task runs inside an app context
and works only from ids and the database, so any number of workers can run it.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

from flask import Flask, current_app
from huey import RedisHuey, SqliteHuey

_TASKS: dict[str, Callable] = {}


def task(fn: Callable) -> Callable:
    """Register a function (taking only JSON-able arguments) as a queue task."""
    _TASKS[fn.__name__] = fn
    return fn


def init_queue(app: Flask) -> None:
    """Create the app's huey and wrap every registered task with an app context."""
    url = app.config["QUEUE_URL"]
    immediate = bool(app.config["QUEUE_IMMEDIATE"])
    if url.startswith("redis"):
        huey = RedisHuey("survey", url=url, immediate=immediate)
    else:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey("survey", filename=str(Path(app.instance_path) / "queue.db"),
                          immediate=immediate)
    wrapped = {}
    for name, fn in _TASKS.items():
        wrapped[name] = huey.task(name=name)(_in_app_context(app, fn))
    app.extensions["huey"] = huey
    app.extensions["survey_tasks"] = wrapped


def _in_app_context(app: Flask, fn: Callable) -> Callable:
    def run(**kwargs):
        with app.app_context():
            return fn(**kwargs)

    run.__name__ = fn.__name__
    return run


def enqueue(name: str, **kwargs) -> None:
    """Queue a registered task by name (runs at once in immediate mode)."""
    current_app.extensions["survey_tasks"][name](**kwargs)


@task
def run_job(job_id: int) -> None:
    """Run a BackgroundJob by its kind; failures are recorded on the job, never lost."""
    from .extensions import db
    from .models import BackgroundJob, JobStatus
    from .services.jobs import JOB_RUNNERS, finish_job, update_progress

    job = db.session.get(BackgroundJob, job_id)
    if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return
    job.status = JobStatus.RUNNING
    db.session.commit()
    runner = JOB_RUNNERS[job.kind]
    try:
        result = runner(job, lambda done, total=None: update_progress(job.id, done, total))
    except Exception as exc:  # record and keep the worker alive
        db.session.rollback()
        from .errors import SurveyError

        message = exc.message if isinstance(exc, SurveyError) else "Lỗi hệ thống khi chạy tác vụ."
        if not isinstance(exc, SurveyError):
            current_app.logger.error("job %s failed: %s", job_id, traceback.format_exc(limit=5))
        finish_job(job_id, ok=False, message=message,
                   result={"details": getattr(exc, "details", [])[:200]})
        return
    finish_job(job_id, ok=True, result=result or {})
