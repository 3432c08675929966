"""Validate the data rows of a frame list (pure, no Flask/DB).

`validate_rows(table, ...)` validates the data rows of a `Table` in blocks, as columns
(`FrameValidator.chunks()`: accepted rows as a polars DataFrame, plus warnings and issues), or
one result per row when iterated:

- `FrameRecord` (status ACCEPTED): the cleaned person, possibly with warnings;
- `RowIssue` with status REJECTED (a reason and a Vietnamese message), DUPLICATE (same phone
  as an earlier row, or as an entry already in the campaign frame), or SKIPPED (empty rows,
  signature footers, repeated headers, the "(1) (2) (3)" column-number row).

Duplicates inside the file: the first row with a phone is kept, later rows are reported with
`duplicate_of` = the kept row. Because blocks stream, the kept record has already been handed
out when its duplicates turn up; the validator therefore counts them in `transaction_counts`
(phone → number of rows, for phones seen more than once), to be applied after the insert.
Rows whose phone is already in the campaign frame (`existing_phones`) are counted in
`existing_hits` so the caller can increment those entries instead.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np
import polars as pl

from survey_app.frames.phones import PhoneKind, learn_prefixes, parse_phone
from survey_app.frames.reader import Field, Table, fold

__all__ = [
    "ACCEPTED_SCHEMA",
    "Chunk",
    "FrameRecord",
    "FrameValidator",
    "ImportSummary",
    "REASON_MESSAGES_VI",
    "RowIssue",
    "RowReason",
    "RowResult",
    "RowStatus",
    "RowWarning",
    "WARNING_MESSAGES_VI",
    "WarningCode",
    "parse_birth_year",
    "parse_date",
    "records_of",
    "summarise",
    "validate_rows",
]


class RowStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"


class RowReason(enum.StrEnum):
    """Why a row was not accepted."""

    NO_NAME = "no_name"
    INVALID_PHONE = "invalid_phone"
    PHONE_REQUIRED = "phone_required"
    BAD_DATE = "bad_date"
    BAD_BIRTH_YEAR = "bad_birth_year"
    DUPLICATE_PHONE = "duplicate_phone"
    DUPLICATE_EXISTING = "duplicate_existing"
    EMPTY_ROW = "empty_row"
    FOOTER = "footer"
    REPEATED_HEADER = "repeated_header"
    COLUMN_NUMBERS = "column_numbers"


class WarningCode(enum.StrEnum):
    """Something to show the user about an accepted row."""

    LANDLINE = "landline"
    LEGACY_CONVERTED = "legacy_converted"
    MULTIPLE_PHONES = "multiple_phones"
    PHONE_DROPPED = "phone_dropped"
    POSSIBLE_DUPLICATE = "possible_duplicate"
    DUPLICATE_PHONE = "duplicate_phone"


REASON_MESSAGES_VI: dict[RowReason, str] = {
    RowReason.NO_NAME: "Thiếu họ và tên.",
    RowReason.INVALID_PHONE: "Số điện thoại không hợp lệ.",
    RowReason.PHONE_REQUIRED: "Thiếu số điện thoại (bắt buộc với hình thức khảo sát này).",
    RowReason.BAD_DATE: "Ngày giao dịch không đúng định dạng (ngày/tháng/năm).",
    RowReason.BAD_BIRTH_YEAR: "Năm sinh không hợp lệ.",
    RowReason.DUPLICATE_PHONE: "Trùng số điện thoại với dòng {row}: tính là một người.",
    RowReason.DUPLICATE_EXISTING: "Số điện thoại đã có trong danh sách của đợt khảo sát.",
    RowReason.EMPTY_ROW: "Dòng trống.",
    RowReason.FOOTER: "Dòng ký tên/chú thích cuối danh sách.",
    RowReason.REPEATED_HEADER: "Dòng tiêu đề lặp lại.",
    RowReason.COLUMN_NUMBERS: "Dòng đánh số cột.",
}
# Separate from the reasons: StrEnum members with equal values would collide as dict keys.
WARNING_MESSAGES_VI: dict[WarningCode, str] = {
    WarningCode.LANDLINE: "Số máy bàn (không nhận được tin nhắn).",
    WarningCode.LEGACY_CONVERTED: "Đã chuyển số 11 chữ số cũ sang số 10 chữ số mới.",
    WarningCode.MULTIPLE_PHONES: "Ô có nhiều số điện thoại: đã lấy số hợp lệ đầu tiên.",
    WarningCode.PHONE_DROPPED: "Số điện thoại không hợp lệ nên đã bỏ qua.",
    WarningCode.POSSIBLE_DUPLICATE: "Có thể trùng người ở dòng {row} (cùng họ tên và địa chỉ).",
    WarningCode.DUPLICATE_PHONE: "Số điện thoại xuất hiện ở nhiều dòng.",
}


class RowWarning(NamedTuple):
    code: WarningCode
    message_vi: str
    related_row: int | None = None


def _warning(code: WarningCode) -> RowWarning:
    return RowWarning(code, WARNING_MESSAGES_VI[code])


# Shared instances: most warnings carry no row-specific data, so no per-row allocation.
_W_LANDLINE = _warning(WarningCode.LANDLINE)
_W_LEGACY = _warning(WarningCode.LEGACY_CONVERTED)
_W_MULTI = _warning(WarningCode.MULTIPLE_PHONES)
_W_DROPPED = _warning(WarningCode.PHONE_DROPPED)


@dataclass(slots=True)
class FrameRecord:
    """An accepted person. `source_row` is the 1-based row in the original file."""

    status: ClassVar[RowStatus] = RowStatus.ACCEPTED

    source_row: int
    name: str
    phone_e164: str | None
    phone_kind: PhoneKind
    procedure: str | None = None
    address: str | None = None
    position: str | None = None
    workplace: str | None = None
    transaction_date: dt.date | None = None
    birth_year: int | None = None
    email: str | None = None
    gender: str | None = None
    unit_code: str | None = None
    row_no: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    transactions: int = 1
    warnings: tuple[RowWarning, ...] = ()


@dataclass(slots=True)
class RowIssue:
    """A row that was rejected, is a duplicate, or was skipped."""

    source_row: int
    status: RowStatus
    reason: RowReason
    message_vi: str
    duplicate_of: int | None = None  # DUPLICATE_PHONE: the kept row
    phone_e164: str | None = None  # duplicates: the phone to count a transaction against


RowResult = FrameRecord | RowIssue


@dataclass
class ImportSummary:
    """Counts over a validated file."""

    rows: int = 0
    accepted: int = 0
    rejected: Counter[RowReason] = field(default_factory=Counter)
    duplicates: int = 0  # same phone as an earlier row of this file
    duplicates_existing: int = 0  # phone already in the campaign frame
    skipped: Counter[RowReason] = field(default_factory=Counter)
    warnings: Counter[WarningCode] = field(default_factory=Counter)
    mobile: int = 0
    landline: int = 0
    without_phone: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def add(self, result: RowResult) -> None:
        """Count one result."""
        if isinstance(result, FrameRecord):
            self.rows += 1
            self.accepted += 1
            if result.phone_kind is PhoneKind.MOBILE:
                self.mobile += 1
            elif result.phone_kind is PhoneKind.LANDLINE:
                self.landline += 1
            else:
                self.without_phone += 1
            for w in result.warnings:
                self.warnings[w.code] += 1
            return
        if result.status is RowStatus.SKIPPED:
            self.skipped[result.reason] += 1
            return
        self.rows += 1
        if result.reason is RowReason.DUPLICATE_PHONE:
            self.duplicates += 1
        elif result.reason is RowReason.DUPLICATE_EXISTING:
            self.duplicates_existing += 1
        else:
            self.rejected[result.reason] += 1


def summarise(results: Iterable[RowResult]) -> ImportSummary:
    """Count accepted/rejected/duplicate/skipped rows and warnings."""
    summary = ImportSummary()
    for r in results:
        summary.add(r)
    return summary


# ---------------------------------------------------------------------------------------------
# Field parsers

_DATE_RE = re.compile(r"(\d{1,4})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{1,4})")
_DATE_CACHE: dict[str, dt.date | None] = {}
_EXCEL_EPOCH = dt.date(1899, 12, 30)


def parse_date(text: str) -> dt.date | None:
    """Vietnamese-order date (d/m/y, d-m-y, d.m.y), ISO y-m-d, or an Excel serial number.

    Returns None when `text` is not a date. A time part after the date is ignored.
    """
    cached = _DATE_CACHE.get(text)
    if cached is not None or text in _DATE_CACHE:
        return cached
    result = _parse_date(text)
    if len(_DATE_CACHE) > 50_000:
        _DATE_CACHE.clear()
    _DATE_CACHE[text] = result
    return result


def _parse_date(text: str) -> dt.date | None:
    s = text.strip()
    if s.replace(".", "", 1).isdigit():
        # Excel serial day number (a date cell exported as a number), e.g. "44927" or "44927.5".
        try:
            serial = float(s)
        except ValueError:
            return None
        if 20_000 <= serial <= 80_000:  # 1954 … 2119
            return _EXCEL_EPOCH + dt.timedelta(days=int(serial))
        return None
    m = _DATE_RE.match(s)
    if m is None or not _only_time_after(s[m.end() :]):
        return None
    a, b, c = m.groups()
    if len(a) == 4:
        year, month, day = int(a), int(b), int(c)
    else:
        day, month, year = int(a), int(b), int(c)
        if len(c) == 2:
            year += 2000 if year < 70 else 1900
        elif len(c) != 4:
            return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _only_time_after(rest: str) -> bool:
    rest = rest.strip()
    return not rest or bool(re.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?", rest))


def parse_birth_year(text: str, reference_year: int) -> int | None:
    """Year of birth from "1980", "1980.0" or a full date; None if absent or implausible."""
    s = text.strip()
    year: int | None = None
    if s.endswith(".0"):
        s = s[:-2]
    if s.isdigit() and len(s) == 4:
        year = int(s)
    else:
        d = parse_date(s)
        if d is not None and not s.replace(".", "", 1).isdigit():
            year = d.year
    if year is None or not reference_year - 120 <= year <= reference_year:
        return None
    return year


# ---------------------------------------------------------------------------------------------
# Row-level helpers

_FOOTER_PREFIXES = (
    "nguoi lap", "thu truong", "ngay thang nam", "xac nhan", "ky ten", "ky ghi ro",
    "giam doc", "chu tich", "tong cong", "tong so", "ke toan", "truong phong", "truong ban",
    "lanh dao", "can bo lap", "nguoi duyet", "noi nhan", "ghi chu",
)  # fmt: skip
_NUMBERING_RE = re.compile(r"\(?\d{1,2}\)?|[A-Z]")


def _clean(text: str) -> str | None:
    """Trim and collapse inner whitespace (text is already NFC from the reader); None if blank.

    `isprintable()` is False for newlines, tabs, NBSP and other odd spaces: one C call.
    """
    t = text.strip()
    if "  " in t or not t.isprintable():
        t = " ".join(t.split())
    return t or None


def _filled(cells: list[str]) -> int:
    """Number of non-blank cells."""
    return sum(1 for c in cells if c and not c.isspace())


def _dup_key(text: str | None) -> str:
    return " ".join(fold(text).split()) if text else ""


_DATELINE_RE = re.compile(r"\bngay\b.*\bthang\b.*\bnam\b")  # "Quảng Bình, ngày … tháng … năm"


def _footer_like(cell: str) -> bool:
    key = fold(cell)
    return not key or key.startswith(_FOOTER_PREFIXES) or bool(_DATELINE_RE.search(key))


def _is_footer(cells: list[str]) -> bool:
    """A signature/date/total line: at most two filled cells, all of them footer-like.

    Requiring every filled cell to match keeps "Nguyễn Văn A | Trưởng phòng" (an official
    without phone) as data.
    """
    filled = [c for c in cells if c and not c.isspace()]
    return 0 < len(filled) <= 2 and all(_footer_like(c) for c in filled)


def _is_numbering(cells: list[str]) -> bool:
    filled = [c.strip() for c in cells if c.strip()]
    return len(filled) >= 3 and all(_NUMBERING_RE.fullmatch(c) for c in filled)


# ---------------------------------------------------------------------------------------------
# The validator: columnar, a chunk of rows at a time.
#
# A million-row list cannot afford a Python step per row and field. Rows are read in chunks,
# turned into columns, and every rule runs on whole columns (polars): clean values pass a
# regular expression that proves the Python clean-up would leave them unchanged, and only the
# rest (odd phones, dates, stray spaces: few distinct values) goes through the Python
# functions above, once per distinct value. Rows without a usable phone, the only ones that
# may be footers or repeated headers, are decided in Python in file order.

CHUNK_ROWS = 50_000

# A cell with no leading, trailing or repeated space and no control or other space character:
# `_clean` returns it unchanged (str.strip/split only touch Z* and C* characters).
_CLEAN_RE = r"^[^\p{C}\p{Z}]+(?: [^\p{C}\p{Z}]+)*$"
# A cell whose first and last characters are not spaces: `str.strip` returns it unchanged.
_STRIPPED_RE = r"^[^\p{C}\p{Z}](?:.*[^\p{C}\p{Z}])?$"
_REASONS: list[RowReason] = list(RowReason)
_CODE = {reason: i + 1 for i, reason in enumerate(_REASONS)}  # 0 = accepted
_SKIP_REASONS = frozenset({RowReason.EMPTY_ROW, RowReason.FOOTER, RowReason.REPEATED_HEADER,
                           RowReason.COLUMN_NUMBERS})
_TEXT_FIELDS = (Field.PROCEDURE, Field.ADDRESS, Field.POSITION, Field.WORKPLACE, Field.GENDER,
                Field.UNIT_CODE, Field.EMAIL)

#: Columns of `Chunk.accepted`, in this order.
ACCEPTED_SCHEMA: dict[str, Any] = {
    "source_row": pl.Int64, "name": pl.String, "phone": pl.String, "phone_kind": pl.String,
    "procedure": pl.String, "address": pl.String, "position": pl.String,
    "workplace": pl.String, "gender": pl.String, "unit_code": pl.String, "email": pl.String,
    "transaction_date": pl.Date, "birth_year": pl.Int32, "row_no": pl.String,
    "extra": pl.String,  # JSON object of the extra columns, null when none is filled
}


class Chunk(NamedTuple):
    """What one chunk of rows produced.

    `accepted`: one row per accepted person (`ACCEPTED_SCHEMA`), in file order. `warnings`:
    source row → warnings, for accepted rows that have some. `issues`: rejected, duplicate
    and skipped rows in file order.
    """

    accepted: pl.DataFrame
    warnings: dict[int, tuple[RowWarning, ...]]
    issues: list[RowIssue]
    rows_read: int


def _clean_column(values: pl.Series | Iterable[str]) -> pl.Series:
    """`_clean` over a column: the regular expression vouches for most cells, Python cleans
    each distinct other value once."""
    s = values if isinstance(values, pl.Series) else pl.Series(values, dtype=pl.String)
    distinct = s.unique()  # lists repeat procedures and addresses: test each value once
    odd = distinct.filter(~distinct.str.contains(_CLEAN_RE)).to_list()
    return s.replace({v: _clean(v) for v in odd}) if odd else s


def _stripped_column(values: pl.Series | Iterable[str]) -> pl.Series:
    """`value.strip() or None` over a column."""
    s = values if isinstance(values, pl.Series) else pl.Series(values, dtype=pl.String)
    distinct = s.unique()
    odd = distinct.filter(~distinct.str.contains(_STRIPPED_RE)).to_list()
    return s.replace({v: (v.strip() or None) for v in odd}) if odd else s


def _mapped_column(values: pl.Series | Iterable[str], parse: Any,
                   dtype: Any) -> tuple[pl.Series, pl.Series]:
    """(parsed values, "bad" mask) for a date-like column: each distinct value parsed once;
    a blank cell is no value, a non-blank cell that does not parse is bad."""
    s = values if isinstance(values, pl.Series) else pl.Series(values, dtype=pl.String)
    mapping: dict[str, Any] = {}
    bad: list[str] = []
    for v in s.unique().to_list():
        if v and not v.isspace():
            parsed = parse(v)
            if parsed is None:
                bad.append(v)
            else:
                mapping[v] = parsed
    parsed_s = s.replace_strict(mapping, default=None, return_dtype=dtype)
    return parsed_s, (s.is_in(bad) if bad else pl.Series([False] * len(s)))


class FrameValidator:
    """Validates a table chunk by chunk; holds the duplicate bookkeeping across chunks.

    Use `chunks()` (columnar, what the import writes from) or iterate (one `RowResult` per
    row in file order, for tests and small files), not both. Afterwards: `summary` (an
    `ImportSummary`), `transaction_counts` (phone → rows, for phones that appeared on more than
    one row of this file) and `existing_hits` (phone → rows, for phones already in
    `existing_phones`).
    """

    def __init__(
        self,
        table: Table,
        *,
        phone_required: bool,
        existing_phones: frozenset[str] | set[str] = frozenset(),
        reference_year: int | None = None,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self.table = table
        self.phone_required = phone_required
        self.existing_phones = existing_phones
        self.reference_year = reference_year or dt.date.today().year
        self.chunk_rows = chunk_rows
        self.summary = ImportSummary()
        self.transaction_counts: dict[str, int] = {}
        self.existing_hits: dict[str, int] = {}
        self._existing = pl.Series(sorted(existing_phones), dtype=pl.String)
        self._seen_phone = np.empty(0, dtype=np.int64)  # sorted E.164 digits
        self._seen_row = np.empty(0, dtype=np.int64)  # their first source rows
        self._seen_person: dict[tuple[str, str], int] = {}
        self._after_footer = False
        self._iter: Iterator[RowResult] | None = None

    # -- row API -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[RowResult]:
        if self._iter is None:
            self._iter = self._rows()
        return self._iter

    def __next__(self) -> RowResult:
        return next(iter(self))

    def _rows(self) -> Iterator[RowResult]:
        for chunk in self.chunks():
            issues = chunk.issues
            k = 0
            for record in records_of(chunk):
                while k < len(issues) and issues[k].source_row < record.source_row:
                    yield issues[k]
                    k += 1
                yield record
            yield from issues[k:]

    # -- columnar API --------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        """Validate the table a block of rows at a time."""
        for source_rows, block in self.table.frames(self.chunk_rows):
            yield self._chunk(source_rows, block)

    def _chunk(self, src: pl.Series, block: pl.DataFrame) -> Chunk:  # noqa: C901, PLR0912, PLR0915
        table = self.table
        cols_of = table.columns
        n = len(src)
        srcs = src.to_list()

        def column(i: int) -> pl.Series:
            return block.get_column(f"c{i}")

        def cells_of(i: int) -> list[str]:
            return list(block.row(i))

        summary = self.summary
        msg = REASON_MESSAGES_VI

        # --- phones: the usual mobile shapes by expression, the rest by parse_phone. Same
        # results as parse_phone's own fast path: "0912345678", "912345678" (leading zero lost
        # in Excel), either with spaces, dashes or brackets; no dots ("912345678.0" is Excel
        # damage that parse_phone handles).
        i_phone = cols_of.get(Field.PHONE)
        if i_phone is not None:
            ph = column(i_phone)
            digits = ph.str.replace_all(r"[ \-()\xa0\t]", "")
            nsn = (pl.when(digits.str.contains(r"^0[0-9]{9}$")).then(digits.str.slice(1))
                   .when(digits.str.contains(r"^[0-9]{9}$")).then(digits))
            nsn = pl.select(nsn).to_series()
            prefix = nsn.str.slice(0, 3)
            mobile9 = learn_prefixes(prefix.drop_nulls().unique().to_list())
            fast = prefix.is_in(pl.Series(sorted(mobile9), dtype=pl.String).implode())
            fast = fast.fill_null(False)
            e164 = pl.select(pl.lit("+84") + nsn).to_series()
            slow = (~fast).arg_true().to_list()
            phone_cells = ph.gather(slow).to_list() if slow else []
        else:
            e164 = pl.Series([None] * n, dtype=pl.String)
            slow = list(range(n))
            phone_cells = [""] * n
        kinds: dict[int, PhoneKind] = {}  # rows not on the fast path (MOBILE otherwise)
        legacy_rows: list[int] = []
        multi_rows: list[int] = []
        slow_values: list[str | None] = []
        for i, cell in zip(slow, phone_cells, strict=True):
            pr = parse_phone(cell)
            slow_values.append(pr.e164)
            kinds[i] = pr.kind
            if pr.converted_legacy:
                legacy_rows.append(i)
            if pr.multiple:
                multi_rows.append(i)
        if slow:
            e164 = e164.scatter(slow, pl.Series(slow_values, dtype=pl.String))

        # --- rows without a usable phone, in file order: skipped rows, invalid phones
        pre = [0] * n
        dropped: list[int] = []
        numbering_until = table.header_row + 3
        for i, value in zip(slow, slow_values, strict=True):
            if value is not None:
                continue
            cells = cells_of(i)
            skip = self._skip_reason(cells, srcs[i], numbering_until)
            if skip is None and self._after_footer and _filled(cells) <= 2:
                skip = RowReason.FOOTER
            if skip is not None:
                if skip is RowReason.FOOTER:
                    self._after_footer = True
                pre[i] = _CODE[skip]
                continue
            if kinds[i] is not PhoneKind.EMPTY:
                if self.phone_required:
                    pre[i] = _CODE[RowReason.INVALID_PHONE]
                    continue
                dropped.append(i)
                kinds[i] = PhoneKind.EMPTY

        # --- name, dates, then the first failing rule decides
        name = _clean_column(column(cols_of[Field.NAME]))
        conditions = [
            ~(name.str.contains(r"\p{L}").fill_null(False)),
            e164.is_null() & self.phone_required,
        ]
        codes = [RowReason.NO_NAME, RowReason.PHONE_REQUIRED]
        i_date = cols_of.get(Field.TRANSACTION_DATE)
        date = birth = None
        if i_date is not None:
            date, bad_date = _mapped_column(column(i_date), parse_date, pl.Date)
            conditions.append(bad_date)
            codes.append(RowReason.BAD_DATE)
        i_birth = cols_of.get(Field.BIRTH_YEAR)
        if i_birth is not None:
            ref = self.reference_year
            birth, bad_birth = _mapped_column(
                column(i_birth), lambda v: parse_birth_year(v, ref), pl.Int32)
            conditions.append(bad_birth)
            codes.append(RowReason.BAD_BIRTH_YEAR)
        frame = pl.DataFrame({"pre": pl.Series(pre, dtype=pl.Int8),
                              **{f"c{k}": c for k, c in enumerate(conditions)}})
        expr = pl.when(pl.col("pre") != 0).then(pl.col("pre"))
        for k, code in enumerate(codes):
            expr = expr.when(pl.col(f"c{k}")).then(pl.lit(_CODE[code], dtype=pl.Int8))
        status = frame.select(expr.otherwise(pl.lit(0, dtype=pl.Int8))).to_series()

        # --- duplicates by phone: already in the campaign, or an earlier row of this file
        duplicate_of: dict[int, int] = {}
        cand_mask = (status == 0) & e164.is_not_null()
        if cand_mask.any():
            cand = pl.DataFrame({"i": cand_mask.arg_true(), "row": src.filter(cand_mask),
                                 "phone": e164.filter(cand_mask)})
            if len(self._existing):
                hit = cand.filter(pl.col("phone").is_in(self._existing.implode()))
                if len(hit):
                    for phone in hit["phone"].to_list():
                        self.existing_hits[phone] = self.existing_hits.get(phone, 0) + 1
                    status = status.scatter(hit["i"], _CODE[RowReason.DUPLICATE_EXISTING])
                    cand = cand.filter(~pl.col("phone").is_in(self._existing.implode()))
            # Earlier chunks' kept phones: a sorted int64 array (16 bytes a person, one
            # binary search per row) rather than a dict of strings.
            number = cand["phone"].str.slice(1).cast(pl.Int64).to_numpy()
            pos = np.searchsorted(self._seen_phone, number)
            pos_ok = np.minimum(pos, max(len(self._seen_phone) - 1, 0))
            found = (pos < len(self._seen_phone)) & (
                self._seen_phone[pos_ok] == number if len(self._seen_phone) else False)
            seen_first = np.where(found, self._seen_row[pos_ok] if len(self._seen_row)
                                  else 0, -1)
            cand = cand.with_columns(number=pl.Series(number),
                                     seen_first=pl.Series(seen_first))
            cand = cand.with_columns(first=pl.when(pl.col("seen_first") >= 0)
                                     .then(pl.col("seen_first"))
                                     .otherwise(pl.col("row").first().over("phone")))
            dup = cand.filter(pl.col("first") != pl.col("row"))
            if len(dup):
                status = status.scatter(dup["i"], _CODE[RowReason.DUPLICATE_PHONE])
                duplicate_of = dict(zip(dup["i"].to_list(), dup["first"].to_list(),
                                        strict=True))
                counts = self.transaction_counts
                for phone, k in dup.group_by("phone").len().iter_rows():
                    counts[phone] = counts.get(phone, 1) + k
            kept = cand.filter(pl.col("first") == pl.col("row"))
            if len(kept):
                phones = np.concatenate([self._seen_phone, kept["number"].to_numpy()])
                rows = np.concatenate([self._seen_row, kept["row"].to_numpy()])
                order = np.argsort(phones, kind="stable")
                self._seen_phone, self._seen_row = phones[order], rows[order]

        # --- issues (file order) and counts
        issues: list[RowIssue] = []
        status_list = status.to_list()
        not_accepted = (status != 0).arg_true().to_list()
        issue_phones = e164.gather(not_accepted).to_list() if not_accepted else []
        for i, phone in zip(not_accepted, issue_phones, strict=True):
            reason = _REASONS[status_list[i] - 1]
            row = srcs[i]
            if reason in _SKIP_REASONS:
                summary.skipped[reason] += 1
                issues.append(RowIssue(row, RowStatus.SKIPPED, reason, msg[reason]))
                continue
            summary.rows += 1
            if reason is RowReason.DUPLICATE_PHONE:
                summary.duplicates += 1
                first = duplicate_of[i]
                issues.append(RowIssue(row, RowStatus.DUPLICATE, reason,
                                       msg[reason].format(row=first), duplicate_of=first,
                                       phone_e164=phone))
            elif reason is RowReason.DUPLICATE_EXISTING:
                summary.duplicates_existing += 1
                issues.append(RowIssue(row, RowStatus.DUPLICATE, reason, msg[reason],
                                       phone_e164=phone))
            else:
                summary.rejected[reason] += 1
                issues.append(RowIssue(row, RowStatus.REJECTED, reason, msg[reason]))

        # --- accepted rows and their warnings
        ok = status == 0
        kind_s = pl.Series([PhoneKind.MOBILE.value] * n, dtype=pl.String)
        if kinds:
            kind_s = kind_s.scatter(list(kinds), [k.value for k in kinds.values()])
        columns: dict[str, pl.Series] = {"source_row": src, "name": name, "phone": e164,
                                         "phone_kind": kind_s}
        for f in _TEXT_FIELDS:
            i = cols_of.get(f)
            columns[f.value] = (_clean_column(column(i)) if i is not None
                                else pl.Series([None] * n, dtype=pl.String))
        columns["transaction_date"] = (date if date is not None
                                       else pl.Series([None] * n, dtype=pl.Date))
        columns["birth_year"] = (birth if birth is not None
                                 else pl.Series([None] * n, dtype=pl.Int32))
        i_row_no = cols_of.get(Field.ROW_NO)
        columns["row_no"] = (_stripped_column(column(i_row_no)) if i_row_no is not None
                             else pl.Series([None] * n, dtype=pl.String))
        extras = list(table.extra_columns.items())
        if extras:
            extra_cols = [(label, _clean_column(column(i)).to_list()) for i, label in extras]
            values: list[str | None] = []
            for r in range(n):
                d = {label: v[r] for label, v in extra_cols if v[r]}
                values.append(json.dumps(d, ensure_ascii=False) if d else None)
            columns["extra"] = pl.Series(values, dtype=pl.String)
        else:
            columns["extra"] = pl.Series([None] * n, dtype=pl.String)
        accepted = pl.DataFrame(columns, schema=ACCEPTED_SCHEMA).filter(ok)

        warnings: dict[int, tuple[RowWarning, ...]] = {}
        flagged = set(dropped) | set(legacy_rows) | set(multi_rows)
        flagged.update(i for i, k in kinds.items() if k is not PhoneKind.MOBILE)
        legacy_set, multi_set, dropped_set = set(legacy_rows), set(multi_rows), set(dropped)
        if flagged:
            for i in sorted(flagged):
                if status_list[i] != 0:
                    continue
                kind = kinds.get(i, PhoneKind.MOBILE)
                w: tuple[RowWarning, ...] = ()
                if i in dropped_set:
                    w = (_W_DROPPED,)
                elif kind is PhoneKind.LANDLINE:
                    w = (_W_LANDLINE,)
                if i in legacy_set:
                    w += (_W_LEGACY,)
                if i in multi_set:
                    w += (_W_MULTI,)
                if kind is PhoneKind.EMPTY:
                    w += self._possible_duplicate(srcs[i], columns["name"][i],
                                                  columns["address"][i])
                if w:
                    warnings[srcs[i]] = w
        n_ok = len(accepted)
        summary.rows += n_ok
        summary.accepted += n_ok
        if n_ok:
            kind_counts = dict(accepted.group_by("phone_kind").len().iter_rows())
            summary.mobile += kind_counts.get(PhoneKind.MOBILE.value, 0)
            summary.landline += kind_counts.get(PhoneKind.LANDLINE.value, 0)
            summary.without_phone += n_ok - kind_counts.get(PhoneKind.MOBILE.value, 0) \
                - kind_counts.get(PhoneKind.LANDLINE.value, 0)
        for ws in warnings.values():
            for w in ws:
                summary.warnings[w.code] += 1
        return Chunk(accepted, warnings, issues, n)

    def first_rows(self, phones: Iterable[str]) -> list[int]:
        """Source row of the entry kept for each of these phones (E.164, each seen in this
        file, e.g. the keys of `transaction_counts`)."""
        number = np.array([int(p[1:]) for p in phones], dtype=np.int64)
        return self._seen_row[np.searchsorted(self._seen_phone, number)].tolist()

    def _possible_duplicate(self, row: int, name: str, address: str | None
                            ) -> tuple[RowWarning, ...]:
        """Same normalised name and address as an earlier row without phone."""
        key = (_dup_key(name), _dup_key(address))
        first = self._seen_person.get(key)
        if first is None:
            self._seen_person[key] = row
            return ()
        message = WARNING_MESSAGES_VI[WarningCode.POSSIBLE_DUPLICATE].format(row=first)
        return (RowWarning(WarningCode.POSSIBLE_DUPLICATE, message, first),)

    def _skip_reason(
        self, cells: list[str], source_row: int, numbering_until: int
    ) -> RowReason | None:
        """For a row without a usable phone: EMPTY_ROW, FOOTER, REPEATED_HEADER... or None."""
        if not _filled(cells):
            return RowReason.EMPTY_ROW
        i_name = self.table.columns[Field.NAME]
        if " ".join(cells[i_name].split()) == self.table.header[i_name]:
            return RowReason.REPEATED_HEADER  # e.g. lists pasted together, page by page
        if source_row <= numbering_until and _is_numbering(cells):
            return RowReason.COLUMN_NUMBERS
        if _is_footer(cells):
            return RowReason.FOOTER
        return None


def records_of(chunk: Chunk) -> Iterator[FrameRecord]:
    """The accepted rows of a chunk as `FrameRecord`s (previews, tests, small files)."""
    warnings = chunk.warnings
    for row in chunk.accepted.iter_rows(named=True):
        extra = row["extra"]
        yield FrameRecord(
            source_row=row["source_row"], name=row["name"], phone_e164=row["phone"],
            phone_kind=PhoneKind(row["phone_kind"]), procedure=row["procedure"],
            address=row["address"], position=row["position"], workplace=row["workplace"],
            transaction_date=row["transaction_date"], birth_year=row["birth_year"],
            email=row["email"], gender=row["gender"], unit_code=row["unit_code"],
            row_no=row["row_no"], extra=json.loads(extra) if extra else {},
            warnings=warnings.get(row["source_row"], ()),
        )


def validate_rows(
    table: Table,
    *,
    phone_required: bool,
    existing_phones: frozenset[str] | set[str] = frozenset(),
    reference_year: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> FrameValidator:
    """Validate every data row of `table`.

    `phone_required`: rows without a valid phone are rejected (PHONE_REQUIRED /
    INVALID_PHONE); otherwise an invalid phone is dropped with a warning and the person kept.
    `existing_phones`: E.164 numbers already in the campaign frame for this unit × group; rows
    with one of them come out as DUPLICATE_EXISTING. `reference_year` bounds birth years
    (default: this year). Iterate the returned `FrameValidator` (one `RowResult` per row) or
    its `chunks()`, then read its `summary`, `transaction_counts` and `existing_hits`.
    """
    return FrameValidator(
        table,
        phone_required=phone_required,
        existing_phones=existing_phones,
        reference_year=reference_year,
        chunk_rows=chunk_rows,
    )
