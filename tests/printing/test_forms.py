"""Personalised forms: text, fonts, QR codes, batches, anonymous variant, layout sanity."""

from __future__ import annotations

import io
import re
import tracemalloc
import unicodedata

import pytest
from printing_fixtures import (
    CAMPAIGN,
    UNIT,
    decode_qr,
    make_people,
    make_questionnaire,
    page_texts,
    pdf_reader,
)

from printing.codes import format_short_code, validate_short_code
from printing.fonts import text_width
from printing.forms import Personalisation, render_blank_forms, render_form, render_forms
from printing.layout import (
    MARGIN_X,
    PAGE_W,
    CampaignInfo,
    FormLayout,
    TextOp,
    keying_codes,
    prepare_layout,
)


class _Sink(io.RawIOBase):
    """Counts bytes and forgets them."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.size += len(b)
        return len(b)


@pytest.fixture(scope="module")
def person() -> Personalisation:
    return make_people(1)[0]


@pytest.fixture(scope="module")
def one_pdf(layout: FormLayout, person: Personalisation) -> bytes:
    return render_form(layout, person)


def test_sipas_form_is_two_pages_and_long_form_four(layout, long_layout) -> None:
    assert layout.page_count == 2
    assert long_layout.page_count == 4


def test_vietnamese_text_is_exact(one_pdf: bytes, person: Personalisation) -> None:
    texts = page_texts(one_pdf)
    assert len(texts) == 2
    everything = " ".join("\n".join(texts).split())  # grid headers wrap over lines
    for needle in (
        "Rất không hài lòng",
        "Không biết / không trả lời",
        "Thủ tục hành chính",
        "Tiếp nhận, xử lý góp ý, phản ánh, kiến nghị",
        "PHIẾU KHẢO SÁT SỰ HÀI LÒNG CỦA NGƯỜI DÂN",
        UNIT,
        "UBND TỈNH QUẢNG BÌNH – SỞ NỘI VỤ",
        "Phòng Cải cách hành chính, Sở Nội vụ tỉnh Quảng Bình",
        "chỉ được tổng hợp thành số liệu chung",
        person.recipient_name,
        "xã Quảng Phú",
    ):
        assert needle in everything, needle
    assert "Trang 1/2" in texts[0] and "Trang 2/2" in texts[1]
    code = format_short_code(person.short_code)
    for text in texts:  # a loose page can be matched to its form
        assert f"Số phiếu: {person.serial}" in text
        assert code in text
    assert "khaosat.quangbinh.gov.vn/f/" + person.short_code in texts[0]


def test_all_fonts_are_embedded_truetype(one_pdf: bytes) -> None:
    reader = pdf_reader(one_pdf)
    fonts = {}

    def collect(resources) -> None:
        resources = resources.get_object() if resources is not None else {}
        for name, ref in (resources.get("/Font") or {}).items():
            fonts[name] = ref.get_object()
        for ref in (resources.get("/XObject") or {}).values():
            xobj = ref.get_object()
            if xobj.get("/Subtype") == "/Form":
                collect(xobj.get("/Resources"))

    for page in reader.pages:
        collect(page.get("/Resources"))
    assert fonts
    for font in fonts.values():
        descriptor = font["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor or "/FontFile" in descriptor
        assert "Roboto" in font["/BaseFont"]
    assert b"Helvetica" not in one_pdf


def test_qr_codes_decode_to_the_respondent_url(one_pdf: bytes, person: Personalisation) -> None:
    assert decode_qr(one_pdf, 0) == [person.url]
    assert decode_qr(one_pdf, 1) == [person.url]  # the small one on later pages


def test_printed_code_validates_and_a_typo_is_caught(one_pdf: bytes) -> None:
    text = page_texts(one_pdf)[0]
    printed = re.search(r"Mã phiếu: ([0-9A-Z]{5}-[0-9A-Z]{5})", text).group(1)
    assert validate_short_code(printed)
    typo = printed[:3] + ("X" if printed[3] != "X" else "Y") + printed[4:]
    assert not validate_short_code(typo)


def test_batch_has_every_page_in_input_order(long_layout: FormLayout) -> None:
    people = make_people(6)
    buf = io.BytesIO()
    seen: list[int] = []
    n = render_forms(long_layout, people, buf, progress=seen.append)
    assert n == 6 and seen == [6]
    texts = page_texts(buf.getvalue())
    assert len(texts) == 6 * 4
    for i, text in enumerate(texts):
        form, page = divmod(i, 4)
        assert f"Số phiếu: {people[form].serial}" in text
        assert f"Trang {page + 1}/4" in text
        assert people[form - 1].serial not in text if form else True
    assert decode_qr(buf.getvalue(), 4 * 5) == [people[5].url]


def test_anonymous_variant_has_no_personal_data(layout: FormLayout) -> None:
    p = make_people(1)[0]
    anon = Personalisation(serial="QB26-W0001", short_code=p.short_code, url=p.url)
    assert anon.is_anonymous
    data = render_form(layout, anon)
    text = "\n".join(page_texts(data))
    assert p.recipient_name not in text and "Thôn" not in text
    assert "Kính gửi: Quý Ông/Bà" in text
    assert decode_qr(data, 0) == [p.url]
    bare = render_form(layout, Personalisation(serial=""))
    assert decode_qr(bare, 0) == []
    assert "Mã phiếu:" not in "\n".join(page_texts(bare))


def test_blank_forms(layout: FormLayout) -> None:
    buf = io.BytesIO()
    assert render_blank_forms(layout, 3, buf) == 3
    texts = page_texts(buf.getvalue())
    assert len(texts) == 6 and "Rất hài lòng" in texts[1]


def test_rated_unit_comes_from_the_form_when_the_campaign_has_none(questionnaire) -> None:
    shared = prepare_layout(
        questionnaire, CampaignInfo(name="Khảo sát SIPAS", year=2026, organiser="SỞ NỘI VỤ")
    )
    p = Personalisation(serial="1", unit_name="Phường Đồng Phú, thành phố Đồng Hới")
    text = page_texts(render_form(shared, p))[0]
    assert "Đơn vị được đánh giá:" in text and "Phường Đồng Phú, thành phố Đồng Hới" in text


def test_text_never_leaves_the_page(long_layout: FormLayout) -> None:
    for ops in long_layout.pages:
        for op in ops:
            if isinstance(op, TextOp):
                w = text_width(op.text, op.font, op.size)
                left = {"left": op.x, "center": op.x - w / 2, "right": op.x - w}[op.align]
                assert left >= MARGIN_X - 0.5, op.text
                assert left + w <= PAGE_W - MARGIN_X + 0.5, op.text
                assert unicodedata.is_normalized("NFC", op.text)


def test_long_questions_wrap(long_layout: FormLayout) -> None:
    texts = [op.text for ops in long_layout.pages for op in ops if isinstance(op, TextOp)]
    assert "Thời hạn giải quyết (tính từ ngày hồ sơ được tiếp nhận" in " ".join(texts)
    assert not any("hoàn thiện hồ sơ theo yêu cầu của cơ quan" in t and "Thời hạn" in t
                   for t in texts)


def test_keying_codes() -> None:
    q = make_questionnaire(extra_pages=True)
    assert keying_codes(q.question("e1_1")) == ("1", "2", "3", "4", "5", "9")
    assert keying_codes(q.question("a2")) == ("1", "2", "3", "4", "5")
    assert keying_codes(q.question("z1"))[-1] == "10"


def test_duplex_pads_odd_page_counts(questionnaire) -> None:
    from dataclasses import replace

    short = replace(questionnaire, sections=questionnaire.sections[:1], intro="")
    assert prepare_layout(short, CAMPAIGN, duplex=False).page_count == 1
    assert prepare_layout(short, CAMPAIGN).page_count == 2


def test_memory_does_not_grow_with_the_batch(long_layout: FormLayout) -> None:
    render_forms(long_layout, make_people(1), _Sink())  # template built outside the measure
    people = make_people(300)
    tracemalloc.start()
    try:
        sink = _Sink()
        render_forms(long_layout, people[:50], sink)
        _, peak_small = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        render_forms(long_layout, people, sink)
        _, peak_big = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # pages are written as they are made; only offsets (bytes per page) stay behind
    assert peak_big < peak_small + 300 * 4 * 200
    assert sink.size > 300 * 4 * 500


def test_shipped_questionnaires_render_if_available() -> None:
    catalog = pytest.importorskip("questionnaires.catalog")
    try:
        shipped = catalog.shipped_questionnaires()
    except Exception as exc:  # the catalog is being written by another engineer
        pytest.skip(f"catalog not loadable: {exc}")
    for q in shipped.values():
        lay = prepare_layout(q, CAMPAIGN)
        text = "\n".join(page_texts(render_form(lay, make_people(1)[0])))
        assert f"Trang {lay.page_count}/{lay.page_count}" in text
        assert unicodedata.normalize("NFC", q.questions()[0].text) in text.replace("\n", " ")
