"""Extensions, created once and bound to the app in create_app()."""

from __future__ import annotations

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Connection, MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic migrations work the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True)
csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Vui lòng đăng nhập để tiếp tục."


def autocommit_connection() -> Connection:
    """A pooled PostgreSQL connection in autocommit, set on the psycopg connection itself
    (SQLAlchemy's isolation_level option costs a set and a reset per checkout). SQLAlchemy's
    implicit BEGIN sends nothing, nor do its COMMIT and ROLLBACK without an open
    transaction. Give it back with `release_autocommit`."""
    conn = db.engine.connect()
    conn.connection.driver_connection.autocommit = True
    return conn


def release_autocommit(conn: Connection) -> None:
    """Back to the pool out of autocommit, as the pool lends connections; a connection that
    cannot be switched back is dropped, never lent on in autocommit."""
    try:
        if not conn.invalidated:
            conn.connection.driver_connection.autocommit = False
    except Exception:  # noqa: BLE001 - broken: invalidated below
        conn.invalidate()
    finally:
        conn.close()
