"""Analyst pages: scoreboard, unit drill-down, data quality and exclusions, exports.

Analysts and administrators only; nothing here shows a name, a phone number, an address, a
serial or a token.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from ..admin import visible_campaign
from ..auth.access import roles_required
from ..errors import NotFound, SurveyError
from ..extensions import db
from ..models import BackgroundJob, Campaign, CampaignStatus, JobKind, JobStatus, Role
from ..services.jobs import create_job, start_job
from . import demo, hooks  # noqa: F401  (register the demo step and the freeze on closing)
from .charts import interval_chart
from .exports import (
    ExportFormat,
    ExportKind,
    export_filename,
    exports_dir,
    microdata_count,
    sync_limit,
    write_microdata,
    write_scores,
)
from .services import (
    QUALITY_FLAG_LABELS,
    UNIT_FLAG_LABELS,
    flag_responses,
    freeze_scores,
    latest_snapshot,
    review_rows,
    score_campaign,
    set_exclusion,
    sorted_units,
    units_for_chart,
)

bp = Blueprint("analysis", __name__, url_prefix="/analysis")

ANALYSIS_ROLES = (Role.ANALYST, Role.ADMIN)


@bp.app_template_filter("analysis_num")
def format_number(value: float | None, decimals: int = 1) -> str:
    """Vietnamese number format (decimal comma); an en dash when there is no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:,.{decimals}f}"
    return text.replace(",", " ").replace(".", ",")


@bp.app_template_filter("analysis_signed")
def format_signed(value: float | None, decimals: int = 1) -> str:
    """A change with its sign (+1,2 / −0,5)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = format_number(abs(value), decimals)
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


def _svg(svg: str) -> Markup:
    """Mark a chart safe for templates: charts.py escapes every text it puts in the SVG."""
    return Markup(svg)  # noqa: S704


def _weighted() -> bool:
    return request.args.get("weighted", "0") in ("1", "true", "yes")


@bp.route("/")
@roles_required(*ANALYSIS_ROLES)
def index():
    """Campaigns to analyse."""
    campaigns = db.session.scalars(select(Campaign).order_by(Campaign.year.desc(), Campaign.id))
    return render_template("analysis/index.html", campaigns=list(campaigns))


@bp.route("/<key>")
@roles_required(*ANALYSIS_ROLES)
def scoreboard(key: str):
    """Scores of every rated unit: sortable table and a chart with confidence intervals."""
    campaign = visible_campaign(key)
    weighted = _weighted()
    scores = score_campaign(campaign, weighted=weighted)
    sort = request.args.get("sort", "rank")
    default_desc = sort not in ("rank", "code", "name")
    descending = request.args.get("dir", "desc" if default_desc else "asc") == "desc"
    units = sorted_units(scores, sort, descending)
    chart = _svg(interval_chart(
        units_for_chart(sorted_units(scores, "pct", True)),
        title="Tỷ lệ % điều tra xã hội học của các đơn vị, khoảng tin cậy 95%",
    ))
    return render_template(
        "analysis/scoreboard.html", campaign=campaign, scores=scores, units=units,
        sort=sort, descending=descending, weighted=weighted, chart=chart,
        flag_labels=UNIT_FLAG_LABELS, snapshot=latest_snapshot(campaign),
        sync_limit=sync_limit(),
    )


@bp.route("/<key>/units/<int:unit_id>")
@roles_required(*ANALYSIS_ROLES)
def unit(key: str, unit_id: int):
    """One unit: its groups, elements and criteria, and its element profile chart."""
    campaign = visible_campaign(key)
    weighted = _weighted()
    scores = score_campaign(campaign, weighted=weighted)
    result = scores.unit(unit_id)
    charts = {}
    for g in scores.groups:
        gs = result.groups.get(g.group)
        if gs is None:
            continue
        items = [(f"{eid} {title}", *gs.elements.get(eid, [None, None, None])[:3])
                 for eid, title in g.elements]
        charts[g.group] = _svg(interval_chart(
            items, title=f"Các yếu tố – {g.label}", bars=True))
    return render_template("analysis/unit.html", campaign=campaign, scores=scores,
                           result=result, weighted=weighted, charts=charts,
                           flag_labels=UNIT_FLAG_LABELS)


@bp.route("/<key>/quality")
@roles_required(*ANALYSIS_ROLES)
def quality(key: str):
    """Responses with data-quality flags (or all with ?all=1), excluded ones included."""
    campaign = visible_campaign(key)
    show_all = request.args.get("all") == "1"
    rows = review_rows(campaign, only_flagged=not show_all)
    return render_template("analysis/quality.html", campaign=campaign, rows=rows,
                           show_all=show_all, flag_labels=QUALITY_FLAG_LABELS)


@bp.route("/<key>/quality/check", methods=["POST"])
@roles_required(*ANALYSIS_ROLES)
def quality_check(key: str):
    """Recompute and store the data-quality flags of every response."""
    campaign = visible_campaign(key)
    summary = flag_responses(campaign)
    db.session.commit()
    flash(f"Đã kiểm tra {summary.checked} phiếu: {summary.flagged} phiếu có cảnh báo.",
          "success")
    return redirect(url_for("analysis.quality", key=campaign.key))


@bp.route("/<key>/responses/<int:response_id>/exclusion", methods=["POST"])
@roles_required(*ANALYSIS_ROLES)
def exclusion(key: str, response_id: int):
    """Exclude a response (with a reason) or include it again; scores follow at once."""
    campaign = visible_campaign(key)
    action = request.form.get("action", "")
    if action not in ("exclude", "include"):
        abort(400)
    set_exclusion(campaign, response_id, excluded=action == "exclude",
                  reason=request.form.get("reason", ""), user=current_user)
    db.session.commit()
    flash(f"Đã {'loại' if action == 'exclude' else 'đưa lại'} phiếu #{response_id} "
          f"{'khỏi' if action == 'exclude' else 'vào'} kết quả.", "success")
    return redirect(url_for("analysis.quality", key=campaign.key,
                            all=request.form.get("all") or None))


@bp.route("/<key>/scores.<fmt>")
@roles_required(*ANALYSIS_ROLES)
def export_scores(key: str, fmt: str):
    """Scores of every unit as CSV, XLSX or JSON (one row per unit: always small)."""
    campaign = visible_campaign(key)
    try:
        export_format = ExportFormat(fmt)
    except ValueError:
        raise NotFound("Định dạng không hỗ trợ.") from None
    scores = score_campaign(campaign, weighted=_weighted())
    out = io.BytesIO()
    write_scores(scores, export_format, out)
    out.seek(0)
    suffix = "-co-trong-so" if scores.weighted else ""
    return send_file(out, mimetype=export_format.mimetype, as_attachment=True,
                     download_name=export_filename(campaign, ExportKind.SCORES, export_format,
                                                   suffix))


@bp.route("/<key>/microdata", methods=["POST"])
@roles_required(*ANALYSIS_ROLES)
def export_microdata(key: str):
    """Anonymised microdata: streamed at once when small, else written by a background job."""
    campaign = visible_campaign(key)
    try:
        export_format = ExportFormat(request.form.get("format", "csv"))
    except ValueError:
        abort(400)
    if export_format is ExportFormat.JSON:
        abort(400)
    total = microdata_count(campaign)
    if total >= sync_limit():
        job = create_job(JobKind.EXPORT, {"what": ExportKind.MICRODATA.value,
                                          "format": export_format.value},
                         campaign_id=campaign.id, user_id=current_user.id, total=total)
        db.session.commit()
        start_job(job)
        return redirect(url_for("admin.job", job_id=job.id))
    out = io.BytesIO()
    write_microdata(campaign, export_format, out)
    out.seek(0)
    return send_file(out, mimetype=export_format.mimetype, as_attachment=True,
                     download_name=export_filename(campaign, ExportKind.MICRODATA,
                                                   export_format))


@bp.route("/exports/<int:job_id>")
@roles_required(*ANALYSIS_ROLES)
def download(job_id: int):
    """The file written by a finished export job."""
    job = db.session.get(BackgroundJob, job_id)
    if job is None or job.kind is not JobKind.EXPORT or job.status is not JobStatus.DONE:
        raise NotFound("Không tìm thấy tệp xuất.")
    name = Path(str(job.result.get("file", ""))).name  # never a path from elsewhere
    path = exports_dir() / name
    if not name or not path.is_file():
        raise NotFound("Tệp xuất không còn trên máy chủ.")
    fmt = ExportFormat(path.suffix.lstrip("."))
    return send_file(path, mimetype=fmt.mimetype, as_attachment=True, download_name=name)


@bp.route("/<key>/freeze", methods=["POST"])
@roles_required(Role.ADMIN)
def freeze(key: str):
    """Freeze the scores of a closed campaign (the official figures)."""
    campaign = visible_campaign(key)
    if campaign.status is not CampaignStatus.CLOSED:
        raise SurveyError("Chỉ chốt điểm khi chiến dịch đã kết thúc.", status=409)
    snapshot = freeze_scores(campaign, user=current_user)
    db.session.commit()
    flash(f"Đã chốt điểm lúc {snapshot.frozen_at:%H:%M %d/%m/%Y}.", "success")
    return redirect(url_for("analysis.scoreboard", key=campaign.key))
