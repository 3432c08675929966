"""Sampling from the web: draw button, protocol for auditors, sampled-list export."""

from __future__ import annotations

import io

from flask import Blueprint, flash, redirect, render_template, send_file, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import Length, Optional

from ..admin import visible_campaign
from ..auth.access import check_unit, roles_required
from ..extensions import db
from ..models import JobKind, Role
from ..services.jobs import create_job, start_job
from . import jobs  # noqa: F401  (registers the draw job runner)
from .exports import sampled_rows, write_sampled_csv
from .services import METHOD, fieldwork_started, latest_draw, stratum_figures

bp = Blueprint("draws", __name__, url_prefix="/draws")


class DrawForm(FlaskForm):
    """Start a draw; the seed may come from a public value typed in now."""

    public_value = StringField("Giá trị công khai (tuỳ chọn)",
                               validators=[Optional(), Length(max=500)])
    force = BooleanField("Buộc chọn lại dù đã bắt đầu điều tra (ghi nhật ký)")


@bp.route("/<key>", methods=["POST"])
@roles_required(Role.ADMIN)
def draw(key: str):
    """Queue a draw of the campaign (runs on the queue; progress on the job page)."""
    campaign = visible_campaign(key)
    form = DrawForm()
    if not form.validate_on_submit():
        flash("Biểu mẫu không hợp lệ.", "error")
        return redirect(url_for("admin.campaign", key=key))
    job = create_job(JobKind.DRAW, {"public_value": form.public_value.data or "",
                                    "force": bool(form.force.data)},
                     campaign_id=campaign.id, user_id=current_user.id, total=1)
    db.session.commit()
    start_job(job)
    return redirect(url_for("admin.job", job_id=job.id))


@bp.route("/<key>/protocol")
@roles_required(Role.ADMIN, Role.ANALYST)
def protocol(key: str):
    """The sampling protocol: seed, public value, method, digests and counts per stratum."""
    campaign = visible_campaign(key)
    record = latest_draw(campaign)
    return render_template("draws/protocol.html", campaign=campaign, draw=record,
                           method=METHOD, figures=stratum_figures(campaign))


@bp.route("/<key>/units/<int:unit_id>/sample.csv")
@roles_required(Role.ADMIN, Role.ENUMERATOR)
def export(key: str, unit_id: int):
    """The sampled list of one rated unit (names and phones: never for analysts)."""
    campaign = visible_campaign(key)
    check_unit(current_user, unit_id)
    mine = current_user.id if current_user.role is Role.ENUMERATOR else None
    rows = sampled_rows(campaign, unit_id=unit_id, enumerator_id=mine)
    db.session.commit()
    out = io.BytesIO()
    write_sampled_csv(rows, out)
    out.seek(0)
    return send_file(out, mimetype="text/csv", as_attachment=True,
                     download_name=f"mau-{campaign.key}-{unit_id}.csv")


def draw_panel_context(campaign) -> dict:
    """What the campaign page needs to show the draw panel."""
    return {"draw_form": DrawForm(), "last_draw": latest_draw(campaign),
            "fieldwork_started": fieldwork_started(campaign)}
