"""Fixed-window rate limits kept in the database, so every worker and process sees them."""

from __future__ import annotations

import hashlib
import time

from flask import current_app, request
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from .errors import TooManyRequests
from .extensions import db
from .models import RateLimitHit


def client_key(scope: str) -> str:
    """A per-client key; the address is hashed so the table holds no raw IP."""
    addr = request.remote_addr or "unknown"
    digest = hashlib.sha256(f"{current_app.config['SECRET_KEY']}|{addr}".encode()).hexdigest()
    return f"{scope}:{digest[:24]}"


def hit(key: str, limit: int, window: int) -> int:
    """Count one hit for `key` in the current window and return the count so far."""
    slot = int(time.time()) // window
    table = RateLimitHit.__table__
    engine = db.engine
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values(key=key, window=slot, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.key, table.c.window], set_={"count": table.c.count + 1}
    ).returning(table.c.count)
    # Own short transaction: the count must persist even if the request later rolls back.
    with engine.begin() as conn:
        count = conn.execute(stmt).scalar_one()
        if count == 1 and slot % 16 == 0:  # occasional clean-up of old windows
            conn.execute(delete(table).where(table.c.key == key, table.c.window < slot - 1))
    return count


def enforce(scope: str, limit: int, window: int, message: str) -> None:
    """Raise 429 with a Vietnamese message once the client exceeds `limit` per `window` s."""
    if hit(client_key(scope), limit, window) > limit:
        raise TooManyRequests(message)
