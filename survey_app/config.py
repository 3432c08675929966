"""Configuration: defaults in code, overridden by instance/config.py, then by SURVEY_* variables."""

from __future__ import annotations

import os
from pathlib import Path

DEMO_SECRET_KEY = "demo-secret-key-change-me"  # noqa: S105 - refused in production


class Defaults:
    """Default settings for the embedded demo (SQLite under instance/)."""

    ENV = "development"
    SECRET_KEY = DEMO_SECRET_KEY
    DATABASE_URL = ""  # empty: sqlite:///<instance>/survey.db
    QUEUE_URL = ""  # empty: SQLite huey storage under instance/; "redis://..." in production
    QUEUE_IMMEDIATE = False
    PUBLIC_BASE_URL = "http://127.0.0.1:5000"
    MAX_CONTENT_LENGTH = 64 * 1024 * 1024  # uploads above this get HTTP 413
    UPLOAD_SYNC_LIMIT = 2 * 1024 * 1024  # larger uploads are processed as background jobs
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False  # True in production (HTTPS)
    REMEMBER_COOKIE_SECURE = False
    WTF_CSRF_TIME_LIMIT = None
    SHORT_CODE_LIMIT = 10  # short-code attempts per client per window
    SHORT_CODE_WINDOW = 60  # seconds
    LOGIN_LIMIT = 10
    LOGIN_WINDOW = 300
    RETENTION_DAYS = 365
    # Connections kept per process (PostgreSQL): at least the server's threads per worker, so
    # no request waits for a connection and none is closed and reopened under load (the
    # production gunicorn.conf.py sets it to its thread count).
    DB_POOL_SIZE = 10
    DB_MAX_OVERFLOW = 5


ENV_PREFIX = "SURVEY_"
_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def load_config(app, overrides: dict | None = None) -> None:
    """Fill app.config: code defaults, instance/config.py, SURVEY_* environment, then overrides."""
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    for name, raw in os.environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX):]
        current = app.config.get(key)
        if isinstance(current, bool):
            app.config[key] = _BOOL.get(raw.lower(), current)
        elif isinstance(current, int):
            app.config[key] = int(raw)
        else:
            app.config[key] = raw
    if overrides:
        app.config.update(overrides)
    if not app.config["DATABASE_URL"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'survey.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]
    if app.config["ENV"] == "production":
        if app.config["SECRET_KEY"] == DEMO_SECRET_KEY or len(app.config["SECRET_KEY"]) < 16:
            raise RuntimeError(
                "Refusing to start in production with the demo secret key: set SURVEY_SECRET_KEY."
            )
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
