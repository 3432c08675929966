"""Row validation: accepted records, rejections, duplicates, skipped rows, summaries."""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

import openpyxl
import pytest

from survey_app.frames.phones import PhoneKind
from survey_app.frames.reader import open_table
from survey_app.frames.rows import (
    REASON_MESSAGES_VI,
    WARNING_MESSAGES_VI,
    FrameRecord,
    RowIssue,
    RowReason,
    RowStatus,
    WarningCode,
    parse_birth_year,
    parse_date,
    summarise,
    validate_rows,
)

TITLE = "TÊN CƠ QUAN\nDANH SÁCH\n\n"
HEADER = "TT;Họ và tên;Tên thủ tục hành chính đã giao dịch;Địa chỉ;Số điện thoại\n"


def run(tmp_path: Path, body: str, *, header: str = HEADER, **kw):
    path = tmp_path / "ds.csv"
    path.write_text(TITLE + header + body, encoding="utf-8")
    kw.setdefault("phone_required", True)
    with open_table(path) as table:
        validator = validate_rows(table, **kw)
        results = list(validator)
    return results, validator


def by_row(results) -> dict[int, FrameRecord | RowIssue]:
    return {r.source_row: r for r in results}


def test_accepted_record_fields_and_source_rows(tmp_path: Path) -> None:
    results, v = run(
        tmp_path,
        "1;  Nguyễn  Văn An ;Đăng ký khai sinh;Thôn 1,  xã Quảng Phú;0912 345 678\n"
        "2;Trần Thị Bình;Chứng thực;Thôn 2;912345679\n",
    )
    assert [r.source_row for r in results] == [5, 6]  # 2 title rows + blank + header above
    first = results[0]
    assert isinstance(first, FrameRecord)
    assert first.status is RowStatus.ACCEPTED
    assert first.name == "Nguyễn Văn An"
    assert first.phone_e164 == "+84912345678"
    assert first.phone_kind is PhoneKind.MOBILE
    assert first.procedure == "Đăng ký khai sinh"
    assert first.address == "Thôn 1, xã Quảng Phú"
    assert first.row_no == "1"
    assert first.extra == {}
    assert first.transactions == 1
    assert first.warnings == ()
    assert first.position is None and first.transaction_date is None
    assert v.summary.accepted == 2 and v.summary.mobile == 2


def test_decomposed_names_come_out_nfc(tmp_path: Path) -> None:
    body = unicodedata.normalize("NFD", "1;Nguyễn Thị Hằng;Thủ tục;Xã Đức Ninh;0912345678\n")
    results, _ = run(tmp_path, body)
    assert results[0].name == "Nguyễn Thị Hằng"
    assert results[0].address == "Xã Đức Ninh"


def test_rejections_with_reasons_and_vietnamese_messages(tmp_path: Path) -> None:
    results, v = run(
        tmp_path,
        "1;;Thủ tục;Thôn 1;0912345678\n"  # no name
        "2;12345;Thủ tục;Thôn 1;0912345670\n"  # digits are not a name
        "3;Lê Văn C;Thủ tục;Thôn 1;091234\n"  # invalid phone
        "4;Lê Văn D;Thủ tục;Thôn 1;\n",  # phone required
    )
    reasons = {r.source_row: r.reason for r in results}
    assert reasons == {
        5: RowReason.NO_NAME,
        6: RowReason.NO_NAME,
        7: RowReason.INVALID_PHONE,
        8: RowReason.PHONE_REQUIRED,
    }
    for r in results:
        assert isinstance(r, RowIssue) and r.status is RowStatus.REJECTED
        assert r.message_vi == REASON_MESSAGES_VI[r.reason]
    assert v.summary.rejected_total == 4 and v.summary.accepted == 0


def test_phone_optional_mode_keeps_people_without_phone(tmp_path: Path) -> None:
    header = "STT;Họ và tên;Chức vụ;Đơn vị công tác;Điện thoại\n"
    results, v = run(
        tmp_path,
        "1;Phạm Văn E;Trưởng phòng;Phòng Nội vụ;\n"
        "2;Phạm Văn F;Chuyên viên;Phòng Tư pháp;0912abc\n",
        header=header,
        phone_required=False,
    )
    e, f = results
    assert isinstance(e, FrameRecord) and e.phone_e164 is None
    assert e.phone_kind is PhoneKind.EMPTY
    assert e.position == "Trưởng phòng" and e.workplace == "Phòng Nội vụ"
    assert isinstance(f, FrameRecord) and f.phone_e164 is None
    assert [w.code for w in f.warnings] == [WarningCode.PHONE_DROPPED]
    assert v.summary.without_phone == 2


def test_warnings_landline_legacy_multiple(tmp_path: Path) -> None:
    results, v = run(
        tmp_path,
        "1;A Văn;x;y;024 3812 3456\n2;B Văn;x;y;01691234567\n3;C Văn;x;y;0912345678 / 0987654321\n",
    )
    a, b, c = results
    assert a.phone_kind is PhoneKind.LANDLINE
    assert [w.code for w in a.warnings] == [WarningCode.LANDLINE]
    assert a.warnings[0].message_vi == WARNING_MESSAGES_VI[WarningCode.LANDLINE]
    assert b.phone_e164 == "+84391234567"
    assert [w.code for w in b.warnings] == [WarningCode.LEGACY_CONVERTED]
    assert [w.code for w in c.warnings] == [WarningCode.MULTIPLE_PHONES]
    assert v.summary.warnings == {
        WarningCode.LANDLINE: 1,
        WarningCode.LEGACY_CONVERTED: 1,
        WarningCode.MULTIPLE_PHONES: 1,
    }
    assert v.summary.landline == 1 and v.summary.mobile == 2


def test_same_phone_is_one_person_with_counted_transactions(tmp_path: Path) -> None:
    results, v = run(
        tmp_path,
        "1;Nguyễn Văn A;Khai sinh;Thôn 1;0912345678\n"
        "2;Nguyễn Văn A;Chứng thực;Thôn 1;0912 345 678\n"
        "3;Trần B;Kết hôn;Thôn 2;0987654321\n"
        "4;Nguyễn Văn A;Đất đai;Thôn 1;+84912345678\n",
    )
    rows = by_row(results)
    assert isinstance(rows[5], FrameRecord)
    for n in (6, 8):
        dup = rows[n]
        assert isinstance(dup, RowIssue)
        assert dup.status is RowStatus.DUPLICATE and dup.reason is RowReason.DUPLICATE_PHONE
        assert dup.duplicate_of == 5 and dup.phone_e164 == "+84912345678"
        assert "dòng 5" in dup.message_vi
    assert v.transaction_counts == {"+84912345678": 3}
    assert v.summary.accepted == 2 and v.summary.duplicates == 2 and v.summary.rows == 4


def test_existing_frame_phones_are_reported_for_the_caller(tmp_path: Path) -> None:
    results, v = run(
        tmp_path,
        "1;A Văn;x;y;0912345678\n2;B Văn;x;y;0987654321\n3;A Văn;x;y;0912345678\n",
        existing_phones={"+84912345678"},
    )
    rows = by_row(results)
    assert rows[5].reason is RowReason.DUPLICATE_EXISTING and rows[5].status is RowStatus.DUPLICATE
    assert rows[5].phone_e164 == "+84912345678"
    assert isinstance(rows[6], FrameRecord)
    assert rows[7].reason is RowReason.DUPLICATE_EXISTING
    assert v.existing_hits == {"+84912345678": 2}
    assert v.summary.duplicates_existing == 2


def test_possible_duplicate_without_phone(tmp_path: Path) -> None:
    results, v = run(
        tmp_path,
        "1;Nguyễn Văn A;x;Thôn 1, xã Phú;\n"
        "2;NGUYEN VAN A;y;Thôn 1 xã Phú;\n"  # same person after folding
        "3;Nguyễn Văn A;z;Thôn 9;\n",
        phone_required=False,
    )
    a, b, c = results
    assert a.warnings == () and c.warnings == ()
    assert isinstance(b, FrameRecord)  # kept, only flagged
    (w,) = b.warnings
    assert w.code is WarningCode.POSSIBLE_DUPLICATE and w.related_row == 5
    assert "dòng 5" in w.message_vi
    assert v.summary.warnings[WarningCode.POSSIBLE_DUPLICATE] == 1


def test_footer_blank_numbering_and_repeated_header_rows_are_skipped(tmp_path: Path) -> None:
    results, v = run(
        tmp_path,
        "(1);(2);(3);(4);(5)\n"
        "1;Nguyễn Văn A;x;y;0912345678\n"
        ";;;;\n"
        "TT;Họ và tên;Tên thủ tục hành chính đã giao dịch;Địa chỉ;Số điện thoại\n"
        "2;Trần Văn B;x;y;0912345679\n"
        "\n"
        "Người lập danh sách;;;;THỦ TRƯỞNG\n"
        "..... ngày tháng năm;;;;\n"
        ";Nguyễn Trung Ngọc;;;\n",
    )
    rows = by_row(results)
    skipped = {n: r.reason for n, r in rows.items() if r.status is RowStatus.SKIPPED}
    assert skipped == {
        5: RowReason.COLUMN_NUMBERS,
        7: RowReason.EMPTY_ROW,
        8: RowReason.REPEATED_HEADER,
        10: RowReason.EMPTY_ROW,
        11: RowReason.FOOTER,
        12: RowReason.FOOTER,
        13: RowReason.FOOTER,  # the signatory's name under the footer
    }
    assert isinstance(rows[6], FrameRecord) and isinstance(rows[9], FrameRecord)
    assert v.summary.accepted == 2 and v.summary.rejected_total == 0
    assert v.summary.skipped[RowReason.FOOTER] == 3


def test_rows_after_footer_with_a_phone_are_still_data(tmp_path: Path) -> None:
    results, _ = run(
        tmp_path,
        "Người lập danh sách;;;;\n1;Nguyễn Văn A;x;y;0912345678\n",
    )
    assert results[0].reason is RowReason.FOOTER
    assert isinstance(results[1], FrameRecord)


def test_procedure_named_like_a_footer_is_not_skipped(tmp_path: Path) -> None:
    results, _ = run(
        tmp_path,
        "1;Lê Thị C;Xác nhận tình trạng hôn nhân;Thôn 1;\n",
        phone_required=False,
    )
    assert isinstance(results[0], FrameRecord)


def test_dates_birth_years_and_extra_columns(tmp_path: Path) -> None:
    header = "Họ tên;SĐT;Ngày giao dịch;Năm sinh;Ghi chú;Giới tính;Mã đơn vị;Email\n"
    results, _ = run(
        tmp_path,
        "A Văn;0912345678;04/03/2022;1980;khách quen;Nam;X01;a@b.vn\n"
        "B Văn;0912345670;2022-03-05;15/06/1975;;Nữ;;\n"
        "C Văn;0912345671;31/02/2022;1980;;;;\n"
        "D Văn;0912345672;04/03/2022;3000;;;;\n"
        "E Văn;0912345673;44927;1980.0;;;;\n",
        header=header,
        reference_year=2022,
    )
    a, b, c, d, e = results
    assert a.transaction_date == dt.date(2022, 3, 4) and a.birth_year == 1980
    assert a.extra == {"Ghi chú": "khách quen"}
    assert (a.gender, a.unit_code, a.email) == ("Nam", "X01", "a@b.vn")
    assert b.transaction_date == dt.date(2022, 3, 5) and b.birth_year == 1975
    assert b.extra == {} and b.unit_code is None
    assert c.reason is RowReason.BAD_DATE and c.status is RowStatus.REJECTED
    assert d.reason is RowReason.BAD_BIRTH_YEAR
    assert e.transaction_date == dt.date(2023, 1, 1) and e.birth_year == 1980


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("04/03/2022", dt.date(2022, 3, 4)),
        ("4/3/2022", dt.date(2022, 3, 4)),
        ("04-03-2022", dt.date(2022, 3, 4)),
        ("04.03.2022", dt.date(2022, 3, 4)),
        ("04/03/22", dt.date(2022, 3, 4)),
        ("2022-03-04", dt.date(2022, 3, 4)),
        ("2022-03-04 08:30:00", dt.date(2022, 3, 4)),
        ("44624", dt.date(2022, 3, 4)),
        ("31/02/2022", None),
        ("hôm qua", None),
        ("12345", None),
        ("04/03/2022 abc", None),
    ],
)
def test_parse_date(text: str, expected: dt.date | None) -> None:
    assert parse_date(text) == expected


def test_parse_birth_year() -> None:
    assert parse_birth_year("1980", 2022) == 1980
    assert parse_birth_year("1980.0", 2022) == 1980
    assert parse_birth_year("15/06/1975", 2022) == 1975
    assert parse_birth_year("2023", 2022) is None
    assert parse_birth_year("1850", 2022) is None
    assert parse_birth_year("abc", 2022) is None


def test_summarise_matches_the_validator_summary(tmp_path: Path) -> None:
    results, v = run(
        tmp_path,
        "1;A Văn;x;y;0912345678\n2;B Văn;x;y;0912345678\n3;;x;y;0912345670\n"
        "4;C Văn;x;y;02438123456\n;;;;\nNgười lập danh sách;;;;\n",
    )
    assert summarise(results) == v.summary
    s = v.summary
    assert (s.rows, s.accepted, s.duplicates, s.rejected_total) == (4, 2, 1, 1)
    assert s.skipped == {RowReason.EMPTY_ROW: 1, RowReason.FOOTER: 1}


def test_xlsx_rows_validate_with_numeric_phones(tmp_path: Path) -> None:
    path = tmp_path / "ds.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "DANH SÁCH"
    ws.merge_cells("A1:D1")
    ws.append([])
    ws.append(["STT", "Họ và tên", "Số điện thoại", "Ngày trả kết quả"])
    ws.append([1, "Nguyễn Văn A", 912345678, dt.date(2022, 3, 4)])
    ws.append([2, "Trần Thị B", 1691234567, "05/03/2022"])
    wb.save(path)
    with open_table(path) as table:
        a, b = validate_rows(table, phone_required=True)
    assert (a.source_row, a.phone_e164, a.transaction_date) == (4, "+84912345678",
                                                                dt.date(2022, 3, 4))  # fmt: skip
    assert b.phone_e164 == "+84391234567" and b.warnings[0].code is WarningCode.LEGACY_CONVERTED


def test_messages_are_nfc_vietnamese() -> None:
    for text in [*REASON_MESSAGES_VI.values(), *WARNING_MESSAGES_VI.values()]:
        assert unicodedata.is_normalized("NFC", text)
    assert set(REASON_MESSAGES_VI) == set(RowReason)
    assert set(WARNING_MESSAGES_VI) == set(WarningCode)


def test_official_with_position_only_is_not_a_footer(tmp_path: Path) -> None:
    header = "Họ và tên;Chức vụ;Điện thoại\n"
    results, _ = run(
        tmp_path,
        "Nguyễn Văn A;Trưởng phòng;\nQuảng Bình, ngày 10 tháng 10 năm 2022;;\n"
        "Kế toán;;\n",
        header=header,
        phone_required=False,
    )
    assert isinstance(results[0], FrameRecord) and results[0].position == "Trưởng phòng"
    assert [r.reason for r in results[1:]] == [RowReason.FOOTER, RowReason.FOOTER]
