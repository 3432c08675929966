"""Synthetic responses for the demo campaign, so that the scoreboard shows real numbers.

Each rated unit gets a latent satisfaction level; each respondent adds their own leaning and
each answer some noise, so units differ in quality the way real ones do. A few respondents
straight-line, so the data-quality page has something to show. Answers carry no identity.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
from sqlalchemy import func, select

from questionnaires.model import Mode, Question, QuestionKind, Questionnaire

from ..extensions import db
from ..models import (
    AccessToken,
    Assignment,
    Campaign,
    Outcome,
    Response,
    ResponseLink,
    ResponseSource,
)
from ..models._types import utcnow
from ..services.responses import questionnaire_for, record_response

OPEN_OUTCOMES = (Outcome.PENDING, Outcome.ISSUED, Outcome.DELIVERED)
COMMENTS = (
    "Cần rút ngắn thời gian giải quyết hồ sơ.",
    "Công chức hướng dẫn nhiệt tình.",
    "Nên bố trí thêm chỗ ngồi chờ.",
    "Mong được nhận kết quả qua bưu điện.",
)


def _scale_answer(question: Question, level: float, rng: np.random.Generator) -> str:
    """A 1..5 answer around the respondent's level (3.6 + level), with some don't-knows."""
    dont_know = [o.code for o in question.options if o.dont_know]
    if dont_know and rng.random() < 0.03:
        return dont_know[0]
    valued = sorted((o for o in question.options if o.value is not None), key=lambda o: o.value)
    if not valued:
        return question.options[int(rng.integers(len(question.options)))].code
    lo, hi = valued[0].value, valued[-1].value
    target = 3.6 + level + rng.normal(0.0, 0.8)
    target = lo + (target - 1.0) / 4.0 * (hi - lo)  # the 1..5 leaning on this scale
    return min(valued, key=lambda o: abs(o.value - target)).code


def synthetic_answers(questionnaire: Questionnaire, level: float,
                      rng: np.random.Generator) -> dict[str, object]:
    """Answers of one synthetic respondent whose satisfaction leaning is `level` (0 = average)."""
    answers: dict[str, object] = {}
    straight = rng.random() < 0.03  # an inattentive respondent
    for q in questionnaire.questions():
        if q.kind in (QuestionKind.SATISFACTION, QuestionKind.RATING):
            if straight:
                top = max((o for o in q.options if o.value is not None),
                          key=lambda o: o.value, default=q.options[0])
                answers[q.id] = top.code
            else:
                answers[q.id] = _scale_answer(q, level, rng)
        elif q.kind is QuestionKind.YES_NO:
            codes = [o.code for o in q.options]
            p_yes = float(np.clip(0.45 + 0.2 * level, 0.05, 0.95))
            roll = rng.random()
            answers[q.id] = codes[0] if roll < p_yes else codes[-1] if roll > 0.95 else codes[1]
        elif q.kind is QuestionKind.SINGLE:
            answers[q.id] = q.options[int(rng.integers(len(q.options)))].code
        elif q.kind is QuestionKind.MULTI:
            k = int(rng.integers(1, min(3, len(q.options)) + 1))
            picked = rng.choice(len(q.options), size=k, replace=False)
            answers[q.id] = [q.options[i].code for i in sorted(picked)]
        elif q.kind is QuestionKind.NUMBER:
            lo = int(q.min_value) if q.min_value is not None else 0
            hi = int(q.max_value) if q.max_value is not None else 10
            answers[q.id] = str(int(rng.integers(lo, hi + 1)))
        elif q.kind is QuestionKind.TEXT and rng.random() < 0.15:
            answers[q.id] = COMMENTS[int(rng.integers(len(COMMENTS)))]
    return answers


def fill_synthetic_responses(campaign: Campaign, rng: np.random.Generator,
                             share: float = 0.8) -> int:
    """Answer about `share` of the campaign's open active assignments with synthetic
    responses (marked COMPLETED, linked with `ResponseLink`); returns how many were created."""
    assignments = list(db.session.scalars(
        select(Assignment)
        .outerjoin(ResponseLink, ResponseLink.assignment_id == Assignment.id)
        .where(Assignment.campaign_id == campaign.id, Assignment.active.is_(True),
               Assignment.outcome.in_(OPEN_OUTCOMES), ResponseLink.id.is_(None))
        .order_by(Assignment.id)
    ))
    if not assignments:
        return 0
    unit_ids = sorted({a.unit_id for a in assignments})
    levels = dict(zip(unit_ids, rng.normal(0.0, 0.6, size=len(unit_ids)), strict=True))
    questionnaires: dict = {}
    now = utcnow()
    created = 0
    for a in assignments:
        if rng.random() >= share:
            continue
        if a.group not in questionnaires:
            questionnaires[a.group] = questionnaire_for(campaign.id, a.group)[0]
        questionnaire = questionnaires[a.group]
        level = float(levels[a.unit_id] + rng.normal(0.0, 0.5))
        submission_id = f"demo-{campaign.id}-{a.id}"
        response = record_response(
            None, a, campaign_id=campaign.id, unit_id=a.unit_id, group=a.group,
            questionnaire=questionnaire, answers=synthetic_answers(questionnaire, level, rng),
            submission_id=submission_id,
            source=ResponseSource.WEB if a.mode is Mode.PHONE else ResponseSource.PAPER,
            mode=a.mode, started_at=now - dt.timedelta(seconds=float(rng.uniform(240, 900))),
        )
        if a.mode is not Mode.PHONE:
            response.duration_seconds = None  # paper forms have no measured duration
        token = db.session.scalar(select(AccessToken).where(
            AccessToken.assignment_id == a.id, AccessToken.revoked.is_(False),
            AccessToken.used_at.is_(None)))
        if token is not None:
            token.used_at = now
            token.submission_id = submission_id
        created += 1
    db.session.flush()
    return created


def demo_step(campaign: Campaign, echo: Callable[[str], None]) -> list[str] | None:
    """Demo step (idempotent): synthetic responses once the demo sample has been drawn."""
    from .services import flag_responses

    if db.session.scalar(select(func.count(Response.id))
                         .where(Response.campaign_id == campaign.id)):
        return None
    rng = np.random.default_rng((campaign.seed or 2026) + 7)
    created = fill_synthetic_responses(campaign, rng)
    if not created:
        return None
    flag_responses(campaign)
    db.session.commit()
    echo(f"Đã tạo {created} phiếu trả lời mô phỏng cho bảng điểm.")
    return [f"Bảng điểm: /analysis/{campaign.key}"]
