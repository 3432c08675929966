"""Benchmark of the sampling hot path.

    python benchmarks/bench_sampling.py --part core --rows 5000000

``core``: the pure core on a synthetic national frame (3,321 communes × 5 groups = 16,605
strata): eligibility filters, frame digests and the stratified draw with reserves.
``all``: the core, then the end-to-end database half (``bench_end_to_end``): a scratch
PostgreSQL database holding a national campaign (3,321 communes × 5 groups) and a frame of
``--rows`` entries loaded with COPY (not timed), then ``draw_campaign`` + commit timed phase by
phase (read the frame, eligibility, draw, write the assignments, update the strata), and the
written sample checked against the strata's figures.

    python benchmarks/bench_sampling.py --part all --rows 5000000 [--profile] [--runs 3]

The database is reached as ``postgres@127.0.0.1:5432`` unless ``--pg-url`` says otherwise; the
scratch database ``bench_sampling`` is dropped at the end (``--keep-db`` keeps it).
``--reuse-db`` (implies ``--keep-db``) reuses a kept scratch database when its schema is the
current migration and it holds the same frame: the earlier draws are removed and the tables
vacuumed (not timed) instead of rebuilding the frame (~2 min).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import os
import pstats
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar

import numpy as np

from sampling import (
    DedupScope,
    EligibilityRules,
    FrameColumns,
    StratumSpec,
    check_eligibility,
    draw_all,
    frame_digests,
    seed_from_public_value,
)

T = TypeVar("T")
GROUP_QUOTAS = ((15, 0), (5, 2), (3, 1), (26, 10), (10, 5))  # (quota, reserves) per group


def _timed(label: str, fn: Callable[[], T], timings: dict[str, tuple[float, float]]) -> T:
    """Run ``fn``; keep the best (wall, CPU) seconds seen under ``label``."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    best = timings.get(label)
    if best is None or wall < best[0]:
        timings[label] = (wall, cpu)
    return out


def synthetic_frame(
    rows: int, units: int, groups: int, rng: np.random.Generator, hash_keys: bool = True
) -> tuple[FrameColumns, list[StratumSpec]]:
    """A random frame, rows in random order, about 10 % failing some filter.

    ``hash_keys``: 63-bit hash keys plus a content fingerprint per row, as the service stores
    them; otherwise small database-like ids and no fingerprint (the cheapest case).
    """
    n_strata = units * groups
    strata = [
        StratumSpec(f"{u:05d}:{g}", *GROUP_QUOTAS[g % len(GROUP_QUOTAS)])
        for u in range(units)
        for g in range(groups)
    ]
    if hash_keys:
        key = rng.integers(0, 2**63 - 1, rows, dtype=np.int64)  # collisions: ~1e-6
        fingerprint = rng.integers(0, 2**63 - 1, rows, dtype=np.int64)
    else:
        key = rng.permutation(np.arange(1, rows + 1, dtype=np.int64) * 3 + 1_000_000)
        fingerprint = None
    stratum = rng.integers(0, n_strata, rows, dtype=np.int32)
    phone = rng.integers(84_300_000_000, 84_999_999_999, rows, dtype=np.int64)
    phone[rng.random(rows) < 0.01] = 0  # missing phone
    dup = rng.random(rows) < 0.01  # same person listed twice
    phone[dup] = phone[rng.integers(0, rows, int(dup.sum()))]
    day0 = np.datetime64("2025-01-01")
    dates = day0 + rng.integers(-20, 365, rows).astype("timedelta64[D]")
    birth = rng.integers(1940, 2010, rows, dtype=np.int32)
    birth[rng.random(rows) < 0.3] = 0  # unknown birth year
    frame = FrameColumns(key, stratum, phone=phone, transaction_date=dates, birth_year=birth,
                         fingerprint=fingerprint)
    return frame, strata


def bench_core(
    rows: int = 5_000_000,
    units: int = 3321,
    groups: int = 5,
    repeat: int = 3,
    hash_keys: bool = True,
) -> dict[str, tuple[float, float]]:
    """Time eligibility + draw_all (digests included) on a synthetic frame.

    Prints and returns the best of ``repeat`` runs as (wall, CPU) seconds per step. CPU time
    counts every thread, so CPU > wall means work overlapped on a second core.
    """
    rng = np.random.default_rng(20250101)
    frame, strata = synthetic_frame(rows, units, groups, rng, hash_keys)
    previous = rng.choice(frame.phone, min(50_000, rows), replace=False)
    rules = EligibilityRules.for_campaign(
        phone_mode=True,
        period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2025, 12, 31),
        reference_year=2025,
        excluded_phones=previous,
        one_per_phone=DedupScope.FRAME,
    )
    seed = seed_from_public_value("Xổ số kiến thiết 01/01/2026: 123456")
    timings: dict[str, tuple[float, float]] = {}
    for _ in range(repeat):
        step: dict[str, tuple[float, float]] = {}
        elig = _timed("eligibility", partial(check_eligibility, frame, rules), step)
        _timed("digests only", partial(frame_digests, frame, strata, elig.mask), step)
        result = _timed("draw_all (incl. digests)",
                        partial(draw_all, frame, strata, seed, elig.mask), step)
        step["core = eligibility + draw_all"] = (
            step["eligibility"][0] + step["draw_all (incl. digests)"][0],
            step["eligibility"][1] + step["draw_all (incl. digests)"][1],
        )
        for label, value in step.items():
            if label not in timings or value[0] < timings[label][0]:
                timings[label] = value

    kind = "63-bit hash keys + fingerprints" if hash_keys else "id keys, no fingerprint"
    print(f"frame: {rows:,} rows ({kind}), {len(strata):,} strata, "
          f"{elig.eligible_count:,} eligible")
    for reason, count in elig.counts.items():
        print(f"  excluded {reason.name.lower():<20} {count:>10,}")
    print(
        f"drawn: {result.selected_keys.size:,} selected, {result.reserve_keys.size:,} reserves, "
        f"{int((result.shortfall > 0).sum()):,} strata short by {int(result.shortfall.sum()):,}"
    )
    print(f"best of {repeat}: {'wall':>9} {'CPU':>9} {'rows/s (wall)':>14}")
    for label, (wall, cpu) in timings.items():
        print(f"  {label:<30} {wall * 1000:7.1f} ms {cpu * 1000:6.1f} ms "
              f"{rows / wall / 1e6:7.1f} M")
    return timings


# --- end to end: PostgreSQL ------------------------------------------------------------------

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
SCRATCH_DB = "bench_sampling"
# (group, questionnaire, mode, quota, reserves, share of the frame's rows)
E2E_GROUPS = (
    ("citizen", "sipas-citizen@2026.1", "phone", 26, 10, 0.70),
    ("business", "sipas-business@2026.1", "postal", 10, 5, 0.18),
    ("hdnd_delegate", "par-hdnd@2026.1", "enumerator", 15, 5, 0.05),
    ("leader", "par-leader@2026.1", "enumerator", 3, 1, 0.02),
    ("civil_servant", "par-civil-servant@2026.1", "enumerator", 5, 2, 0.05),
)
SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ")
MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc")
GIVEN = ("An", "Bình", "Cường", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hùng", "Hương", "Lan",
         "Linh", "Long", "Mai", "Nam", "Phong", "Phương", "Sơn", "Thảo", "Trang", "Tuấn", "Yến")
REPLACED_SHARE = 0.01  # rows left in replaced batches: must not be drawn
# Functions of survey_app.draws.services timed one by one (draw_campaign looks them up as
# module globals at call time, so wrapping the module attribute times the real call).
E2E_PHASES = (
    ("fieldwork_started", "check fieldwork not started"),
    ("load_campaign_frame", "read frame (strata + entries)"),
    ("eligibility_mask", "eligibility"),
    ("draw_all", "draw_all (digests included)"),
    ("_delete_previous_draw", "delete previous assignments"),
    ("_write_assignments", "write assignments (binary COPY)"),
    ("_update_strata", "update strata"),
)


@contextlib.contextmanager
def _scratch_database(server_url: str, name: str, keep: bool, reuse: bool = False
                      ) -> Iterator[tuple[str, bool]]:
    """Create an empty database ``name`` (dropping a stale one) and drop it afterwards.

    Yields (url, reused): with ``reuse`` an existing database is kept as it is.
    """
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        reused = bool(reuse and exists)
        if not reused:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server_url}/{name}", reused
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _national_campaign(units: int) -> Any:
    """A campaign rating ``units`` wards of the current tree with the five groups."""
    from sqlalchemy import select

    from questionnaires.model import GroupPlan, Mode, Plan, RespondentGroup, UnitRef
    from survey_app.extensions import db
    from survey_app.models import Unit, UnitLevel
    from survey_app.services.campaigns import create_campaign
    from survey_app.services.units import CURRENT_SCHEME, load_current_tree

    load_current_tree()
    codes = db.session.scalars(
        select(Unit.code)
        .where(Unit.scheme == CURRENT_SCHEME, Unit.level != UnitLevel.PROVINCE)
        .order_by(Unit.code)
        .limit(units)
    ).all()
    groups = tuple(
        GroupPlan(RespondentGroup(g), questionnaire, Mode(mode), quota, reserves)
        for g, questionnaire, mode, quota, reserves, _ in E2E_GROUPS
    )
    plan = Plan(
        key="bench-national-2026", name="Khảo sát toàn quốc 2026 (benchmark)", year=2026,
        period_start=dt.date(2025, 10, 1), period_end=dt.date(2026, 9, 30), groups=groups,
        units=tuple(UnitRef(code) for code in codes), seed=20260101,
        extra={"unit_scheme": CURRENT_SCHEME},
    )
    campaign = create_campaign(plan)
    db.session.commit()
    return campaign


def _copy_text(raw: Any, table: str, columns: Sequence[str], data: Sequence[list[str]]) -> None:
    """COPY columns of pre-formatted text values (no escaping needed) in chunks."""
    names = ", ".join(f'"{c}"' for c in columns)
    n = len(data[0])
    step = 250_000
    with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for a in range(0, n, step):
            part = [col[a : a + step] for col in data]
            copy.write("\n".join(map("\t".join, zip(*part, strict=True))) + "\n")


def _load_frame(campaign: Any, rows: int, rng: np.random.Generator) -> dict[str, int]:
    """Write import batches and ``rows`` frame entries with COPY (setup, not timed)."""
    from sqlalchemy import select, text

    from survey_app.extensions import db
    from survey_app.frames.packs import NO_DATE, pack_rows
    from survey_app.models import BatchStatus, ImportBatch, Stratum

    strata = db.session.execute(
        select(Stratum.id, Stratum.unit_id, Stratum.group)
        .where(Stratum.campaign_id == campaign.id).order_by(Stratum.id)
    ).all()
    n_strata = len(strata)
    s_unit = np.array([s.unit_id for s in strata], dtype=np.int64)
    s_group = [s.group.value for s in strata]
    raw = db.session.connection().connection.driver_connection
    batch_cols = ("campaign_id", "unit_id", "group", "status", "filename", "file_sha256",
                  "stored_path", "sheet", "accepted", "rejected", "duplicates", "warnings",
                  "preview", "used_by_draw", "created_at")
    statuses = (BatchStatus.ACTIVE.value, BatchStatus.REPLACED.value)
    batches: list[list[str]] = [[] for _ in batch_cols]
    for status in statuses:  # one active and one replaced list per stratum
        for h in range(n_strata):
            for col, value in zip(batches, (
                    str(campaign.id), str(s_unit[h]), s_group[h], status, "danh-sach.xlsx",
                    f"{h:064x}", "", "", "0", "0", "0", "0", "{}", "f",
                    "2026-01-15 00:00:00+00"), strict=True):
                col.append(value)
    _copy_text(raw, ImportBatch.__tablename__, batch_cols, batches)
    ids = db.session.execute(
        select(ImportBatch.id).where(ImportBatch.campaign_id == campaign.id)
        .order_by(ImportBatch.id)).scalars().all()
    active_batch = np.array(ids[:n_strata], dtype=np.int64)  # COPY keeps the row order
    replaced_batch = np.array(ids[n_strata:], dtype=np.int64)

    # Rows per stratum: group by its share of the frame, unit uniformly.
    share = np.array([g[5] for g in E2E_GROUPS])
    g_of_stratum = np.array([[g[0] for g in E2E_GROUPS].index(x) for x in s_group])
    p = share[g_of_stratum]
    stratum = rng.choice(n_strata, rows, p=p / p.sum())
    replaced = rng.random(rows) < REPLACED_SHARE
    batch = np.where(replaced, replaced_batch[stratum], active_batch[stratum])
    # An import writes a list's rows together (one COPY per file): rows in batch order.
    by_batch = np.argsort(batch, kind="stable")
    stratum, replaced, batch = stratum[by_batch], replaced[by_batch], batch[by_batch]
    phone = rng.integers(84_300_000_000, 84_999_999_999, rows, dtype=np.int64)
    dup = rng.random(rows) < 0.01  # the same person listed twice
    phone[dup] = phone[rng.integers(0, rows, int(dup.sum()))]
    no_phone = rng.random(rows) < 0.02
    dates = np.datetime64("2025-09-01") + rng.integers(0, 420, rows).astype("timedelta64[D]")
    no_date = rng.random(rows) < 0.2
    birth = rng.integers(1940, 2012, rows)
    no_birth = rng.random(rows) < 0.3
    names = [f"{a} {b} {c}" for a in SURNAMES for b in MIDDLE for c in GIVEN]
    places = [f"Thôn {i}, xã Quảng {i % 37}" for i in range(200)]
    procedures = ["Đăng ký khai sinh", "Chứng thực bản sao từ bản chính", "Đăng ký kết hôn",
                  "Cấp giấy chứng nhận quyền sử dụng đất", "Đăng ký hộ kinh doanh"]

    def pick(values: list[str]) -> list[str]:
        return np.array(values, dtype=object)[rng.integers(0, len(values), rows)].tolist()

    keys = rng.integers(0, 2**63 - 1, rows, dtype=np.int64)
    fingerprints = rng.integers(0, 2**63 - 1, rows, dtype=np.int64)
    null = "\\N"
    g_names = np.array(s_group, dtype=object)
    columns = {
        "batch_id": list(map(str, batch.tolist())),
        "campaign_id": [str(campaign.id)] * rows,
        "unit_id": list(map(str, s_unit[stratum].tolist())),
        "group": g_names[stratum].tolist(),
        "source_row": list(map(str, range(2, rows + 2))),
        "stable_key": list(map(str, keys.tolist())),
        "fingerprint": list(map(str, fingerprints.tolist())),
        "name": pick(names),
        "phone": np.where(no_phone, null, np.char.add("+", phone.astype(str))).tolist(),
        "phone_kind": np.where(no_phone, "none", "mobile").tolist(),
        "procedure": pick(procedures),
        "address": pick(places),
        "position": [""] * rows,
        "workplace": [""] * rows,
        "transaction_date": np.where(no_date, null, np.datetime_as_string(dates)).tolist(),
        "birth_year": np.where(no_birth, null, birth.astype(str)).tolist(),
        "transactions": ["1"] * rows,
    }
    before = raw.execute("SELECT pg_sequence_last_value("
                         "pg_get_serial_sequence('frame_entries', 'id'))").fetchone()[0] or 0
    _copy_text(raw, "frame_entries", list(columns), list(columns.values()))
    # The packed copies the import writes with each list (survey_app/frames/packs.py).
    last = raw.execute("SELECT currval(pg_get_serial_sequence('frame_entries', 'id'))"
                       ).fetchone()[0]
    assert last - before == rows, "frame entry ids not consecutive"
    days = np.where(no_date, NO_DATE, (dates - np.datetime64("1970-01-01")).astype(np.int64))
    data = pack_rows(keys, fingerprints, np.where(no_phone, 0, phone), days,
                     np.where(no_birth, 0, birth))
    size = len(data) // rows if rows else 0
    edges = np.flatnonzero(np.diff(batch)) + 1
    starts = np.concatenate([[0], edges]).tolist()
    ends = np.concatenate([edges, [rows]]).tolist()
    with raw.cursor() as cur:
        cur.executemany(
            "INSERT INTO frame_packs (batch_id, part, campaign_id, first_id, rows, data) "
            "VALUES (%s, 0, %s, %s, %s, %b)",
            [(int(batch[a]), campaign.id, before + 1 + a, z - a, data[a * size:z * size])
             for a, z in zip(starts, ends, strict=True)])
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) frame_entries, import_batches, frame_packs"))
    return {"strata": n_strata, "batches": 2 * n_strata, "rows": rows,
            "active_rows": int((~replaced).sum())}


def _reusable_campaign(rows: int) -> Any:
    """The kept database's benchmark campaign, emptied of its draws, when the schema is the
    current migration and the frame has ``rows`` entries; None otherwise (rebuild)."""
    from alembic.script import ScriptDirectory
    from flask import current_app
    from sqlalchemy import func, select, text

    from survey_app.extensions import db
    from survey_app.models import Campaign, FrameEntry

    migrate = current_app.extensions["migrate"]
    head = ScriptDirectory.from_config(migrate.migrate.get_config()).get_current_head()
    try:
        current = db.session.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:  # noqa: BLE001 - no schema yet
        db.session.rollback()
        return None
    campaign = db.session.scalar(select(Campaign).where(Campaign.key == "bench-national-2026"))
    if current != head or campaign is None or db.session.scalar(
            select(func.count()).select_from(FrameEntry)
            .where(FrameEntry.campaign_id == campaign.id)) != rows:
        db.session.rollback()
        return None
    # Back to the state right after setup: no draw, no assignment, no figures.
    db.session.execute(text("TRUNCATE assignments, access_tokens, draws, audit_log CASCADE"))
    db.session.execute(text(
        "UPDATE strata SET frame_count = NULL, eligible_count = NULL, drawn_count = NULL, "
        "shortfall = NULL, frame_digest = NULL, drawn_at = NULL"))
    db.session.execute(text("UPDATE import_batches SET used_by_draw = false"))
    db.session.commit()
    return campaign


def _prepare_database() -> None:
    """Vacuum and checkpoint (not timed) so that every run starts from the same state."""
    from sqlalchemy import text

    from survey_app.extensions import db

    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) assignments, strata, import_batches"))
        conn.execute(text("CHECKPOINT"))


@contextlib.contextmanager
def _phase_timer(timings: dict[str, float]) -> Iterator[None]:
    """Time the helpers of ``draw_campaign`` by wrapping them in their module."""
    from survey_app.draws import services

    originals = {name: getattr(services, name) for name, _ in E2E_PHASES}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0

        return timed

    try:
        for name, fn in originals.items():
            setattr(services, name, wrap(name, fn))
        yield
    finally:
        for name, fn in originals.items():
            setattr(services, name, fn)


def _check_sample(campaign: Any) -> list[str]:
    """Problems of the written sample (empty when it matches the strata's figures and the
    latest draw's record)."""
    from sqlalchemy import and_, func, select

    from survey_app.draws.services import latest_draw
    from survey_app.extensions import db
    from survey_app.models import Assignment, BatchStatus, FrameEntry, ImportBatch, Stratum

    summary = latest_draw(campaign).summary
    problems = []
    counts = {(sid, res): n for sid, res, n in db.session.execute(
        select(Assignment.stratum_id, Assignment.is_reserve, func.count())
        .where(Assignment.campaign_id == campaign.id)
        .group_by(Assignment.stratum_id, Assignment.is_reserve))}
    total = 0
    for s in db.session.scalars(select(Stratum).where(Stratum.campaign_id == campaign.id)):
        main_n, reserve_n = counts.get((s.id, False), 0), counts.get((s.id, True), 0)
        want_main = min(s.quota, s.eligible_count)
        want_reserve = min(s.reserves, s.eligible_count - want_main)
        total += main_n + reserve_n
        if (main_n, reserve_n, s.drawn_count, s.shortfall) != (
                want_main, want_reserve, want_main, max(s.quota - s.eligible_count, 0)):
            problems.append(f"stratum {s.id}: {main_n}+{reserve_n} drawn, eligible "
                            f"{s.eligible_count}, quota {s.quota}+{s.reserves}")
    if total != summary["assignments"]:
        problems.append(f"{total} assignments stored, {summary['assignments']} reported")
    # Every assignment points to an entry of its own unit and group, from an active list.
    stray = db.session.scalar(
        select(func.count()).select_from(Assignment)
        .outerjoin(FrameEntry, FrameEntry.id == Assignment.frame_entry_id)
        .outerjoin(ImportBatch, and_(ImportBatch.id == FrameEntry.batch_id,
                                     ImportBatch.status == BatchStatus.ACTIVE))
        .where(Assignment.campaign_id == campaign.id,
               (FrameEntry.id.is_(None)) | (ImportBatch.id.is_(None))
               | (FrameEntry.unit_id != Assignment.unit_id)
               | (FrameEntry.group != Assignment.group)))
    if stray:
        problems.append(f"{stray} assignments point to a wrong or inactive frame entry")
    return problems


def _timed_draw(campaign: Any, profile: bool) -> dict[str, Any]:
    """One ``draw_campaign`` + commit, phase by phase (seconds)."""
    from survey_app.draws import services
    from survey_app.extensions import db

    timings: dict[str, Any] = {}
    profiler = cProfile.Profile() if profile else None
    with _phase_timer(timings):
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        record = services.draw_campaign(campaign)
        t1 = time.perf_counter()
        db.session.commit()
        t2 = time.perf_counter()
        if profiler:
            profiler.disable()
    timings["commit"] = t2 - t1
    timings["total"] = t2 - t0
    timed = sum(v for k, v in timings.items() if k not in ("commit", "total"))
    timings["other (draw record, audit, flush)"] = t1 - t0 - timed
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    summary = record.summary
    timings["_summary"] = (f"{summary['assignments']:,} assignments from "
                           f"{summary['frame_rows']:,} frame rows")
    return timings


def bench_end_to_end(
    rows: int = 5_000_000,
    units: int = 3321,
    server_url: str = PG_URL,
    profile: bool = False,
    keep_db: bool = False,
    reuse_db: bool = False,
    runs: int = 1,
) -> dict[str, float]:
    """Time ``draw_campaign`` + commit of a national campaign on PostgreSQL.

    Builds a scratch database (migrated, current unit tree, campaign of ``units`` wards × 5
    groups, ``rows`` frame entries: none of that is timed), draws twice (a first draw, then a
    redraw that also deletes the first one's assignments), prints the phases of each and
    checks the sample; ``runs`` times, the draws removed in between (not timed). Returns the
    best first draw's phases and ``total`` in seconds.
    """
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from survey_app import create_app
    from survey_app.extensions import db
    from survey_app.models import Stratum

    rng = np.random.default_rng(20260101)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, \
            _scratch_database(server_url, SCRATCH_DB, keep_db or reuse_db, reuse_db) as (
                url, reused):
        app = create_app({"DATABASE_URL": url, "QUEUE_IMMEDIATE": True, "SECRET_KEY": "x" * 32},
                         instance_path=tmp)
        with app.app_context():
            t0 = time.perf_counter()
            campaign = _reusable_campaign(rows) if reused else None
            if campaign is None:
                if reused:  # stale schema or another frame: start again
                    db.session.remove()
                    db.engine.dispose()
                    with _scratch_database(server_url, SCRATCH_DB, True) as _:
                        pass
                upgrade()
                campaign = _national_campaign(units)
                info = _load_frame(campaign, rows, rng)
                setup = (f"{info['batches']:,} import batches, {rows:,} frame entries "
                         f"({info['active_rows']:,} in active lists)")
            else:
                setup = f"{rows:,} frame entries, reused database"
            n_strata = db.session.scalar(select(func.count(Stratum.id))
                                         .where(Stratum.campaign_id == campaign.id))
            print(f"\nend to end (PostgreSQL): {n_strata:,} strata, {setup}; setup "
                  f"{time.perf_counter() - t0:.1f} s (not timed)")
            totals: dict[str, list[float]] = {"first draw": [], "redraw": []}
            for attempt in range(runs):
                if attempt:
                    _reusable_campaign(rows)  # back to no draw at all (not timed)
                _prepare_database()
                for run in ("first draw", "redraw"):
                    # Like the CLI and the queue job: no ORM object of the campaign's strata
                    # is loaded when the draw starts.
                    db.session.expire_all()
                    timings = _timed_draw(campaign, profile and run == "first draw" and not attempt)
                    totals[run].append(timings["total"])
                    print(f"{run}: {timings.pop('_summary')} (load average "
                          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
                    labels = dict(E2E_PHASES)
                    for key, seconds in timings.items():
                        print(f"  {labels.get(key, key):<36} {seconds * 1000:8.1f} ms")
                    if run == "first draw" and (not results or timings["total"] < results["total"]):
                        results = timings
                problems = _check_sample(campaign)
                print("check: " + ("sample matches the strata's figures" if not problems
                                   else f"{len(problems)} problems: {problems[:5]}"))
            if runs > 1:
                print(f"best of {runs}: first draw {min(totals['first draw']):.2f} s, "
                      f"redraw {min(totals['redraw']):.2f} s")
            db.session.remove()
            db.engine.dispose()
    return results


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--units", type=int, default=3321)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--part", choices=("core", "all"), default="core")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-url", default=PG_URL,
                        help="PostgreSQL server for the end-to-end part (no database name)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the first end-to-end draw (cumulative, top 30)")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch database")
    parser.add_argument("--runs", type=int, default=1,
                        help="end to end: repeat first draw + redraw (best is summarised)")
    parser.add_argument("--reuse-db", action="store_true",
                        help="reuse a kept scratch database with the same schema and frame "
                             "(implies --keep-db)")
    parser.add_argument("--skip-core", action="store_true", help="only the end-to-end part")
    parser.add_argument("--keys", choices=("hash", "ids"), default="hash",
                        help="hash: 63-bit keys + fingerprints (the service); ids: small ids")
    args = parser.parse_args(argv)
    if not args.skip_core:
        bench_core(args.rows, args.units, args.groups, args.repeat, args.keys == "hash")
    if args.part == "all":
        bench_end_to_end(args.rows, args.units, args.pg_url, args.profile, args.keep_db,
                         args.reuse_db, args.runs)


if __name__ == "__main__":
    main()
