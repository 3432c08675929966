"""Analyst pages, roles, exports over the web (direct and as a background job) and the CLI."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import openpyxl
import pytest
from helpers import csrf_from, login, make_campaign, make_frame, make_user
from sqlalchemy import select

from survey_app.analysis.demo import fill_synthetic_responses
from survey_app.analysis.services import score_campaign
from survey_app.extensions import db
from survey_app.models import FrameEntry


@pytest.fixture
def fielded(app_ctx):
    """Two drawn units with lists (names, phones) and synthetic responses for every form."""
    from survey_app.draws.services import draw_campaign

    campaign = make_campaign(units=("X1", "X2"), quota=6, reserves=1)
    for code in ("X1", "X2"):
        make_frame(campaign, code, "citizen", 10)
        make_frame(campaign, code, "civil_servant", 4, phones=False)
    draw_campaign(campaign)
    db.session.commit()
    fill_synthetic_responses(campaign, np.random.default_rng(3), share=1.0)
    db.session.commit()
    return campaign


def _pages(key: str, unit_id: int) -> list[str]:
    return ["/analysis/", f"/analysis/{key}", f"/analysis/{key}/units/{unit_id}",
            f"/analysis/{key}/quality", f"/analysis/{key}/scores.csv"]


def test_anonymous_is_sent_to_login(client, fielded):
    unit_id = score_campaign(fielded, weighted=False).units[0].unit_id
    for url in _pages(fielded.key, unit_id):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


@pytest.mark.parametrize("role", ["uploader", "enumerator"])
def test_field_roles_get_403(client, fielded, role):
    make_user("nguoi-dung", role, units=["X1"])
    login(client, "nguoi-dung", "password-123")
    unit_id = score_campaign(fielded, weighted=False).units[0].unit_id
    for url in _pages(fielded.key, unit_id):
        assert client.get(url).status_code == 403, url


def test_analyst_scoreboard_without_identities(client, fielded):
    make_user("phan-tich", "analyst")
    login(client, "phan-tich", "password-123")
    scores = score_campaign(fielded, weighted=False)
    page = client.get(f"/analysis/{fielded.key}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Xã Thử X1" in html and "<svg" in html and "E5" in html
    points = f"{scores.units[0].points:.2f}".replace(".", ",")
    assert points in html
    # CSP: no inline script or style anywhere.
    assert "<script" not in html and 'style="' not in html
    entries = list(db.session.scalars(select(FrameEntry)))
    for e in entries:
        assert e.name not in html
        if e.phone:
            assert e.phone not in html
    # Server-side sorting: ascending by survey % puts the weaker unit first.
    ordered = sorted(scores.units, key=lambda u: u.survey_pct)
    html = client.get(f"/analysis/{fielded.key}?sort=pct&dir=asc").get_data(as_text=True)
    assert html.index(ordered[0].name) < html.index(ordered[-1].name)
    html = client.get(f"/analysis/{fielded.key}?sort=pct&dir=desc").get_data(as_text=True)
    assert html.index(ordered[-1].name) < html.index(ordered[0].name)
    assert client.get(f"/analysis/{fielded.key}?weighted=1").status_code == 200

    unit = scores.units[0]
    detail = client.get(f"/analysis/{fielded.key}/units/{unit.unit_id}")
    assert detail.status_code == 200
    text = detail.get_data(as_text=True)
    assert "Tiếp cận dịch vụ" in text and "E3.5" in text and text.count("<svg") == 2
    assert 'style="' not in text
    assert client.get(f"/analysis/{fielded.key}/units/999999").status_code == 404
    quality = client.get(f"/analysis/{fielded.key}/quality?all=1").get_data(as_text=True)
    for e in entries:
        assert e.name not in quality


def test_exports_direct_and_as_job(client, fielded, app_ctx):
    make_user("phan-tich", "analyst")
    login(client, "phan-tich", "password-123")
    scores_csv = client.get(f"/analysis/{fielded.key}/scores.csv")
    assert scores_csv.status_code == 200
    rows = list(csv.reader(io.StringIO(scores_csv.get_data().decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["X1", "X2"]
    xlsx = client.get(f"/analysis/{fielded.key}/scores.xlsx?weighted=1")
    ws = openpyxl.load_workbook(io.BytesIO(xlsx.get_data())).active
    assert ws.cell(row=2, column=1).value == "X1"
    assert json.loads(client.get(f"/analysis/{fielded.key}/scores.json").get_data())["units"]
    assert client.get(f"/analysis/{fielded.key}/scores.exe").status_code == 404

    token = csrf_from(client.get(f"/analysis/{fielded.key}").get_data(as_text=True))
    direct = client.post(f"/analysis/{fielded.key}/microdata",
                         data={"csrf_token": token, "format": "csv"})
    assert direct.status_code == 200 and direct.mimetype == "text/csv"
    direct_rows = direct.get_data().decode("utf-8-sig").splitlines()
    assert direct_rows[0].startswith("unit_code,group,response_id")

    app_ctx.config["EXPORT_SYNC_LIMIT"] = 10
    try:
        queued = client.post(f"/analysis/{fielded.key}/microdata",
                             data={"csrf_token": token, "format": "csv"})
    finally:
        app_ctx.config.pop("EXPORT_SYNC_LIMIT")
    assert queued.status_code == 302
    job_id = int(re.search(r"/admin/jobs/(\d+)", queued.headers["Location"]).group(1))
    job_page = client.get(f"/admin/jobs/{job_id}").get_data(as_text=True)
    assert f"/analysis/exports/{job_id}" in job_page
    download = client.get(f"/analysis/exports/{job_id}")
    assert download.status_code == 200
    assert download.get_data().decode("utf-8-sig").splitlines() == direct_rows
    # Other roles cannot fetch the file.
    client.post("/logout", data={"csrf_token": token})
    make_user("dieu-tra", "enumerator", units=["X1"])
    login(client, "dieu-tra", "password-123")
    assert client.get(f"/analysis/exports/{job_id}").status_code == 403


def test_cli_exports(runner, fielded, tmp_path):
    result = runner.invoke(args=["scores", "export", fielded.key, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [u["code"] for u in data["units"]] == ["X1", "X2"]
    out = tmp_path / "diem.xlsx"
    result = runner.invoke(args=["scores", "export", fielded.key, "--format", "xlsx", "-o",
                                 str(out), "--weighted"])
    assert result.exit_code == 0, result.output
    assert openpyxl.load_workbook(out).active.cell(row=3, column=1).value == "X2"
    micro = tmp_path / "vi.csv"
    result = runner.invoke(args=["microdata", "export", fielded.key, "-o", str(micro)])
    assert result.exit_code == 0, result.output
    lines = micro.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) > 100 and lines[0].split(",")[:3] == ["unit_code", "group", "response_id"]
    result = runner.invoke(args=["scores", "export", "khong-co"])
    assert result.exit_code == 2
    result = runner.invoke(args=["scores", "flags", fielded.key, "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["checked"] > 0
