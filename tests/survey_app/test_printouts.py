"""Printing inside the app: batches in delivery order with working QR codes and short codes,
issued state, token rotation on reprint, all-or-nothing jobs, postal pack, anonymous forms, CLI
and roles."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from pathlib import Path

import openpyxl
import pypdf
import pypdfium2 as pdfium
import pytest
import zxingcpp
from helpers import csrf_from, login, make_campaign, make_frame, make_user
from sqlalchemy import func, select, update

from printing.postal import vietnamese_sort_key
from questionnaires.model import GroupPlan, Mode, RespondentGroup
from survey_app.draws.services import draw_campaign
from survey_app.extensions import db
from survey_app.models import (
    AccessToken,
    Assignment,
    BackgroundJob,
    FrameEntry,
    JobStatus,
    Outcome,
    Unit,
)
from survey_app.printouts.services import layout_for, print_batch

CITIZEN = RespondentGroup.CITIZEN
CODE_RE = re.compile(r"Mã phiếu: ([0-9A-Z]{5}-[0-9A-Z]{5})")
# Out of order on purpose: delivery order is natural and Vietnamese-aware (Thôn 2 < Thôn 10).
ADDRESSES = ["Thôn 10, xã Thử", "Thôn 2, xã Thử", "Đội 1, xã Thử", "An Bình, xã Thử",
             "Thôn 1, xã Thử", "Bến Đò, xã Thử"]


# --- helpers ---------------------------------------------------------------------------------


def _setup(quota=3, reserves=1, n=6):
    """Two communes; citizens by post (quota 3 + 1 reserve), civil servants by enumerator."""
    groups = (GroupPlan(CITIZEN, "sipas-citizen@2026.1", Mode.POSTAL, quota, reserves),
              GroupPlan(RespondentGroup.CIVIL_SERVANT, "par-civil-servant@2026.1",
                        Mode.ENUMERATOR, 1, 0))
    campaign = make_campaign(units=("X1", "X2"), groups=groups)
    for code in ("X1", "X2"):
        make_frame(campaign, code, "citizen", n)
        make_frame(campaign, code, "civil_servant", 2, phones=False)
    for i, entry in enumerate(db.session.scalars(
            select(FrameEntry).where(FrameEntry.group == CITIZEN).order_by(FrameEntry.id))):
        entry.address = ADDRESSES[i % len(ADDRESSES)]
    draw_campaign(campaign)
    db.session.commit()
    return campaign


def _unit(code: str) -> Unit:
    return db.session.scalar(select(Unit).where(Unit.code == code))


def _assignments(unit_id, group=CITIZEN, active=True):
    return db.session.scalars(select(Assignment).where(
        Assignment.unit_id == unit_id, Assignment.group == group,
        Assignment.active.is_(active)).order_by(Assignment.draw_order)).all()


def _texts(data: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return [unicodedata.normalize("NFC", p.extract_text()) for p in reader.pages]


def _qr(data: bytes, page: int) -> str:
    doc = pdfium.PdfDocument(data)
    try:
        image = doc[page].render(scale=2.5).to_pil()
    finally:
        doc.close()
    found = [r.text for r in zxingcpp.read_barcodes(image)
             if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(found) == 1, found
    return found[0]


def _path(url: str) -> str:
    assert url.startswith("http://localhost/f/"), url
    return url[len("http://localhost"):]


def _open_by_code(client, code: str):
    page = client.get("/f")
    r = client.post("/f", data={"code": code, "csrf_token": csrf_from(page.get_data(True))})
    assert r.status_code == 302 and r.headers["Location"].endswith("/f/ma")
    return client.get("/f/ma")


def _print(campaign, unit_id, group=CITIZEN) -> tuple[bytes, dict]:
    buf = io.BytesIO()
    result = print_batch(campaign, unit_id=unit_id, group=group, out=buf)
    db.session.commit()
    return buf.getvalue(), result


def _post_print(client, campaign, unit_id, kind, group="citizen", count=None, follow=True):
    page = client.get(f"/print/{campaign.key}")
    assert page.status_code == 200
    data = {"csrf_token": csrf_from(page.get_data(True)), "unit_id": unit_id, "group": group,
            "kind": kind}
    if count is not None:
        data["count"] = count
    r = client.post(f"/print/{campaign.key}", data=data)
    if not follow:
        return r
    assert r.status_code == 302 and "/admin/jobs/" in r.headers["Location"], r.get_data(True)
    job_page = client.get(r.headers["Location"])
    html = job_page.get_data(True)
    assert "Xong" in html, html
    link = re.search(r'href="(/print/[^"]+/file)"', html).group(1)
    return link


# --- service ---------------------------------------------------------------------------------


def test_batch_pages_order_qr_code_and_issued_state(client, app_ctx):
    campaign = _setup()
    x1 = _unit("X1")
    data, result = _print(campaign, x1.id)
    active = _assignments(x1.id)
    assert len(active) == 3  # the inactive reserve is not printed
    pages_per_form = layout_for(campaign, CITIZEN).page_count
    texts = _texts(data)
    assert result["forms"] == 3 and len(texts) == 3 * pages_per_form == result["pages"]

    # delivery order: by address (natural, Vietnamese-aware), every page of a form together
    entries = {a.serial: db.session.get(FrameEntry, a.frame_entry_id) for a in active}
    expected = sorted(entries, key=lambda s: vietnamese_sort_key(entries[s].address))
    assert result["serials"] == expected
    for i, serial in enumerate(expected):
        for p in range(pages_per_form):
            assert f"Số phiếu: {serial}" in texts[i * pages_per_form + p]
        assert entries[serial].name in texts[i * pages_per_form]
    assert "Xã Thử X1" in texts[0]

    # the QR code opens the respondent form; the printed short code opens it via /f
    url = _qr(data, 0)
    html = client.get(_path(url)).get_data(True)
    assert "Phần 1/" in html
    code = CODE_RE.search(texts[pages_per_form]).group(1)
    assert "Phần 1/" in _open_by_code(client, code.lower().replace("-", " ")).get_data(True)

    db.session.expire_all()
    for a in _assignments(x1.id):
        assert a.outcome is Outcome.ISSUED and a.issued_mode is Mode.POSTAL and a.issued_at
    assert all(a.outcome is Outcome.PENDING for a in _assignments(_unit("X2").id))
    assert all(a.outcome is Outcome.RESERVE for a in _assignments(x1.id, active=False))


def test_reprint_rotates_tokens_and_skips_finished(client, app_ctx):
    campaign = _setup()
    x1 = _unit("X1")
    first, result = _print(campaign, x1.id)
    old_urls = [_qr(first, 0)]
    assert client.get(_path(old_urls[0])).status_code == 200
    done = db.session.scalar(select(Assignment).where(Assignment.serial == result["serials"][1]))
    done.outcome = Outcome.COMPLETED
    refused = db.session.scalar(select(Assignment).where(
        Assignment.serial == result["serials"][2]))
    refused.outcome = Outcome.REFUSED
    db.session.commit()

    second, again = _print(campaign, x1.id)
    assert again["serials"] == [result["serials"][0]] and again["reprinted"] == 1
    pages_per_form = layout_for(campaign, CITIZEN).page_count
    assert len(_texts(second)) == pages_per_form
    assert client.get(_path(old_urls[0])).status_code == 404  # the old printout stops working
    assert "Phần 1/" in client.get(_path(_qr(second, 0))).get_data(True)
    # one live token per printed assignment; the finished ones keep theirs untouched
    live = db.session.execute(select(AccessToken.assignment_id, func.count()).where(
        AccessToken.revoked.is_(False)).group_by(AccessToken.assignment_id)).all()
    assert dict(live) == {done.id: 1, refused.id: 1,
                          db.session.scalar(select(Assignment.id).where(
                              Assignment.serial == result["serials"][0])): 1}
    db.session.expire_all()
    assert db.session.get(Assignment, done.id).outcome is Outcome.COMPLETED


# --- web: jobs, downloads, postal pack --------------------------------------------------------


def test_web_batch_job_download_and_warning(client, runner, app_ctx):
    campaign = _setup()
    make_user("quantri", "admin")
    login(client, "quantri", "password-123")
    x1 = _unit("X1")
    campaign_page = client.get(f"/admin/campaigns/{campaign.key}").get_data(True)
    assert f"/print/{campaign.key}" in campaign_page
    page = client.get(f"/print/{campaign.key}").get_data(True)
    assert "hết hiệu lực" in page and "Xã Thử X2" in page
    link = _post_print(client, campaign, x1.id, "forms")
    r = client.get(link)
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert r.headers["Cache-Control"] == "no-store"
    pages_per_form = layout_for(campaign, CITIZEN).page_count
    assert len(_texts(r.data)) == 3 * pages_per_form
    assert "Phần 1/" in client.get(_path(_qr(r.data, 0))).get_data(True)
    # the page now counts them as issued and warns before a reprint
    page = client.get(f"/print/{campaign.key}").get_data(True)
    assert "3 phiếu đã phát" in page and "In lại phiếu" in page
    r.close()
    # old print files (personal data) can be cleaned up; the download is then gone
    assert "Đã xoá 0" in runner.invoke(args=["print", "clean", "--days", "1"]).output
    removed = re.search(r"Đã xoá (\d+)", runner.invoke(args=["print", "clean", "--days", "0"]
                                                        ).output)
    assert int(removed.group(1)) >= 1
    assert client.get(link).status_code == 404


def test_postal_pack_and_manifests_hold_no_token(client, app_ctx):
    campaign = _setup()
    make_user("quantri", "admin")
    login(client, "quantri", "password-123")
    x1 = _unit("X1")
    r = client.get(_post_print(client, campaign, x1.id, "postal_pack"))
    assert r.mimetype == "application/zip"
    pack = zipfile.ZipFile(io.BytesIO(r.data))
    r.close()
    assert sorted(pack.namelist()) == sorted(["phieu.pdf", "nhan.pdf", "phong-bi.pdf",
                                              "danh-sach.csv", "danh-sach.xlsx",
                                              "phong-bi-tra-loi.txt"])
    forms = pack.read("phieu.pdf")
    pages_per_form = layout_for(campaign, CITIZEN).page_count
    texts = _texts(forms)
    serials = [re.search(r"Số phiếu: (\S+)", texts[i * pages_per_form]).group(1)
               for i in range(3)]
    codes = [CODE_RE.search(texts[i * pages_per_form]).group(1) for i in range(3)]
    token = _qr(forms, 0).rsplit("/", 1)[1]

    rows = list(csv.reader(io.StringIO(pack.read("danh-sach.csv").decode("utf-8-sig"))))
    assert rows[0][1:3] == ["Số phiếu", "Người nhận"]
    assert [row[1] for row in rows[1:]] == serials
    assert [row[6] for row in rows[1:]] == codes  # form code = the printed short code
    by_serial = {a.serial: db.session.get(FrameEntry, a.frame_entry_id)
                 for a in _assignments(x1.id)}
    for row in rows[1:]:
        entry = by_serial[row[1]]
        assert row[2] == entry.name and row[3] == entry.address and row[5] == "Xã Thử X1"
        assert row[4] == "0" + entry.phone[3:]
    sheet = openpyxl.load_workbook(io.BytesIO(pack.read("danh-sach.xlsx"))).active
    xrows = [[c or "" for c in row] for row in sheet.iter_rows(values_only=True)]
    assert xrows[1:] == [row for row in rows[1:]]
    everything = (pack.read("danh-sach.csv").decode("utf-8-sig") + repr(xrows)
                  + pack.read("phong-bi-tra-loi.txt").decode())
    assert token not in everything and "/f/" not in everything
    assert "Phiếu khảo sát" in pack.read("phong-bi-tra-loi.txt").decode()
    assert len(pypdf.PdfReader(io.BytesIO(pack.read("nhan.pdf"))).pages) == 1  # 3 of 24
    assert len(pypdf.PdfReader(io.BytesIO(pack.read("phong-bi.pdf"))).pages) == 3
    # the pack's codes are the live ones
    assert client.get("/f/" + token).status_code == 200

    # a stand-alone manifest changes no code and leaves the code column empty
    r = client.get(_post_print(client, campaign, x1.id, "manifest_xlsx"))
    sheet = openpyxl.load_workbook(io.BytesIO(r.data)).active
    r.close()
    alone = list(sheet.iter_rows(values_only=True))
    assert [row[1] for row in alone[1:]] == serials
    assert all(not row[6] for row in alone[1:])
    assert client.get("/f/" + token).status_code == 200


def test_failed_job_changes_nothing_and_leaves_no_file(client, app_ctx, monkeypatch):
    campaign = _setup()
    make_user("quantri", "admin")
    login(client, "quantri", "password-123")
    x1 = _unit("X1")
    import survey_app.printouts.services as services

    real = services.render_forms

    def broken(layout, forms, out, progress=None):
        def some():
            for i, p in enumerate(forms):
                if i == 2:
                    raise RuntimeError("printer on fire")
                yield p
        return real(layout, some(), out, progress)

    monkeypatch.setattr(services, "render_forms", broken)
    page = client.get(f"/print/{campaign.key}")
    r = client.post(f"/print/{campaign.key}", data={
        "csrf_token": csrf_from(page.get_data(True)), "unit_id": x1.id, "group": "citizen",
        "kind": "forms"})
    job = db.session.scalar(select(BackgroundJob).order_by(BackgroundJob.id.desc()))
    assert job.status is JobStatus.FAILED and "download" not in job.result
    assert "Lỗi" in client.get(r.headers["Location"]).get_data(True)
    prints = Path(app_ctx.instance_path) / "prints"
    assert not list(prints.glob(f"{job.id}.pdf*"))  # neither the PDF nor its .part
    db.session.expire_all()
    assert all(a.outcome is Outcome.PENDING and a.issued_at is None
               for a in _assignments(x1.id))
    assert db.session.scalar(select(func.count(AccessToken.id))) == 0
    assert client.get(f"/print/{campaign.key}/jobs/{job.id}/file").status_code == 404


# --- anonymous forms and CLI -----------------------------------------------------------------


def test_anonymous_forms_cli_and_web(client, runner, app_ctx, tmp_path):
    campaign = _setup()
    x1 = _unit("X1")
    out = tmp_path / "walkin.pdf"
    result = runner.invoke(args=["print", "anonymous", campaign.key, "--unit", "X1", "--group",
                                 "citizen", "--count", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    pages_per_form = layout_for(campaign, CITIZEN).page_count
    texts = _texts(data)
    assert len(texts) == 2 * pages_per_form
    first = f"A{campaign.id}-{x1.id}-00001"
    assert f"Số phiếu: {first}" in texts[0]
    assert f"A{campaign.id}-{x1.id}-00002" in texts[pages_per_form]
    assert "Kính gửi: Quý Ông/Bà" in texts[0] and "Người Thử" not in texts[0]
    assert "Phần 1/" in client.get(_path(_qr(data, pages_per_form))).get_data(True)
    tokens = db.session.scalars(select(AccessToken).where(
        AccessToken.assignment_id.is_(None))).all()
    assert sorted(t.serial for t in tokens) == [first, f"A{campaign.id}-{x1.id}-00002"]
    assert {(t.unit_id, t.group) for t in tokens} == {(x1.id, CITIZEN)}

    # from the web, numbering continues; earlier anonymous forms stay valid
    make_user("quantri", "admin")
    login(client, "quantri", "password-123")
    r = client.get(_post_print(client, campaign, x1.id, "anonymous", count=1))
    assert f"Số phiếu: A{campaign.id}-{x1.id}-00003" in _texts(r.data)[0]
    r.close()
    assert client.get(_path(_qr(data, 0))).status_code == 200
    assert all(a.outcome is Outcome.PENDING for a in _assignments(x1.id))


def test_cli_forms_per_group_and_manifest(runner, app_ctx, tmp_path):
    campaign = _setup()
    out = tmp_path / "phieu.pdf"
    result = runner.invoke(args=["print", "forms", campaign.key, "--unit", "X2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    citizen = tmp_path / "phieu-citizen.pdf"
    servants = tmp_path / "phieu-civil_servant.pdf"
    assert len(_texts(citizen.read_bytes())) == 3 * layout_for(campaign, CITIZEN).page_count
    servant_pages = layout_for(campaign, RespondentGroup.CIVIL_SERVANT).page_count
    assert len(_texts(servants.read_bytes())) == servant_pages
    servant = _assignments(_unit("X2").id, RespondentGroup.CIVIL_SERVANT)[0]
    assert servant.outcome is Outcome.ISSUED and servant.issued_mode is Mode.ENUMERATOR
    assert not list(tmp_path.glob("*.part"))

    manifest = tmp_path / "ds.csv"
    result = runner.invoke(args=["print", "manifest", campaign.key, "--group", "citizen",
                                 "-o", str(manifest)])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(manifest.read_text("utf-8-sig"))))
    assert len(rows) == 1 + 6 and {r[5] for r in rows[1:]} == {"Xã Thử X1", "Xã Thử X2"}
    units = [r[5] for r in rows[1:]]
    assert units == sorted(units)  # by unit first
    labels = tmp_path / "nhan.pdf"
    assert runner.invoke(args=["print", "labels", campaign.key, "--unit", "X1", "-o",
                               str(labels)]).exit_code == 0
    assert len(pypdf.PdfReader(labels).pages) == 1

    # nothing left to print: a clear error, no file
    done = tmp_path / "lai.pdf"
    db.session.execute(update(Assignment).values(outcome=Outcome.COMPLETED))
    db.session.commit()
    result = runner.invoke(args=["print", "forms", campaign.key, "--group", "citizen", "-o",
                                 str(done)])
    assert result.exit_code == 2 and "Không có phiếu" in result.output
    assert not done.exists()


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["analyst", "uploader"])
def test_analysts_and_uploaders_are_refused(client, app_ctx, role):
    campaign = _setup()
    make_user("quantri", "admin")
    login(client, "quantri", "password-123")
    link = _post_print(client, campaign, _unit("X1").id, "labels")
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/admin/").get_data(True))})
    make_user("nguoi", role, units=("X1",) if role == "uploader" else ())
    login(client, "nguoi", "password-123")
    assert client.get(f"/print/{campaign.key}").status_code == 403
    assert client.get(link).status_code == 403
    r = client.post(f"/print/{campaign.key}", data={
        "csrf_token": csrf_from(client.get("/admin/").get_data(True)),
        "unit_id": _unit("X1").id, "group": "citizen", "kind": "forms"})
    assert r.status_code == 403


def test_enumerator_scope_login_and_csrf(client, app_ctx):
    campaign = _setup()
    x1, x2 = _unit("X1"), _unit("X2")
    # signed out: to the login page
    r = client.get(f"/print/{campaign.key}")
    assert r.status_code == 302 and "/login" in r.headers["Location"]

    make_user("dtv1", "enumerator", units=("X1",))
    make_user("dtv2", "enumerator", units=("X2",))
    login(client, "dtv1", "password-123")
    page = client.get(f"/print/{campaign.key}").get_data(True)
    assert "Xã Thử X1" in page and "Xã Thử X2" not in page
    link = _post_print(client, campaign, x1.id, "forms")
    assert client.get(link).status_code == 200
    # another unit: 404, and nothing printed
    r = _post_print(client, campaign, x2.id, "forms", follow=False)
    assert r.status_code == 404
    assert all(a.outcome is Outcome.PENDING for a in _assignments(x2.id))
    # without the CSRF token: 400
    r = client.post(f"/print/{campaign.key}", data={"unit_id": x1.id, "group": "citizen",
                                                    "kind": "forms"})
    assert r.status_code == 400
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/admin/").get_data(True))})

    login(client, "dtv2", "password-123")
    assert client.get(link).status_code == 404  # X1's printout is outside X2's scope
    assert client.get(_post_print(client, campaign, x2.id, "forms")).status_code == 200
