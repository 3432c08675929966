"""The frame entries' secondary index: BRIN on PostgreSQL (cheap for a million-row COPY),
a plain b-tree elsewhere, and usable by the import's lookups by unit and by batch."""

from __future__ import annotations

from sqlalchemy import text

from survey_app.extensions import db

INDEX = "ix_frame_entries_campaign_unit_batch"


def test_index_is_brin_on_postgresql_and_a_btree_elsewhere(app_ctx):
    if db.engine.dialect.name == "postgresql":
        definition = db.session.scalar(text(f"SELECT pg_get_indexdef('{INDEX}'::regclass)"))
        assert "USING brin (campaign_id int4_minmax_multi_ops, unit_id int4_minmax_multi_ops, " \
            "batch_id int4_minmax_multi_ops)" in definition
        assert "pages_per_range='32'" in definition
    else:
        sql = db.session.scalar(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": INDEX})
        assert sql is not None and "campaign_id, unit_id, batch_id" in sql.replace('"', "")


def test_lookups_by_unit_and_by_batch_can_use_the_index(app_ctx):
    """The duplicate check (campaign, unit) and the per-batch update (campaign, unit, batch)
    must be able to read through the index (the planner may prefer a scan of a tiny table:
    sequential scans are switched off for the check)."""
    if db.engine.dialect.name != "postgresql":
        return
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    for where in ("campaign_id = 1 AND unit_id = 2",
                  "campaign_id = 1 AND unit_id = 2 AND batch_id = 3",
                  "batch_id = ANY('{3,4}'::int[])"):
        plan = "\n".join(db.session.scalars(text(
            f"EXPLAIN SELECT phone FROM frame_entries WHERE {where}")))
        assert f"Bitmap Index Scan on {INDEX}" in plan, plan


def test_an_import_leaves_its_pages_summarised(runner, tmp_path):
    """The CLI import summarises the BRIN ranges it wrote once it has committed: nothing is
    left for the next query to read unsummarised."""
    from helpers import make_campaign

    if db.engine.dialect.name != "postgresql":
        return
    make_campaign(units=("X1",))
    db.session.commit()
    lines = ["TT,Họ và tên,Số điện thoại"] + [f"{i},Người {i},09{i:08d}" for i in range(1, 3001)]
    path = tmp_path / "ds.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(args=["frame", "import", str(path), "--campaign", "test-2026",
                                 "--unit", "X1", "--group", "citizen"])
    assert result.exit_code == 0, result.output
    left = db.session.scalar(text(f"SELECT brin_summarize_new_values('{INDEX}'::regclass)"))
    assert left == 0
