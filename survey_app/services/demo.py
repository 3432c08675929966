"""The demo: an embedded SQLite database with units, a campaign, users, synthetic lists loaded
through the real import path (a few bad rows included), a drawn sample, synthetic responses
for the scoreboard, and open forms to print or answer."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
from flask import current_app
from flask_migrate import upgrade
from sqlalchemy import func, select

from questionnaires.catalog import plan_path
from questionnaires.model import FrameScope, RespondentGroup

from ..extensions import db
from ..models import (
    Assignment,
    Campaign,
    Draw,
    ImportBatch,
    Outcome,
    RatedUnit,
    Response,
    Role,
    Unit,
    User,
)
from .campaigns import create_campaign_from_file
from .units import load_current_tree
from .users import create_user

DEMO_CAMPAIGN = "demo-2026"
DEMO_USERS = [
    ("admin", "admin-demo-2026", Role.ADMIN, False),
    ("phantich", "phantich-demo-2026", Role.ANALYST, False),
    ("donvi1", "donvi-demo-2026", Role.UPLOADER, True),
    ("dieutra1", "dieutra-demo-2026", Role.ENUMERATOR, True),
]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
          "Đỗ", "Hồ", "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thanh", "Đức", "Thu", "Quốc", "Hồng"]
GIVEN = ["An", "Bình", "Cường", "Dung", "Giang", "Hà", "Hải", "Hạnh", "Hùng", "Lan", "Linh",
         "Long", "Mai", "Nam", "Nga", "Phúc", "Quân", "Tâm", "Thảo", "Trang", "Tuấn", "Yến"]
PROCEDURES = ["Đăng ký khai sinh", "Chứng thực bản sao từ bản chính", "Đăng ký kết hôn",
              "Cấp giấy chứng nhận quyền sử dụng đất", "Đăng ký hộ kinh doanh",
              "Xác nhận tình trạng hôn nhân", "Đăng ký khai tử", "Trợ cấp xã hội hằng tháng"]
POSITIONS = ["Chủ tịch UBND", "Phó Chủ tịch UBND", "Công chức Văn phòng - Thống kê",
             "Công chức Tư pháp - Hộ tịch", "Công chức Địa chính - Xây dựng",
             "Công chức Văn hoá - Xã hội", "Công chức Tài chính - Kế toán"]


def _name(rng: np.random.Generator) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def _phone(rng: np.random.Generator) -> str:
    prefix = rng.choice(["091", "094", "098", "097", "086", "088", "090", "093", "070", "079"])
    return f"{prefix}{int(rng.integers(0, 10_000_000)):07d}"


def write_demo_list(path: Path, unit: Unit, group: RespondentGroup, n: int,
                    rng: np.random.Generator) -> None:
    """A realistic list file: title rows above the header, Excel-damaged phones, and a few
    rows that the import must reject or flag (so the error report has something to show)."""
    rows: list[list[str]] = []
    official = group not in (RespondentGroup.CITIZEN, RespondentGroup.BUSINESS)
    for i in range(1, n + 1):
        phone = _phone(rng)
        if i % 7 == 0:
            phone = phone[1:]  # leading zero lost in Excel
        if official:
            rows.append([str(i), _name(rng), str(rng.choice(POSITIONS)), unit.name, phone])
        else:
            rows.append([str(i), _name(rng), str(rng.choice(PROCEDURES)),
                         f"Thôn {int(rng.integers(1, 12))}, {unit.name}", phone])
    rows.append([str(n + 1), "", rows[0][2], rows[0][3], _phone(rng)])  # no name
    rows.append([str(n + 2), _name(rng), rows[0][2], rows[0][3], "12345"])  # invalid phone
    rows.append([str(n + 3), rows[1][1], rows[1][2], rows[1][3], rows[1][4]])  # same phone
    header = (["TT", "Họ và tên", "Chức vụ", "Đơn vị công tác", "Số điện thoại"] if official
              else ["TT", "Họ và tên", "Tên thủ tục hành chính đã giao dịch",
                    "Địa chỉ cư trú hoặc đơn vị công tác (thôn, xã, huyện)",
                    "Số điện thoại (bắt buộc phải có)"])
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([unit.name.upper()])
        writer.writerow(["DANH SÁCH"])
        writer.writerow([])
        writer.writerow(header)
        writer.writerows(rows)
        writer.writerow([])
        writer.writerow(["Người lập danh sách"])


def _step_lists(campaign: Campaign, units: list[Unit], echo) -> None:
    from ..frames.services import import_path

    if db.session.scalar(select(func.count(ImportBatch.id)).where(
            ImportBatch.campaign_id == campaign.id)):
        return
    folder = Path(current_app.instance_path) / "demo-lists"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20260101)
    sizes = {RespondentGroup.CITIZEN: 40, RespondentGroup.CIVIL_SERVANT: 9,
             RespondentGroup.HDND_DELEGATE: 30, RespondentGroup.LEADER: 6,
             RespondentGroup.BUSINESS: 20}
    rejected = 0
    for cg in campaign.groups:
        targets = units[:1] if cg.frame_scope is FrameScope.SHARED else units
        for unit in targets:
            path = folder / f"{cg.group.value}-{unit.code}.csv"
            write_demo_list(path, unit, cg.group, sizes[cg.group], rng)
            batch, outcome = import_path(campaign, unit, cg.group, path)
            rejected += outcome.rejected + outcome.duplicates
    db.session.commit()
    echo(f"Đã nhập danh sách mẫu ({rejected} dòng bị loại/trùng để xem báo cáo lỗi).")


def _step_draw(campaign: Campaign, echo) -> None:
    from ..draws.services import draw_campaign

    if db.session.scalar(select(func.count(Draw.id)).where(Draw.campaign_id == campaign.id)):
        return
    draw = draw_campaign(campaign)
    db.session.commit()
    echo(f"Đã chọn mẫu: {draw.summary['assignments']} người (kể cả dự phòng).")


def _step_responses(campaign: Campaign, echo) -> None:
    from ..analysis.demo import fill_synthetic_responses
    from ..analysis.services import flag_responses

    if db.session.scalar(select(func.count(Response.id)).where(
            Response.campaign_id == campaign.id)):
        return
    created = fill_synthetic_responses(campaign, np.random.default_rng(20261123), share=0.7)
    flag_responses(campaign)
    db.session.commit()
    echo(f"Đã tạo {created} phiếu trả lời mô phỏng cho bảng điểm.")


def _respondent_links(campaign: Campaign, count: int = 3) -> list[str]:
    """Fresh links for a few open phone-mode assignments (tokens are stored hashed, so a
    link can only be shown when it is issued)."""
    from printing.codes import format_short_code

    from ..services.tokens import issue_for_assignment

    open_ones = db.session.scalars(
        select(Assignment).where(Assignment.campaign_id == campaign.id, Assignment.active,
                                 Assignment.group == RespondentGroup.CITIZEN,
                                 Assignment.outcome.in_([Outcome.PENDING, Outcome.ISSUED]))
        .order_by(Assignment.id).limit(count)).all()
    lines = []
    for a in open_ones:
        issued = issue_for_assignment(a)
        if a.outcome is Outcome.PENDING:
            a.outcome = Outcome.ISSUED
        code = format_short_code(issued.short_code)
        lines.append(f"  {issued.url}   (mã phiếu {code}, số phiếu {a.serial})")
    db.session.commit()
    return lines


def prepare_demo(echo: Callable[[str], None] = print) -> dict:
    """Migrate and fill the demo database; safe to run again on an existing database."""
    upgrade()
    if not db.session.scalar(select(func.count(Unit.id)).where(Unit.scheme == "vn-2025")):
        result = load_current_tree()
        db.session.commit()
        echo(f"Đã nạp {result.created} đơn vị hành chính (34 tỉnh/thành, 3.321 xã/phường).")
    campaign = db.session.scalar(select(Campaign).where(Campaign.key == DEMO_CAMPAIGN))
    if campaign is None:
        campaign = create_campaign_from_file(plan_path("demo"), key=DEMO_CAMPAIGN)
        db.session.commit()
        echo(f"Đã tạo chiến dịch demo «{campaign.name}».")
    units = list(db.session.scalars(
        select(Unit).join(RatedUnit, RatedUnit.unit_id == Unit.id)
        .where(RatedUnit.campaign_id == campaign.id).order_by(Unit.code)))
    logins = []
    for username, password, role, scoped in DEMO_USERS:
        if not db.session.scalar(select(User.id).where(User.username == username)):
            create_user(username, password, role, full_name=f"Demo {role.label}",
                        unit_codes=[units[0].code] if scoped else [], scheme=units[0].scheme)
        logins.append({"username": username, "password": password,
                       "role": role.label + (f" ({units[0].name})" if scoped else "")})
    db.session.commit()
    _step_lists(campaign, units, echo)
    _step_draw(campaign, echo)
    _step_responses(campaign, echo)
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    extra = ["", "Một vài đường dẫn trả lời phiếu (người dân, mỗi đường dẫn dùng một lần):"]
    extra += _respondent_links(campaign)
    extra += ["", f"Chiến dịch: {base}/admin/campaigns/{campaign.key}",
              f"Tải danh sách: {base}/frames/{campaign.key}",
              f"In phiếu: {base}/print/{campaign.key}",
              f"Tiến độ điều tra: {base}/fieldwork/{campaign.key}",
              f"Bảng điểm: {base}/analysis/{campaign.key}",
              f"Nhập mã phiếu giấy (người trả lời): {base}/f"]
    return {"logins": logins, "campaign": campaign.key, "extra": extra}
