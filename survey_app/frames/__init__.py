"""Units upload their lists here: upload → preview with counts and every issue → confirm or
cancel; replace or withdraw until sampling uses a batch; issue reports as CSV/XLSX."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    send_file,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from questionnaires.model import RespondentGroup

from ..admin import visible_campaign
from ..auth.access import check_unit, roles_required, unit_scope
from ..errors import NotFound
from ..extensions import db
from ..models import BatchStatus, ImportBatch, ImportIssue, JobKind, RatedUnit, Role, Unit
from ..services.jobs import create_job, start_job
from ..services.spreadsheet import neutralise
from . import jobs  # noqa: F401  (registers the job runners)
from .services import (
    cancel_batch,
    issue_rows,
    preview_upload,
    upload_dir,
    withdraw_batch,
)

bp = Blueprint("frames", __name__, url_prefix="/frames")
UPLOADERS = (Role.ADMIN, Role.UPLOADER)


class UploadForm(FlaskForm):
    """A list file for a unit × group."""

    unit = SelectField("Đơn vị", coerce=int, validators=[DataRequired()])
    group = SelectField("Nhóm đối tượng", validators=[DataRequired()])
    sheet = StringField("Trang tính (tuỳ chọn)", validators=[Optional(), Length(max=100)])
    replaces = IntegerField("Thay thế lô số (tuỳ chọn)", validators=[Optional()])
    file = FileField("Tệp CSV/XLSX/XLS/ODS", validators=[FileRequired("Chưa chọn tệp.")])


def _batch(batch_id: int) -> ImportBatch:
    batch = db.session.get(ImportBatch, batch_id)
    if batch is None:
        raise NotFound("Không tìm thấy lô danh sách.")
    check_unit(current_user, batch.unit_id)
    return batch


def _unit_choices(campaign) -> list[tuple[int, str]]:
    """Rated units in the user's scope (administrators may also pick any unit by code)."""
    scope = unit_scope(current_user)
    stmt = (select(Unit).join(RatedUnit, RatedUnit.unit_id == Unit.id)
            .where(RatedUnit.campaign_id == campaign.id).order_by(Unit.code))
    units = [u for u in db.session.scalars(stmt) if scope is None or u.id in scope]
    if scope is not None:
        extra = db.session.scalars(select(Unit).where(Unit.id.in_(scope)))
        units += [u for u in extra if u not in units]
    return [(u.id, f"{u.name} ({u.code})") for u in units]


@bp.route("/<key>", methods=["GET", "POST"])
@roles_required(*UPLOADERS)
def index(key: str):
    """The campaign's batches in the user's scope, and the upload form."""
    campaign = visible_campaign(key)
    form = UploadForm()
    form.unit.choices = _unit_choices(campaign)
    form.group.choices = [(g.group.value, g.group.label) for g in campaign.groups]
    if form.validate_on_submit():
        check_unit(current_user, form.unit.data)
        unit = db.session.get(Unit, form.unit.data)
        replaces = None
        if form.replaces.data:
            replaces = _batch(form.replaces.data)
        upload = form.file.data
        data = upload.read()
        filename = Path(upload.filename or "danh-sach").name
        if len(data) > current_app.config["UPLOAD_SYNC_LIMIT"]:
            # A big file: parse it on the queue, show progress meanwhile.
            waiting = upload_dir() / f"job-{secrets.token_hex(8)}{Path(filename).suffix[:8]}"
            waiting.write_bytes(data)
            job = create_job(JobKind.FRAME_PREVIEW,
                             {"path": str(waiting), "filename": filename, "unit_id": unit.id,
                              "group": form.group.data, "sheet": form.sheet.data or "",
                              "replaces": replaces.id if replaces else None},
                             campaign_id=campaign.id, user_id=current_user.id)
            db.session.commit()
            start_job(job)
            return redirect(url_for("admin.job", job_id=job.id))
        batch = preview_upload(campaign, unit, RespondentGroup(form.group.data), data, filename,
                               sheet=form.sheet.data or None, user=current_user,
                               replaces=replaces)
        db.session.commit()
        return redirect(url_for("frames.batch", batch_id=batch.id))
    scope = unit_scope(current_user)
    stmt = select(ImportBatch).where(ImportBatch.campaign_id == campaign.id) \
        .order_by(ImportBatch.id.desc())
    if scope is not None:
        stmt = stmt.where(ImportBatch.unit_id.in_(scope))
    batches = db.session.scalars(stmt).all()
    units = {u.id: u for u in db.session.scalars(select(Unit).where(
        Unit.id.in_({b.unit_id for b in batches})))}
    status = 422 if form.errors else 200
    return render_template("frames/index.html", campaign=campaign, form=form, batches=batches,
                           units=units), status


@bp.route("/batches/<int:batch_id>")
@roles_required(*UPLOADERS)
def batch(batch_id: int):
    """Preview: counts, first rows, issues; confirm / cancel / withdraw."""
    record = _batch(batch_id)
    campaign = visible_campaign(str(record.campaign_id))
    # The first 300 only: a million-row list can have 100k issues (the report has them all).
    issues = db.session.scalars(select(ImportIssue).where(ImportIssue.batch_id == record.id)
                                .order_by(ImportIssue.source_row, ImportIssue.id).limit(300)).all()
    return render_template("frames/batch.html", batch=record, campaign=campaign, issues=issues,
                           unit=db.session.get(Unit, record.unit_id))


@bp.route("/batches/<int:batch_id>/confirm", methods=["POST"])
@roles_required(*UPLOADERS)
def confirm(batch_id: int):
    """Import the previewed batch on the queue (one transaction: all or nothing)."""
    record = _batch(batch_id)
    if record.status is not BatchStatus.PREVIEW:
        flash("Lô này không ở trạng thái chờ xác nhận.", "error")
        return redirect(url_for("frames.batch", batch_id=batch_id)), 409
    job = create_job(JobKind.FRAME_IMPORT, {"batch": record.id}, campaign_id=record.campaign_id,
                     user_id=current_user.id, total=record.accepted)
    db.session.commit()
    start_job(job)
    return redirect(url_for("admin.job", job_id=job.id))


@bp.route("/batches/<int:batch_id>/cancel", methods=["POST"])
@roles_required(*UPLOADERS)
def cancel(batch_id: int):
    """Drop a batch waiting for confirmation."""
    record = _batch(batch_id)
    cancel_batch(record, current_user)
    db.session.commit()
    flash(f"Đã huỷ lô #{record.id}.", "success")
    return redirect(url_for("frames.index", key=str(record.campaign_id)))


@bp.route("/batches/<int:batch_id>/withdraw", methods=["POST"])
@roles_required(*UPLOADERS)
def withdraw(batch_id: int):
    """Take an active batch out of the frame (refused once sampling used it)."""
    record = _batch(batch_id)
    withdraw_batch(record, current_user)
    db.session.commit()
    flash(f"Đã rút lô #{record.id} khỏi danh sách.", "success")
    return redirect(url_for("frames.index", key=str(record.campaign_id)))


REPORT_HEADER = ["Dòng trong tệp", "Loại", "Mã lý do", "Nội dung"]


@bp.route("/batches/<int:batch_id>/issues.<fmt>")
@roles_required(*UPLOADERS)
def issues(batch_id: int, fmt: str):
    """Every rejected, duplicate and warned row, as CSV (UTF-8 BOM) or XLSX."""
    record = _batch(batch_id)
    rows = list(issue_rows(record))
    name = f"loi-lo-{record.id}"
    if fmt == "csv":
        import csv

        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(REPORT_HEADER)
        writer.writerows([[neutralise(c) for c in row] for row in rows])
        return send_file(io.BytesIO(text.getvalue().encode("utf-8-sig")), mimetype="text/csv",
                         as_attachment=True, download_name=f"{name}.csv")
    if fmt == "xlsx":
        import xlsxwriter

        out = io.BytesIO()
        book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False})
        sheet = book.add_worksheet("Loi")
        sheet.write_row(0, 0, REPORT_HEADER)
        for i, row in enumerate(rows, start=1):
            sheet.write_row(i, 0, [neutralise(c) for c in row])
        book.close()
        out.seek(0)
        return send_file(out, as_attachment=True, download_name=f"{name}.xlsx",
                         mimetype="application/vnd.openxmlformats-officedocument."
                                  "spreadsheetml.sheet")
    raise NotFound("Định dạng không hỗ trợ.")
