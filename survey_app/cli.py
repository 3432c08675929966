"""The `survey` command: a Flask CLI group whose commands are thin wrappers over services."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from .errors import SurveyError
from .extensions import db


def _create_app() -> Flask:
    from . import create_app

    return create_app()


def main() -> None:
    """Entry point of the `survey` console script."""
    cli = FlaskGroup(create_app=_create_app, add_default_commands=True,
                     help="Khảo sát: công cụ dòng lệnh.")
    cli.main(prog_name="survey")


def fail(exc: SurveyError) -> None:
    """Print a user error (with its details) to stderr and exit non-zero."""
    db.session.rollback()
    click.echo(f"Lỗi: {exc.message}", err=True)
    for line in exc.details:
        click.echo(f"  - {line}", err=True)
    sys.exit(2)


def print_json(data: object) -> None:
    """JSON for scripts: UTF-8, stable key order."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str))


units_cli = click.Group("units", help="Cây đơn vị hành chính.")
users_cli = click.Group("users", help="Tài khoản người dùng.")
campaign_cli = click.Group("campaign", help="Chiến dịch khảo sát.")


@units_cli.command("load")
@with_appcontext
def units_load() -> None:
    """Load the current tree (34 provinces, ~3,321 communes/wards) from vietnam-provinces."""
    from .services.units import load_current_tree

    result = load_current_tree()
    db.session.commit()
    click.echo(f"Đã nạp cây đơn vị: {result.created} mới, {result.updated} cập nhật.")


@units_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--scheme", default="custom", show_default=True,
              help="Tên cây đơn vị (ví dụ: vn-2019 cho cây trước 2025).")
@with_appcontext
def units_import(file: Path, scheme: str) -> None:
    """Load a custom tree from CSV: code,name,level,parent_code[,valid_from,valid_to]."""
    from .services.units import import_tree_csv

    try:
        result = import_tree_csv(file.read_bytes(), scheme)
    except SurveyError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Đã nhập {result.created} đơn vị mới, {result.updated} cập nhật.")


@users_cli.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["admin", "uploader", "enumerator",
                                                          "analyst"]))
@click.option("--unit", "units", multiple=True, help="Mã đơn vị (lặp lại cho nhiều đơn vị).")
@click.option("--scheme", default=None, help="Cây đơn vị của các mã (mặc định: mọi cây).")
@click.option("--name", "full_name", default="")
@click.password_option("--password", prompt="Mật khẩu")
@with_appcontext
def users_create(username, role, units, scheme, full_name, password) -> None:
    """Create a user scoped to units."""
    from .models import Role
    from .services.users import create_user

    try:
        user = create_user(username, password, Role(role), full_name=full_name,
                           unit_codes=list(units), scheme=scheme)
    except SurveyError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Đã tạo tài khoản {user.username} ({user.role.label}).")


@campaign_cli.command("create")
@click.option("--plan", "plan_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", default=None, help="Mã chiến dịch (mặc định: mã trong kế hoạch).")
@with_appcontext
def campaign_create(plan_file: Path, key: str | None) -> None:
    """Create a campaign from a plan file (nothing is created when the plan is invalid)."""
    from .services.campaigns import create_campaign_from_file

    try:
        campaign = create_campaign_from_file(plan_file, key=key)
    except SurveyError as exc:
        fail(exc)
    db.session.commit()
    click.echo(f"Đã tạo chiến dịch {campaign.key}: {len(campaign.groups)} nhóm đối tượng, "
               f"{len(campaign.strata)} tầng (đơn vị × nhóm), "
               f"{sum(s.quota for s in campaign.strata)} phiếu.")


@campaign_cli.command("list")
@with_appcontext
def campaign_list() -> None:
    """List campaigns."""
    from sqlalchemy import select

    from .models import Campaign

    for c in db.session.scalars(select(Campaign).order_by(Campaign.id)):
        click.echo(f"{c.key}\t{c.year}\t{c.status.value}\t{c.name}")


@click.command("worker")
@click.option("--workers", default=2, show_default=True)
@with_appcontext
def worker(workers: int) -> None:
    """Run a queue consumer (several may run at once, on several machines with Redis)."""
    from huey.consumer import Consumer

    Consumer(current_app.extensions["huey"], workers=workers, worker_type="thread").run()


def start_consumer_thread(app: Flask, workers: int = 2) -> threading.Thread:
    """Run a huey consumer inside this process (the embedded demo has no separate worker)."""
    from huey.consumer import Consumer

    consumer = Consumer(app.extensions["huey"], workers=workers, worker_type="thread")
    consumer._set_signal_handlers = lambda: None  # signals belong to the main thread

    thread = threading.Thread(target=consumer.run, name="huey-consumer", daemon=True)
    thread.start()
    return thread


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--no-serve", is_flag=True, help="Prepare the demo database and exit.")
@with_appcontext
def demo(host: str, port: int, no_serve: bool) -> None:
    """Create (or reuse) the demo database under instance/, print logins, serve the app."""
    from .services.demo import prepare_demo

    info = prepare_demo(echo=click.echo)
    click.echo("")
    click.echo("Tài khoản demo (tên đăng nhập / mật khẩu):")
    for login in info["logins"]:
        click.echo(f"  {login['username']:<14} {login['password']:<16} {login['role']}")
    for line in info.get("extra", []):
        click.echo(line)
    if no_serve:
        return
    app = current_app._get_current_object()
    start_consumer_thread(app)
    click.echo(f"\nMáy chủ demo: http://{host}:{port}/  (Ctrl+C để dừng)")
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False)


def register_cli(app: Flask) -> None:
    """Attach every command group to the app's CLI."""
    from .analysis.cli import commands as analysis_commands
    from .analysis.cli import purge
    from .draws.cli import commands as draw_commands
    from .fieldwork.cli import commands as fieldwork_commands
    from .frames.cli import commands as frame_commands
    from .printouts.cli import commands as print_commands

    if "purge" not in campaign_cli.commands:
        campaign_cli.add_command(purge)
    for command in (units_cli, users_cli, campaign_cli, worker, demo, *frame_commands,
                    *draw_commands, *fieldwork_commands, *print_commands,
                    *analysis_commands):
        app.cli.add_command(command)
