"""`survey fieldwork handout`: hand a unit's forms to an enumerator from the command line."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from questionnaires.model import RespondentGroup

from ..cli import fail
from ..errors import NotFound, SurveyError
from ..extensions import db

fieldwork_cli = click.Group("fieldwork", help="Điều tra thực địa: giao phiếu cho điều tra viên.")


def _user(username: str):
    from ..models import User

    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"Không có tài khoản {username}.")
    return user


@fieldwork_cli.command("handout")
@click.argument("campaign")
@click.option("--unit", "unit_code", required=True, help="Mã đơn vị được đánh giá.")
@click.option("--enumerator", required=True, help="Tên đăng nhập của điều tra viên nhận phiếu.")
@click.option("--group", type=click.Choice([g.value for g in RespondentGroup]), default=None,
              help="Chỉ một nhóm người trả lời.")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="Số phiếu tối đa (mặc định: tất cả).")
@click.option("--from", "from_username", default=None,
              help="Chuyển phiếu của điều tra viên này (mặc định: phiếu chưa giao cho ai).")
@with_appcontext
def handout(campaign: str, unit_code: str, enumerator: str, group: str | None,
            count: int | None, from_username: str | None) -> None:
    """Hand CAMPAIGN's forms of a unit still to be worked on to an enumerator."""
    from ..printouts.services import rated_unit
    from ..services.campaigns import get_campaign
    from .services import hand_out

    try:
        record = get_campaign(campaign)
        unit = rated_unit(record, unit_code=unit_code)
        handed = hand_out(record, unit, _user(enumerator),
                          group=RespondentGroup(group) if group else None, count=count,
                          from_enumerator=_user(from_username) if from_username else None)
    except SurveyError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Đã giao {handed} phiếu của {unit.name} cho {enumerator}.")


commands = [fieldwork_cli]
