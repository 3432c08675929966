"""JSON API v1: session authentication, roles, scores."""

from __future__ import annotations

import itertools

import pytest
from helpers import login, make_campaign, make_user
from sqlalchemy import select

from questionnaires.model import Mode, RespondentGroup
from survey_app.analysis.services import freeze_scores
from survey_app.extensions import db
from survey_app.models import Answer, Response, ResponseSource, Unit

_ids = itertools.count(1)


def add_response(campaign, unit_code, answers):
    """A stored citizen response (bypassing the form)."""
    unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
    r = Response(campaign_id=campaign.id, unit_id=unit.id, group=RespondentGroup.CITIZEN,
                 questionnaire_ref="sipas-citizen@2026.1", mode=Mode.PHONE,
                 source=ResponseSource.WEB, submission_id=f"api-{next(_ids)}", flags=[])
    r.answers.extend(Answer(question_id=q, value=v) for q, v in answers.items())
    db.session.add(r)
    db.session.commit()


def citizen_answers(b, c, d, e):
    """One code for every question of sections B, C, D, E; no feedback given."""
    counts = {"b": 4, "c": 5, "d": 6, "e": 3}
    answers = {f"{s}{i}": v for s, v in zip("bcde", (b, c, d, e), strict=True)
               for i in range(1, counts[s] + 1)}
    return answers | {"f0": "khong"}


@pytest.fixture
def campaign(app_ctx):
    campaign = make_campaign(units=("X1", "X2"))
    add_response(campaign, "X1", citizen_answers("5", "5", "4", "2"))
    add_response(campaign, "X2", citizen_answers("1", "2", "3", "4"))
    return campaign


def test_anonymous_gets_401_json(client, campaign):
    for url in ("/api/v1/campaigns", f"/api/v1/campaigns/{campaign.key}/scores"):
        response = client.get(url)
        assert response.status_code == 401
        assert response.get_json()["error"] == "unauthorized"


@pytest.mark.parametrize("role", ["uploader", "enumerator"])
def test_other_roles_get_403(client, campaign, role):
    make_user("nguoi-dung", role, units=["X1"])
    login(client, "nguoi-dung", "password-123")
    response = client.get(f"/api/v1/campaigns/{campaign.key}/scores")
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"


@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_analyst_and_admin_get_scores(client, campaign, role):
    make_user("phan-tich", role)
    login(client, "phan-tich", "password-123")
    listing = client.get("/api/v1/campaigns").get_json()
    assert [c["key"] for c in listing["campaigns"]] == [campaign.key]
    data = client.get(f"/api/v1/campaigns/{campaign.key}/scores").get_json()
    assert data["campaign_key"] == campaign.key and data["weighted"] is False
    x1, x2 = data["units"]
    # X1: E1, E2 satisfied (100), E3 "4" satisfied, E4 "2" not → citizen overall 75.
    assert x1["groups"]["citizen"]["overall"] == pytest.approx(75)
    # X2: only E4 ("4") satisfied of four elements → 25.
    assert x2["survey_pct"] == pytest.approx(25)
    assert x1["rank"] == 1 and x2["rank"] == 2
    assert {"name", "code", "points", "low", "high", "response_rate", "change"} <= set(x1)
    assert client.get(f"/api/v1/campaigns/{campaign.key}/scores?weighted=1") \
        .get_json()["weighted"] is True
    assert client.get("/api/v1/campaigns/khong-co/scores").status_code == 404
    assert client.get(f"/api/v1/campaigns/{campaign.key}/scores/frozen").status_code == 404
    freeze_scores(campaign)
    db.session.commit()
    frozen = client.get(f"/api/v1/campaigns/{campaign.key}/scores/frozen").get_json()
    assert frozen["scores"]["units"][1]["survey_pct"] == pytest.approx(25)


def test_api_has_no_state_changing_routes(app_ctx):
    methods = {m for rule in app_ctx.url_map.iter_rules() if rule.rule.startswith("/api/")
               for m in rule.methods}
    assert methods <= {"GET", "HEAD", "OPTIONS"}
