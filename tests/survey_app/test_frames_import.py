"""Frame imports through the CLI and the web: preview, confirm, duplicates, bad files,
all-or-nothing, replace/withdraw, reports, scoping."""

from __future__ import annotations

import io
import json

import openpyxl
import pytest
from helpers import csrf_from, login, make_campaign, make_user
from sqlalchemy import func, select

from survey_app.extensions import db
from survey_app.models import BatchStatus, FrameEntry, ImportBatch, ImportIssue

SEED = (
    "TÊN CƠ QUAN\n"
    "DANH SÁCH\n"
    "Cá nhân, người đại diện tổ chức đã giao dịch, nhận kết quả giải quyết thủ tục hành chính "
    "trong năm 2026 tại Bộ phận một cửa\n"
    "\n"
    "TT\tHọ và tên\tTên thủ tục hành chính đã giao dịch\t"
    "Địa chỉ cư trú hoặc đơn vị công tác (thôn, xã, huyện)\tSố điện thoại (bắt buộc phải có)\n"
    "1\tNguyễn Văn An\tĐăng ký khai sinh\tThôn 1, xã Thử\t0912 345 678\n"
    "2\tTrần Thị Bình\tChứng thực bản sao\tThôn 2, xã Thử\t912345679\n"
    "3\tLê Văn Cường\tĐăng ký kết hôn\tThôn 3, xã Thử\t01662345678\n"
    "4\t\tCấp giấy phép\tThôn 4\t0912345680\n"
    "5\tPhạm Thị Dung\tĐăng ký khai tử\tThôn 5\t12345\n"
    "6\tNguyễn Văn An\tChứng thực\tThôn 1, xã Thử\t0912.345.678\n"
    "7\tHoàng Văn Em\t=HYPERLINK(\"http://x\")\tThôn 7\t02323822123\n"
    "\n"
    "Người lập danh sách\n"
)


def _seed_file(tmp_path, text=SEED, name="ds.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-16"))  # Excel's "Unicode text"
    return path


def test_cli_imports_seed_template_with_json_report(runner, tmp_path):
    make_campaign(units=("X1",))
    path = _seed_file(tmp_path)
    result = runner.invoke(args=["frame", "import", str(path), "--campaign", "test-2026",
                                 "--unit", "X1", "--group", "citizen", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["accepted"], data["rejected"], data["duplicates"]) == (4, 2, 1)
    codes = {(i["row"], i["code"]) for i in data["issues"]}
    assert (9, "no_name") in codes and (10, "invalid_phone") in codes
    assert (11, "duplicate_phone") in codes and (8, "legacy_converted") in codes
    assert (12, "landline") in codes
    assert "Nguyễn" not in result.output and "0912" not in result.output  # no personal data
    entries = {e.name: e for e in db.session.scalars(select(FrameEntry))}
    assert entries["Nguyễn Văn An"].phone == "+84912345678"
    assert entries["Nguyễn Văn An"].transactions == 2
    assert entries["Trần Thị Bình"].phone == "+84912345679"
    assert entries["Lê Văn Cường"].phone == "+84362345678"
    assert entries["Hoàng Văn Em"].procedure.startswith("=HYPERLINK")  # kept as text
    # The same file again is recognised; nothing more is stored.
    again = runner.invoke(args=["frame", "import", str(path), "--campaign", "test-2026",
                                "--unit", "X1", "--group", "citizen"])
    assert again.exit_code == 2 and "đã được tải lên" in again.output
    assert db.session.scalar(select(func.count(FrameEntry.id))) == 4


def test_cli_dry_run_stores_nothing(runner, tmp_path):
    make_campaign(units=("X1",))
    result = runner.invoke(args=["frame", "import", str(_seed_file(tmp_path)), "--campaign",
                                 "test-2026", "--unit", "X1", "--group", "citizen",
                                 "--dry-run"])
    assert result.exit_code == 0 and "chưa lưu" in result.output
    assert db.session.scalar(select(func.count(ImportBatch.id))) == 0
    assert db.session.scalar(select(func.count(FrameEntry.id))) == 0


def test_phone_not_required_in_enumerator_mode(runner, tmp_path):
    make_campaign(units=("X1",))
    text = "Họ và tên,Chức vụ,Đơn vị công tác,Số điện thoại\nA B,Công chức,UBND xã,\n" \
           "C D,Chủ tịch,UBND xã,0912345670\n"
    path = tmp_path / "cb.csv"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(args=["frame", "import", str(path), "--campaign", "test-2026",
                                 "--unit", "X1", "--group", "civil_servant", "--json"])
    data = json.loads(result.output)
    assert data["accepted"] == 2 and data["rejected"] == 0
    positions = sorted(db.session.scalars(select(FrameEntry.position)))
    assert positions == ["Chủ tịch", "Công chức"]


@pytest.mark.parametrize("payload,name,code", [
    (b"", "rong.csv", "empty_file"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "anh.csv", "wrong_file_type"),
    (b"a,b,c\n1,2,3\n", "khong-tieu-de.csv", "header_not_found"),
    (b"PK\x03\x04broken", "hong.xlsx", "corrupt_workbook"),
])
def test_bad_files_are_refused_and_store_nothing(runner, tmp_path, payload, name, code):
    make_campaign(units=("X1",))
    path = tmp_path / name
    path.write_bytes(payload)
    result = runner.invoke(args=["frame", "import", str(path), "--campaign", "test-2026",
                                 "--unit", "X1", "--group", "citizen", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output)["error"] == code
    assert db.session.scalar(select(func.count(ImportBatch.id))) == 0


def _upload(client, campaign_key, unit_id, data, name="ds.csv", group="citizen", **extra):
    page = client.get(f"/frames/{campaign_key}").get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "unit": str(unit_id), "group": group,
            "file": (io.BytesIO(data), name), **extra}
    return client.post(f"/frames/{campaign_key}", data=form,
                       content_type="multipart/form-data")


def _unit_id(code):
    from survey_app.models import Unit

    return db.session.scalar(select(Unit.id).where(Unit.code == code))


def test_web_preview_confirm_report_and_withdraw(client, tmp_path):
    campaign = make_campaign(units=("X1",))
    make_user("donvi", "uploader", units=["X1"])
    login(client, "donvi", "password-123")
    r = _upload(client, campaign.key, _unit_id("X1"), SEED.encode("utf-16"))
    assert r.status_code == 302, r.get_data(as_text=True)
    preview = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Nguyễn Văn An" in preview and "Thiếu họ và tên" in preview
    batch = db.session.scalar(select(ImportBatch))
    assert batch.status is BatchStatus.PREVIEW
    assert db.session.scalar(select(func.count(FrameEntry.id))) == 0
    report = client.get(f"/frames/batches/{batch.id}/issues.csv").get_data().decode("utf-8-sig")
    assert "Dòng trong tệp" in report and "no_name" in report
    xlsx = client.get(f"/frames/batches/{batch.id}/issues.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.get_data())).active
    assert [c.value for c in sheet[1]] == ["Dòng trong tệp", "Loại", "Mã lý do", "Nội dung"]
    assert sheet.max_row == 1 + db.session.scalar(select(func.count(ImportIssue.id)))
    token = {"csrf_token": csrf_from(preview)}
    done = client.post(f"/frames/batches/{batch.id}/confirm", data=token)
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(ImportBatch, batch.id).status is BatchStatus.ACTIVE
    assert db.session.scalar(select(func.count(FrameEntry.id))) == 4
    w = client.post(f"/frames/batches/{batch.id}/withdraw", data=token)
    assert w.status_code == 302
    db.session.expire_all()
    assert db.session.get(ImportBatch, batch.id).status is BatchStatus.WITHDRAWN


def test_crash_mid_import_leaves_nothing(client, monkeypatch):
    campaign = make_campaign(units=("X1",))
    make_user("donvi", "uploader", units=["X1"])
    login(client, "donvi", "password-123")
    r = _upload(client, campaign.key, _unit_id("X1"), SEED.encode("utf-16"))
    batch = db.session.scalar(select(ImportBatch))
    from survey_app.frames import services

    calls = {"n": 0}
    original = services._EntryWriter.add_chunk

    def exploding(self, accepted):
        calls["n"] += 1
        original(self, accepted)  # rows already sent, then the worker dies
        raise RuntimeError("máy chủ bị tắt giữa chừng")

    monkeypatch.setattr(services._EntryWriter, "add_chunk", exploding)
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    job = client.post(f"/frames/batches/{batch.id}/confirm", data={"csrf_token": csrf_from(page)})
    assert "Lỗi" in client.get(job.headers["Location"]).get_data(as_text=True)
    db.session.expire_all()
    assert calls["n"] == 1
    assert db.session.get(ImportBatch, batch.id).status is BatchStatus.PREVIEW
    assert db.session.scalar(select(func.count(FrameEntry.id))) == 0


def test_upload_errors_in_web(client, app_ctx):
    campaign = make_campaign(units=("X1",))
    make_user("donvi", "uploader", units=["X1"])
    login(client, "donvi", "password-123")
    r = _upload(client, campaign.key, _unit_id("X1"), b"", name="rong.csv")
    assert r.status_code == 422 and "Tệp rỗng" in r.get_data(as_text=True)
    app_ctx.config["MAX_CONTENT_LENGTH"] = 1000
    try:
        big = _upload(client, campaign.key, _unit_id("X1"), b"x" * 5000)
    finally:
        app_ctx.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    assert big.status_code == 413 and "dung lượng" in big.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ImportBatch.id))) == 0


def test_uploader_only_own_units_and_batches(client):
    campaign = make_campaign(units=("X1", "X2"))
    make_user("donvi_a", "uploader", units=["X1"])
    make_user("donvi_b", "uploader", units=["X2"])
    make_user("phantich", "analyst")
    login(client, "donvi_b", "password-123")
    assert _upload(client, campaign.key, _unit_id("X2"), SEED.encode("utf-16")).status_code == 302
    batch = db.session.scalar(select(ImportBatch))
    a = client.application.test_client()
    login(a, "donvi_a", "password-123")
    assert a.get(f"/frames/batches/{batch.id}").status_code == 404
    assert a.get(f"/frames/batches/{batch.id}/issues.csv").status_code == 404
    listing = a.get(f"/frames/{campaign.key}").get_data(as_text=True)
    assert f"#{batch.id}<" not in listing
    r = _upload(a, campaign.key, _unit_id("X2"), b"Ho ten,SDT\nA,0912345678\n", name="x.csv")
    assert r.status_code in (404, 422)
    assert db.session.scalar(select(func.count(ImportBatch.id))) == 1
    p = client.application.test_client()
    login(p, "phantich", "password-123")
    assert p.get(f"/frames/{campaign.key}").status_code == 403
    assert p.get(f"/frames/batches/{batch.id}").status_code == 403


def test_issue_log_spills_to_disk_and_keeps_file_order():
    from survey_app.frames.services import IssueLog
    from survey_app.models import IssueSeverity

    log = IssueLog(limit=3)
    items = [(i, IssueSeverity.WARNING if i % 2 else IssueSeverity.REJECTED, "code", f"dòng {i}")
             for i in range(11)]
    log.extend(items[:5])
    for item in items[5:]:
        log.append(item)
    assert log._file is not None and not log._frames  # all of it is on disk
    assert sum(len(f) for f in log.frames()) == 11
    assert list(log) == items and list(log) == items  # iterable twice
    assert len(log) == 11 and log[:4] == items[:4] and bool(log) and not IssueLog()


def test_phone_listed_by_two_units_counts_transactions_per_unit(runner, tmp_path):
    """A person with transactions at two units is on both units' lists (one-stop shops are
    rated separately): a later list of one unit adds to that unit's entry only."""
    from survey_app.models import Unit

    make_campaign(units=("X1", "X2"))
    header = "TT,Họ và tên,Số điện thoại,Thủ tục,Địa chỉ\n"
    for name, unit, rows in (
            ("x1.csv", "X1", "1,Nguyễn Văn An,0912345678,Khai sinh,Thôn 1\n"),
            ("x2a.csv", "X2", "1,Nguyễn Văn An,0912345678,Chứng thực,Thôn 1\n"),
            ("x2b.csv", "X2", "1,Nguyễn Văn An,0912 345 678,Kết hôn,Thôn 1\n"
                              "2,Trần Thị Bình,0912345679,Khai tử,Thôn 2\n")):
        path = tmp_path / name
        path.write_text(header + rows, encoding="utf-8")
        result = runner.invoke(args=["frame", "import", str(path), "--campaign", "test-2026",
                                     "--unit", unit, "--group", "citizen"])
        assert result.exit_code == 0, result.output
    counts = dict(db.session.execute(
        select(Unit.code, FrameEntry.transactions).join(Unit, Unit.id == FrameEntry.unit_id)
        .where(FrameEntry.phone == "+84912345678")).all())
    assert counts == {"X1": 1, "X2": 2}
    assert db.session.scalar(select(func.count(FrameEntry.id))) == 3
