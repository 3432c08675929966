"""Unit trees: the current tree from vietnam-provinces and custom trees from CSV."""

from __future__ import annotations

from sqlalchemy import func, select
from vietnam_provinces import Province, Ward

from survey_app.extensions import db
from survey_app.models import Unit, UnitLevel


def test_units_load_matches_the_package(runner):
    result = runner.invoke(args=["units", "load"])
    assert result.exit_code == 0, result.output
    provinces = sum(1 for _ in Province.iter_all())
    wards = sum(1 for _ in Ward.iter_all())
    assert (provinces, wards) == (34, 3321)
    count = lambda *levels: db.session.scalar(  # noqa: E731
        select(func.count(Unit.id)).where(Unit.level.in_(levels)))
    assert count(UnitLevel.PROVINCE) == provinces
    assert count(UnitLevel.COMMUNE, UnitLevel.WARD, UnitLevel.SPECIAL_ZONE) == wards
    hoan_kiem = db.session.scalar(select(Unit).where(Unit.code == "00070"))
    assert hoan_kiem.name == "Phường Hoàn Kiếm" and hoan_kiem.parent.name == "Thành phố Hà Nội"
    # Loading again changes nothing.
    again = runner.invoke(args=["units", "load"])
    assert "0 mới, 0 cập nhật" in again.output
    assert db.session.scalar(select(func.count(Unit.id))) == provinces + wards


PRE_2025 = """code,name,level,parent_code,valid_from,valid_to
02,Tỉnh Hà Giang,province,,1991-08-12,2025-06-30
027,Huyện Quang Bình,district,02,2003-12-01,2025-06-30
00808,Xã Tân Trịnh,xã,027,,2025-06-30
00811,Thị trấn Yên Bình,thị trấn,027,,2025-06-30
"""


def test_units_import_custom_pre_2025_tree(runner, tmp_path):
    path = tmp_path / "hagiang.csv"
    path.write_text(PRE_2025, encoding="utf-8-sig")
    result = runner.invoke(args=["units", "import", str(path), "--scheme", "vn-2019"])
    assert result.exit_code == 0, result.output
    town = db.session.scalar(select(Unit).where(Unit.code == "00811"))
    assert town.level is UnitLevel.TOWN and town.scheme == "vn-2019"
    assert town.parent.name == "Huyện Quang Bình"
    assert town.parent.parent.level is UnitLevel.PROVINCE
    assert str(town.valid_to) == "2025-06-30"


def test_units_import_reports_every_problem_and_stores_nothing(runner, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("code,name,level,parent_code\n"
                    "A,Đơn vị A,province,\n"
                    "B,,district,A\n"
                    "C,Đơn vị C,hành tinh,A\n"
                    "D,Đơn vị D,commune,ZZZ\n"
                    "A,Trùng mã,province,\n", encoding="utf-8")
    result = runner.invoke(args=["units", "import", str(path)])
    assert result.exit_code == 2
    out = result.output
    assert "Dòng 3: thiếu tên" in out
    assert "Dòng 4: cấp đơn vị không hợp lệ" in out
    assert "Dòng 5: không tìm thấy đơn vị cấp trên ZZZ" in out
    assert "Dòng 6: mã A bị trùng" in out
    assert db.session.scalar(select(func.count(Unit.id))) == 0


def test_units_import_requires_columns(runner, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("ma,ten\nA,B\n", encoding="utf-8")
    result = runner.invoke(args=["units", "import", str(path)])
    assert result.exit_code == 2 and "Thiếu cột bắt buộc" in result.output
