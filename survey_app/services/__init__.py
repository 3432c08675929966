"""Use cases: each takes the session implicitly through `db.session`, flushes, never commits."""
