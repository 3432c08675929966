"""`survey sample draw|verify|export`: thin wrappers over the draw services."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from ..cli import fail, print_json
from ..errors import SurveyError
from ..extensions import db

sample_cli = click.Group("sample", help="Chọn mẫu, kiểm tra lại, xuất danh sách mẫu.")


@sample_cli.command("draw")
@click.argument("campaign")
@click.option("--public-value", default=None,
              help="Giá trị công khai công bố trước (ví dụ kết quả xổ số) để tạo hạt giống.")
@click.option("--seed", type=int, default=None, help="Hạt giống (mặc định: theo kế hoạch).")
@click.option("--force", is_flag=True, help="Chọn lại dù đã bắt đầu điều tra (ghi nhật ký).")
@click.option("--json", "as_json", is_flag=True, help="In kết quả từng tầng dạng JSON.")
@with_appcontext
def draw(campaign: str, public_value, seed, force, as_json) -> None:
    """Draw the sample of CAMPAIGN (key or id)."""
    from ..services.campaigns import get_campaign
    from .services import draw_campaign

    try:
        record = draw_campaign(get_campaign(campaign), public_value=public_value, seed=seed,
                               force=force)
    except SurveyError as exc:
        fail(exc)
    db.session.commit()
    summary = record.summary
    if as_json:
        print_json({"campaign": campaign, "draw": record.id, "seed": record.seed,
                    "public_value": record.public_value, "forced": record.forced, **summary})
        return
    strata = summary["strata"]
    short = [s for s in strata if s["shortfall"]]
    click.echo(f"Đã chọn mẫu: {len(strata)} tầng, {summary['assignments']} người "
               f"(kể cả dự phòng), hạt giống {record.seed}.")
    click.echo(f"Mã băm danh sách: {summary['frame_digest']}")
    for s in short:
        click.echo(f"  Thiếu {s['shortfall']} phiếu ở tầng {s['key']} "
                   f"(đủ điều kiện {s['eligible']}/{s['quota']}).")


@sample_cli.command("verify")
@click.argument("campaign")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def verify(campaign: str, as_json: bool) -> None:
    """Recompute the last draw from the stored lists and report any difference."""
    from ..services.campaigns import get_campaign
    from .services import verify_campaign

    try:
        report = verify_campaign(get_campaign(campaign))
    except SurveyError as exc:
        fail(exc)
    if as_json:
        print_json(report)
    elif report["ok"]:
        click.echo(f"Khớp: {report['strata']} tầng, hạt giống {report['seed']}.")
    else:
        click.echo(f"KHÔNG KHỚP: {len(report['differences'])} khác biệt.")
        for d in report["differences"]:
            click.echo(f"  {d['stratum']}: {d['kind']} (kỳ vọng {d['expected']}, "
                       f"thấy {d['found']})")
    if not report["ok"]:
        sys.exit(1)


@sample_cli.command("export")
@click.argument("campaign")
@click.option("--unit", "unit_code", required=True, help="Mã đơn vị được đánh giá.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True)
@with_appcontext
def export(campaign: str, unit_code: str, output: str) -> None:
    """Write the sampled list of one unit (CSV, for calling or mailing)."""
    from ..services.campaigns import get_campaign
    from .exports import sampled_rows, write_sampled_csv

    try:
        rows = sampled_rows(get_campaign(campaign), unit_code=unit_code)
    except SurveyError as exc:
        fail(exc)
    with open(output, "wb") as out:
        write_sampled_csv(rows, out)
    db.session.commit()
    click.echo(f"Đã ghi {len(rows)} dòng vào {output}.")


commands = [sample_cli]
