"""Test data: a SIPAS-like questionnaire built in Python (no dependency on the TOML loader),
recipients, and PDF inspection helpers."""

from __future__ import annotations

import datetime as dt
import io
import unicodedata

import numpy as np
import pypdf
import pypdfium2 as pdfium
import zxingcpp

from printing.codes import make_short_code
from printing.forms import Personalisation
from printing.layout import CampaignInfo
from questionnaires.model import (
    Condition,
    ConditionOp,
    Option,
    Question,
    QuestionKind,
    Questionnaire,
    RespondentGroup,
    Section,
)

SATISFACTION = (
    Option("1", "Rất không hài lòng", 1.0),
    Option("2", "Không hài lòng", 2.0),
    Option("3", "Bình thường", 3.0),
    Option("4", "Hài lòng", 4.0),
    Option("5", "Rất hài lòng", 5.0),
    Option("9", "Không biết / không trả lời", None, dont_know=True),
)
YES_NO = (
    Option("co", "Có", 1.0),
    Option("khong", "Không", 0.0),
    Option("khong_biet", "Không biết", None, dont_know=True),
)

ELEMENTS = {
    "Tiếp cận dịch vụ": [
        "Nơi ngồi chờ giải quyết thủ tục hành chính có đủ chỗ ngồi",
        "Trang thiết bị phục vụ người dân tại nơi giải quyết thủ tục hành chính đầy đủ",
        "Trang thiết bị phục vụ người dân tại nơi giải quyết thủ tục hành chính hiện đại",
        "Trang thiết bị phục vụ người dân tại nơi giải quyết thủ tục hành chính dễ sử dụng",
        "Việc tiếp cận, sử dụng dịch vụ công trực tuyến, kể cả trên thiết bị di động, thuận tiện",
    ],
    "Thủ tục hành chính": [
        "Thủ tục hành chính được niêm yết công khai đầy đủ",
        "Thủ tục hành chính được niêm yết công khai chính xác",
        "Thành phần hồ sơ mà Ông/Bà phải nộp là đúng quy định",
        "Phí/lệ phí mà Ông/Bà phải nộp là đúng quy định",
        "Thời hạn giải quyết (tính từ ngày hồ sơ được tiếp nhận đến ngày nhận kết quả) là đúng "
        "quy định, kể cả các trường hợp phải bổ sung, hoàn thiện hồ sơ theo yêu cầu của cơ quan",
    ],
    "Công chức trực tiếp giải quyết công việc": [
        "Công chức có thái độ giao tiếp lịch sự",
        "Công chức chú ý lắng nghe ý kiến của Ông/Bà",
        "Công chức trả lời, giải thích đầy đủ các ý kiến của Ông/Bà",
        "Công chức hướng dẫn kê khai hồ sơ tận tình, chu đáo",
        "Công chức hướng dẫn kê khai hồ sơ dễ hiểu",
    ],
    "Kết quả giải quyết công việc": [
        "Kết quả mà Ông/Bà nhận được là đúng quy định",
        "Kết quả mà Ông/Bà nhận được có thông tin đầy đủ",
        "Kết quả mà Ông/Bà nhận được có thông tin chính xác",
        "Ông/Bà nhận được kết quả đúng hẹn hoặc sớm hơn hẹn",
        "Ông/Bà không phải đi lại nhiều lần để hoàn thiện hồ sơ",
    ],
    "Tiếp nhận, xử lý góp ý, phản ánh, kiến nghị": [
        "Cơ quan có bố trí hình thức tiếp nhận góp ý, phản ánh, kiến nghị",
        "Ông/Bà dễ dàng thực hiện góp ý, phản ánh, kiến nghị",
        "Cơ quan tiếp nhận và xử lý tích cực các góp ý, phản ánh, kiến nghị của Ông/Bà",
        "Cơ quan có thông báo kết quả xử lý góp ý, phản ánh, kiến nghị kịp thời",
        "Cơ quan phản hồi góp ý, phản ánh, kiến nghị bằng hình thức phù hợp",
    ],
}

UNIT = "UBND xã Quảng Phú, huyện Quảng Trạch"


def make_questionnaire(extra_pages: bool = False) -> Questionnaire:
    """A SIPAS-like form: 25 satisfaction5 questions in 5 sections, Vietnamese text.

    `extra_pages` adds background questions and free text so the form runs to four pages.
    """
    sections = []
    if extra_pages:
        sections.append(
            Section(
                "A",
                "Thông tin chung",
                (
                    Question("a1", "Giới tính của Ông/Bà", QuestionKind.SINGLE,
                             (Option("nam", "Nam"), Option("nu", "Nữ"))),
                    Question("a2", "Ông/Bà thuộc nhóm tuổi nào?", QuestionKind.SINGLE, tuple(
                        Option(c, lb) for c, lb in [
                            ("duoi_25", "Dưới 25 tuổi"), ("25_34", "Từ 25 đến 34 tuổi"),
                            ("35_49", "Từ 35 đến 49 tuổi"), ("50_59", "Từ 50 đến 59 tuổi"),
                            ("tu_60", "Từ 60 tuổi trở lên")])),
                    Question("a3", "Thủ tục hành chính Ông/Bà đã giải quyết thuộc lĩnh vực nào?",
                             QuestionKind.SINGLE, tuple(Option(c, lb) for c, lb in [
                                 ("ho_tich", "Hộ tịch (khai sinh, kết hôn, khai tử...)"),
                                 ("chung_thuc", "Chứng thực"), ("dat_dai", "Đất đai"),
                                 ("xay_dung", "Xây dựng"),
                                 ("kinh_doanh", "Đăng ký hộ kinh doanh"),
                                 ("ldtbxh", "Lao động, người có công và xã hội"),
                                 ("khac", "Lĩnh vực khác")]),
                             help="Nếu đã làm nhiều thủ tục, xin chọn thủ tục gần đây nhất."),
                    Question("a4", "Ông/Bà đã nộp hồ sơ qua những kênh nào?", QuestionKind.MULTI,
                             tuple(Option(c, lb) for c, lb in [
                                 ("truc_tiep", "Trực tiếp tại Bộ phận Một cửa"),
                                 ("buu_chinh", "Qua dịch vụ bưu chính công ích"),
                                 ("truc_tuyen", "Trực tuyến trên Cổng dịch vụ công")])),
                    Question("a5", "Ông/Bà có phải đi lại nhiều lần không?", QuestionKind.YES_NO,
                             YES_NO),
                    Question("a6", "Số lần Ông/Bà phải đi lại", QuestionKind.NUMBER,
                             max_value=99,
                             show_if=Condition("a5", ConditionOp.IN, ("co",))),
                ),
            )
        )
    for i, (title, texts) in enumerate(ELEMENTS.items(), 1):
        qs = tuple(
            Question(f"e{i}_{j}", t, QuestionKind.SATISFACTION, SATISFACTION, required=True)
            for j, t in enumerate(texts, 1)
        )
        sections.append(Section(f"E{i}", title, qs,
                                intro="Xin Ông/Bà cho biết mức độ hài lòng." if i == 1 else ""))
    if extra_pages:
        sections.append(
            Section(
                "Z",
                "Ý kiến khác",
                (
                    Question("z1", "Mức độ hài lòng chung của Ông/Bà", QuestionKind.RATING,
                             tuple(Option(str(k), str(k), float(k)) for k in range(0, 11))),
                    Question("z2", "Ông/Bà có góp ý gì để cơ quan phục vụ tốt hơn?",
                             QuestionKind.TEXT, max_length=1000),
                    Question("z3", "Điều Ông/Bà hài lòng nhất khi đến Bộ phận Một cửa",
                             QuestionKind.TEXT, max_length=1000),
                    Question("z4", "Điều Ông/Bà chưa hài lòng nhất", QuestionKind.TEXT,
                             max_length=1000),
                    Question("z5", "Đề xuất khác (nếu có)", QuestionKind.TEXT, max_length=1000),
                ),
            )
        )
    return Questionnaire(
        key="sipas-test",
        version="2026.1",
        title="Phiếu khảo sát sự hài lòng của người dân đối với sự phục vụ của cơ quan hành "
        "chính nhà nước",
        group=RespondentGroup.CITIZEN,
        sections=tuple(sections),
        intro=(
            "Kính gửi Ông/Bà,\n\nNhằm nâng cao chất lượng phục vụ người dân, cơ quan tổ chức khảo "
            "sát ý kiến của những người đã giải quyết thủ tục hành chính.\n\nPhiếu không ghi họ "
            "tên. Ý kiến của Ông/Bà chỉ được tổng hợp thành số liệu chung."
        ),
        contact="Phòng Cải cách hành chính, Sở Nội vụ tỉnh Quảng Bình, điện thoại 0232 3822 123.",
    )


CAMPAIGN = CampaignInfo(
    name="Khảo sát Chỉ số hài lòng SIPAS",
    year=2026,
    rated_unit_name=UNIT,
    organiser="UBND TỈNH QUẢNG BÌNH – SỞ NỘI VỤ",
    contact="",
    return_address="Sở Nội vụ tỉnh Quảng Bình, 6 Hùng Vương, Đồng Hới",
    deadline=dt.date(2026, 10, 31),
)


def make_people(n: int, seed: int = 7) -> list[Personalisation]:
    rng = np.random.default_rng(seed)
    names = ["Nguyễn Văn Đức", "Trần Thị Hương", "Lê Hoàng Ánh", "Phạm Thị Ngọc Diệp"]
    people = []
    for i in range(n):
        code = make_short_code(rng)
        people.append(
            Personalisation(
                serial=f"QB26-{i + 1:05d}",
                short_code=code,
                url=f"https://khaosat.quangbinh.gov.vn/f/{code}",
                recipient_name=names[i % len(names)],
                recipient_address=f"Thôn {i % 9 + 1}, xã Quảng Phú, huyện Quảng Trạch, tỉnh "
                "Quảng Bình",
                unit_name=UNIT,
                phone=f"+8491234{i:04d}",
            )
        )
    return people


def pdf_reader(data: bytes) -> pypdf.PdfReader:
    return pypdf.PdfReader(io.BytesIO(data))


def page_texts(data: bytes) -> list[str]:
    """NFC text of every page (XObject content included)."""
    return [unicodedata.normalize("NFC", p.extract_text()) for p in pdf_reader(data).pages]


def decode_qr(data: bytes, page: int, scale: float = 2.5) -> list[str]:
    """Texts of the QR codes found on a rasterised page."""
    doc = pdfium.PdfDocument(data)
    try:
        image = doc[page].render(scale=scale).to_pil()
    finally:
        doc.close()
    return [
        r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode
    ]
