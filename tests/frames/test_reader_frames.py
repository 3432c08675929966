"""Reading frame list files: encodings, delimiters, workbooks, header detection, bad input."""

from __future__ import annotations

import codecs
import csv
import io
import time
import unicodedata
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from survey_app.frames.reader import (
    Field,
    FileKind,
    FrameFileError,
    FrameFileErrorCode,
    clean_text,
    file_digest,
    fold,
    match_header,
    neutralise_formula,
    open_table,
)

# The list template at the end of seed 004 (Quảng Bình district plan 2022), verbatim.
SEED_TITLE = [
    "TÊN CƠ QUAN",
    "DANH SÁCH",
    "Cá nhân, người đại diện tổ chức đã giao dịch, nhận kết quả giải quyết thủ tục hành chính "
    "trong năm 2022 tại Bộ phận một cửa",
]
SEED_HEADER = [
    "tt",
    "Họ và tên",
    "Tên thủ tục hành chính đã giao dịch",
    "Địa chỉ cư trú hoặc đơn vị công tác (thôn, xã, huyện)",
    "Số điện thoại (bắt buộc phải có)",
]
SEED_FOOTER = ["Người lập danh sách", "..... ngày tháng năm", "THỦ TRƯỞNG"]
PEOPLE = [
    ["1", "Nguyễn Thị Hồng Nhung", "Đăng ký khai sinh", "Thôn Tân Lợi, xã Quảng Phú", "0912345678"],
    ["2", "Trần Văn Đức", "Chứng thực bản sao", "Thôn Đông Dương, xã Quảng Lưu", "0987654321"],
    ["3", "Lê Ngọc Ánh", "Đăng ký kết hôn", "Tổ dân phố 3, thị trấn Quy Đạt", "0356789012"],
]
NAMES = [p[1] for p in PEOPLE]


def seed_lines(sep: str) -> list[str]:
    """The seed template as CSV lines (title rows, blank line, header, data, footer)."""
    rows = [[t] for t in SEED_TITLE] + [[], SEED_HEADER, *PEOPLE, []] + [[f] for f in SEED_FOOTER]
    out = io.StringIO()
    csv.writer(out, delimiter=sep, lineterminator="\n").writerows(rows)
    return out.getvalue().splitlines()


def to_cp1258(text: str) -> bytes:
    """Encode like Windows does: precomposed base letters, tone marks as combining characters."""
    tones = "\u0300\u0301\u0303\u0309\u0323"
    out = []
    for ch in unicodedata.normalize("NFC", text):
        try:
            ch.encode("cp1258")
            out.append(ch)
        except UnicodeEncodeError:
            d = unicodedata.normalize("NFD", ch)
            base = unicodedata.normalize("NFC", "".join(c for c in d if c not in tones))
            out.append(base + "".join(c for c in d if c in tones))
    return "".join(out).encode("cp1258")


def read_all(path_or_bytes, filename=None, **kw):
    with open_table(path_or_bytes, filename, **kw) as table:
        return table, list(table)


def names_of(rows, table) -> list[str]:
    i = table.columns[Field.NAME]
    return [cells[i] for _, cells in rows if cells[i] and cells[i][0].isupper()]


# --------------------------------------------------------------------------------------------
# CSV encodings and delimiters


def test_seed_template_utf8_tab_loads_as_is(tmp_path: Path) -> None:
    path = tmp_path / "danh_sach.csv"
    path.write_text("\n".join(seed_lines("\t")) + "\n", encoding="utf-8")
    table, rows = read_all(path)
    assert table.kind is FileKind.CSV
    assert table.delimiter == "\t"
    assert table.header_row == 5  # 3 title rows + 1 blank row above it
    assert table.columns == {
        Field.ROW_NO: 0,
        Field.NAME: 1,
        Field.PROCEDURE: 2,
        Field.ADDRESS: 3,
        Field.PHONE: 4,
    }
    assert table.extra_columns == {}
    assert rows[0] == (6, PEOPLE[0])
    assert [r[0] for r in rows[:3]] == [6, 7, 8]
    assert all(len(cells) == 5 for _, cells in rows)


@pytest.mark.parametrize(
    ("encoding", "sep", "expected_encoding"),
    [
        ("utf-8", ",", "utf-8"),
        ("utf-8-sig", ",", "utf-8-sig"),
        ("utf-8-sig", ";", "utf-8-sig"),
        ("utf-16", "\t", "utf-16"),  # Excel "Unicode text": UTF-16LE with BOM, tab-separated
    ],
)
def test_csv_encodings_and_delimiters(
    tmp_path: Path, encoding: str, sep: str, expected_encoding: str
) -> None:
    path = tmp_path / "list.csv"
    lines = seed_lines(sep)  # the third title row has commas: must not fool the detection
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    table, rows = read_all(path)
    assert table.encoding == expected_encoding
    assert table.delimiter == sep
    assert table.columns[Field.PHONE] == 4
    assert rows[0][1] == PEOPLE[0]
    assert rows[2][1][1] == "Lê Ngọc Ánh"


def test_utf16_without_bom_detected(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes("\n".join(seed_lines("\t")).encode("utf-16-le"))
    table, rows = read_all(path)
    assert table.encoding == "utf-16-le"
    assert rows[0][1] == PEOPLE[0]


def test_cp1258_is_decoded_and_normalised_to_nfc(tmp_path: Path) -> None:
    path = tmp_path / "legacy.csv"
    data = to_cp1258("\r\n".join(seed_lines(";")))
    assert "Nguyễn".encode() not in data  # really the legacy encoding
    path.write_bytes(data)
    table, rows = read_all(path)
    assert table.encoding == "cp1258"
    assert table.header[1] == "Họ và tên"
    name = rows[0][1][1]
    assert name == "Nguyễn Thị Hồng Nhung"
    assert unicodedata.is_normalized("NFC", name)
    assert all(unicodedata.is_normalized("NFC", c) for _, cells in rows for c in cells)


def test_decomposed_utf8_headers_and_cells(tmp_path: Path) -> None:
    text = unicodedata.normalize("NFD", "\n".join(seed_lines(",")))
    path = tmp_path / "nfd.csv"
    path.write_text(text, encoding="utf-8")
    table, rows = read_all(path)
    assert table.columns[Field.NAME] == 1 and table.columns[Field.PHONE] == 4
    assert table.header[3] == "Địa chỉ cư trú hoặc đơn vị công tác (thôn, xã, huyện)"
    assert rows[1][1][1] == "Trần Văn Đức"


def test_mixed_encoding_lines_fall_back_to_cp1258(tmp_path: Path) -> None:
    head = ("\n".join(seed_lines(",")[:-4]) + "\n").encode("utf-8")
    tail = to_cp1258("4,Phạm Thị Thu,Chứng thực,Xã Cảnh Dương,0911222333\n")
    path = tmp_path / "mixed.csv"
    path.write_bytes(head + tail)
    _, rows = read_all(path)
    assert rows[-1][1][1] == "Phạm Thị Thu"


def test_formula_text_in_csv_is_kept_literally(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text('Họ và tên,SĐT\n"=HYPERLINK(""http://x"")",0912345678\n', encoding="utf-8")
    _, rows = read_all(path)
    assert rows[0][1][0] == '=HYPERLINK("http://x")'
    assert neutralise_formula(rows[0][1][0]) == '\'=HYPERLINK("http://x")'


def test_single_column_list_without_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text("Họ và tên\nNguyễn Văn A\nTrần Thị B\n", encoding="utf-8")
    table, rows = read_all(path)
    assert table.columns == {Field.NAME: 0}
    assert [c for _, c in rows] == [["Nguyễn Văn A"], ["Trần Thị B"]]


def test_ragged_rows_are_padded_and_cut(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("Họ tên,SĐT,Địa chỉ\nA,0912345678\nB,0912345679,x,y,z\n", encoding="utf-8")
    _, rows = read_all(path)
    assert rows == [(2, ["A", "0912345678", ""]), (3, ["B", "0912345679", "x"])]


def test_csv_streams_without_reading_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as f:
        f.write("Họ và tên,Số điện thoại\n")
        for i in range(120_000):
            f.write(f"Nguyễn Văn {i},09{i:08d}\n")
    size = path.stat().st_size
    with open(path, "rb") as stream, open_table(stream, "big.csv") as table:
        first = next(iter(table))
        assert first == (2, ["Nguyễn Văn 0", "0900000000"])
        assert stream.tell() < size / 2  # only a block or two has been read
        assert sum(1 for _ in table) == 120_000 - 1


def test_caller_stream_not_closed_and_bytes_accepted(tmp_path: Path) -> None:
    data = "\n".join(seed_lines(",")).encode("utf-8")
    stream = io.BytesIO(data)
    with open_table(stream, "x.csv") as table:
        assert len(list(table)) >= 3
    assert not stream.closed
    _, rows = read_all(data, "x.csv")
    assert rows[0][1] == PEOPLE[0]


# --------------------------------------------------------------------------------------------
# Header aliases


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("Họ và tên", Field.NAME),
        ("Họ tên", Field.NAME),
        ("HO TEN", Field.NAME),
        ("Tên người giao dịch", Field.NAME),
        ("Họ và tên người nộp hồ sơ", Field.NAME),
        ("Số điện thoại", Field.PHONE),
        ("SĐT", Field.PHONE),
        ("Điện thoại", Field.PHONE),
        ("Số điện thoại (bắt buộc phải có)", Field.PHONE),
        ("Mobile", Field.PHONE),
        ("Số ĐT liên lạc", Field.PHONE),
        ("Tên thủ tục hành chính đã giao dịch", Field.PROCEDURE),
        ("Thủ tục", Field.PROCEDURE),
        ("TTHC", Field.PROCEDURE),
        ("Địa chỉ cư trú hoặc đơn vị công tác (thôn, xã, huyện)", Field.ADDRESS),
        ("Địa chỉ", Field.ADDRESS),
        ("Chức vụ", Field.POSITION),
        ("Đơn vị công tác", Field.WORKPLACE),
        ("TT", Field.ROW_NO),
        ("STT", Field.ROW_NO),
        ("Ngày giao dịch", Field.TRANSACTION_DATE),
        ("Ngày trả kết quả", Field.TRANSACTION_DATE),
        ("Năm sinh", Field.BIRTH_YEAR),
        ("Email", Field.EMAIL),
        ("Giới tính", Field.GENDER),
        ("Mã đơn vị", Field.UNIT_CODE),
        ("  họ   VÀ   tên  ", Field.NAME),
        (unicodedata.normalize("NFD", "Số điện thoại"), Field.PHONE),
    ],
)
def test_header_aliases(text: str, field: Field) -> None:
    assert match_header(text)[0] is field


@pytest.mark.parametrize("text", ["", "Ghi chú", "Cá nhân, người đại diện tổ chức đã giao dịch, "
                                  "nhận kết quả giải quyết thủ tục hành chính trong năm 2022"])
def test_non_headers(text: str) -> None:
    assert match_header(text)[0] is None


def test_fold_and_clean_text() -> None:
    assert fold("Số ĐT (bắt buộc)") == "so dt"
    assert fold("ĐỊA CHỈ") == "dia chi"
    assert clean_text(" Nguyễn \u00a0 Văn\nA ") == "Nguyễn Văn A"
    assert clean_text(unicodedata.normalize("NFD", "Đức")) == "Đức"


def test_unknown_extra_columns_are_labelled(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("Họ tên,Ghi chú,SĐT,,Ghi chú\nA,x,0912345678,y,z\n", encoding="utf-8")
    table, _ = read_all(path)
    assert table.extra_columns == {1: "Ghi chú", 3: "Cột D", 4: "Ghi chú (2)"}


# --------------------------------------------------------------------------------------------
# Workbooks


def _write_openpyxl_list(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Danh sách"
    ws["A1"] = "UBND XÃ QUẢNG PHÚ"
    ws.merge_cells("A1:F1")
    ws["A2"] = "DANH SÁCH"
    ws.merge_cells("A2:F2")
    ws["A3"] = SEED_TITLE[2]
    ws.merge_cells("A3:F3")
    # rows 4 and 5 blank
    for col, text in enumerate([*SEED_HEADER, "Ghi chú nội bộ"], start=1):
        ws.cell(row=6, column=col, value=text)
    ws.append([1, "Nguyễn Thị Hồng Nhung", "Đăng ký khai sinh", "Xã Quảng Phú", 912345678, "a"])
    ws.append([2, "Trần Văn Đức", "Chứng thực", "Xã Quảng Lưu", "0987654321", "=1+2"])
    ws.append([3, "Lê Ngọc Ánh", "Đăng ký kết hôn", "Quy Đạt", 9.12345679e8, None])
    wb.save(path)


def test_xlsx_with_title_rows_merged_cells_extra_column_numbers_and_formula(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ds.xlsx"
    _write_openpyxl_list(path)
    table, rows = read_all(path)
    assert table.kind is FileKind.XLSX
    assert table.sheet_name == "Danh sách"
    assert table.header_row == 6
    assert table.columns[Field.PHONE] == 4
    assert table.extra_columns == {5: "Ghi chú nội bộ"}
    assert [r[0] for r in rows] == [7, 8, 9]
    assert rows[0][1] == ["1", "Nguyễn Thị Hồng Nhung", "Đăng ký khai sinh", "Xã Quảng Phú",
                          "912345678", "a"]  # fmt: skip
    assert rows[2][1][4] == "912345679"
    # openpyxl stores no cached value for the formula: it must come back empty, never as
    # formula text and never evaluated.
    assert rows[1][1][5] == ""


def test_xlsx_formula_cached_value_is_read_not_the_formula(tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "f.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["Họ và tên", "SĐT"])
    ws.write_string(1, 0, "Nguyễn Văn A")
    ws.write_formula(1, 1, '="09"&"12345678"', None, "0912345678")
    wb.close()
    _, rows = read_all(path)
    assert rows == [(2, ["Nguyễn Văn A", "0912345678"])]


def test_xlsx_dates_and_sheet_choice(tmp_path: Path) -> None:
    import datetime as dt

    path = tmp_path / "two.xlsx"
    wb = openpyxl.Workbook()
    guide = wb.active
    guide.title = "Hướng dẫn"
    guide["A1"] = "Điền danh sách ở trang sau"
    ws = wb.create_sheet("Xã Quảng Phú")
    ws.append(["Họ tên", "Điện thoại", "Ngày giao dịch"])
    ws.append(["Nguyễn Văn A", "0912345678", dt.date(2022, 3, 4)])
    wb.save(path)
    table, rows = read_all(path)  # the first sheet has no header: the second is chosen
    assert table.sheet_name == "Xã Quảng Phú"
    assert table.sheet_names == ["Hướng dẫn", "Xã Quảng Phú"]
    assert rows == [(2, ["Nguyễn Văn A", "0912345678", "2022-03-04"])]
    table, _ = read_all(path, sheet="XA QUANG PHU")
    assert table.sheet_name == "Xã Quảng Phú"
    table, _ = read_all(path, sheet=1)
    assert table.sheet_name == "Xã Quảng Phú"
    with pytest.raises(FrameFileError) as err:
        read_all(path, sheet=0)
    assert err.value.code is FrameFileErrorCode.HEADER_NOT_FOUND
    with pytest.raises(FrameFileError) as err:
        read_all(path, sheet="Không có")
    assert err.value.code is FrameFileErrorCode.SHEET_NOT_FOUND


def test_seed_template_as_xlsx_with_numbered_columns(tmp_path: Path) -> None:
    path = tmp_path / "seed.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    for i, t in enumerate(SEED_TITLE, start=1):
        ws.cell(row=i, column=1, value=t)
        ws.merge_cells(f"A{i}:{get_column_letter(len(SEED_HEADER))}{i}")
    ws.append([])
    ws.append(SEED_HEADER)
    for p in PEOPLE:
        ws.append(p)
    wb.save(path)
    table, rows = read_all(path)
    assert table.header_row == 5
    assert rows[0] == (6, PEOPLE[0])


def _write_ods(path: Path, rows: list[list[object]]) -> None:
    def cell(v: object) -> str:
        if isinstance(v, int | float):
            return (
                f'<table:table-cell office:value-type="float" office:value="{v}">'
                f"<text:p>{v}</text:p></table:table-cell>"
            )
        if v == "":
            return "<table:table-cell/>"
        return (
            '<table:table-cell office:value-type="string">'
            f"<text:p>{v}</text:p></table:table-cell>"
        )

    body = "".join(
        "<table:table-row>" + "".join(cell(v) for v in r) + "</table:table-row>" for r in rows
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="Trang1">{body}'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)


def test_ods(tmp_path: Path) -> None:
    path = tmp_path / "ds.ods"
    _write_ods(path, [["DANH SÁCH"], [], ["STT", "Họ và tên", "SĐT"], [1, "Lê Văn Á", 912345678]])
    table, rows = read_all(path)
    assert table.kind is FileKind.ODS
    assert table.header_row == 3
    assert rows == [(4, ["1", "Lê Văn Á", "912345678"])]


def test_xls_if_xlwt_available(tmp_path: Path) -> None:
    xlwt = pytest.importorskip("xlwt")
    path = tmp_path / "old.xls"
    wb = xlwt.Workbook()
    ws = wb.add_sheet("DS")
    for c, v in enumerate(["TT", "Họ và tên", "Số điện thoại"]):
        ws.write(2, c, v)
    for c, v in enumerate([1, "Nguyễn Văn A", 912345678]):
        ws.write(3, c, v)
    wb.save(str(path))
    table, rows = read_all(path)
    assert table.kind is FileKind.XLS
    assert rows == [(4, ["1", "Nguyễn Văn A", "912345678"])]


def test_csv_content_named_xlsx_is_read_as_csv(tmp_path: Path) -> None:
    path = tmp_path / "actually.xlsx"
    path.write_text("Họ và tên;SĐT\nA;0912345678\n", encoding="utf-8")
    table, rows = read_all(path)
    assert table.kind is FileKind.CSV
    assert rows == [(2, ["A", "0912345678"])]


# --------------------------------------------------------------------------------------------
# Bad input


def _code(source, filename: str | None = None) -> FrameFileErrorCode:
    with pytest.raises(FrameFileError) as err:
        read_all(source, filename)
    assert err.value.message_vi  # a Vietnamese message for the user
    assert unicodedata.is_normalized("NFC", err.value.message_vi)
    return err.value.code


def test_empty_files() -> None:
    assert _code(b"", "a.csv") is FrameFileErrorCode.EMPTY_FILE
    assert _code(codecs.BOM_UTF8 + b"\r\n \r\n", "a.csv") is FrameFileErrorCode.EMPTY_FILE
    assert _code(b",,,\n,,,\n", "a.csv") is FrameFileErrorCode.EMPTY_FILE


def test_empty_workbook(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    openpyxl.Workbook().save(path)
    assert _code(path) is FrameFileErrorCode.EMPTY_FILE


def test_header_not_found() -> None:
    data = "Báo cáo tổng hợp\nSố liệu,12,13\nKhác,1,2\n".encode()
    assert _code(data, "a.csv") is FrameFileErrorCode.HEADER_NOT_FOUND


def test_header_needs_a_name_column() -> None:
    data = "STT,Số điện thoại,Địa chỉ\n1,0912345678,x\n".encode()
    assert _code(data, "a.csv") is FrameFileErrorCode.HEADER_NOT_FOUND


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "list.csv"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "list.xlsx"),
        (b"<html><body><table><tr><td>H\xe1\xbb\x8d t\xc3\xaan</td></tr></table>", "list.xls"),
    ],
)
def test_wrong_file_type(data: bytes, name: str) -> None:
    assert _code(data, name) is FrameFileErrorCode.WRONG_FILE_TYPE


def test_word_document_named_xlsx_is_wrong_type() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    assert _code(buf.getvalue(), "list.xlsx") is FrameFileErrorCode.WRONG_FILE_TYPE


OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def test_password_protected_workbook() -> None:
    # Excel's encrypted .xlsx: an OLE2 compound file with EncryptionInfo/EncryptedPackage.
    data = OLE2_MAGIC + b"\x00" * 504 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 4096
    assert _code(data, "list.xlsx") is FrameFileErrorCode.ENCRYPTED_WORKBOOK


def test_unreadable_ole2_named_xlsx_is_treated_as_encrypted() -> None:
    data = OLE2_MAGIC + bytes(4096)
    assert _code(data, "list.xlsx") is FrameFileErrorCode.ENCRYPTED_WORKBOOK


def test_really_encrypted_xlsx_if_msoffcrypto_available(tmp_path: Path) -> None:
    ooxml = pytest.importorskip("msoffcrypto.format.ooxml")
    plain = tmp_path / "plain.xlsx"
    _write_openpyxl_list(plain)
    encrypted = tmp_path / "secret.xlsx"
    with open(plain, "rb") as src, open(encrypted, "wb") as dst:
        office = ooxml.OOXMLFile(src)
        office.encrypt("matkhau", dst)
    assert _code(encrypted) is FrameFileErrorCode.ENCRYPTED_WORKBOOK


def test_corrupt_workbook_truncated_zip(tmp_path: Path) -> None:
    path = tmp_path / "ok.xlsx"
    _write_openpyxl_list(path)
    data = path.read_bytes()
    assert _code(data[: len(data) // 2], "ds.xlsx") is FrameFileErrorCode.CORRUPT_WORKBOOK


def test_corrupt_workbook_bad_member(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<not really")
    assert _code(buf.getvalue(), "ds.xlsx") is FrameFileErrorCode.CORRUPT_WORKBOOK


def test_zip_bomb_refused_quickly_without_decompressing(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    block = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            for _ in range(200):  # 200 MiB of zeros, ~200 KiB compressed
                member.write(block)
    assert path.stat().st_size < 1 << 20
    start = time.perf_counter()
    assert _code(path) is FrameFileErrorCode.ZIP_BOMB
    assert time.perf_counter() - start < 0.5


def test_zip_with_too_many_members(tmp_path: Path) -> None:
    path = tmp_path / "many.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        for i in range(10_001):
            z.writestr(f"x/{i}", b"")
    assert _code(path) is FrameFileErrorCode.ZIP_BOMB


def test_binary_garbage() -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    assert _code(b"Ho ten,SDT\n" + noise, "a.csv") is FrameFileErrorCode.BINARY_GARBAGE
    # NUL bytes inside otherwise valid text
    assert _code(b"Ho ten,SDT\nA\x00B,0912345678\n", "a.csv") is FrameFileErrorCode.BINARY_GARBAGE
    # bytes that are neither UTF-8 nor defined in Windows-1258
    assert _code(b"Ho ten,SDT\n\x81\x8d\x8e\x8f\x90,1\n", "a.csv") is (
        FrameFileErrorCode.BINARY_GARBAGE
    )


def test_errors_share_one_root_with_codes() -> None:
    with pytest.raises(FrameFileError) as err:
        read_all(b"", "x.csv")
    assert err.value.code == "empty_file"
    assert str(err.value) == err.value.message_vi


# --------------------------------------------------------------------------------------------
# Helpers


def test_file_digest(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_digest(path) == expected
    assert file_digest(b"abc") == expected
    stream = io.BytesIO(b"abc")
    stream.seek(2)
    assert file_digest(stream) == expected
    assert stream.tell() == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+84912", "'+84912"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Nguyễn", "Nguyễn"),
        ("", ""),
    ],
)
def test_neutralise_formula(text: str, expected: str) -> None:
    assert neutralise_formula(text) == expected


def test_xlsx_row_numbers_count_leading_empty_rows_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "offset.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["C5"] = "Họ và tên"
    ws["D5"] = "SĐT"
    ws["C7"] = "Nguyễn Văn A"
    ws["D7"] = "0912345678"
    wb.save(path)
    table, rows = read_all(path)
    assert table.header_row == 5
    name_col = table.columns[Field.NAME]
    assert [(n, cells[name_col]) for n, cells in rows] == [(6, ""), (7, "Nguyễn Văn A")]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings_and_odd_separators_inside_cells(tmp_path: Path, newline: str) -> None:
    path = tmp_path / "nl.csv"
    text = newline.join(
        ["Họ và tên,Địa chỉ,SĐT", 'Nguyễn Văn A,"Thôn 1\u2028xã B",0912345678',
         'Trần Thị C,"dòng 1\ndòng 2\x0c",0912345679', ""]
    )  # fmt: skip
    path.write_bytes(text.encode("utf-8"))
    _, rows = read_all(path)
    assert [cells for _, cells in rows] == [
        ["Nguyễn Văn A", "Thôn 1\u2028xã B", "0912345678"],
        ["Trần Thị C", "dòng 1\ndòng 2\x0c", "0912345679"],
    ]
    assert [n for n, _ in rows] == [2, 3]
