"""Administration pages: overview, unit tree, campaigns with groups and quotas, users."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import SelectField

from ..auth.access import roles_required, unit_scope
from ..errors import NotFound
from ..extensions import db
from ..models import (
    Campaign,
    CampaignStatus,
    RatedUnit,
    Role,
    Stratum,
    Unit,
    User,
)
from ..services.campaigns import get_campaign, set_status

bp = Blueprint("admin", __name__, url_prefix="/admin")


class StatusForm(FlaskForm):
    """Move a campaign to its next status."""

    status = SelectField("Trạng thái", choices=[(s.value, s.label) for s in CampaignStatus])


def visible_campaign(key: str) -> Campaign:
    """A campaign the current user may see: scoped users only see campaigns rating their units."""
    campaign = get_campaign(key)
    scope = unit_scope(current_user)
    if scope is not None:
        rated = set(db.session.scalars(
            select(RatedUnit.unit_id).where(RatedUnit.campaign_id == campaign.id)))
        if not rated & scope:
            raise NotFound("Không tìm thấy chiến dịch.")
    return campaign


@bp.route("/")
@login_required
def index():
    """Overview: the campaigns the user may see."""
    campaigns = db.session.scalars(select(Campaign).order_by(Campaign.year.desc(), Campaign.id))
    scope = unit_scope(current_user)
    rows = []
    for c in campaigns:
        rated = set(db.session.scalars(
            select(RatedUnit.unit_id).where(RatedUnit.campaign_id == c.id)))
        if scope is not None and not rated & scope:
            continue
        rows.append((c, len(rated)))
    return render_template("admin/index.html", campaigns=rows)


@bp.route("/units")
@roles_required(Role.ADMIN)
def units():
    """Browse the unit tree: roots, or the children of `parent`, or a name/code search."""
    parent_id = request.args.get("parent", type=int)
    q = (request.args.get("q") or "").strip()
    stmt = select(Unit).order_by(Unit.scheme, Unit.code)
    parent = None
    if q:
        stmt = stmt.where((Unit.name.ilike(f"%{q}%")) | (Unit.code == q)).limit(200)
    elif parent_id:
        parent = db.session.get(Unit, parent_id)
        if parent is None:
            raise NotFound("Không tìm thấy đơn vị.")
        stmt = stmt.where(Unit.parent_id == parent_id)
    else:
        stmt = stmt.where(Unit.parent_id.is_(None))
    items = db.session.scalars(stmt).all()
    child_counts = dict(db.session.execute(
        select(Unit.parent_id, func.count(Unit.id))
        .where(Unit.parent_id.in_([u.id for u in items])).group_by(Unit.parent_id)).all())
    total = db.session.scalar(select(func.count(Unit.id)))
    return render_template("admin/units.html", units=items, parent=parent, q=q,
                           child_counts=child_counts, total=total)


@bp.route("/campaigns/<key>", methods=["GET", "POST"])
@login_required
def campaign(key: str):
    """A campaign: groups with questionnaire and mode, strata (quota per unit × group)."""
    campaign = visible_campaign(key)
    form = StatusForm()
    if request.method == "POST":
        if current_user.role is not Role.ADMIN:
            from ..errors import Forbidden

            raise Forbidden("Chỉ quản trị viên được đổi trạng thái chiến dịch.")
        if form.validate_on_submit():
            set_status(campaign, CampaignStatus(form.status.data))
            db.session.commit()
            flash(f"Chiến dịch chuyển sang «{campaign.status.label}».", "success")
        return redirect(url_for("admin.campaign", key=campaign.key))
    scope = unit_scope(current_user)
    strata_stmt = (select(Stratum).where(Stratum.campaign_id == campaign.id)
                   .join(Unit, Unit.id == Stratum.unit_id).order_by(Unit.code, Stratum.group))
    if scope is not None:
        strata_stmt = strata_stmt.where(Stratum.unit_id.in_(scope))
    strata = db.session.scalars(strata_stmt).all()
    form.status.data = campaign.status.value
    from ..draws import draw_panel_context
    from ..draws.services import stratum_figures

    used = {f["stratum"].id: f["reserves_used"] for f in stratum_figures(campaign)}
    return render_template("admin/campaign.html", campaign=campaign, strata=strata, form=form,
                           draw_panel=draw_panel_context(campaign), reserves_used=used)


@bp.route("/jobs/<int:job_id>")
@login_required
def job(job_id: int):
    """Progress of a background job (refreshes itself without JavaScript)."""
    from ..models import BackgroundJob, JobStatus

    record = db.session.get(BackgroundJob, job_id)
    if record is None or (current_user.role is not Role.ADMIN
                          and record.created_by_id != current_user.id):
        raise NotFound("Không tìm thấy tác vụ.")
    running = record.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    response = render_template("admin/job.html", job=record, running=running)
    headers = {"Refresh": "2"} if running else {}
    return response, 200, headers


@bp.route("/users")
@roles_required(Role.ADMIN)
def users():
    """Users with their roles and units."""
    items = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template("admin/users.html", users=items)
