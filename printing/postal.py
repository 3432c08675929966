"""Postal and route work: mailing labels, envelopes, delivery manifests, sorting by address."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, TypeVar

import xlsxwriter
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from .codes import format_short_code
from .fonts import Font, fit_text, printable_text, register_fonts, wrap_text
from .forms import Personalisation
from .layout import CampaignInfo

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MailingAddress:
    """One addressee; `address` may hold several lines separated by newlines."""

    name: str
    address: str
    serial: str = ""
    unit_name: str = ""

    @classmethod
    def from_personalisation(cls, p: Personalisation) -> MailingAddress:
        """The addressee of a personalised form."""
        return cls(p.recipient_name, p.recipient_address, p.serial, p.unit_name)


# --- sorting ---------------------------------------------------------------------------------

_DIGITS = re.compile(r"(\d+)")


def vietnamese_sort_key(text: str) -> tuple[object, ...]:
    """Collation key: marks stripped, lowercase, đ = d, numbers in numeric order ("Thôn 2" <
    "Thôn 10"); the NFC lowercase text breaks ties so that "Ha" and "Hà" keep a fixed order."""
    nfc = unicodedata.normalize("NFC", " ".join(text.split())).lower()
    base = "".join(
        c for c in unicodedata.normalize("NFD", nfc) if not unicodedata.combining(c)
    ).replace("đ", "d")
    parts = _DIGITS.split(base)
    natural = tuple(int(p) if i % 2 else p for i, p in enumerate(parts))
    return (natural, nfc)


def sort_by_address(items: Iterable[T], address: Callable[[T], str]) -> list[T]:
    """Items ordered by `address(item)` (Vietnamese-aware); equal addresses keep input order."""
    return sorted(items, key=lambda it: vietnamese_sort_key(address(it)))


def sort_for_delivery(forms: Iterable[Personalisation]) -> list[Personalisation]:
    """Forms ordered for a route: by unit, then address, then name; ties keep input order."""
    return sorted(
        forms,
        key=lambda p: (
            vietnamese_sort_key(p.unit_name),
            vietnamese_sort_key(p.recipient_address),
            vietnamese_sort_key(p.recipient_name),
        ),
    )


# --- labels ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelSheet:
    """Geometry of an A4 label sheet (all lengths in points)."""

    columns: int
    rows: int
    label_w: float
    label_h: float
    margin_left: float
    margin_top: float
    pitch_x: float
    pitch_y: float
    padding: float = 5 * mm

    @property
    def per_sheet(self) -> int:
        """Labels per sheet."""
        return self.columns * self.rows


# 3 × 8 labels of 70 × 37 mm with no gaps (Avery 3475, Tanex/Tomy equivalents)
A4_3X8 = LabelSheet(3, 8, 70 * mm, 37 * mm, 0, 0.5 * mm, 70 * mm, 37 * mm)


def _canvas(out: BinaryIO, pagesize: tuple[float, float], title: str) -> Canvas:
    register_fonts()
    canvas = Canvas(out, pagesize=pagesize, pageCompression=1, invariant=1,
                    initialFontName=str(Font.REGULAR), initialFontSize=9)
    canvas.setTitle(title)
    canvas.setCreator("survey/printing")
    return canvas


def _address_lines(address: str, font: Font, size: float, width: float) -> list[str]:
    lines: list[str] = []
    for part in printable_text(address.replace("\n", "\u2029")).split("\u2029"):
        lines += wrap_text(part, font, size, width)
    return lines


def render_labels(
    addresses: Iterable[MailingAddress], out: BinaryIO, *, sheet: LabelSheet = A4_3X8
) -> int:
    """Mailing labels on A4 label sheets, filled row by row; returns the number of labels."""
    canvas = _canvas(out, A4, "Nhãn gửi thư")
    _, page_h = A4
    count = 0
    inner_w = sheet.label_w - 2 * sheet.padding
    for a in addresses:
        slot = count % sheet.per_sheet
        if count and slot == 0:
            canvas.showPage()
        row, col = divmod(slot, sheet.columns)
        x = sheet.margin_left + col * sheet.pitch_x + sheet.padding
        top = page_h - sheet.margin_top - row * sheet.pitch_y - sheet.padding
        bottom = top - sheet.label_h + 2 * sheet.padding
        canvas.setFont(str(Font.BOLD), 9.5)
        name = fit_text(printable_text(a.name), Font.BOLD, 9.5, inner_w)
        canvas.drawString(x, top - 9.5, name)
        y = top - 9.5 - 12
        lines = _address_lines(a.address, Font.REGULAR, 8.5, inner_w)
        max_lines = max(1, int((y - bottom - 9) // 10.5) + 1)
        canvas.setFont(str(Font.REGULAR), 8.5)
        for i, ln in enumerate(lines[:max_lines]):
            if i == max_lines - 1 and len(lines) > max_lines:
                ln = fit_text(ln + " …", Font.REGULAR, 8.5, inner_w)
            canvas.drawString(x, y, ln)
            y -= 10.5
        if a.serial:
            canvas.setFont(str(Font.REGULAR), 7)
            canvas.drawRightString(x + inner_w, bottom, printable_text(a.serial))
        count += 1
    canvas.save()
    return count


# --- envelopes -------------------------------------------------------------------------------


class EnvelopeSize(StrEnum):
    """Envelope formats, printed landscape."""

    DL = "DL"  # 220 × 110 mm
    C5 = "C5"  # 229 × 162 mm

    @property
    def page_size(self) -> tuple[float, float]:
        """(width, height) in points, landscape."""
        return {EnvelopeSize.DL: (220 * mm, 110 * mm), EnvelopeSize.C5: (229 * mm, 162 * mm)}[
            self
        ]


def render_envelopes(
    addresses: Iterable[MailingAddress],
    out: BinaryIO,
    *,
    sender: str,
    sender_address: str = "",
    size: EnvelopeSize = EnvelopeSize.DL,
) -> int:
    """One envelope per page: return address top left, recipient right of centre, serial.

    Returns the number of envelopes.
    """
    w, h = size.page_size
    canvas = _canvas(out, (w, h), "Phong bì")
    count = 0
    ret_lines = wrap_text(printable_text(sender), Font.BOLD, 8.5, 85 * mm)
    ret_addr = _address_lines(sender_address, Font.REGULAR, 8, 85 * mm)
    rx = w * 0.45
    rw = w - rx - 12 * mm
    for a in addresses:
        if count:
            canvas.showPage()
        y = h - 10 * mm
        canvas.setFont(str(Font.REGULAR), 7)
        canvas.setFillGray(0.35)
        canvas.drawString(10 * mm, y, "Nơi gửi:")
        canvas.setFillGray(0)
        y -= 10
        canvas.setFont(str(Font.BOLD), 8.5)
        for ln in ret_lines:
            canvas.drawString(10 * mm, y, ln)
            y -= 10.5
        canvas.setFont(str(Font.REGULAR), 8)
        for ln in ret_addr:
            canvas.drawString(10 * mm, y, ln)
            y -= 10
        y = h * 0.55
        canvas.setFont(str(Font.REGULAR), 9)
        canvas.drawString(rx, y, "Kính gửi:")
        y -= 15
        canvas.setFont(str(Font.BOLD), 11.5)
        canvas.drawString(rx, y, fit_text(printable_text(a.name), Font.BOLD, 11.5, rw))
        y -= 15
        canvas.setFont(str(Font.REGULAR), 10.5)
        for ln in _address_lines(a.address, Font.REGULAR, 10.5, rw)[:4]:
            canvas.drawString(rx, y, ln)
            y -= 13.5
        if a.serial:
            canvas.setFont(str(Font.REGULAR), 7.5)
            canvas.drawRightString(w - 10 * mm, 8 * mm, f"Số phiếu: {printable_text(a.serial)}")
        count += 1
    canvas.save()
    return count


def return_envelope_text(campaign: CampaignInfo, *, prepaid: bool = True) -> str:
    """Text for the reply envelope sent with each postal form (no respondent data on it)."""
    lines = []
    if prepaid:
        lines.append("BƯU GỬI TRẢ LỜI – KHÔNG CẦN DÁN TEM")
    lines.append(f"Kính gửi: {campaign.organiser or 'Cơ quan tổ chức khảo sát'}")
    if campaign.return_address:
        lines.append(f"Địa chỉ: {campaign.return_address}")
    name = campaign.name if str(campaign.year) in campaign.name else (
        f"{campaign.name} năm {campaign.year}"
    )
    lines.append(f"Phiếu khảo sát: {name}")
    if campaign.deadline is not None:
        lines.append(f"Xin gửi trước ngày {campaign.deadline:%d/%m/%Y}")
    return unicodedata.normalize("NFC", "\n".join(lines))


# --- manifests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One line of a delivery manifest."""

    serial: str
    recipient: str
    address: str
    phone: str
    unit: str
    form_code: str


MANIFEST_HEADERS = (
    "STT",
    "Số phiếu",
    "Người nhận",
    "Địa chỉ",
    "Số điện thoại",
    "Đơn vị",
    "Mã phiếu",
    "Tình trạng (đã phát / đã thu / từ chối / không gặp)",
    "Ghi chú",
)


def display_phone(phone: str) -> str:
    """A Vietnamese E.164 number as dialled at home (+84912345678 → 0912345678)."""
    phone = phone.strip()
    if phone.startswith("+84"):
        return "0" + phone[3:]
    return phone


def manifest_rows(forms: Iterable[Personalisation]) -> Iterator[ManifestRow]:
    """Manifest rows for forms, in the given order (sort first with `sort_for_delivery`)."""
    for p in forms:
        yield ManifestRow(
            serial=p.serial,
            recipient=unicodedata.normalize("NFC", p.recipient_name),
            address=unicodedata.normalize("NFC", " ".join(p.recipient_address.split())),
            phone=display_phone(p.phone),
            unit=unicodedata.normalize("NFC", p.unit_name),
            form_code=format_short_code(p.short_code) if p.short_code else "",
        )


# The one definition of spreadsheet formula safety (survey_app.services.spreadsheet uses it).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: str) -> str:
    """Prefix a quote to text a spreadsheet would read as a formula (=, +, -, @, tab, CR)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _cells(index: int, row: ManifestRow) -> list[str]:
    values = [row.serial, row.recipient, row.address, row.phone, row.unit, row.form_code]
    return [str(index)] + [neutralise_cell(v) for v in values] + ["", ""]


def write_manifest_csv(rows: Iterable[ManifestRow], out: BinaryIO) -> int:
    """CSV in UTF-8 with a byte-order mark (so Excel reads Vietnamese); returns the row count."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    writer.writerow(MANIFEST_HEADERS)
    n = 0
    for n, row in enumerate(rows, 1):
        writer.writerow(_cells(n, row))
    text.flush()
    text.detach()
    return n


_WIDTHS = (6, 14, 26, 48, 14, 28, 14, 22, 20)


def write_manifest_xlsx(rows: Iterable[ManifestRow], out: BinaryIO) -> int:
    """An Excel manifest written row by row (XlsxWriter constant-memory mode); returns rows."""
    workbook = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_numbers": False, "strings_to_urls": False})
    sheet = workbook.add_worksheet("Danh sách")
    bold = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top",
                                "bg_color": "#E6E6E6", "border": 1})
    cell = workbook.add_format({"border": 1, "valign": "top"})
    for col, width in enumerate(_WIDTHS):
        sheet.set_column(col, col, width)
    for col, head in enumerate(MANIFEST_HEADERS):
        sheet.write_string(0, col, head, bold)
    sheet.freeze_panes(1, 0)
    n = 0
    for n, row in enumerate(rows, 1):
        for col, value in enumerate(_cells(n, row)):
            sheet.write_string(n, col, value, cell)
    sheet.autofilter(0, 0, max(n, 1), len(MANIFEST_HEADERS) - 1)
    workbook.close()
    return n


__all__ = [
    "A4_3X8",
    "EnvelopeSize",
    "LabelSheet",
    "MANIFEST_HEADERS",
    "MailingAddress",
    "ManifestRow",
    "display_phone",
    "manifest_rows",
    "neutralise_cell",
    "render_envelopes",
    "render_labels",
    "return_envelope_text",
    "sort_by_address",
    "sort_for_delivery",
    "vietnamese_sort_key",
    "write_manifest_csv",
    "write_manifest_xlsx",
]
