"""Shared fixtures: an app on a real database (SQLite file, or TEST_DATABASE_URL such as the
machine's PostgreSQL), migrated once per session and emptied after every test."""

from __future__ import annotations

import os

import pytest
from flask import g
from helpers import empty_tables
from sqlalchemy import create_engine, text

from survey_app import create_app
from survey_app.extensions import db

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """The application, migrated with Alembic on a fresh database."""
    instance = tmp_path_factory.mktemp("instance")
    url = TEST_DATABASE_URL or f"sqlite:///{instance / 'test.db'}"
    if url.startswith("postgresql"):
        _reset_postgres(url)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "QUEUE_IMMEDIATE": True,
            "SECRET_KEY": "test-secret-key-0123456789",
            "PUBLIC_BASE_URL": "http://localhost",
        },
        instance_path=str(instance),
    )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()

    @app.before_request
    def _fresh_globals():
        # Tests keep one app context open, so requests would share `g` (Flask-WTF's CSRF
        # token, Flask-Login's user): give every request an empty one, as in production.
        g.__dict__.clear()

    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if url.startswith("postgresql"):
        _reset_postgres(url)


@pytest.fixture
def app_ctx(app):
    """An app context with an empty database; emptied again afterwards."""
    with app.app_context():
        yield app
        db.session.rollback()
        db.session.remove()
        empty_tables()


@pytest.fixture
def client(app_ctx):
    """A test client (CSRF protection stays on, as in production)."""
    return app_ctx.test_client()


@pytest.fixture
def runner(app_ctx):
    """A CLI runner bound to the app."""
    return app_ctx.test_cli_runner()
