"""Mobile-form submission benchmark: gunicorn + PostgreSQL on loopback, 50 concurrent respondents.

What one "submission" is here: a respondent on the last page of the form (answers of the
earlier pages already saved as a draft, prepared in the database) opens the link
(GET /f/<token>: the page's CSRF token and submission id, and any cookie the server sets)
and taps "Gửi phiếu" (POST of the whole last-page form: CSRF token, page, submission id,
every answer and action=submit, with that cookie if one was set). Every client uses its own
distinct tokens, over a keep-alive connection, with a fresh cookie jar per token (a new
respondent each time). A submission counts only when the server answered with the thank-you page.

Steps:
1. create a scratch database (dropped at the end unless --keep), migrate it (Alembic);
2. inside an app context, create a campaign through the services, N assignments each with a
   token (`issue_for_assignment`) and a draft holding the answers of every page but the last;
3. start gunicorn on 127.0.0.1 with the repository's gunicorn.conf.py (production
   settings, empty queue URL) and wait until it and PostgreSQL are idle;
4. drive --clients concurrent connections, from one thread and an epoll loop (cheap: the
   load generator shares the 2 cores), until every token is submitted or --max-seconds
   passes; with --post-only, first a GET phase opens every form, then only the POSTs are
   timed;
5. report submissions/s, POST latency p50/p95/p99 (and GET), the CPU of the timed phase per
   submission (gunicorn, PostgreSQL, load generator, rest of the machine) and a reference
   CPU workload measured during the run (this shared virtual machine's speed drifts);
   then compare with the database: every confirmed submission id stored exactly once, no
   response without a confirmation (0 lost, 0 duplicated).

Usage:
    python benchmarks/bench_submit.py                     # 3000 tokens, 50 clients
    python benchmarks/bench_submit.py --tokens 6000 --workers 3 --threads 2 --keep
    python benchmarks/bench_submit.py --profile            # cProfile every request thread
    python benchmarks/bench_submit.py --post-only          # GET all forms first, time POSTs
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import selectors
import socket
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
    """Responses, distinct submission ids, links, used tokens, drafts and answers left in
    the DB, and the set of stored submission ids."""
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
        ids = set(conn.execute(text("SELECT submission_id FROM responses")).scalars())
    engine.dispose()
    keys = ("responses", "distinct_submissions", "links", "used_tokens", "drafts_left",
            "answers")
    return dict(zip(keys, row, strict=True)) | {"submission_ids": ids}


# --------------------------------------------------------------------------- load

@dataclass
class LoadStats:
    """What the clients saw."""

    accepted: list[str] = field(default_factory=list)  # submission ids confirmed
    post_ms: list[float] = field(default_factory=list)
    get_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


CSRF_B = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')
SID_B = re.compile(rb'name="submission_id" value="([^"]+)"')
PAGE_B = re.compile(rb'name="page" value="(\d+)"')
COOKIE_B = re.compile(rb"(?im)^set-cookie: (session=[^;\r\n]*)")
LENGTH_B = re.compile(rb"(?im)^content-length: *(\d+)")
SUBMIT_B = "Gửi phiếu".encode()
THANKS_B = "Cảm ơn".encode()


class _Client:
    """One respondent's keep-alive connection, driven by the event loop of `drive`: it sends
    one request, then waits for the whole response (status line, headers, Content-Length
    body) before sending the next."""

    __slots__ = ("sock", "buf", "token", "form", "kind", "t0", "port")

    def __init__(self, port: int):
        self.port = port
        self.sock = None
        self.buf = bytearray()
        self.token = self.form = self.kind = None
        self.t0 = 0.0

    def connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, kind: str, request: bytes) -> None:
        self.kind, self.t0 = kind, time.perf_counter()
        self.buf.clear()
        self.sock.sendall(request)

    def response(self) -> tuple[int, bytes, bytes] | None:
        """(status, head, body) once the whole response is in the buffer, else None."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buf[:end])
        length = LENGTH_B.search(head)
        if length is None:
            raise OSError("response without Content-Length")
        if len(self.buf) < end + 4 + int(length.group(1)):
            return None
        return int(head[9:12]), head, bytes(self.buf[end + 4:])


def drive(port: int, work: list, fields: dict[str, str], clients: int, max_seconds: float,
          phase: str, opened: list | None = None) -> tuple[LoadStats, float]:
    """`clients` concurrent keep-alive connections working through `work` until it is
    empty or time is up; returns what they saw and the elapsed seconds.

    One thread and an epoll loop drive every connection: the load generator shares the
    server's cores, so it must cost little CPU (no thread per client contending for the
    GIL). phase "both": GET the form, then POST its last page with the CSRF token, page and
    submission id read from the HTML and the session cookie if one was set; "get": only the
    GETs, putting what the POST needs on `opened`; "post": POST the forms prepared by a
    "get" phase."""
    stats = LoadStats()
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    fixed = urlencode(fields).encode()  # the answers of the last page, the same every time
    sel = selectors.DefaultSelector()
    conns = [_Client(port) for _ in range(min(clients, len(work)))]
    pending = list(reversed(work))

    def post_request(token: str, form: tuple[str, bytes, bytes]) -> bytes:
        _, body, cookie = form
        return (f"POST /f/{token} HTTP/1.1\r\n".encode() + host
                + b"Content-Type: application/x-www-form-urlencoded\r\n"
                + (b"Cookie: " + cookie + b"\r\n" if cookie else b"")
                + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    def next_request(c: _Client) -> bool:
        if not pending or time.perf_counter() > stop_at:
            return False
        item = pending.pop()
        if phase == "post":
            c.token, c.form = item
            c.send("post", post_request(*item))
        else:
            c.token = item
            c.send("get", f"GET /f/{item} HTTP/1.1\r\n".encode() + host + b"\r\n")
        return True

    def finished(c: _Client, status: int, head: bytes, body: bytes) -> bool:
        """Record a response; True when it sent the POST that follows a GET."""
        ms = (time.perf_counter() - c.t0) * 1000
        if c.kind == "post":
            stats.post_ms.append(ms)
            if status == 200 and THANKS_B in body:
                stats.accepted.append(c.form[0])
            else:
                stats.failures.append(f"POST {status}")
            return False
        stats.get_ms.append(ms)
        cookie = COOKIE_B.search(head)  # sent back when set, as a browser would
        if status != 200 or SUBMIT_B not in body:
            stats.failures.append(f"GET {status}")
            return False
        sid = SID_B.search(body).group(1)
        form_body = (urlencode({"csrf_token": CSRF_B.search(body).group(1),
                                "page": PAGE_B.search(body).group(1), "submission_id": sid,
                                "action": "submit"}).encode() + b"&" + fixed)
        form = (sid.decode(), form_body, cookie.group(1) if cookie else b"")
        if phase == "get":
            opened.append((c.token, form))
            return False
        c.form = form
        c.send("post", post_request(c.token, form))
        return True

    for c in conns:
        c.connect()
    started = time.perf_counter()
    stop_at = started + max_seconds
    active = 0
    for c in conns:
        if next_request(c):
            sel.register(c.sock, selectors.EVENT_READ, c)
            active += 1
    while active:
        events = sel.select(timeout=1.0)
        if not events and time.perf_counter() > stop_at + 30:
            stats.failures.extend(["timeout"] * active)
            break
        for key, _ in events:
            c = key.data
            try:
                chunk = c.sock.recv(262144)
                if not chunk:
                    raise OSError("connection closed by the server")
                c.buf += chunk
                done = c.response()
                if done is None:
                    continue
                if finished(c, *done):
                    continue  # the POST of this form is on its way
            except OSError as exc:
                stats.failures.append(type(exc).__name__)
                sel.unregister(c.sock)
                c.sock.close()
                c.connect()
                sel.register(c.sock, selectors.EVENT_READ, c)
            if not next_request(c):
                sel.unregister(c.sock)
                active -= 1
    elapsed = time.perf_counter() - started
    for c in conns:
        c.sock.close()
    sel.close()
    return stats, elapsed


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


GUNICORN_CONF = REPO / "gunicorn.conf.py"
# --profile: the production settings plus one CPU-time profiler per request thread (a
# cProfile profiler only sees the thread that enabled it), dumped when the worker exits.
PROFILE_CONF = """
import cProfile, os, threading, time
exec(compile(open({conf!r}).read(), {conf!r}, "exec"))
_local = threading.local()
_profilers = []
def pre_request(worker, req):
    prof = getattr(_local, "prof", None)
    if prof is None:
        prof = _local.prof = cProfile.Profile(time.thread_time)
        _profilers.append(prof)
    prof.enable()
def post_request(worker, req, environ, resp):
    _local.prof.disable()
def worker_exit(server, worker):
    for i, prof in enumerate(_profilers):
        prof.dump_stats(os.path.join({out!r}, f"worker-{{os.getpid()}}-{{i}}.prof"))
"""


def start_gunicorn(db_url: str, instance: str, port: int, workers: int | None,
                   threads: int | None, profile_dir: str | None,
                   conf: Path = GUNICORN_CONF) -> subprocess.Popen:
    """gunicorn on 127.0.0.1 with the production settings of `conf` (worker and thread
    counts through its environment variables, so the database pool follows the threads),
    quiet: no access log."""
    env = dict(os.environ, SURVEY_ENV="production", SURVEY_DATABASE_URL=db_url,
               SURVEY_SECRET_KEY="bench-secret-key-0123456789", SURVEY_QUEUE_URL="",
               SURVEY_PUBLIC_BASE_URL="http://127.0.0.1", PYTHONPATH=str(REPO))
    env.pop("SURVEY_DB_POOL_SIZE", None)
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    if threads:
        env["GUNICORN_THREADS"] = str(threads)
    if profile_dir:
        production = conf
        conf = Path(profile_dir) / "gunicorn_profile.py"
        conf.write_text(PROFILE_CONF.format(conf=str(production), out=profile_dir))
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(conf), "-b", f"127.0.0.1:{port}",
           "--log-level", "warning", f"survey_app:create_app(None, {instance!r})"]
    return subprocess.Popen(cmd, cwd=instance, env=env)


def server_settings(workers: int | None, threads: int | None,
                    conf: Path = GUNICORN_CONF) -> tuple[int, int]:
    """The (workers, threads) the settings file `conf` gives with these overrides."""
    import runpy

    saved = dict(os.environ)
    try:
        if workers:
            os.environ["WEB_CONCURRENCY"] = str(workers)
        if threads:
            os.environ["GUNICORN_THREADS"] = str(threads)
        settings = runpy.run_path(str(conf))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return settings["workers"], settings["threads"]


def _reference_work() -> None:
    d: dict = {}
    for i in range(20_000):
        d[i % 1000] = str(i)
    json.dumps(d)


class SpeedProbe(threading.Thread):
    """Measures, twice a second during the timed phase, the CPU time of a fixed small
    pure-Python workload (about 3 ms on a fast host). This virtual machine's speed drifts by
    up to 2x over minutes (a shared host), so each run reports it next to its figures. Its
    own CPU (about 1 % of a core) is taken off the load generator's."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.cpu = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            t0 = time.thread_time()
            _reference_work()
            self.samples.append(time.thread_time() - t0)
        self.cpu = sum(self.samples)

    def stop(self) -> float:
        """Stop; the median CPU ms of the workload (0 without a sample)."""
        self.done.set()
        self.join()
        return round(1000 * float(np.median(self.samples)), 2) if self.samples else 0.0


def wait_idle(server_pid: int, db_name: str, timeout: float = 60) -> None:
    """Wait until gunicorn and PostgreSQL stop using CPU (every worker booted, no
    checkpoint or vacuum of the preparation running), so that no start-up work falls into
    the timed phase."""
    def busy() -> float:
        cpu = cpu_snapshot(server_pid, db_name)
        return cpu.get("gunicorn", 0.0) + cpu.get("postgres", 0.0)

    deadline = time.time() + timeout
    last = busy()
    while time.time() < deadline:
        time.sleep(0.5)
        now = busy()
        if now - last < 0.02:
            return
        last = now


def _cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU seconds of a live process, and with `children` of its exited,
    reaped children (a restarted worker); 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu(pid: int, db_name: str) -> float:
    """CPU seconds of a PostgreSQL process working for the benchmark: a backend connected to
    its database, a shared process (checkpointer, WAL writer…), or the postmaster with the
    backends that exited (a connection closed by the pool); 0 for another database's
    backend."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            title = fh.read().decode(errors="replace")
    except OSError:
        return 0.0
    if not title.startswith("postgres:"):  # the postmaster keeps its own command line
        return _cpu_seconds(pid, children=True)
    backend = re.search(r"\d\)|\[local\]", title)  # "user db 127.0.0.1(5432) …"
    return _cpu_seconds(pid, children=False) if not backend or f" {db_name} " in title else 0.0


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    raw = fh.read()
            except OSError:
                continue
            comm = raw[raw.index("(") + 1:raw.rindex(")")]
            found.append((int(entry), int(raw.rsplit(")", 1)[1].split()[1]), comm))
    return found


def cpu_snapshot(server_pid: int, db_name: str) -> dict[str, float]:
    """CPU seconds so far of the whole machine, gunicorn (master and workers), PostgreSQL
    (the backends on `db_name`, the shared processes, exited backends) and this load
    generator, to split the CPU of a timed phase between them (Linux only). Live backends
    of other databases count as "other"."""
    if not Path("/proc/self/stat").exists():
        return {}
    procs = _processes()
    own = os.times()
    with open("/proc/stat") as fh:
        ticks = [int(v) for v in fh.readline().split()[1:]]
    busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    return {
        "machine": busy,
        "gunicorn": sum(_cpu_seconds(pid) for pid, ppid, _ in procs
                        if pid == server_pid or ppid == server_pid),
        "postgres": sum(_postgres_cpu(pid, db_name) for pid, _, comm in procs
                        if comm == "postgres"),
        "client": own.user + own.system,
    }


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
    ap.add_argument("--workers", type=int, default=None,
                    help="gunicorn workers (default: gunicorn.conf.py's)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads per worker (default: gunicorn.conf.py's)")
    ap.add_argument("--gunicorn-conf", type=Path, default=GUNICORN_CONF,
                    help="gunicorn settings file (default: the repository's gunicorn.conf.py)")
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
        args.workers, args.threads = server_settings(args.workers, args.threads,
                                                     args.gunicorn_conf)
        proc = start_gunicorn(db_url, instance, port, args.workers, args.threads,
                              instance if args.profile else None, args.gunicorn_conf)
        _wait_ready(port, proc)
        wait_idle(proc.pid, args.db_name)

        if args.post_only:
            # The respondent opened the form earlier: GET every token first (not timed in
            # the throughput), then time the concurrent submissions alone.
            opened: list = []
            get_stats, get_elapsed = drive(port, tokens, fields, args.clients,
                                           args.max_seconds, "get", opened)
            probe = SpeedProbe()
            probe.start()
            cpu_before = cpu_snapshot(proc.pid, args.db_name)
            stats, elapsed = drive(port, opened, fields, args.clients, args.max_seconds,
                                   "post")
            cpu_after = cpu_snapshot(proc.pid, args.db_name)
            speed = probe.stop()
            stats.get_ms, stats.failures = get_stats.get_ms, get_stats.failures + stats.failures
            print(f"GET phase: opened {len(opened)} forms in {get_elapsed:.2f} s "
                  f"({len(get_stats.get_ms) / get_elapsed:.1f} GET/s; not in the timed "
                  "figures below)")
        else:
            probe = SpeedProbe()
            probe.start()
            cpu_before = cpu_snapshot(proc.pid, args.db_name)
            stats, elapsed = drive(port, tokens, fields, args.clients, args.max_seconds,
                                   "both")
            cpu_after = cpu_snapshot(proc.pid, args.db_name)
            speed = probe.stop()
        if cpu_after:  # the probe's CPU is not the load generator's
            cpu_after["client"] -= probe.cpu
            cpu_after["machine"] -= probe.cpu
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    accepted, post_ms, get_ms = stats.accepted, stats.post_ms, stats.get_ms
    failures = stats.failures
    stored = count_stored(db_url)
    stored_ids = stored.pop("submission_ids")
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
        # CPU of the timed phase per accepted submission, by process group.
        "cpu_ms_per_submission": {
            k: round(1000 * (cpu_after[k] - cpu_before[k]) / max(len(accepted), 1), 2)
            for k in cpu_before},
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "reference_ms": speed,
    }
    # Lost: confirmed to a client but not stored; duplicated: stored more than once, or
    # stored without a confirmation (the client saw an error for a response that was kept).
    lost = len(set(accepted) - stored_ids)
    duplicated = (stored["responses"] - stored["distinct_submissions"]
                  + len(stored_ids - set(accepted)))
    sound = (lost == 0 and duplicated == 0 and len(set(accepted)) == len(accepted)
             and stored["links"] == stored["responses"] == stored["used_tokens"]
             == len(accepted))
    print(f"{len(accepted)} submissions accepted in {elapsed:.2f} s by {args.clients} clients "
          f"(timed: {figures['timed']}; gunicorn -w {args.workers} -k gthread "
          f"--threads {args.threads})")
    print(f"  submissions/s: {figures['submissions_per_s']}  (HTTP requests/s: "
          f"{figures['requests_per_s']})")
    print("  POST submit latency ms: p50 {p50} · p95 {p95} · p99 {p99}".format(
        **figures["post_ms"]))
    print("  GET form latency ms:    p50 {p50} · p95 {p95} · p99 {p99}".format(
        **figures["get_ms"]))
    cpu = dict(figures["cpu_ms_per_submission"])
    if cpu:
        machine = cpu.pop("machine")
        print("  CPU ms per submission: " + " · ".join(f"{k} {v}" for k, v in cpu.items())
              + f" · other processes {machine - sum(cpu.values()):.2f} · machine busy "
              f"{machine:.2f} of {1000 * os.cpu_count() * elapsed / max(len(accepted), 1):.2f}"
              f" ({os.cpu_count()} cores × wall time)")
    print(f"  load average after the run: {figures['load_average']} · reference workload "
          f"{speed} ms CPU during the run (about 3 on a fast host; lower is faster)")
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
