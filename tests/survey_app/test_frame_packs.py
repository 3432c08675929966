"""Packed copies of imported lists (frame_packs): what the draw reads on PostgreSQL must be
exactly what the rows hold, and a list without packs is read from its rows."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_campaign, make_frame
from sqlalchemy import delete, func, select, text

from survey_app.draws import frame as frame_module
from survey_app.draws.frame import load_campaign_frame
from survey_app.draws.services import draw_campaign
from survey_app.extensions import db
from survey_app.models import Assignment, FrameEntry, FramePack, ImportBatch

_COLUMNS = ("key", "stratum", "phone", "transaction_date", "birth_year", "fingerprint")


def _csv(tmp_path, name, n, start=0):
    """A list of `n` people: phones in several shapes, some without a phone, dates and birth
    years present or missing."""
    lines = ["TT,Họ và tên,Số điện thoại,Thủ tục,Địa chỉ,Ngày giao dịch,Năm sinh"]
    for i in range(start, start + n):
        phone = "" if i % 7 == 0 else f"09{i:08d}" if i % 3 else f"+84 9{i:08d}"
        date = "" if i % 5 == 0 else f"{1 + i % 28:02d}/0{1 + i % 9}/2026"
        birth = "" if i % 4 == 0 else str(1940 + i % 60)
        lines.append(f"{i + 1},Người Số {i},{phone},Thủ tục {i % 9},Thôn {i % 13},{date},{birth}")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _with_phone(n, start=0):
    return sum(1 for i in range(start, start + n) if i % 7)


def _import(runner, path, unit, group="citizen"):
    result = runner.invoke(args=["frame", "import", str(path), "--campaign", "test-2026",
                                 "--unit", unit, "--group", group])
    assert result.exit_code == 0, result.output


def _by_entry(cf):
    order = np.lexsort((cf.frame.stratum, cf.entry_ids))
    # Dates as day numbers: NaT (no date) never equals itself.
    return cf.entry_ids[order], {c: getattr(cf.frame, c)[order].view(np.int64)
                                 if c == "transaction_date" else getattr(cf.frame, c)[order]
                                 for c in _COLUMNS}


def _assert_same(a, b):
    ids_a, cols_a = _by_entry(a)
    ids_b, cols_b = _by_entry(b)
    assert np.array_equal(ids_a, ids_b)
    for c in _COLUMNS:
        assert np.array_equal(cols_a[c], cols_b[c]), c


def _from_rows(campaign, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(frame_module, "_read_stored_packs", lambda *a: None)
        return load_campaign_frame(campaign)


def test_imported_lists_are_packed_and_read_like_their_rows(runner, tmp_path, monkeypatch):
    campaign = make_campaign(units=("X1", "X2"))
    _import(runner, _csv(tmp_path, "a.csv", 300), "X1")
    _import(runner, _csv(tmp_path, "b.csv", 120, start=1000), "X2")
    make_frame(campaign, "X2", "civil_servant", 9)  # written without the import: no packs
    postgres = db.engine.dialect.name == "postgresql"
    packed = db.session.scalar(select(func.coalesce(func.sum(FramePack.rows), 0)))
    imported = db.session.scalar(select(func.count(FrameEntry.id)).where(
        FrameEntry.group == "citizen"))
    assert imported == _with_phone(300) + _with_phone(120, 1000)  # no phone: refused
    assert packed == (imported if postgres else 0)
    if postgres:  # a pack's first id and row count are its entries' ids, in order
        for pack in db.session.scalars(select(FramePack)):
            ids = db.session.scalars(select(FrameEntry.id).where(
                FrameEntry.batch_id == pack.batch_id, FrameEntry.id >= pack.first_id,
                FrameEntry.id < pack.first_id + pack.rows).order_by(FrameEntry.id)).all()
            assert ids == list(range(pack.first_id, pack.first_id + pack.rows))
        assert packed == db.session.scalar(select(func.count(FrameEntry.id)).where(
            FrameEntry.batch_id.in_(select(FramePack.batch_id))))

    stored = load_campaign_frame(campaign)
    rows = _from_rows(campaign, monkeypatch)
    assert len(stored.frame) == imported + 9
    _assert_same(stored, rows)
    # A replaced (inactive) list is not drawn, packed or not.
    db.session.execute(text("UPDATE import_batches SET status = 'replaced' WHERE id = "
                            "(SELECT min(id) FROM import_batches)"))
    _assert_same(load_campaign_frame(campaign), _from_rows(campaign, monkeypatch))
    assert len(load_campaign_frame(campaign).frame) == imported + 9 - _with_phone(300)


def test_ids_taken_by_another_session_mid_import_leave_the_packs_right(runner, tmp_path,
                                                                      monkeypatch):
    """Each chunk of an import takes its ids as one reserved block: another session taking
    ids between two chunks leaves a gap between their packs, and the packs still say what
    the rows say (the draw reads the same frame either way)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("packs are written on PostgreSQL")
    from survey_app.frames import reader, services

    monkeypatch.setattr(reader, "_FRAME_BYTES", 600)  # several chunks
    campaign = make_campaign(units=("X1",))
    engine = db.engine  # the reservations run in the import's COPY thread
    reserve = services.reserve_ids

    def reserve_after_another_session(conn, n):
        with engine.connect() as other:  # another session's insert takes an id
            other.execute(text("SELECT nextval(pg_get_serial_sequence('frame_entries', 'id'))"))
        return reserve(conn, n)

    monkeypatch.setattr(services, "reserve_ids", reserve_after_another_session)
    _import(runner, _csv(tmp_path, "a.csv", 50), "X1")
    parts = db.session.execute(select(FramePack.first_id, FramePack.rows)
                               .order_by(FramePack.part)).all()
    assert len(parts) > 2
    assert all(b.first_id > a.first_id + a.rows for a, b in zip(parts, parts[1:], strict=False))
    assert sum(p.rows for p in parts) == _with_phone(50)
    ids = db.session.scalars(select(FrameEntry.id).order_by(FrameEntry.source_row)).all()
    assert ids == [i for p in parts for i in range(p.first_id, p.first_id + p.rows)]
    _assert_same(load_campaign_frame(campaign), _from_rows(campaign, monkeypatch))
    draw_campaign(campaign)
    db.session.commit()
    drawn = db.session.scalars(select(Assignment.frame_entry_id)).all()
    assert drawn and set(drawn) <= set(ids)


def test_draw_is_the_same_with_and_without_packs(runner, tmp_path, monkeypatch):
    campaign = make_campaign(units=("X1", "X2"), quota=5, reserves=3)
    _import(runner, _csv(tmp_path, "a.csv", 200), "X1")
    _import(runner, _csv(tmp_path, "b.csv", 60, start=300), "X2")
    db.session.commit()

    def sample():
        return db.session.execute(select(Assignment.stratum_id, Assignment.draw_order,
                                         Assignment.frame_entry_id, Assignment.is_reserve)
                                  .order_by(Assignment.stratum_id, Assignment.draw_order)).all()

    draw = draw_campaign(campaign, seed=99)
    db.session.commit()
    with_packs, digest = sample(), draw.summary["frame_digest"]
    db.session.execute(delete(FramePack))
    draw = draw_campaign(campaign, seed=99)
    db.session.commit()
    assert sample() == with_packs and draw.summary["frame_digest"] == digest
    assert len(with_packs) == 2 * (5 + 3)
    assert db.session.scalar(select(func.count(ImportBatch.id))) == 2


def test_a_failure_while_writing_rows_stores_nothing(runner, tmp_path, monkeypatch):
    """The rows are hashed and sent by the import's COPY thread on PostgreSQL: its failure
    reaches the command, and nothing of the list is kept (no rows, no packs, no batch)."""
    from survey_app.frames import services

    make_campaign(units=("X1",))
    db.session.commit()

    def broken(accepted):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "_fingerprints", broken)
    result = runner.invoke(args=["frame", "import", str(_csv(tmp_path, "a.csv", 50)),
                                 "--campaign", "test-2026", "--unit", "X1", "--group", "citizen"])
    assert result.exit_code != 0
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(FrameEntry)) == 0
    assert db.session.scalar(select(func.count()).select_from(FramePack)) == 0
    assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0


@pytest.mark.parametrize("interleaved", [False, True])
def test_repeated_phones_count_transactions_on_the_kept_entry(runner, tmp_path, interleaved):
    """A phone on several rows is one entry whose `transactions` counts the rows (updated by
    primary key on PostgreSQL, also when another session takes ids during the import)."""
    from survey_app.frames import packs

    make_campaign(units=("X1",))
    db.session.commit()
    path = _csv(tmp_path, "a.csv", 60)
    lines = path.read_text(encoding="utf-8").splitlines()
    # Rows 62-65 repeat the phones of data rows 2, 3, 3 and 9 (1-based, after the header).
    repeats = [lines[2], lines[3], lines[3], lines[9]]
    path.write_text("\n".join(lines + [r.replace("Người", "Bà") for r in repeats]) + "\n",
                    encoding="utf-8")
    original = packs.PackSpool.add
    engine = db.engine

    def add_and_interleave(self, frame, first_id):
        original(self, frame, first_id)
        with engine.connect() as other:
            other.execute(text("SELECT nextval(pg_get_serial_sequence('frame_entries', 'id'))"))

    from survey_app.frames import services

    statements = []
    execute = services._pg_execute

    def recording(sql, params):
        statements.append(sql)
        execute(sql, params)

    postgres = db.engine.dialect.name == "postgresql"
    if interleaved and postgres:
        packs.PackSpool.add = add_and_interleave
    services._pg_execute = recording
    try:
        _import(runner, path, "X1")
    finally:
        packs.PackSpool.add = original
        services._pg_execute = execute
    if postgres:  # by primary key either way: each chunk's ids are known
        updates = [sql for sql in statements if sql.startswith("UPDATE")]
        assert len(updates) == 1 and "fe.id = v.id" in updates[0]
    counts = dict(db.session.execute(select(FrameEntry.source_row, FrameEntry.transactions)
                                     .where(FrameEntry.transactions > 1)).all())
    assert counts == {3: 2, 4: 3, 10: 2}
    assert db.session.scalar(select(func.count()).select_from(FrameEntry)) == _with_phone(60)


def test_concurrent_id_reservations_never_overlap(app_ctx):
    """Two imports reserving blocks of ids at the same time (two queue workers) get
    disjoint blocks."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("ids are reserved on PostgreSQL")
    import threading

    from survey_app.frames.packs import reserve_ids

    blocks: list[tuple[int, int]] = []
    engine = db.engine

    def worker(size):
        pooled = engine.raw_connection()
        try:
            conn = pooled.driver_connection
            conn.autocommit = True
            for _ in range(40):
                blocks.append((reserve_ids(conn, size), size))
            conn.autocommit = False
        finally:
            pooled.close()

    threads = [threading.Thread(target=worker, args=(size,)) for size in (7, 1000, 31)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for first, size in blocks for i in range(first, first + size)]
    assert len(blocks) == 120 and len(set(ids)) == len(ids)
