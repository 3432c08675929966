"""`survey frame import`: the same import as the web, without the web."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from questionnaires.model import RespondentGroup

from ..cli import fail, print_json
from ..errors import SurveyError
from ..extensions import db

frame_cli = click.Group("frame", help="Danh sách (khung mẫu): nhập tệp CSV/XLSX.")


@frame_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--campaign", required=True, help="Mã chiến dịch.")
@click.option("--unit", "unit_code", required=True, help="Mã đơn vị của danh sách.")
@click.option("--group", required=True, type=click.Choice([g.value for g in RespondentGroup]))
@click.option("--sheet", default=None, help="Tên hoặc số thứ tự (từ 0) của trang tính.")
@click.option("--dry-run", is_flag=True, help="Chỉ kiểm tra, không lưu gì.")
@click.option("--json", "as_json", is_flag=True, help="In số liệu và mọi dòng lỗi dạng JSON.")
@with_appcontext
def import_file(file: Path, campaign: str, unit_code: str, group: str, sheet, dry_run: bool,
                as_json: bool) -> None:
    """Import FILE into a campaign's list for a unit × group (all or nothing)."""
    from ..services.campaigns import get_campaign
    from .services import import_path, resolve_unit, summarize_frame_index

    sheet_arg = int(sheet) if sheet and sheet.isdigit() else sheet
    try:
        record = get_campaign(campaign)
        unit = resolve_unit(record, unit_code)
        batch, outcome = import_path(record, unit, RespondentGroup(group), file,
                                     sheet=sheet_arg, dry_run=dry_run)
    except SurveyError as exc:
        db.session.rollback()
        if as_json:
            print_json({"ok": False, "error": exc.code, "message": exc.message})
            raise SystemExit(2) from None
        fail(exc)
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
        summarize_frame_index()
        db.session.commit()
    if as_json:
        print_json({"ok": True, "dry_run": dry_run, "batch": batch.id if batch else None,
                    **outcome.counts(),
                    "issues": [{"row": r, "severity": s.value, "code": c, "message": m}
                               for r, s, c, m in outcome.issues]})
        return
    counts = outcome.counts()
    click.echo(("Kiểm tra (chưa lưu): " if dry_run else f"Đã nhập lô #{batch.id}: ")
               + f"{counts['accepted']} dòng hợp lệ, {counts['rejected']} bị loại, "
               f"{counts['duplicates']} trùng, {counts['warnings']} cảnh báo.")
    for r, _severity, c, m in outcome.issues[:50]:
        click.echo(f"  dòng {r}: [{c}] {m}")
    if len(outcome.issues) > 50:
        click.echo(f"  ... và {len(outcome.issues) - 50} dòng khác (dùng --json để xem hết).")


commands = [frame_cli]
