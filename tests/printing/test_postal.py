"""Labels, envelopes, manifests and address sorting."""

from __future__ import annotations

import csv
import io
import unicodedata

import openpyxl
from printing_fixtures import CAMPAIGN, make_people, page_texts, pdf_reader

from printing.forms import Personalisation
from printing.postal import (
    MANIFEST_HEADERS,
    EnvelopeSize,
    MailingAddress,
    manifest_rows,
    neutralise_cell,
    render_envelopes,
    render_labels,
    return_envelope_text,
    sort_by_address,
    sort_for_delivery,
    vietnamese_sort_key,
    write_manifest_csv,
    write_manifest_xlsx,
)


def test_labels_fill_a4_sheets_of_24_in_order() -> None:
    people = make_people(30)
    addresses = [MailingAddress.from_personalisation(p) for p in people]
    buf = io.BytesIO()
    assert render_labels(addresses, buf) == 30
    texts = page_texts(buf.getvalue())
    assert len(texts) == 2
    flat = " ".join(texts[0].split())
    assert "Nguyễn Văn Đức" in flat and "Phạm Thị Ngọc Diệp" in flat
    assert flat.index(people[0].serial) < flat.index(people[1].serial) < flat.index(
        people[23].serial
    )
    assert people[24].serial in texts[1] and people[23].serial not in texts[1]
    assert b"Helvetica" not in buf.getvalue()
    box = pdf_reader(buf.getvalue()).pages[0].mediabox
    assert round(float(box.width)) == 595 and round(float(box.height)) == 842


def test_envelopes_have_sender_recipient_and_serial() -> None:
    people = make_people(3)
    buf = io.BytesIO()
    n = render_envelopes(
        [MailingAddress.from_personalisation(p) for p in people], buf,
        sender="Sở Nội vụ tỉnh Quảng Bình", sender_address=CAMPAIGN.return_address,
        size=EnvelopeSize.DL,
    )
    assert n == 3
    texts = page_texts(buf.getvalue())
    assert len(texts) == 3
    for p, text in zip(people, texts, strict=True):
        flat = " ".join(text.split())
        assert "Sở Nội vụ tỉnh Quảng Bình" in flat
        assert p.recipient_name in flat and "xã Quảng Phú" in flat
        assert f"Số phiếu: {p.serial}" in flat
    box = pdf_reader(buf.getvalue()).pages[0].mediabox
    to_mm = 25.4 / 72
    assert round(float(box.width) * to_mm) == 220 and round(float(box.height) * to_mm) == 110


def test_return_envelope_text() -> None:
    text = return_envelope_text(CAMPAIGN)
    assert "KHÔNG CẦN DÁN TEM" in text
    assert "Sở Nội vụ tỉnh Quảng Bình, 6 Hùng Vương, Đồng Hới" in text
    assert "31/10/2026" in text
    assert "Nguyễn" not in text  # nothing about the respondent
    assert "KHÔNG CẦN DÁN TEM" not in return_envelope_text(CAMPAIGN, prepaid=False)


def _risky() -> list[Personalisation]:
    return [
        Personalisation("QB-1", "K7QXM2P9AB", recipient_name="=HYPERLINK(\"http://x\")",
                        recipient_address="@SUM(A1)", unit_name="-2+3", phone="+84912345678"),
        Personalisation("QB-2", "", recipient_name="Trần Thị Hương",
                        recipient_address="Thôn 2, xã Quảng Phú", unit_name="UBND xã Quảng Phú",
                        phone="0987654321"),
    ]


def test_manifest_rows_and_csv() -> None:
    rows = list(manifest_rows(_risky()))
    assert rows[0].form_code == "K7QXM-2P9AB" and rows[0].phone == "0912345678"
    buf = io.BytesIO()
    assert write_manifest_csv(rows, buf) == 2
    raw = buf.getvalue()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(table[0]) == MANIFEST_HEADERS
    assert table[1][2] == "'=HYPERLINK(\"http://x\")"
    assert table[1][3] == "'@SUM(A1)" and table[1][5] == "'-2+3"
    assert table[2][1:7] == ["QB-2", "Trần Thị Hương", "Thôn 2, xã Quảng Phú", "0987654321",
                             "UBND xã Quảng Phú", ""]


def test_manifest_xlsx_is_neutralised() -> None:
    buf = io.BytesIO()
    assert write_manifest_xlsx(manifest_rows(_risky()), buf) == 2
    sheet = openpyxl.load_workbook(io.BytesIO(buf.getvalue())).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert tuple(values[0]) == MANIFEST_HEADERS
    assert values[1][2].startswith("'=") and values[1][3] == "'@SUM(A1)"
    assert values[2][2] == "Trần Thị Hương"
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


def test_neutralise_cell() -> None:
    for bad in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert neutralise_cell(bad) == "'" + bad
    assert neutralise_cell("Hà Nội") == "Hà Nội"


def test_vietnamese_address_order() -> None:
    addresses = ["Thôn 10, xã Đông", "thôn 2, xã Đông", "Thôn 2, xã Dong", "Ấp Bắc", "An Phú",
                 "Thôn 2, xã Đông"]
    ordered = sort_by_address(range(len(addresses)), lambda i: addresses[i])
    assert [addresses[i] for i in ordered][:2] == ["An Phú", "Ấp Bắc"]
    # numbers in numeric order; "Dong" and "Đông" collate together; duplicates keep input order
    rest = [addresses[i] for i in ordered][2:]
    assert rest.index("Thôn 10, xã Đông") == 3
    assert ordered.index(1) < ordered.index(5)
    nfd = unicodedata.normalize("NFD", "Thôn 2, xã Đông")
    assert vietnamese_sort_key(nfd) == vietnamese_sort_key("Thôn 2, xã Đông")


def test_sort_for_delivery_groups_units_then_addresses() -> None:
    forms = [
        Personalisation("3", recipient_address="Thôn 3", unit_name="Xã B"),
        Personalisation("1", recipient_address="Thôn 10", unit_name="Xã A"),
        Personalisation("2", recipient_address="Thôn 9", unit_name="Xã A"),
    ]
    assert [p.serial for p in sort_for_delivery(forms)] == ["2", "1", "3"]
