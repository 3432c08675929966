"""Production gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

Sized for CPU-bound Python: one worker process per core (a process runs Python under its own
GIL, so processes, not threads, use the cores; on the 2-core reference machine PostgreSQL
and the clients need the rest), four threads each to overlap the database round trips, and
exactly one pooled database connection per thread. Measured with
`benchmarks/bench_submit.py` (docs/performance.md, "Submissions"): on 2 cores, 2 workers ×
3 or 4 threads did best (4 with a slightly lower tail); 3 or more workers, fewer threads,
and the former 2 × 25 threads (with a pool of 5 + 10 connections) all did worse.

Environment: WEB_CONCURRENCY (workers, default one per core), GUNICORN_THREADS (threads
per worker, default 4), GUNICORN_BIND (default 127.0.0.1:8000). The database pool follows
GUNICORN_THREADS; when overriding `--threads` on the command line, set SURVEY_DB_POOL_SIZE
to the same number (a warning is logged when the pool is smaller than the thread count).
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Idle keep-alive connections wait in the worker's poller, not in a thread.
keepalive = 30
# One listening socket per worker (SO_REUSEPORT): the kernel spreads new connections over
# the workers by a hash of their addresses, where with a shared socket whichever worker
# wakes first may take a burst of them and keep them (keep-alive), staying busier than the
# others (p95 up to twice the median in the benchmark). The master holds no socket then.
reuse_port = True
# Import the app once in the master (about 2 s of CPU) and fork ready workers from it: a
# restarted worker serves at once and the workers share the loaded code.
preload_app = True
# Applied before the app is loaded: one connection per thread, none opened and closed
# under load (a pool smaller than the thread count makes requests queue for connections;
# overflow connections beyond it are closed when returned and reopened at the next peak).
raw_env = [f"SURVEY_DB_POOL_SIZE={os.environ.get('SURVEY_DB_POOL_SIZE', threads)}"]


def when_ready(server):
    """Warm the preloaded app (questionnaire catalog, respondent templates) before forking,
    and warn when the database pool is smaller than the thread count."""
    from survey_app import warm_up

    app = server.app.wsgi()
    warm_up(app)
    # Everything loaded so far lives as long as the workers: keep it out of their garbage
    # collections (and their pages shared, not copied on write by the collector).
    gc.freeze()
    if app.config["DB_POOL_SIZE"] < server.cfg.threads:
        server.log.warning("SURVEY_DB_POOL_SIZE=%s is below --threads %s: requests will wait "
                           "for database connections", app.config["DB_POOL_SIZE"],
                           server.cfg.threads)


def post_fork(server, worker):
    """Forget any database connection inherited from the master (none is expected): a
    connection must never be shared between processes."""
    from survey_app.extensions import db

    with server.app.wsgi().app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
