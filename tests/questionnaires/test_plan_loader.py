"""Campaign plan files: the shipped plans and validation of broken ones."""

from __future__ import annotations

import datetime as dt

import pytest

from questionnaires.catalog import PLANS_DIR, plan_path, shipped_plans, shipped_questionnaires
from questionnaires.errors import PlanError, QuestionnaireFormatError
from questionnaires.loader import load_plan
from questionnaires.model import ConversionMethod, FrameScope, Mode, RespondentGroup


@pytest.mark.parametrize("path", sorted(PLANS_DIR.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_plan_loads(path):
    plan = load_plan(path)
    assert plan.key == path.stem
    catalog = shipped_questionnaires()
    for group in plan.groups:
        assert catalog[group.questionnaire].group is group.group
    assert len({u.code for u in plan.units}) == len(plan.units)


def test_quang_binh_plan_totals_690_forms():
    plan = shipped_plans()["quang-binh-2022"]
    assert plan_path("quang-binh-2022").is_file()
    assert plan.total_forms == 690
    assert len(plan.units) == 15 and {u.level for u in plan.units} == {"commune"}
    quotas = {g.group: g.quota for g in plan.groups}
    assert quotas == {
        RespondentGroup.HDND_DELEGATE: 15,
        RespondentGroup.CIVIL_SERVANT: 5,
        RespondentGroup.CITIZEN: 26,
    }
    per_group = {g.group: g.quota * len(plan.units) for g in plan.groups}
    assert per_group[RespondentGroup.HDND_DELEGATE] == 225
    assert per_group[RespondentGroup.CIVIL_SERVANT] == 75
    assert per_group[RespondentGroup.CITIZEN] == 390
    assert plan.year == 2022 and plan.survey_points == 30
    assert plan.conversion is ConversionMethod.LINEAR and plan.seed is not None


def test_ha_noi_plan_has_five_groups_and_shared_frames():
    plan = shipped_plans()["ha-noi-282-2022"]
    assert {g.group for g in plan.groups} == set(RespondentGroup)
    shared = {g.group for g in plan.groups if g.frame_scope is FrameScope.SHARED}
    assert shared == {RespondentGroup.HDND_DELEGATE, RespondentGroup.LEADER}
    assert len(plan.units) >= 10 and all(u.code.startswith("HN-") for u in plan.units)
    assert plan.conversion is ConversionMethod.BANDS
    lows = [b.min_percent for b in plan.bands]
    assert lows == sorted(lows, reverse=True) and lows[-1] == 0


def test_demo_plan_matches_the_demo_server():
    plan = shipped_plans()["demo"]
    assert (plan.period_start, plan.period_end) == (dt.date(2026, 1, 1), dt.date(2026, 10, 31))
    assert plan.seed is not None and 4 <= len(plan.units) <= 5
    by_group = {g.group: g for g in plan.groups}
    citizen = by_group[RespondentGroup.CITIZEN]
    assert (citizen.mode, citizen.quota, citizen.reserves) == (Mode.PHONE, 8, 4)
    hdnd = by_group[RespondentGroup.HDND_DELEGATE]
    assert (hdnd.mode, hdnd.quota, hdnd.reserves, hdnd.frame_scope) == (
        Mode.POSTAL,
        5,
        2,
        FrameScope.SHARED,
    )
    servant = by_group[RespondentGroup.CIVIL_SERVANT]
    assert (servant.mode, servant.quota, servant.reserves) == (Mode.ENUMERATOR, 4, 2)


def test_plan_path_refuses_unknown_names():
    with pytest.raises(KeyError):
        plan_path("khong-co")
    with pytest.raises(KeyError):
        plan_path("../data/sipas-citizen@2026.1")


MINIMAL = """
key = "thu"
name = "Kế hoạch thử"
year = 2024
period_start = 2024-01-01
period_end = 2024-12-31

[[groups]]
group = "citizen"
questionnaire = "sipas-citizen@2026.1"
mode = "phone"
quota = 10

[[units]]
code = "X1"
level = "commune"
"""


def plan_problems(text: str, **kw) -> dict[str, str]:
    with pytest.raises(PlanError) as info:
        load_plan(text, **kw)
    assert isinstance(info.value, QuestionnaireFormatError)
    return {p.location: p.message for p in info.value.problems}


def test_minimal_plan_gets_defaults():
    plan = load_plan(MINIMAL)
    assert plan.survey_points == 30 and plan.conversion is ConversionMethod.LINEAR
    assert plan.groups[0].reserves == 0 and plan.groups[0].frame_scope is FrameScope.PER_UNIT
    assert plan.seed is None and plan.total_forms == 10


def test_unknown_questionnaire_and_bad_group_are_refused_with_location():
    text = (
        MINIMAL.replace("sipas-citizen@2026.1", "sipas-citizen@1999.1")
        + """
[[groups]]
group = "mayor"
questionnaire = "par-hdnd@2026.1"
mode = "postal"
quota = 5

[[groups]]
group = "business"
questionnaire = "par-hdnd@2026.1"
mode = "postal"
quota = 5
"""
    )
    problems = plan_problems(text)
    assert set(problems) == {
        "groups[0].questionnaire",
        "groups[1].group",
        "groups[2].questionnaire",
    }
    assert "sipas-citizen@1999.1" in problems["groups[0].questionnaire"]
    assert "mayor" in problems["groups[1].group"]
    assert "Đại biểu HĐND" in problems["groups[2].questionnaire"]


def test_questionnaires_are_looked_up_in_the_given_catalog():
    assert load_plan(MINIMAL, catalog=shipped_questionnaires()).groups[0].quota == 10
    assert set(plan_problems(MINIMAL, catalog={})) == {"groups[0].questionnaire"}


def test_a_broken_plan_reports_every_problem():
    text = """
key = "Thu Nghiem"
year = 1990
period_start = 2022-05-01
period_end = 2022-01-01
survey_points = 0
conversion = "bands"
min_response_rate = 1.5
colour = "đỏ"

[[bands]]
min_percent = 50
points = 10
[[bands]]
min_percent = 80
points = 40

[[groups]]
group = "citizen"
questionnaire = "sipas-citizen"
mode = "sms"
quota = 0
reserves = -1
weight = 0
frame_scope = "global"
rated_levels = ["district"]

[[groups]]
group = "citizen"
questionnaire = "sipas-citizen@2026.1"
mode = "phone"
quota = 2.5

[[units]]
code = "A"
level = "commune"
[[units]]
code = "A"
"""
    problems = plan_problems(text)
    assert set(problems) == {
        "key",
        "name",
        "year",
        "period_end",
        "survey_points",
        "min_response_rate",
        "colour",
        "bands[1].min_percent",
        "groups[0].questionnaire",
        "groups[0].mode",
        "groups[0].quota",
        "groups[0].reserves",
        "groups[0].weight",
        "groups[0].frame_scope",
        "groups[0].rated_levels[0]",
        "groups[1].group",
        "groups[1].quota",
        "units[1].code",
    }
    assert "trùng" in problems["units[1].code"] and "trùng" in problems["groups[1].group"]
    assert "giảm dần" in problems["bands[1].min_percent"]


@pytest.mark.parametrize(
    ("change", "location"),
    [
        (("year = 2024", "year = 2031"), "year"),  # outside its period
        (("period_start = 2024-01-01", 'period_start = "1/1/2024"'), "period_start"),
        (("period_end = 2024-12-31", "period_end = 2024-12-31T10:00:00"), "period_end"),
        (("quota = 10", "quota = 10\nreserves = 2\nweight = -1"), "groups[0].weight"),
        (('key = "thu"', 'key = "thu"\nconversion = "bands"'), "bands"),
        (
            ('level = "commune"', 'level = "commune"\n[[bands]]\nmin_percent = 50\npoints = 5'),
            "bands",
        ),
    ],
)
def test_single_plan_problems(change, location):
    old, new = change
    assert old in MINIMAL
    assert set(plan_problems(MINIMAL.replace(old, new))) == {location}


def test_bands_plan_accepts_descending_bands_and_string_dates():
    text = (
        MINIMAL.replace('key = "thu"', 'key = "thu"\nconversion = "bands"').replace(
            "period_end = 2024-12-31", 'period_end = "2024-12-31"'
        )
        + "\n[[bands]]\nmin_percent = 80\npoints = 30\n[[bands]]\nmin_percent = 0\npoints = 10\n"
    )
    plan = load_plan(text)
    assert plan.period_end == dt.date(2024, 12, 31)
    assert [(b.min_percent, b.points) for b in plan.bands] == [(80.0, 30.0), (0.0, 10.0)]


def test_plan_syntax_error_reports_its_line():
    problems = plan_problems(MINIMAL.replace("quota = 10", "quota = = 10"))
    (location,) = problems
    assert location.startswith("dòng ")
