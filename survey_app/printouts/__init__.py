"""Printing from the web: per rated unit × group, personalised forms, anonymous walk-in forms
and the postal pack, made by background jobs and downloaded by authorised roles only."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, send_file, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import IntegerField, SelectField
from wtforms.validators import InputRequired, NumberRange, Optional

from questionnaires.model import RespondentGroup

from ..admin import visible_campaign
from ..auth.access import check_unit, roles_required, unit_scope
from ..errors import NotFound
from ..extensions import db
from ..models import BackgroundJob, JobKind, JobStatus, Role, Stratum
from ..services.jobs import create_job, start_job
from . import jobs
from .services import MAX_ANONYMOUS, PrintKind, rated_unit, stratum_counts

bp = Blueprint("printouts", __name__, url_prefix="/print")

PRINT_ROLES = (Role.ADMIN, Role.ENUMERATOR)


class PrintForm(FlaskForm):
    """One print request for a rated unit × group; the pressed button names the kind."""

    unit_id = IntegerField(validators=[InputRequired()])
    group = SelectField(choices=[(g.value, g.label) for g in RespondentGroup],
                        validators=[InputRequired()])
    kind = SelectField(choices=[(k.value, k.label) for k in PrintKind],
                       validators=[InputRequired()])
    count = IntegerField("Số phiếu không ghi tên",
                         validators=[Optional(), NumberRange(min=1, max=MAX_ANONYMOUS)])


@bp.route("/<key>")
@roles_required(*PRINT_ROLES)
def index(key: str):
    """Counts per rated unit × group and the print buttons (enumerators see their units)."""
    campaign = visible_campaign(key)
    mine = current_user.id if current_user.role is Role.ENUMERATOR else None
    rows = stratum_counts(campaign, unit_scope(current_user), enumerator_id=mine)
    recent_jobs = db.session.scalars(
        select(BackgroundJob)
        .where(BackgroundJob.campaign_id == campaign.id,
               BackgroundJob.kind == JobKind.PRINT_BATCH,
               BackgroundJob.created_by_id == current_user.id)
        .order_by(BackgroundJob.id.desc()).limit(10)).all()
    return render_template("printouts/index.html", campaign=campaign, rows=rows,
                           form=PrintForm(), kinds=PrintKind, recent_jobs=recent_jobs,
                           max_anonymous=MAX_ANONYMOUS)


@bp.route("/<key>", methods=["POST"])
@roles_required(*PRINT_ROLES)
def start(key: str):
    """Queue a print job for one rated unit × group; progress and download on the job page."""
    campaign = visible_campaign(key)
    form = PrintForm()
    if not form.validate_on_submit():
        flash("Yêu cầu in không hợp lệ: " + "; ".join(
            f"{name}: {', '.join(errs)}" for name, errs in form.errors.items()), "error")
        return redirect(url_for("printouts.index", key=campaign.key))
    check_unit(current_user, form.unit_id.data)
    unit = rated_unit(campaign, unit_id=form.unit_id.data)
    group = RespondentGroup(form.group.data)
    if not db.session.scalar(select(Stratum.id).where(
            Stratum.campaign_id == campaign.id, Stratum.unit_id == unit.id,
            Stratum.group == group)):
        raise NotFound("Đơn vị này không có nhóm đối tượng đã chọn trong chiến dịch.")
    kind = PrintKind(form.kind.data)
    count = form.count.data or 0
    if kind is PrintKind.ANONYMOUS and not count:
        flash("Nhập số phiếu không ghi tên cần in.", "error")
        return redirect(url_for("printouts.index", key=campaign.key))
    enumerator_id = current_user.id if current_user.role is Role.ENUMERATOR else None
    job = create_job(JobKind.PRINT_BATCH,
                     jobs.print_params(kind, unit_id=unit.id, group=group,
                                       count=count if kind is PrintKind.ANONYMOUS else 0,
                                       enumerator_id=enumerator_id),
                     campaign_id=campaign.id, user_id=current_user.id)
    db.session.commit()
    start_job(job)
    return redirect(url_for("admin.job", job_id=job.id))


@bp.route("/<key>/jobs/<int:job_id>/file")
@roles_required(*PRINT_ROLES)
def download(key: str, job_id: int):
    """The file of a finished print job (enumerators: only their own jobs, for their units,
    as on the job page: another enumerator's file may hold forms handed to that person)."""
    campaign = visible_campaign(key)
    job = db.session.get(BackgroundJob, job_id)
    if (job is None or job.kind is not JobKind.PRINT_BATCH or job.campaign_id != campaign.id
            or job.status is not JobStatus.DONE):
        raise NotFound("Không tìm thấy tệp in.")
    unit_id = job.params.get("unit_id")
    if current_user.role is not Role.ADMIN:
        if unit_id is None or job.created_by_id != current_user.id:
            # whole-campaign batches are for administrators, others' files for their owners
            raise NotFound("Không tìm thấy tệp in.")
        check_unit(current_user, unit_id)
    path = jobs.output_path(job)
    if not path.is_file():
        raise NotFound("Tệp in không còn trên máy chủ; hãy in lại.")
    kind = PrintKind(job.params["kind"])
    group = job.params.get("group") or "tat-ca"
    name = f"{kind.value}-{campaign.key}-{unit_id or 'tat-ca'}-{group}-{job.id}.{kind.extension}"
    response = send_file(path, mimetype=kind.mimetype, as_attachment=True, download_name=name)
    response.headers["Cache-Control"] = "no-store"
    return response
