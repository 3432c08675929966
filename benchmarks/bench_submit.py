"""Mobile-form submission benchmark: gunicorn + PostgreSQL on loopback, 50 concurrent respondents.

What one "submission" is here: a respondent on the last page of the form (answers of the
earlier pages already saved as a draft, prepared in the database) opens the link
(GET /f/<token>: CSRF cookie, submission id) and taps "Gửi phiếu" (POST with the last page's
answers and action=submit). Every client uses its own distinct tokens, over a keep-alive
connection, with a fresh cookie jar per token (a new respondent each time).

Steps:
1. create a scratch database (dropped at the end unless --keep), migrate it (Alembic);
2. inside an app context, create a campaign through the services, N assignments each with a
   token (`issue_for_assignment`) and a draft holding the answers of every page but the last;
3. start `gunicorn -k gthread` on 127.0.0.1 (production settings, empty queue URL);
4. drive --clients threads until every token is submitted or --max-seconds passes (with
   --post-only: first a GET phase opening every form, then only the POSTs are timed);
5. report submissions/s, POST latency p50/p95/p99 (and GET), then count in the database:
   exactly one response per accepted submission (0 lost, 0 duplicated).

Usage:
    python benchmarks/bench_submit.py                     # 3000 tokens, 50 clients, -w 2 -t 25
    python benchmarks/bench_submit.py --tokens 6000 --workers 4 --threads 4 --keep
    python benchmarks/bench_submit.py --profile            # cProfile one worker's requests
    python benchmarks/bench_submit.py --post-only          # GET all forms first, time POSTs
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SID_RE = re.compile(r'name="submission_id" value="([^"]+)"')
PAGE_RE = re.compile(r'name="page" value="(\d+)"')
QUESTIONNAIRE = "sipas-citizen@2026.1"


# --------------------------------------------------------------------------- database

def _admin_exec(admin_url: str, sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def create_database(server_url: str, name: str) -> str:
    """(Re)create the scratch database `name`; returns its URL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"refusing database name {name!r}")
    admin = f"{server_url.rstrip('/')}/postgres"
    _admin_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_exec(admin, f'CREATE DATABASE "{name}"')
    return f"{server_url.rstrip('/')}/{name}"


def drop_database(server_url: str, name: str) -> None:
    """Drop the scratch database."""
    admin = f"{server_url.rstrip('/')}/postgres"
    _admin_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _draft_answers(questionnaire, rng: np.random.Generator) -> dict:
    """Plausible answers to every question of every page but the last."""
    from questionnaires.model import QuestionKind

    answers: dict = {}
    for section in questionnaire.sections[:-1]:
        for q in section.questions:
            if q.kind is QuestionKind.MULTI:
                answers[q.id] = [q.options[0].code]
            elif q.kind.has_options:
                codes = [o.code for o in q.options if not o.dont_know]
                answers[q.id] = codes[int(rng.integers(len(codes)))]
            elif q.kind is QuestionKind.NUMBER:
                answers[q.id] = "1"
            else:
                answers[q.id] = "Ý kiến thử nghiệm"
    return answers


def last_page_form(questionnaire) -> dict[str, str]:
    """The POST fields a respondent fills on the last page (besides csrf/page/sid/action)."""
    from questionnaires.model import QuestionKind

    fields: dict[str, str] = {}
    for q in questionnaire.sections[-1].questions:
        if q.kind.has_options:
            fields[q.id] = q.options[-2].code if len(q.options) > 1 else q.options[0].code
        elif q.kind is QuestionKind.NUMBER:
            fields[q.id] = "1"
        elif q.kind is not QuestionKind.MULTI:
            fields[q.id] = "Thủ tục nhanh gọn, cán bộ nhiệt tình."
    return fields


def prepare(db_url: str, instance: str, tokens: int, units: int, seed: int) -> list[str]:
    """Migrate, then create a campaign with `tokens` citizen assignments, each with a token
    and a last-page draft, through the app's services. Returns the clear tokens."""
    import datetime as dt

    from flask_migrate import upgrade
    from sqlalchemy import select

    from questionnaires.catalog import get_questionnaire
    from questionnaires.model import GroupPlan, Mode, Plan, RespondentGroup, UnitRef
    from survey_app import create_app
    from survey_app.extensions import db
    from survey_app.models import (
        Assignment,
        CampaignGroup,
        CampaignStatus,
        FormDraft,
        Outcome,
        Stratum,
    )
    from survey_app.services.campaigns import create_campaign, set_status
    from survey_app.services.tokens import issue_for_assignment

    rng = np.random.default_rng(seed)
    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "bench-secret-key-0123456789",
                      "PUBLIC_BASE_URL": "http://127.0.0.1"}, instance_path=instance)
    questionnaire = get_questionnaire(QUESTIONNAIRE)
    clear: list[str] = []
    with app.app_context():
        upgrade()
        plan = Plan(
            key="bench-submit", name="Chiến dịch đo hiệu năng", year=2026,
            period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 10, 31),
            groups=(GroupPlan(RespondentGroup.CITIZEN, QUESTIONNAIRE, Mode.PHONE,
                              -(-tokens // units), 0),),
            units=tuple(UnitRef(code=f"B{i:03d}", name=f"Xã Đo {i}", level="commune")
                        for i in range(units)),
            seed=seed,
        )
        campaign = create_campaign(plan)
        set_status(campaign, CampaignStatus.FIELDING)
        cg = db.session.scalar(select(CampaignGroup).where(CampaignGroup.campaign_id ==
                                                           campaign.id))
        strata = db.session.scalars(select(Stratum).where(Stratum.campaign_id == campaign.id)
                                    .order_by(Stratum.id)).all()
        last = len(questionnaire.sections) - 1
        for i in range(tokens):
            stratum = strata[i % len(strata)]
            a = Assignment(campaign_id=campaign.id, stratum_id=stratum.id,
                           unit_id=stratum.unit_id, group=RespondentGroup.CITIZEN,
                           draw_order=1 + i // len(strata), active=True, mode=cg.mode,
                           outcome=Outcome.ISSUED, serial=f"BENCH-{i:06d}")
            db.session.add(a)
            db.session.flush()
            issued = issue_for_assignment(a)
            db.session.add(FormDraft(token_id=issued.record.id,
                                     answers=_draft_answers(questionnaire, rng), page=last,
                                     submission_id=secrets.token_hex(16)))
            clear.append(issued.token)
            if i % 500 == 499:
                db.session.commit()
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return clear


def count_stored(db_url: str) -> dict[str, int]:
    """Responses, distinct submission ids, links, used tokens and drafts left, in the DB."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT (SELECT count(*) FROM responses),"
            " (SELECT count(DISTINCT submission_id) FROM responses),"
            " (SELECT count(*) FROM response_links),"
            " (SELECT count(*) FROM access_tokens WHERE used_at IS NOT NULL),"
            " (SELECT count(*) FROM form_drafts),"
            " (SELECT count(*) FROM answers)")).one()
    engine.dispose()
    keys = ("responses", "distinct_submissions", "links", "used_tokens", "drafts_left",
            "answers")
    return dict(zip(keys, row, strict=True))


# --------------------------------------------------------------------------- load

@dataclass
class ClientStats:
    """What one client thread saw."""

    accepted: list[str] = field(default_factory=list)  # submission ids confirmed
    post_ms: list[float] = field(default_factory=list)
    get_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _cookie(headers) -> str:
    for name, value in headers:
        if name.lower() == "set-cookie" and value.startswith("session="):
            return value.split(";", 1)[0]
    return ""


def _open_form(conn: http.client.HTTPConnection, token: str, fields: dict[str, str],
               stats: ClientStats) -> tuple[str, bytes, dict[str, str]] | None:
    """GET the form; returns (submission id, POST body, headers) or None on failure."""
    t0 = time.perf_counter()
    conn.request("GET", f"/f/{token}")
    resp = conn.getresponse()
    html = resp.read().decode()
    stats.get_ms.append((time.perf_counter() - t0) * 1000)
    if resp.status != 200 or "Gửi phiếu" not in html:
        stats.failures.append(f"GET {resp.status}")
        return None
    sid = SID_RE.search(html).group(1)
    body = urlencode({"csrf_token": CSRF_RE.search(html).group(1),
                      "page": PAGE_RE.search(html).group(1), "submission_id": sid,
                      "action": "submit", **fields})
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Cookie": _cookie(resp.getheaders())}
    return sid, body.encode(), headers


def _submit(conn: http.client.HTTPConnection, token: str, sid: str, body: bytes,
            headers: dict[str, str], stats: ClientStats) -> None:
    t0 = time.perf_counter()
    conn.request("POST", f"/f/{token}", body=body, headers=headers)
    resp = conn.getresponse()
    done = resp.read().decode()
    stats.post_ms.append((time.perf_counter() - t0) * 1000)
    if resp.status == 200 and "Cảm ơn" in done:
        stats.accepted.append(sid)
    else:
        stats.failures.append(f"POST {resp.status}")


def run_client(port: int, work: queue.Queue, fields: dict[str, str], stop_at: float,
               stats: ClientStats, start: threading.Barrier, phase: str = "both",
               opened: queue.Queue | None = None) -> None:
    """Work through `work` until it is empty or time is up (keep-alive connection).

    phase "both": GET then POST each token; "get": only GET, putting what the POST needs
    on `opened`; "post": POST the prepared forms taken from `work`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    start.wait()
    while time.perf_counter() < stop_at:
        try:
            item = work.get_nowait()
        except queue.Empty:
            break
        try:
            if phase == "post":
                _submit(conn, *item, stats)
                continue
            form = _open_form(conn, item, fields, stats)
            if form is None:
                continue
            if phase == "get":
                opened.put((item, *form))
            else:
                _submit(conn, item, *form, stats)
        except (OSError, http.client.HTTPException) as exc:
            stats.failures.append(type(exc).__name__)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()


def drive(port: int, work: queue.Queue, fields: dict[str, str], clients: int,
          max_seconds: float, phase: str, opened: queue.Queue | None = None,
          ) -> tuple[list[ClientStats], float]:
    """Run `clients` threads on `work`; returns their stats and the elapsed seconds."""
    stats = [ClientStats() for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop_at = time.perf_counter() + max_seconds + 5
    threads = [threading.Thread(target=run_client,
                                args=(port, work, fields, stop_at, s, barrier, phase, opened))
               for s in stats]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return stats, time.perf_counter() - started


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/f")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not become ready")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROFILE_CONF = '''
import cProfile, os
def post_fork(server, worker):
    worker._prof = cProfile.Profile()
def pre_request(worker, req):
    worker._prof.enable()
def post_request(worker, req, environ, resp):
    worker._prof.disable()
def worker_exit(server, worker):
    worker._prof.dump_stats(os.path.join({out!r}, f"worker-{{os.getpid()}}.prof"))
'''


def start_gunicorn(db_url: str, instance: str, port: int, workers: int, threads: int,
                   profile_dir: str | None) -> subprocess.Popen:
    """gunicorn on 127.0.0.1 with production settings (quiet: no access log)."""
    env = dict(os.environ, SURVEY_ENV="production", SURVEY_DATABASE_URL=db_url,
               SURVEY_SECRET_KEY="bench-secret-key-0123456789", SURVEY_QUEUE_URL="",
               SURVEY_PUBLIC_BASE_URL="http://127.0.0.1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", str(workers),
           "-k", "gthread", "--threads", str(threads), "--keep-alive", "30",
           "--log-level", "warning"]
    if profile_dir:
        conf = Path(profile_dir) / "gunicorn_profile.py"
        conf.write_text(PROFILE_CONF.format(out=profile_dir))
        cmd += ["-c", str(conf)]
    cmd.append(f"survey_app:create_app(None, {instance!r})")
    return subprocess.Popen(cmd, cwd=instance, env=env)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0 when empty)."""
    return float(np.percentile(values, q)) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a submission was lost or duplicated."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432",
                    help="PostgreSQL server (no database part)")
    ap.add_argument("--db-name", default="bench_submit")
    ap.add_argument("--tokens", type=int, default=3000)
    ap.add_argument("--units", type=int, default=20)
    ap.add_argument("--clients", type=int, default=50)
    # One thread per keep-alive connection: with fewer, gthread workers that got more of the
    # 50 connections queue them behind each other (p95 of seconds at -w 4 --threads 4).
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=25)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--post-only", action="store_true",
                    help="open every form first (GET phase), then time only the POSTs")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile every worker's requests; prints the top functions")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args(argv)

    instance = tempfile.mkdtemp(prefix="bench-submit-")
    db_url = create_database(args.server_url, args.db_name)
    proc = None
    try:
        t0 = time.perf_counter()
        tokens = prepare(db_url, instance, args.tokens, args.units, args.seed)
        print(f"prepared {len(tokens)} tokens with last-page drafts in "
              f"{time.perf_counter() - t0:.1f} s")
        from questionnaires.catalog import get_questionnaire

        fields = last_page_form(get_questionnaire(QUESTIONNAIRE))
        port = _free_port()
        proc = start_gunicorn(db_url, instance, port, args.workers, args.threads,
                              instance if args.profile else None)
        _wait_ready(port, proc)

        work: queue.Queue = queue.Queue()
        for token in tokens:
            work.put(token)
        if args.post_only:
            # The respondent opened the form earlier: GET every token first (not timed in
            # the throughput), then time the concurrent submissions alone.
            opened: queue.Queue = queue.Queue()
            get_stats, get_elapsed = drive(port, work, fields, args.clients, args.max_seconds,
                                           "get", opened)
            stats, elapsed = drive(port, opened, fields, args.clients, args.max_seconds,
                                   "post")
            for s, g in zip(stats, get_stats, strict=True):
                s.get_ms, s.failures = g.get_ms, g.failures + s.failures
            n_get = sum(len(g.get_ms) for g in get_stats)
            print(f"GET phase: opened {n_get} forms in {get_elapsed:.2f} s "
                  f"({n_get / get_elapsed:.1f} GET/s; not in the timed figures below)")
        else:
            stats, elapsed = drive(port, work, fields, args.clients, args.max_seconds,
                                   "both")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    accepted = [sid for s in stats for sid in s.accepted]
    post_ms = [v for s in stats for v in s.post_ms]
    get_ms = [v for s in stats for v in s.get_ms]
    failures = [f for s in stats for f in s.failures]
    stored = count_stored(db_url)
    figures = {
        "tokens": len(tokens), "clients": args.clients, "workers": args.workers,
        "threads": args.threads, "timed": "post" if args.post_only else "get+post",
        "seconds": round(elapsed, 2), "accepted": len(accepted),
        "failures": len(failures),
        "submissions_per_s": round(len(accepted) / elapsed, 1),
        "requests_per_s": round(
            (len(post_ms) + (0 if args.post_only else len(get_ms))) / elapsed, 1),
        "post_ms": {f"p{q}": round(percentile(post_ms, q), 1) for q in (50, 95, 99)},
        "get_ms": {f"p{q}": round(percentile(get_ms, q), 1) for q in (50, 95, 99)},
        "stored": stored,
    }
    lost = len(accepted) - stored["responses"]
    duplicated = stored["responses"] - stored["distinct_submissions"]
    sound = (lost == 0 and duplicated == 0 and len(set(accepted)) == len(accepted)
             and stored["links"] == stored["responses"] == stored["used_tokens"])
    print(f"{len(accepted)} submissions accepted in {elapsed:.2f} s by {args.clients} clients "
          f"(timed: {figures['timed']}; gunicorn -w {args.workers} -k gthread "
          f"--threads {args.threads})")
    print(f"  submissions/s: {figures['submissions_per_s']}  (HTTP requests/s: "
          f"{figures['requests_per_s']})")
    print("  POST submit latency ms: p50 {p50} · p95 {p95} · p99 {p99}".format(
        **figures["post_ms"]))
    print("  GET form latency ms:    p50 {p50} · p95 {p95} · p99 {p99}".format(
        **figures["get_ms"]))
    print(f"  failures: {len(failures)} {sorted(set(failures))[:5]}")
    print(f"  database: {stored}")
    print(f"  lost: {lost} · duplicated: {duplicated} · {'OK' if sound else 'MISMATCH'}")
    if args.json:
        print(json.dumps(figures))
    if args.profile:
        import pstats

        profs = sorted(Path(instance).glob("worker-*.prof"))
        if profs:
            st = pstats.Stats(*map(str, profs))
            st.sort_stats("cumulative").print_stats(35)
            st.sort_stats("tottime").print_stats(25)
    if not args.keep:
        # DROP DATABASE forces a checkpoint: slow when other work dirtied many pages.
        print(f"dropping scratch database {args.db_name}…", flush=True)
        drop_database(args.server_url, args.db_name)
    return 0 if sound else 1


if __name__ == "__main__":
    raise SystemExit(main())
