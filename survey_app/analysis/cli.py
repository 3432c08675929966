"""`survey scores export|freeze|flags`, `survey microdata export` and the `purge` command
(attached by the lead to `survey campaign`): thin wrappers over the analysis services."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from ..cli import fail, print_json
from ..errors import SurveyError
from ..extensions import db

scores_cli = click.Group("scores", help="Điểm của các đơn vị: xuất, chốt, kiểm tra chất lượng.")
microdata_cli = click.Group("microdata", help="Vi dữ liệu đã ẩn danh.")


def _write_or_echo(output: Path | None, write) -> int:
    """Write to a file, or to stdout's binary buffer when no file is given."""
    if output is None:
        count = write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return count
    with open(output, "wb") as fh:
        return write(fh)


@scores_cli.command("export")
@click.argument("campaign")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "json"]), default="csv",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Tệp kết quả (mặc định: in ra màn hình; XLSX bắt buộc có tệp).")
@click.option("--weighted", is_flag=True, help="Ước lượng có trọng số thiết kế.")
@with_appcontext
def scores_export(campaign: str, fmt: str, output: Path | None, weighted: bool) -> None:
    """Export the scores of every rated unit of CAMPAIGN (key or id)."""
    from ..services.campaigns import get_campaign
    from .exports import ExportFormat, write_scores
    from .services import score_campaign

    export_format = ExportFormat(fmt)
    if export_format is ExportFormat.XLSX and output is None:
        fail(SurveyError("Xuất XLSX cần tên tệp (-o)."))
    try:
        scores = score_campaign(get_campaign(campaign), weighted=weighted)
    except SurveyError as exc:
        fail(exc)
    count = _write_or_echo(output, lambda out: write_scores(scores, export_format, out))
    if output is not None:
        click.echo(f"Đã ghi điểm của {count} đơn vị vào {output}.", err=True)


@scores_cli.command("freeze")
@click.argument("campaign")
@with_appcontext
def scores_freeze(campaign: str) -> None:
    """Freeze the current scores of CAMPAIGN as its official snapshot."""
    from ..services.campaigns import get_campaign
    from .services import freeze_scores

    try:
        snapshot = freeze_scores(get_campaign(campaign))
    except SurveyError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Đã chốt điểm (bản #{snapshot.id}), mã băm dữ liệu "
               f"{snapshot.responses_digest[:16]}….")


@scores_cli.command("flags")
@click.argument("campaign")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def scores_flags(campaign: str, as_json: bool) -> None:
    """Recompute the data-quality flags of every response of CAMPAIGN."""
    from ..services.campaigns import get_campaign
    from .services import QUALITY_FLAG_LABELS, flag_responses

    try:
        summary = flag_responses(get_campaign(campaign))
    except SurveyError as exc:
        fail(exc)
    db.session.commit()
    if as_json:
        print_json({"checked": summary.checked, "flagged": summary.flagged,
                    "per_flag": summary.per_flag})
        return
    click.echo(f"Đã kiểm tra {summary.checked} phiếu, {summary.flagged} phiếu có cảnh báo.")
    for name, count in summary.per_flag.items():
        click.echo(f"  {QUALITY_FLAG_LABELS[name]}: {count}")


@microdata_cli.command("export")
@click.argument("campaign")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv",
              show_default=True)
@click.option("--include-text", is_flag=True,
              help="Kèm câu trả lời tự do (mặc định bỏ; số điện thoại trong đó bị che).")
@with_appcontext
def microdata_export(campaign: str, output: Path | None, fmt: str, include_text: bool) -> None:
    """Export anonymised microdata of CAMPAIGN: one row per answer, no identity."""
    from ..services.campaigns import get_campaign
    from .exports import ExportFormat, write_microdata

    export_format = ExportFormat(fmt)
    if export_format is ExportFormat.XLSX and output is None:
        fail(SurveyError("Xuất XLSX cần tên tệp (-o)."))
    try:
        record = get_campaign(campaign)
        count = _write_or_echo(output, lambda out: write_microdata(
            record, export_format, out, include_text=include_text))
    except SurveyError as exc:
        fail(exc)
    if output is not None:
        click.echo(f"Đã ghi {count} dòng vi dữ liệu vào {output}.", err=True)


def _parse_now(_ctx, _param, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("cần ngày giờ ISO, ví dụ 2027-06-30 hoặc 2027-06-30T08:00") \
            from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@click.command("purge")
@click.argument("campaign")
@click.option("--yes", is_flag=True, help="Không hỏi xác nhận.")
@click.option("--now", callback=_parse_now, default=None,
              help="Coi thời điểm hiện tại là ngày giờ này (kiểm thử, ISO 8601).")
@with_appcontext
def purge(campaign: str, yes: bool, now: dt.datetime | None) -> None:
    """De-identify the lists and delete response links of CAMPAIGN after its retention period
    (closing date + RETENTION_DAYS); scores stay reproducible."""
    from ..services.campaigns import get_campaign
    from .services import purge_campaign

    try:
        record = get_campaign(campaign)
    except SurveyError as exc:
        fail(exc)
    if not yes:
        click.confirm(f"Xoá vĩnh viễn họ tên, số điện thoại, địa chỉ trong danh sách và liên kết "
                      f"phiếu ↔ người của chiến dịch {record.key}?", abort=True)
    try:
        result = purge_campaign(record, now=now)
    except SurveyError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Đã xoá dữ liệu cá nhân của chiến dịch {record.key}: "
               f"{result.frame_entries} dòng danh sách đã ẩn danh, "
               f"{result.response_links} liên kết phiếu, {result.paper_entries} bản nhập giấy, "
               f"{result.drafts} bản nháp, {result.import_issues} ghi chú nhập, "
               f"{result.files} tệp gốc. Điểm đã chốt: bản #{result.snapshot_id}.")


commands = [scores_cli, microdata_cli]
