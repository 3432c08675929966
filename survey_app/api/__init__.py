"""JSON API v1 (read only): campaigns and their scores for analysts and administrators.

Authentication is the signed-in session; only GET routes exist, so no CSRF token is needed.
401 (JSON) when not signed in, 403 for other roles.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Blueprint, jsonify, request
from flask_login import current_user
from sqlalchemy import select

from ..admin import visible_campaign
from ..analysis.services import latest_snapshot, score_campaign
from ..errors import Forbidden, NotFound, SurveyError
from ..extensions import db
from ..models import Campaign, Role

bp = Blueprint("api", __name__, url_prefix="/api/v1")

API_ROLES = (Role.ANALYST, Role.ADMIN)


def api_roles_required(view: Callable) -> Callable:
    """Signed-in analyst or administrator: 401 / 403 as JSON, never a redirect."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            raise SurveyError("Vui lòng đăng nhập để dùng API.", status=401,
                              code="unauthorized")
        if current_user.role not in API_ROLES:
            raise Forbidden("Bạn không có quyền truy cập dữ liệu này.")
        return view(*args, **kwargs)

    return wrapped


def _flag(name: str) -> bool:
    return request.args.get(name, "0") in ("1", "true", "yes")


@bp.route("/campaigns")
@api_roles_required
def campaigns():
    """Campaigns: key, name, year, status."""
    items = db.session.scalars(select(Campaign).order_by(Campaign.year.desc(), Campaign.id))
    return jsonify({"campaigns": [
        {"key": c.key, "name": c.name, "year": c.year, "status": c.status.value,
         "survey_points": c.survey_points} for c in items
    ]})


@bp.route("/campaigns/<key>/scores")
@api_roles_required
def scores(key: str):
    """Live scores of every rated unit (`?weighted=1` for design-weighted estimates)."""
    campaign = visible_campaign(key)
    result = score_campaign(campaign, weighted=_flag("weighted"))
    return jsonify(result.to_dict())


@bp.route("/campaigns/<key>/scores/frozen")
@api_roles_required
def frozen_scores(key: str):
    """The scores frozen when the campaign closed (404 before)."""
    campaign = visible_campaign(key)
    snapshot = latest_snapshot(campaign)
    if snapshot is None:
        raise NotFound("Chiến dịch chưa chốt điểm.")
    variant = "weighted" if _flag("weighted") else "unweighted"
    return jsonify({"frozen_at": snapshot.frozen_at.isoformat(),
                    "questionnaires": snapshot.questionnaires,
                    "responses_digest": snapshot.responses_digest,
                    "scores": snapshot.payload.get(variant, {})})
