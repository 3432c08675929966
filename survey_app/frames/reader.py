"""Open a frame list file (CSV, XLSX, XLS, ODS) and find its header row (pure, no Flask/DB).

`open_table` sniffs the real file type from its first bytes (the file name is only a hint),
refuses dangerous or unreadable input with a `FrameFileError`, detects the text encoding and
delimiter of CSV files, finds the header row below any title rows, maps header cells to known
fields by alias, and returns a `Table` whose iterator streams the data rows as
`(source_row, cells)` with `cells` a list of strings (Unicode NFC) as wide as the header.

CSV files are streamed: memory stays bounded whatever the number of rows. Workbooks are read
with python-calamine (cached formula values, never evaluated; openpyxl read-only as fallback
for XLSX).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import enum
import gc
import hashlib
import io
import itertools
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, ClassVar

import polars as pl

from ..services.spreadsheet import neutralise_cell as neutralise_formula

__all__ = [
    "Field",
    "FileKind",
    "FrameFileError",
    "FrameFileErrorCode",
    "Table",
    "clean_text",
    "file_digest",
    "fit_row",
    "fold",
    "match_header",
    "neutralise_formula",
    "open_table",
]

# ---------------------------------------------------------------------------------------------
# Errors


class FrameFileErrorCode(enum.StrEnum):
    """Why a whole file was refused."""

    EMPTY_FILE = "empty_file"
    HEADER_NOT_FOUND = "header_not_found"
    WRONG_FILE_TYPE = "wrong_file_type"
    ENCRYPTED_WORKBOOK = "encrypted_workbook"
    CORRUPT_WORKBOOK = "corrupt_workbook"
    ZIP_BOMB = "zip_bomb"
    BINARY_GARBAGE = "binary_garbage"
    TOO_LARGE = "too_large"
    SHEET_NOT_FOUND = "sheet_not_found"


class FrameFileError(Exception):
    """Root of file-level import errors: `code` for programs, `message_vi` for people."""

    code: ClassVar[FrameFileErrorCode]
    default_message: ClassVar[str] = "Không đọc được tệp danh sách."

    def __init__(self, message_vi: str | None = None) -> None:
        self.message_vi = message_vi or self.default_message
        super().__init__(self.message_vi)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # Message text is Vietnamese for the user; keep it NFC as house rules require.
        cls.default_message = unicodedata.normalize("NFC", cls.default_message)


class EmptyFileError(FrameFileError):
    code = FrameFileErrorCode.EMPTY_FILE
    default_message = "Tệp rỗng: không có dữ liệu."


class HeaderNotFoundError(FrameFileError):
    code = FrameFileErrorCode.HEADER_NOT_FOUND
    default_message = (
        "Không tìm thấy dòng tiêu đề cột. Danh sách cần có ít nhất cột “Họ và tên” "
        "(và thường là “Số điện thoại”) trong 30 dòng đầu."
    )


class WrongFileTypeError(FrameFileError):
    code = FrameFileErrorCode.WRONG_FILE_TYPE
    default_message = (
        "Loại tệp không được hỗ trợ. Hãy tải lên tệp Excel (.xlsx, .xls), "
        "OpenDocument (.ods) hoặc CSV."
    )


class EncryptedWorkbookError(FrameFileError):
    code = FrameFileErrorCode.ENCRYPTED_WORKBOOK
    default_message = (
        "Tệp Excel được đặt mật khẩu nên không đọc được. "
        "Hãy mở tệp, gỡ mật khẩu rồi lưu lại dạng .xlsx và tải lên lại."
    )


class CorruptWorkbookError(FrameFileError):
    code = FrameFileErrorCode.CORRUPT_WORKBOOK
    default_message = (
        "Tệp bảng tính bị hỏng hoặc không đầy đủ. Hãy mở bằng Excel, lưu lại rồi tải lên lại."
    )


class ZipBombError(FrameFileError):
    code = FrameFileErrorCode.ZIP_BOMB
    default_message = (
        "Tệp bị từ chối: dữ liệu nén bất thường (kích thước sau giải nén quá lớn)."
    )


class BinaryGarbageError(FrameFileError):
    code = FrameFileErrorCode.BINARY_GARBAGE
    default_message = (
        "Tệp không phải văn bản CSV hợp lệ (chứa ký tự nhị phân hoặc không giải mã được)."
    )


class TooLargeError(FrameFileError):
    code = FrameFileErrorCode.TOO_LARGE
    default_message = "Tệp quá lớn."


class SheetNotFoundError(FrameFileError):
    code = FrameFileErrorCode.SHEET_NOT_FOUND
    default_message = "Không tìm thấy trang tính đã chọn trong tệp."


# ---------------------------------------------------------------------------------------------
# Text helpers


def _build_fold_table() -> dict[int, str]:
    """Translation table: Vietnamese/Latin letters with diacritics → base letter."""
    table: dict[int, str] = {ord("đ"): "d", ord("Đ"): "D"}
    for cp in range(0x00C0, 0x1F00):
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if base != ch and len(base) == 1 and base.isascii():
            table[cp] = base
    for cp in range(0x0300, 0x0370):  # stray combining marks (decomposed input)
        table[cp] = ""
    return table


_FOLD_TABLE = _build_fold_table()
_PARENS_RE = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_NON_ALNUM_RE = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Case-, diacritics- and punctuation-insensitive key: "Số ĐT (bắt buộc)" → "so dt".

    Parenthesised remarks are dropped, đ becomes d, anything not a letter or digit becomes a
    single space.
    """
    text = _PARENS_RE.sub(" ", text.translate(_FOLD_TABLE).lower())
    return _NON_ALNUM_RE.sub(" ", text).strip()


def clean_text(text: str) -> str:
    """Unicode NFC with whitespace runs (incl. newlines, NBSP) collapsed to one space."""
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def file_digest(source: str | os.PathLike[str] | bytes | IO[bytes]) -> str:
    """SHA-256 hex digest of a file's bytes (to recognise the same file uploaded twice).

    File objects are read from the start and put back where they were.
    """
    h = hashlib.sha256()
    if isinstance(source, bytes | bytearray | memoryview):
        h.update(source)
        return h.hexdigest()
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    pos = source.tell()
    source.seek(0)
    for chunk in iter(lambda: source.read(1 << 20), b""):
        h.update(chunk)
    source.seek(pos)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Header aliases


class Field(enum.StrEnum):
    """Known columns of a frame list."""

    ROW_NO = "row_no"
    NAME = "name"
    PHONE = "phone"
    PROCEDURE = "procedure"
    ADDRESS = "address"
    POSITION = "position"
    WORKPLACE = "workplace"
    TRANSACTION_DATE = "transaction_date"
    BIRTH_YEAR = "birth_year"
    EMAIL = "email"
    GENDER = "gender"
    UNIT_CODE = "unit_code"


# Exact aliases, written in Vietnamese and folded at import time.
_ALIASES: dict[Field, tuple[str, ...]] = {
    Field.ROW_NO: ("TT", "STT", "Số TT", "Số thứ tự", "No"),
    Field.NAME: (
        "Họ và tên", "Họ tên", "Tên", "Họ và tên người giao dịch", "Họ tên người giao dịch",
        "Tên người giao dịch", "Người giao dịch", "Tên cá nhân", "Tên cá nhân, tổ chức",
        "Tên tổ chức, cá nhân", "Cá nhân, tổ chức", "Tên công dân", "Họ và tên công dân",
        "Người nộp hồ sơ", "Tên người nộp hồ sơ", "Họ tên người nộp hồ sơ",
        "Họ và tên đại biểu", "Họ và tên cán bộ", "Họ và tên công chức", "Full name", "Name",
    ),
    Field.PHONE: (
        "Số điện thoại", "SĐT", "SDT", "Điện thoại", "ĐT", "Số ĐT", "ĐTDĐ", "Di động",
        "Số di động", "Điện thoại di động", "Số điện thoại di động", "Số điện thoại liên hệ",
        "Điện thoại liên hệ", "Mobile", "Phone", "Tel", "Số máy",
    ),
    Field.PROCEDURE: (
        "Tên thủ tục hành chính đã giao dịch", "Tên thủ tục hành chính", "Thủ tục hành chính",
        "Tên thủ tục", "Thủ tục", "TTHC", "Tên TTHC", "Tên hồ sơ", "Loại hồ sơ", "Lĩnh vực",
    ),
    Field.ADDRESS: (
        "Địa chỉ cư trú hoặc đơn vị công tác", "Địa chỉ", "Địa chỉ cư trú", "Nơi cư trú",
        "Nơi ở", "Địa chỉ liên hệ", "Thôn, xóm", "Address",
    ),
    Field.POSITION: ("Chức vụ", "Chức danh", "Chức vụ, chức danh"),
    Field.WORKPLACE: (
        "Đơn vị công tác", "Cơ quan", "Đơn vị", "Cơ quan, đơn vị", "Nơi công tác",
        "Cơ quan công tác",
    ),
    Field.TRANSACTION_DATE: (
        "Ngày giao dịch", "Ngày trả kết quả", "Ngày nhận kết quả", "Ngày tiếp nhận",
        "Ngày", "Thời gian giao dịch", "Ngày nộp hồ sơ", "Ngày hẹn trả",
    ),
    Field.BIRTH_YEAR: ("Năm sinh", "Ngày sinh", "Ngày tháng năm sinh", "Sinh năm"),
    Field.EMAIL: ("Email", "E-mail", "Thư điện tử", "Địa chỉ email", "Địa chỉ thư điện tử"),
    Field.GENDER: ("Giới tính", "Nam/Nữ", "Giới"),
    Field.UNIT_CODE: ("Mã đơn vị", "Mã ĐV", "Mã cơ quan", "Mã xã", "Mã đơn vị hành chính"),
}  # fmt: skip

_EXACT: dict[str, Field] = {fold(a): f for f, aliases in _ALIASES.items() for a in aliases}

# Looser rules for spellings not in the table, tried in this order (more specific first) on
# short header cells only, so a long title sentence never matches.
_FUZZY: tuple[tuple[Field, re.Pattern[str]], ...] = tuple(
    (f, re.compile(p))
    for f, p in (
        (Field.BIRTH_YEAR, r"\b(nam sinh|ngay sinh)\b"),
        (Field.UNIT_CODE, r"^ma (don vi|dv|co quan|xa)\b"),
        (Field.EMAIL, r"\b(email|e mail|thu dien tu)\b"),
        (Field.PROCEDURE, r"\b(thu tuc|tthc)\b|^ten ho so\b"),
        (Field.PHONE, r"\b(dien thoai|sdt|dtdd|di dong|phone|mobile)\b|^(so )?dt\b"),
        (Field.ADDRESS, r"\b(dia chi|cu tru|noi o)\b"),
        (Field.POSITION, r"\b(chuc vu|chuc danh)\b"),
        (Field.WORKPLACE, r"\b(don vi cong tac|noi cong tac|co quan)\b"),
        (Field.TRANSACTION_DATE, r"^(ngay|thoi gian)\b"),
        (Field.GENDER, r"\bgioi tinh\b"),
        (Field.NAME, r"\b(ho va ten|ho ten|ten nguoi|ten ca nhan|ten cong dan|nguoi giao dich"
                     r"|nguoi nop|ten dai bieu|ten to chuc)\b"),
        (Field.ROW_NO, r"^(s )?tt$"),
    )
)  # fmt: skip
_FUZZY_MAX_CHARS = 60


def match_header(text: str) -> tuple[Field | None, bool]:
    """Map one header cell to a field: (field, exact?) or (None, False)."""
    key = fold(text)
    if not key:
        return None, False
    exact = _EXACT.get(key)
    if exact is not None:
        return exact, True
    if len(key) <= _FUZZY_MAX_CHARS:
        for f, pattern in _FUZZY:
            if pattern.search(key):
                return f, False
    return None, False


@dataclass(slots=True)
class _HeaderGuess:
    index: int  # position among the scanned rows
    score: int
    columns: dict[Field, int]


def _guess_header(row: list[str], index: int) -> _HeaderGuess | None:
    columns: dict[Field, int] = {}
    exact_cols: set[int] = set()
    fuzzy: list[tuple[int, Field]] = []
    for col, cell in enumerate(row):
        if not cell:
            continue
        f, exact = match_header(cell)
        if f is None:
            continue
        if exact:
            if f not in columns or columns[f] not in exact_cols:
                columns[f] = col
                exact_cols.add(col)
        else:
            fuzzy.append((col, f))
    for col, f in fuzzy:  # exact matches win; a fuzzy one only fills a free field
        if f not in columns and col not in columns.values():
            columns[f] = col
    if Field.NAME not in columns:
        return None
    score = sum(2 if c in exact_cols else 1 for c in columns.values())
    return _HeaderGuess(index, score, columns)


def find_header(rows: list[list[str]]) -> _HeaderGuess | None:
    """Best header row among `rows` (the first ~30 of a sheet), or None."""
    best: _HeaderGuess | None = None
    for i, row in enumerate(rows):
        guess = _guess_header(row, i)
        if guess is not None and (best is None or guess.score > best.score):
            best = guess
    return best


# ---------------------------------------------------------------------------------------------
# The table


class FileKind(enum.StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    XLS = "xls"
    ODS = "ods"


@dataclass
class Table:
    """A frame list opened for reading, positioned after its header row.

    Iterating yields `(source_row, cells)`: `source_row` is the 1-based row number in the
    original file (title rows included, as Excel shows it), `cells` a list of NFC strings
    exactly `width` long. Use it as a context manager, or call `close()`.
    """

    kind: FileKind
    header_row: int
    header: list[str]
    columns: dict[Field, int]
    extra_columns: dict[int, str]
    encoding: str | None = None
    delimiter: str | None = None
    sheet_name: str | None = None
    sheet_names: list[str] = field(default_factory=list)
    _rows: Iterator[tuple[int, list[str]]] = field(default=iter(()), repr=False)
    _raw_rows: Iterator[tuple[int, list[str]]] | None = field(default=None, repr=False)
    _frames: Callable[[int], Iterator[tuple[pl.Series, pl.DataFrame]]] | None = field(
        default=None, repr=False)
    _closers: list[object] = field(default_factory=list, repr=False)

    @property
    def width(self) -> int:
        return len(self.header)

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        return self._rows

    def raw_rows(self) -> Iterator[tuple[int, list[str]]]:
        """Like iterating the table, but rows may be shorter or longer than `width`.

        The fast path for the validator (no per-row Python step in between). CSV decoding
        errors surface as `csv.Error`/`UnicodeDecodeError`; pass them to `stream_error`.
        Use either this or plain iteration, not both.
        """
        return self._raw_rows if self._raw_rows is not None else self._rows

    def frames(self, rows: int = 50_000) -> Iterator[tuple[pl.Series, pl.DataFrame]]:
        """The data rows in blocks: (source rows, DataFrame of `width` string columns named
        c0, c1, ... with "" for empty cells), about `rows` rows per block.

        UTF-8 CSV files are parsed by polars where it provably reads them as the `csv`
        module would (each line one record, quoting well formed, see `_csv_frames`); other
        files, and the rest of a CSV file from the first block where that fails, go through
        the row iterator. Use either this or the row iterators, not both.
        """
        if self._frames is not None:
            return self._frames(rows)
        return _frames_of_rows(self.raw_rows(), self.width, rows, self.header_row)

    @staticmethod
    def stream_error(exc: Exception, after_row: int) -> FrameFileError:
        """The FrameFileError for a decoding error met while streaming rows."""
        return BinaryGarbageError(
            f"Tệp CSV bị lỗi sau dòng {after_row}: không đọc tiếp được. "
            "Không có dữ liệu nào được lưu."
        )

    def close(self) -> None:
        """Release the underlying file(s)."""
        for c in self._closers:
            close = getattr(c, "close", None)
            if close is not None:
                close()
        self._closers.clear()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _extra_labels(header: list[str], columns: dict[Field, int]) -> dict[int, str]:
    """Labels for header columns that map to no field (kept in each record's `extra`)."""
    used = set(columns.values())
    labels: dict[int, str] = {}
    seen: set[str] = set()
    for col, text in enumerate(header):
        if col in used:
            continue
        label = text or f"Cột {_column_letter(col)}"
        base, n = label, 2
        while label in seen:
            label = f"{base} ({n})"
            n += 1
        seen.add(label)
        labels[col] = label
    return labels


def _column_letter(col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


# ---------------------------------------------------------------------------------------------
# Sniffing

HEADER_SCAN_ROWS = 30
SNIFF_BYTES = 64 * 1024
# Zip-bomb limits, checked on the central directory before anything is decompressed.
MAX_UNCOMPRESSED_TOTAL = 1 << 30  # 1 GiB: ~2 million spreadsheet rows of sheet XML
MAX_MEMBER_RATIO = 200  # deflate on real sheet XML gives 5-30x; zeros give ~1000x
RATIO_CHECK_MIN_SIZE = 8 << 20  # small members may compress extremely without harm
MAX_ZIP_MEMBERS = 10_000

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_WRONG_MAGICS: tuple[bytes, ...] = (
    b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"\x7fELF", b"MZ", b"\x1f\x8b", b"Rar!",
    b"7z\xbc\xaf", b"BM", b"II*\x00", b"MM\x00*", b"RIFF", b"{\\rtf", b"\x00\x00\x01\x00",
)  # fmt: skip


def _as_binary(source: str | os.PathLike[str] | bytes | IO[bytes]) -> tuple[IO[bytes], bool]:
    """A seekable binary stream for `source`, and whether we opened it (and must close it)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source)), True
    if isinstance(source, str | os.PathLike):
        return open(source, "rb"), True  # noqa: SIM115 - closed by Table.close
    if source.seekable():
        source.seek(0)
        return source, False
    spool = tempfile.SpooledTemporaryFile(max_size=32 << 20)  # noqa: SIM115
    shutil.copyfileobj(source, spool)
    spool.seek(0)
    return spool, True


def open_table(
    source: str | os.PathLike[str] | bytes | IO[bytes],
    filename: str | None = None,
    *,
    sheet: str | int | None = None,
) -> Table:
    """Open a CSV/XLSX/XLS/ODS frame list and locate its header.

    `source` is a path, the file's bytes, or a binary file object (rewound first).
    `filename` is only a hint for messages; the type comes from the content. `sheet` picks a
    worksheet by name (case/diacritics-insensitive) or 0-based index; by default the first sheet
    whose header can be found is used. Raises a `FrameFileError` subclass on bad input.
    """
    if filename is None and isinstance(source, str | os.PathLike):
        filename = os.fspath(source)
    stream, owned = _as_binary(source)
    try:
        head = stream.read(SNIFF_BYTES)
        stream.seek(0)
        if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
            raise EmptyFileError()
        if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            table = _open_zip_workbook(stream, sheet)
        elif head.startswith(_OLE2_MAGIC):
            table = _open_ole2_workbook(stream, head, filename, sheet)
        elif head.startswith(_WRONG_MAGICS) or _looks_like_markup(head):
            raise WrongFileTypeError()
        else:
            table = _open_csv(stream, head)
    except BaseException:
        if owned:
            stream.close()
        raise
    if owned:
        table._closers.append(stream)
    return table


def _looks_like_markup(head: bytes) -> bool:
    """HTML/XML saved under a spreadsheet name (web "Export to Excel" output)."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:200].lower()
    return start.startswith((b"<!doctype", b"<html", b"<?xml", b"<table"))


# ---------------------------------------------------------------------------------------------
# Workbooks


def _check_zip(stream: IO[bytes]) -> zipfile.ZipFile:
    """Open the zip's central directory and refuse bombs before any decompression."""
    try:
        zf = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise CorruptWorkbookError() from exc
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise ZipBombError()
    total = 0
    for info in infos:
        total += info.file_size
        if total > MAX_UNCOMPRESSED_TOTAL:
            raise ZipBombError()
        if info.file_size > RATIO_CHECK_MIN_SIZE and (
            info.compress_size == 0 or info.file_size / info.compress_size > MAX_MEMBER_RATIO
        ):
            raise ZipBombError()
    return zf


_ODS_MIMETYPE = "application/vnd.oasis.opendocument.spreadsheet"


def _open_zip_workbook(stream: IO[bytes], sheet: str | int | None) -> Table:
    with _check_zip(stream) as zf:
        names = set(zf.namelist())
        ods = "mimetype" in names and _zip_mimetype(zf) == _ODS_MIMETYPE
    if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
        kind = FileKind.XLSX
    elif ods:
        kind = FileKind.ODS
    elif "[Content_Types].xml" in names or "mimetype" in names or "META-INF/MANIFEST.MF" in names:
        raise WrongFileTypeError()  # a Word/PowerPoint/ODT document or a jar
    else:
        raise CorruptWorkbookError()
    stream.seek(0)
    return _open_calamine(stream, kind, sheet)


def _zip_mimetype(zf: zipfile.ZipFile) -> str:
    info = zf.getinfo("mimetype")
    if info.file_size > 200:
        return ""
    return zf.read(info).decode("ascii", "replace").strip()


def _open_ole2_workbook(
    stream: IO[bytes], head: bytes, filename: str | None, sheet: str | int | None
) -> Table:
    # An encrypted XLSX is an OLE2 compound file holding "EncryptionInfo" and "EncryptedPackage"
    # streams; the directory entry names are UTF-16LE.
    if "EncryptedPackage".encode("utf-16-le") in _read_prefix(stream, 4 << 20):
        raise EncryptedWorkbookError()
    for marker in ("WordDocument", "PowerPoint Document"):
        if marker.encode("utf-16-le") in head:
            raise WrongFileTypeError()
    try:
        return _open_calamine(stream, FileKind.XLS, sheet)
    except CorruptWorkbookError:
        if filename and filename.lower().endswith((".xlsx", ".xlsm")):
            # An .xlsx can only be OLE2 when it is encrypted.
            raise EncryptedWorkbookError() from None
        raise


def _read_prefix(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    stream.seek(0)
    return data


def _open_calamine(stream: IO[bytes], kind: FileKind, sheet: str | int | None) -> Table:
    try:
        import python_calamine as calamine
    except ImportError:  # pragma: no cover - calamine is a declared dependency
        if kind is FileKind.XLSX:
            return _open_openpyxl(stream, sheet)
        raise WrongFileTypeError() from None
    try:
        workbook = calamine.CalamineWorkbook.from_filelike(stream)
        sheet_names = list(workbook.sheet_names)
    except calamine.PasswordError as exc:
        raise EncryptedWorkbookError() from exc
    except Exception as exc:  # calamine raises several unrelated types for broken input
        if kind is FileKind.XLSX:
            stream.seek(0)
            return _open_openpyxl(stream, sheet)
        raise CorruptWorkbookError() from exc

    def rows_of(index: int) -> Iterator[list[object]]:
        try:
            ws = workbook.get_sheet_by_index(index)
            # iter_rows starts at the sheet's first row (row 1) even when it is empty.
            yield from ws.iter_rows()
        except calamine.PasswordError as exc:
            raise EncryptedWorkbookError() from exc
        except FrameFileError:
            raise
        except Exception as exc:
            raise CorruptWorkbookError() from exc

    table = _table_from_sheets(kind, sheet_names, rows_of, sheet)
    table._closers.append(workbook)
    return table


def _open_openpyxl(stream: IO[bytes], sheet: str | int | None) -> Table:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(stream, read_only=True, data_only=True)
        sheet_names = list(workbook.sheetnames)
    except Exception as exc:
        raise CorruptWorkbookError() from exc

    def rows_of(index: int) -> Iterator[list[object]]:
        ws = workbook.worksheets[index]
        try:
            for row in ws.iter_rows(values_only=True):
                yield list(row)
        except Exception as exc:
            raise CorruptWorkbookError() from exc

    table = _table_from_sheets(FileKind.XLSX, sheet_names, rows_of, sheet)
    table._closers.append(workbook)
    return table


def _table_from_sheets(
    kind: FileKind,
    sheet_names: list[str],
    rows_of: Callable[[int], Iterator[list[object]]],
    sheet: str | int | None,
) -> Table:
    if not sheet_names:
        raise EmptyFileError()
    if sheet is None:
        candidates = list(range(len(sheet_names)))
    else:
        candidates = [_sheet_index(sheet_names, sheet)]
    any_rows = False
    for index in candidates:
        rows = iter(rows_of(index))
        cells_iter = (_cell_strings(r) for r in rows)
        scanned = _take(cells_iter, HEADER_SCAN_ROWS)
        any_rows = any_rows or any(any(r) for r in scanned)
        guess = find_header(scanned)
        if guess is None:
            continue
        header = scanned[guess.index]
        width = len(header)
        start = guess.index + 1  # 0-based index of the row after the header

        def data(
            scanned: list[list[str]] = scanned,
            cells_iter: Iterator[list[str]] = cells_iter,
            start: int = start,
            width: int = width,
        ) -> Iterator[tuple[int, list[str]]]:
            n = start
            for cells in _chain(scanned[start:], cells_iter):
                n += 1
                yield n, fit_row(cells, width)

        return Table(
            kind=kind,
            header_row=guess.index + 1,
            header=[clean_text(h) for h in header],
            columns=guess.columns,
            extra_columns=_extra_labels([clean_text(h) for h in header], guess.columns),
            sheet_name=sheet_names[index],
            sheet_names=sheet_names,
            _rows=data(),
        )
    if not any_rows:
        raise EmptyFileError()
    raise HeaderNotFoundError()


def _sheet_index(names: list[str], sheet: str | int) -> int:
    if isinstance(sheet, int):
        if 0 <= sheet < len(names):
            return sheet
        raise SheetNotFoundError()
    key = fold(sheet)
    for i, name in enumerate(names):
        if name == sheet or fold(name) == key:
            return i
    raise SheetNotFoundError()


def _cell_strings(row: Iterable[object]) -> list[str]:
    """Workbook cells → strings: NFC text, integral floats without ".0", dates as ISO."""
    out: list[str] = []
    for v in row:
        if v is None or v == "":
            out.append("")
        elif type(v) is str:
            if not v.isascii() and not unicodedata.is_normalized("NFC", v):
                v = unicodedata.normalize("NFC", v)
            out.append(v)
        elif type(v) is float:
            out.append(str(int(v)) if v.is_integer() else repr(v))
        elif type(v) is bool:
            out.append("TRUE" if v else "FALSE")
        elif isinstance(v, dt.datetime):
            out.append(v.date().isoformat() if v.time() == dt.time() else v.isoformat(" "))
        elif isinstance(v, dt.date | dt.time):
            out.append(v.isoformat())
        else:
            out.append(str(v))
    return out


def _take(it: Iterator[list[str]], n: int) -> list[list[str]]:
    out = []
    for row in it:
        out.append(row)
        if len(out) >= n:
            break
    return out


def _chain(first: list[list[str]], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield from first
    yield from rest


def fit_row(cells: list[str], width: int) -> list[str]:
    """Pad with "" or cut `cells` to exactly `width` cells."""
    n = len(cells)
    if n == width:
        return cells
    if n < width:
        return cells + [""] * (width - n)
    # Cells beyond the header are kept only if something is in them (under a "Cột X" label
    # they would have no header); they are dropped here to keep rows rectangular.
    return cells[:width]


# ---------------------------------------------------------------------------------------------
# CSV


_CHUNK = 1 << 20
_BLANK_OR_DELIMITER = str.maketrans("", "", ",;|\t\r\n \ufeff")
_DELIMITERS = (",", ";", "\t", "|")


def _open_csv(stream: IO[bytes], head: bytes) -> Table:
    encoding, offset = _detect_encoding(stream, head)
    sample_text = _decode_sample(head[offset:], encoding)
    _check_not_binary(sample_text)
    if not sample_text.translate(_BLANK_OR_DELIMITER):
        raise EmptyFileError()
    best: tuple[int, str, _HeaderGuess] | None = None
    for delim in _DELIMITERS:
        if delim not in sample_text:
            continue
        sample = io.StringIO(sample_text, newline="")
        try:
            rows = _take(iter(csv.reader(sample, delimiter=delim)), HEADER_SCAN_ROWS)
        except csv.Error:
            continue
        rows = [[unicodedata.normalize("NFC", c) for c in r] for r in rows]
        guess = find_header(rows)
        if guess is not None and (best is None or guess.score > best[0]):
            best = (guess.score, delim, guess)
    if best is None:
        # A one-column list (names only) has no delimiter at all.
        rows = [[unicodedata.normalize("NFC", line)] for line in sample_text.splitlines()]
        guess = find_header(rows[:HEADER_SCAN_ROWS])
        if guess is None:
            if not any(line.strip() for line in sample_text.splitlines()):
                raise EmptyFileError()
            raise HeaderNotFoundError()
        best = (guess.score, ",", guess)
    _, delimiter, guess = best

    stream.seek(offset)
    errors = _UTF8_FALLBACK if encoding == "utf-8" else "strict"
    text = io.TextIOWrapper(stream, encoding=encoding, newline="", errors=errors)
    # Lines come from NFC-normalised 1 MiB blocks cut at line ends and split in C: no Python
    # step per line, and mixed NFC/NFD text anywhere in the file is normalised.
    lines = itertools.chain.from_iterable(map(_split_lines, _nfc_blocks(text)))
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        scanned = _take(reader, guess.index + 1)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise BinaryGarbageError() from exc
    header = [clean_text(h) for h in scanned[guess.index]]
    width = len(header)

    first_data_row = guess.index + 2

    def data() -> Iterator[tuple[int, list[str]]]:
        n = first_data_row - 1
        try:
            for cells in reader:
                n += 1
                if len(cells) != width:
                    cells = fit_row(cells, width)
                yield n, cells
        except (csv.Error, UnicodeDecodeError) as exc:
            raise Table.stream_error(exc, n) from exc

    frames = None
    data_start = _data_start(stream, offset, guess.index + 1, delimiter) \
        if encoding == "utf-8" else None
    if data_start is not None:

        def rows_from(position: int, row: int) -> Iterator[tuple[int, list[str]]]:
            stream.seek(position)
            rest = io.TextIOWrapper(stream, encoding=encoding, newline="", errors=errors)
            table._closers.insert(0, _Detacher(rest))  # before the stream is closed
            lines = itertools.chain.from_iterable(map(_split_lines, _nfc_blocks(rest)))
            return zip(itertools.count(row), csv.reader(lines, delimiter=delimiter))

        def frames(size: int) -> Iterator[tuple[pl.Series, pl.DataFrame]]:
            return _csv_frames(stream, data_start, delimiter, width, first_data_row,
                               rows_from, size)

    table = Table(
        kind=FileKind.CSV,
        header_row=guess.index + 1,
        header=header,
        columns=guess.columns,
        extra_columns=_extra_labels(header, guess.columns),
        encoding="utf-8-sig" if offset else encoding,
        delimiter=delimiter,
        _rows=data(),
        # zip/count run in C: no Python frame per row on the hot path.
        _raw_rows=zip(itertools.count(first_data_row), reader),
        _frames=frames if data_start is not None else None,
    )
    # Detach rather than close: closing the wrapper would close a caller's stream too.
    table._closers.append(_Detacher(text))
    return table


def _data_start(stream: IO[bytes], offset: int, records: int, delimiter: str) -> int | None:
    """Byte position after the first `records` CSV records (title rows and header), or None
    when those are not one record per line (then only the row reader is used)."""
    resume = stream.tell()  # the row reader's text wrapper reads on from here
    try:
        return _find_data_start(stream, offset, records, delimiter)
    finally:
        stream.seek(resume)


def _find_data_start(stream: IO[bytes], offset: int, records: int, delimiter: str) -> int | None:
    stream.seek(offset)
    head = b""
    while head.count(b"\n") < records:
        block = stream.read(1 << 16)
        if not block:
            return None
        head += block
        if len(head) > ENCODING_SAMPLE_BYTES:
            return None
    end = 0
    for _ in range(records):
        end = head.index(b"\n", end) + 1
    try:
        text = head[:end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in text.replace("\r\n", ""):
        return None
    parsed = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return offset + end if len(parsed) == records else None


class _Detacher:
    def __init__(self, text: io.TextIOWrapper) -> None:
        self.text: io.TextIOWrapper | None = text

    def close(self) -> None:
        if self.text is not None:
            self.text.detach()
            self.text = None


def _split_lines(block: str) -> list[str] | io.StringIO:
    """Lines of a block with their endings, split exactly as a text file splits them.

    `str.splitlines` (fast, C) also breaks at \\x0b, \\x0c, \\x1c-\\x1e, \\x85, U+2028/9
    and lone \\r, which may sit inside a cell; when it found more lines than there are
    "\\n", the block goes through StringIO instead, which splits like the file reader.
    """
    lines = block.splitlines(keepends=True)
    if len(lines) == block.count("\n") + (not block.endswith("\n")):
        return lines
    return io.StringIO(block, newline="")


def _column_names(width: int) -> list[str]:
    return [f"c{i}" for i in range(width)]


def _frames_of_rows(rows: Iterator[tuple[int, list[str]]], width: int, size: int,
                    last_row: int) -> Iterator[tuple[pl.Series, pl.DataFrame]]:
    """Blocks of `size` rows from a `(source_row, cells)` iterator, as columns."""
    names = _column_names(width)
    while True:
        # A block is ~50k lists that die together: the cyclic GC would scan them again and
        # again as they age (it doubled the cost of reading); they hold no cycles.
        gc_enabled = gc.isenabled()
        gc.disable()
        try:
            items: list[tuple[int, list[str]]] = []
            try:
                items.extend(itertools.islice(rows, size))
            except (csv.Error, UnicodeDecodeError) as exc:
                raise Table.stream_error(exc, items[-1][0] if items else last_row) from exc
            if not items:
                return
            last_row = items[-1][0]
            source_rows, cells = zip(*items, strict=True)
            del items
            block = pl.DataFrame(
                [c if len(c) == width else fit_row(c, width) for c in cells],
                schema=dict.fromkeys(names, pl.String), orient="row")
            del cells
        finally:
            if gc_enabled:
                gc.enable()
        yield pl.Series("source_row", source_rows, dtype=pl.Int64), block
        if len(source_rows) < size:
            return


_FRAME_BYTES = 4 << 20  # bytes of CSV per polars block (~30k rows of a transaction list)


def _csv_frames(stream: IO[bytes], start: int, delimiter: str, width: int, first_row: int,
                fallback: Callable[[int, int], Iterator[tuple[int, list[str]]]],
                size: int) -> Iterator[tuple[pl.Series, pl.DataFrame]]:
    """Blocks of a UTF-8 CSV's data rows parsed by polars, from byte `start` (a line start).

    polars is used for a block only when it provably gives what `csv.reader` gives: the block
    is valid UTF-8, has no lone carriage return, polars accepts its quoting (it refuses the
    malformed quoting that `csv` tolerates), and it yields exactly one record per line (so
    that blank lines are kept and no quoted cell spans lines, and row numbers stay exact).
    Otherwise that block and the rest of the file are read by `fallback(byte, first_row)`.
    """
    names = _column_names(width)
    schema = dict.fromkeys(names, pl.String)
    position, row = start, first_row
    stream.seek(start)
    pending = b""
    while True:
        block = stream.read(_FRAME_BYTES)
        data = pending + block if pending else block
        if not data:
            return
        if block:
            cut = data.rfind(b"\n") + 1
            if not cut:
                pending = data
                continue
            data, pending = data[:cut], data[cut:]
        else:
            pending = b""
        lines = data.count(b"\n") + (not data.endswith(b"\n"))
        frame = _polars_block(data, delimiter, schema, lines)
        if frame is None:
            yield from _frames_of_rows(fallback(position, row), width, size, row - 1)
            return
        yield pl.Series("source_row", range(row, row + lines), dtype=pl.Int64), frame
        position += len(data)
        row += lines


def _polars_block(data: bytes, delimiter: str, schema: dict, lines: int) -> pl.DataFrame | None:
    """One block parsed by polars, NFC, empty cells as ""; None if polars may differ from
    `csv.reader` on it."""
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None  # the row reader decodes stray legacy bytes as Windows-1258
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        data = unicodedata.normalize("NFC", text).encode()
    try:
        frame = pl.read_csv(data, has_header=False, separator=delimiter, quote_char='"',
                            schema=schema, missing_columns="insert",
                            truncate_ragged_lines=True, encoding="utf8")
    except Exception:  # noqa: BLE001 - polars refuses malformed quoting: let `csv` read it
        return None
    if frame.height != lines:
        return None
    return frame.with_columns(pl.all().fill_null(""))


def _nfc_blocks(text: IO[str], size: int = _CHUNK) -> Iterator[str]:
    """Decoded text in blocks that end at a line end, each normalised to NFC if needed.

    Cutting at a newline keeps a base letter and its combining marks in the same block.
    """
    is_normalized = unicodedata.is_normalized
    normalize = unicodedata.normalize
    pending = ""
    while True:
        block = text.read(size)
        if not block:
            break
        if pending:
            block = pending + block
        cut = block.rfind("\n") + 1 or block.rfind("\r") + 1
        if not cut:
            pending = block
            continue
        pending = block[cut:]
        block = block[:cut]
        if not block.isascii() and not is_normalized("NFC", block):
            block = normalize("NFC", block)
        yield block
    if pending:
        yield pending if is_normalized("NFC", pending) else normalize("NFC", pending)


def _decode_sample(head: bytes, encoding: str) -> str:
    errors = _UTF8_FALLBACK if encoding == "utf-8" else "replace"
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    return decoder.decode(head, final=False)


def _utf8_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: bytes that are not UTF-8 are read as Windows-1258.

    The encoding is decided on the first 1 MiB; a list pasted together from several sources
    can still switch to the legacy code page further down. Those bytes are decoded as
    Windows-1258 (NFC is applied afterwards) instead of failing the whole import.
    """
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return bytes(bad).decode("cp1258", errors="replace"), exc.end


_UTF8_FALLBACK = "survey-frames-cp1258"
codecs.register_error(_UTF8_FALLBACK, _utf8_fallback)

ENCODING_SAMPLE_BYTES = 1 << 20


def _detect_encoding(stream: IO[bytes], head: bytes) -> tuple[str, int]:
    """Choose the text encoding of a CSV: (codec, number of BOM bytes to skip).

    BOMs decide first (Excel's "Unicode text" is UTF-16LE with BOM). Otherwise the first
    1 MiB must be strict UTF-8, else the file is read as Windows-1258 (whose Vietnamese
    letters carry combining tone marks: NFC is applied while streaming). A UTF-8 BOM is skipped
    rather than decoded with "utf-8-sig", which keeps CPython's fast UTF-8 decoder.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", len(codecs.BOM_UTF8)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 0
    if _looks_utf16(head):
        return ("utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"), 0
    sample = _read_prefix(stream, ENCODING_SAMPLE_BYTES)
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(sample, final=False)
    invalid = text.count("\ufffd")
    if not invalid:
        return "utf-8", 0
    # Some invalid sequences: a legacy file, or a UTF-8 list with a legacy part pasted in.
    # Windows-1258 Vietnamese almost never forms valid multi-byte UTF-8, so many valid
    # non-ASCII characters mean UTF-8 (the odd bytes then go through the cp1258 fallback).
    if not text.isascii() and sum(1 for c in text if c > "\x7f") - invalid > invalid:
        return "utf-8", 0
    try:
        sample.decode("cp1258")
    except UnicodeDecodeError:  # bytes undefined in Windows-1258: not text at all
        raise BinaryGarbageError() from None
    return "cp1258", 0


def _looks_utf16(head: bytes) -> bool:
    sample = head[:4096]
    if len(sample) < 4:
        return False
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    half = len(sample) // 2
    return max(even_nuls, odd_nuls) > 0.4 * half and min(even_nuls, odd_nuls) < 0.05 * half


_CONTROL_CHARS = frozenset(chr(c) for c in range(32) if chr(c) not in "\t\r\n\x0c") | {"\x7f"}


def _check_not_binary(sample: str) -> None:
    """Refuse text with NUL or many control characters (binary data named .csv)."""
    if "\x00" in sample or "\ufffd" in sample[:-4]:
        raise BinaryGarbageError()
    if sample and sum(1 for c in sample if c in _CONTROL_CHARS) > 0.01 * len(sample):
        raise BinaryGarbageError()
