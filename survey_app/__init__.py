"""Khảo sát: the web service. `create_app()` is the application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .config import load_config
from .extensions import csrf, db, login_manager, migrate

PACKAGE_DIR = Path(__file__).resolve().parent


def create_app(overrides: dict | None = None, instance_path: str | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, CLI, queue, error handlers, headers."""
    app = Flask(
        __name__,
        instance_path=instance_path or str(Path.cwd() / "instance"),
        instance_relative_config=True,
    )
    load_config(app, overrides)
    _cache_ensure_sync(app)
    from .logging_filters import install as redact_tokens_in_logs

    redact_tokens_in_logs()
    if app.config["DATABASE_URL"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {
            "pool_size": app.config["DB_POOL_SIZE"], "max_overflow": app.config["DB_MAX_OVERFLOW"]})

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PACKAGE_DIR / "migrations"))
    csrf.init_app(app)
    # Flask-Login's own template context processor loads the user (and marks the session
    # modified) on every render; the lazy proxy loads it only where a template uses it
    # (the staff pages, never the respondent's).
    login_manager.init_app(app, add_context_processor=False)
    app.context_processor(lambda: {"current_user": current_user})

    from . import models  # noqa: F401  (register the tables)
    from .models import User

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        user = db.session.get(User, int(user_id))
        return user if user and user.active else None

    from .web import register_web

    register_web(app)

    from .tasks import init_queue

    init_queue(app)

    from .cli import register_cli

    register_cli(app)
    return app


def _cache_ensure_sync(app: Flask) -> None:
    """Flask asks `inspect.iscoroutinefunction` of every hook, handler and view it calls,
    about ten times a request; the answer is a property of the function's code, so it is
    remembered per code object (callables without one are asked every time, as before)."""
    sync_code: set = set()
    ask = app.ensure_sync

    def ensure_sync(func):
        code = getattr(func, "__code__", None)
        # (a function marked by inspect.markcoroutinefunction shares its code with others)
        if code in sync_code and not hasattr(func, "_is_coroutine_marker"):
            return func
        wrapped = ask(func)
        if wrapped is func and code is not None:
            sync_code.add(code)
        return wrapped

    app.ensure_sync = ensure_sync


def warm_up(app: Flask) -> None:
    """Load what the first requests would otherwise load (the questionnaire catalog, the
    respondent's templates) without touching the database: called by gunicorn in the master
    before forking (gunicorn.conf.py), so each worker serves its first request at full speed."""
    from questionnaires.catalog import shipped_questionnaires

    shipped_questionnaires()
    for name in app.jinja_env.list_templates(filter_func=lambda n: n.startswith(
            ("respondent/", "errors/"))):
        app.jinja_env.get_template(name)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite: enforce foreign keys and use WAL so the queue worker and web can share the file."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
