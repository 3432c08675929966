"""`survey print forms|anonymous|pack|labels|envelopes|manifest`: thin wrappers over the
printing services. Each command commits only once its file is complete."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from questionnaires.model import RespondentGroup

from ..cli import fail, print_json
from ..errors import SurveyError
from ..extensions import db

print_cli = click.Group("print", help="In phiếu, phiếu không ghi tên, nhãn, phong bì, danh sách "
                                      "giao phiếu.")

GROUP_CHOICE = click.Choice([g.value for g in RespondentGroup])


def _selection(campaign_key: str, unit_code: str | None, group: str | None):
    from ..services.campaigns import get_campaign
    from .services import rated_unit

    campaign = get_campaign(campaign_key)
    unit = rated_unit(campaign, unit_code=unit_code) if unit_code else None
    return campaign, unit, RespondentGroup(group) if group else None


def _run(kind, campaign_key: str, unit_code: str | None, group: str | None, output: Path,
         count: int = 0) -> dict:
    """Run one print request into `output`, commit, and return the service's figures."""
    from .services import run_print

    try:  # the service writes FILE.part and renames it only when complete
        campaign, unit, grp = _selection(campaign_key, unit_code, group)
        result = run_print(kind, campaign, out=output, unit_id=unit.id if unit else None,
                           group=grp, count=count)
    except SurveyError as exc:
        fail(exc)
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        output.unlink(missing_ok=True)  # printed codes that were never recorded
        raise
    result.pop("serials", None)
    return result


def _groups_to_print(campaign_key: str, unit_code: str | None) -> list[RespondentGroup]:
    """Groups that still have forms to print (a PDF holds one questionnaire)."""
    from .services import printable_items

    campaign, unit, _ = _selection(campaign_key, unit_code, None)
    items = printable_items(campaign, unit_id=unit.id if unit else None)
    return sorted({it.assignment.group for it in items}, key=list(RespondentGroup).index)


def _per_group(kind, campaign: str, unit: str | None, group: str | None, output: Path,
               as_json: bool) -> None:
    """Without --group, one file per group: FILE-<group>.<ext>."""
    if group:
        targets = [(group, output)]
    else:
        try:
            groups = _groups_to_print(campaign, unit)
        except SurveyError as exc:
            fail(exc)
        if len(groups) <= 1:
            targets = [(g.value, output) for g in groups] or [(None, output)]
        else:
            targets = [(g.value, output.with_name(f"{output.stem}-{g.value}{output.suffix}"))
                       for g in groups]
    results = {}
    for grp, path in targets:
        result = _run(kind, campaign, unit, grp, path)
        results[str(path)] = result
        if not as_json:
            click.echo(f"Đã ghi {result.get('forms', result.get('rows'))} phiếu vào {path}"
                       + (f" (in lại {result['reprinted']})." if result.get("reprinted")
                          else "."))
    if as_json:
        print_json(results)


def _common(fn):
    fn = click.option("--json", "as_json", is_flag=True, help="In kết quả dạng JSON.")(fn)
    fn = click.option("--output", "-o", required=True,
                      type=click.Path(dir_okay=False, path_type=Path))(fn)
    fn = click.option("--group", default=None, type=GROUP_CHOICE,
                      help="Nhóm đối tượng (mặc định: mọi nhóm, mỗi nhóm một tệp).")(fn)
    fn = click.option("--unit", "unit", default=None, help="Mã đơn vị được đánh giá.")(fn)
    return click.argument("campaign")(fn)


@print_cli.command("forms")
@_common
@with_appcontext
def forms(campaign, unit, group, output, as_json) -> None:
    """Personalised forms (PDF) of CAMPAIGN; reprinting makes older printed codes invalid."""
    from .services import PrintKind

    _per_group(PrintKind.FORMS, campaign, unit, group, output, as_json)


@print_cli.command("pack")
@_common
@with_appcontext
def pack(campaign, unit, group, output, as_json) -> None:
    """Postal pack (ZIP): forms, labels, envelopes, manifest CSV/XLSX, return-envelope text."""
    from .services import PrintKind

    _per_group(PrintKind.POSTAL_PACK, campaign, unit, group, output, as_json)


@print_cli.command("anonymous")
@click.argument("campaign")
@click.option("--unit", "unit", required=True, help="Mã đơn vị được đánh giá.")
@click.option("--group", required=True, type=GROUP_CHOICE)
@click.option("--count", required=True, type=click.IntRange(min=1))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def anonymous(campaign, unit, group, count, output, as_json) -> None:
    """COUNT anonymous walk-in forms (each with its own code) for a unit × group."""
    from .services import PrintKind

    result = _run(PrintKind.ANONYMOUS, campaign, unit, group, output, count)
    if as_json:
        print_json(result)
    else:
        click.echo(f"Đã ghi {result['forms']} phiếu không ghi tên vào {output}.")


def _postal(kind, campaign, unit, group, output, as_json) -> None:
    result = _run(kind, campaign, unit, group, output)
    if as_json:
        print_json(result)
    else:
        click.echo(f"Đã ghi {result['rows']} dòng/nhãn vào {output}.")


@print_cli.command("labels")
@_common
@with_appcontext
def labels(campaign, unit, group, output, as_json) -> None:
    """Mailing labels on A4 3×8 sheets (PDF)."""
    from .services import PrintKind

    _postal(PrintKind.LABELS, campaign, unit, group, output, as_json)


@print_cli.command("envelopes")
@_common
@with_appcontext
def envelopes(campaign, unit, group, output, as_json) -> None:
    """Addressed DL envelopes (PDF)."""
    from .services import PrintKind

    _postal(PrintKind.ENVELOPES, campaign, unit, group, output, as_json)


@print_cli.command("manifest")
@_common
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv",
              show_default=True)
@with_appcontext
def manifest(campaign, unit, group, output, as_json, fmt) -> None:
    """Delivery manifest (serial, recipient, address, phone, unit); no tokens. The form-code
    column is filled only in the postal pack, made together with the forms."""
    from .services import PrintKind

    kind = PrintKind.MANIFEST_XLSX if fmt == "xlsx" else PrintKind.MANIFEST_CSV
    _postal(kind, campaign, unit, group, output, as_json)


@print_cli.command("clean")
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=0),
              help="Xoá các tệp in cũ hơn số ngày này.")
@with_appcontext
def clean(days: int) -> None:
    """Delete print-job files older than DAYS (personal data is not kept longer than needed)."""
    from .jobs import remove_old_prints

    click.echo(f"Đã xoá {remove_old_prints(days)} tệp in cũ.")


commands = [print_cli]
