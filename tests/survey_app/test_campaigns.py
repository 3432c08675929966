"""Campaigns from plans (valid and broken), status life cycle, admin pages and scoping."""

from __future__ import annotations

from helpers import csrf_from, login, make_campaign, make_plan, make_user
from sqlalchemy import func, select

from questionnaires.catalog import plan_path
from survey_app.extensions import db
from survey_app.models import Campaign, CampaignStatus, Stratum, Unit


def test_campaign_from_quang_binh_plan_has_690_forms(runner):
    result = runner.invoke(args=["campaign", "create", "--plan", str(plan_path("quang-binh-2022"))])
    assert result.exit_code == 0, result.output
    campaign = db.session.scalar(select(Campaign))
    assert len(campaign.strata) == 45  # 15 communes × 3 groups
    assert sum(s.quota for s in campaign.strata) == 690
    assert "690 phiếu" in result.output
    assert all(g.questionnaire_digest for g in campaign.groups)
    # The same plan again is a conflict and creates nothing.
    again = runner.invoke(args=["campaign", "create", "--plan", str(plan_path("quang-binh-2022"))])
    assert again.exit_code == 2 and "đã tồn tại" in again.output
    assert db.session.scalar(select(func.count(Campaign.id))) == 1


def test_campaign_from_ha_noi_plan_has_five_groups(runner):
    result = runner.invoke(args=["campaign", "create", "--plan", str(plan_path("ha-noi-282-2022"))])
    assert result.exit_code == 0, result.output
    campaign = db.session.scalar(select(Campaign))
    assert len(campaign.groups) == 5


def test_broken_plan_is_refused_with_locations_and_creates_nothing(runner, tmp_path):
    source = plan_path("quang-binh-2022").read_text(encoding="utf-8")
    broken = source.replace('"citizen"', '"martian"', 1).replace("quota = 26", "quota = 0", 1)
    path = tmp_path / "broken.toml"
    path.write_text(broken, encoding="utf-8")
    result = runner.invoke(args=["campaign", "create", "--plan", str(path)])
    assert result.exit_code == 2
    assert "Kế hoạch không hợp lệ" in result.output
    assert "groups[" in result.output  # every problem carries its location
    assert db.session.scalar(select(func.count(Campaign.id))) == 0
    assert db.session.scalar(select(func.count(Unit.id))) == 0


def test_plan_with_toml_syntax_error(runner, tmp_path):
    path = tmp_path / "syntax.toml"
    path.write_text('key = "x"\nname = \n', encoding="utf-8")
    result = runner.invoke(args=["campaign", "create", "--plan", str(path)])
    assert result.exit_code == 2 and "Kế hoạch không hợp lệ" in result.output


def test_rated_levels_limit_strata(app_ctx):
    import dataclasses

    from questionnaires.model import GroupPlan, Mode, RespondentGroup

    plan = make_plan(units=("X1", "X2"))
    plan = dataclasses.replace(plan, groups=(
        GroupPlan(RespondentGroup.CITIZEN, "sipas-citizen@2026.1", Mode.PHONE, 5, 1,
                  rated_levels=("ward",)),
    ))
    from survey_app.services.campaigns import create_campaign

    campaign = create_campaign(plan)
    assert campaign.strata == []  # both units are communes


def test_status_moves_forward_only(client):
    make_campaign()
    make_user("quantri", "admin")
    login(client, "quantri", "password-123")
    page = client.get("/admin/campaigns/test-2026")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Xã Thử X1" in html and "Người dân" in html
    token = csrf_from(html)
    r = client.post("/admin/campaigns/test-2026", data={"status": "fielding", "csrf_token": token})
    assert r.status_code == 302
    assert db.session.scalar(select(Campaign.status)) is CampaignStatus.FIELDING
    r = client.post("/admin/campaigns/test-2026", data={"status": "draft", "csrf_token": token})
    assert r.status_code == 409
    assert "Không thể chuyển" in r.get_data(as_text=True)


def test_uploader_scoping_on_admin_pages(client):
    make_campaign(units=("A1",), key="camp-a")
    make_campaign(units=("B1",), key="camp-b")
    make_user("donvi_a", "uploader", units=["A1"])
    login(client, "donvi_a", "password-123")
    assert client.get("/admin/campaigns/camp-a").status_code == 200
    assert client.get("/admin/campaigns/camp-b").status_code == 404
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/units").status_code == 403
    index = client.get("/admin/").get_data(as_text=True)
    assert "camp-a" in index and "camp-b" not in index
    # Status changes are for administrators only.
    token = csrf_from(client.get("/admin/campaigns/camp-a").get_data(as_text=True))
    r = client.post("/admin/campaigns/camp-a", data={"status": "fielding", "csrf_token": token})
    assert r.status_code == 403


def test_strata_are_unit_by_group(app_ctx):
    campaign = make_campaign(units=("X1", "X2", "X3"), quota=6)
    assert db.session.scalar(select(func.count(Stratum.id))) == 6
    assert sorted({s.quota for s in campaign.strata}) == [3, 6]
