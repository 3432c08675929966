"""Personalised forms: a batch of forms streamed into one PDF.

Per form only the personal data is drawn (QR code, short code, serial, recipient, page footers);
the static pages come from the layout's template (see `printing.pdfstream`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from .codes import format_short_code
from .fonts import Font, printable_text, text_width, wrap_text
from .layout import Align, FormLayout, QrSlot, TextSlot
from .pdfstream import FontEncoding, PdfStreamWriter, PdfTemplate, template_for
from .qr import qr_form_stream

PROGRESS_EVERY = 100  # forms between progress callbacks


@dataclass(frozen=True, slots=True)
class Personalisation:
    """What differs from one printed form to the next.

    Empty `recipient_name`/`recipient_address` give the anonymous variant (walk-in forms);
    empty `url` prints no QR code, empty `short_code` no code. `unit_name` is the rated unit,
    printed in the header only when the layout's campaign names none. `phone` is never printed on
    a form; it only feeds delivery manifests.
    """

    serial: str
    short_code: str = ""
    url: str = ""
    recipient_name: str = ""
    recipient_address: str = ""
    unit_name: str = ""
    phone: str = ""

    @property
    def is_anonymous(self) -> bool:
        """True when the form carries no name or address."""
        return not (self.recipient_name or self.recipient_address)


def short_link(url: str) -> str:
    """The link as people type it: without the scheme."""
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            return url[len(scheme) :]
    return url


def _num(v: float) -> bytes:
    return b"%.2f" % v


class _Painter:
    """Encodes personal text with the template's font subsets."""

    def __init__(self, template: PdfTemplate) -> None:
        self.enc: dict[Font, FontEncoding] = template.encodings

    def text(self, x: float, y: float, text: str, font: Font, size: float, align: Align) -> bytes:
        if not text:
            return b""
        if align is not Align.LEFT:
            w = text_width(text, font, size)
            x -= w if align is Align.RIGHT else w / 2
        parts = [b"BT 1 0 0 1 %s %s Tm" % (_num(x), _num(y))]
        size_b = _num(size)
        for name, data in self.enc[font].runs(text):
            parts.append(b"%s %s Tf <%s> Tj" % (name.encode(), size_b, data.hex().encode()))
        parts.append(b"ET\n")
        return b" ".join(parts)

    def slot(self, slot: TextSlot, text: str, font: Font | None = None) -> bytes:
        text = printable_text(text)
        font = font or slot.font
        if text_width(text, font, slot.size) <= slot.width:  # the usual case: no wrapping
            lines = [text]
        else:
            lines = wrap_text(text, font, slot.size, slot.width)[: slot.max_lines]
        return b"".join(
            self.text(slot.x, slot.y - i * slot.leading, ln, font, slot.size, slot.align)
            for i, ln in enumerate(lines)
        )


def _place_qr(slot: QrSlot, modules: int) -> bytes:
    s = slot.size / modules
    return b"q %s 0 0 %s %s %s cm /Q Do Q\n" % (_num(s), _num(s), _num(slot.x), _num(slot.y))


def _write_form(
    writer: PdfStreamWriter, painter: _Painter, layout: FormLayout, p: Personalisation
) -> None:
    slots = layout.slots
    qr_number: int | None = None
    modules = 0
    if p.url:
        modules, ops = qr_form_stream(p.url)
        qr_number = writer.form_xobject(ops.encode(), modules)
    code = format_short_code(p.short_code) if p.short_code else ""
    serial = printable_text(p.serial)
    footer_parts = []
    if serial:
        footer_parts.append(f"Số phiếu: {serial}")
    if code:
        footer_parts.append(f"Mã phiếu: {code}")
    footer = painter.slot(slots.footer, "   ·   ".join(footer_parts))

    # page 1: QR code, code, serial, link, recipient, rated unit
    first = [b"q /P Do Q\n", footer]
    if qr_number is not None:
        first.append(_place_qr(slots.qr_main, modules))
        first.append(painter.slot(slots.link_main, short_link(p.url)))
    first.append(painter.slot(slots.code_main, code))
    if serial:
        first.append(painter.slot(slots.serial_main, f"Số phiếu: {serial}"))
    first.append(_recipient(painter, slots.recipient, p))
    if slots.rated_unit is not None and p.unit_name:
        first.append(painter.slot(slots.rated_unit, p.unit_name))
    writer.add_page(0, b"".join(first), qr_number)

    rest = [b"q /P Do Q\n", footer]
    if qr_number is not None:
        rest.append(_place_qr(slots.qr_small, modules))
    rest.append(painter.slot(slots.code_small, code))
    rest_content = b"".join(rest)
    for i in range(1, layout.page_count):
        writer.add_page(i, rest_content, qr_number)


def _recipient(painter: _Painter, slot: TextSlot, p: Personalisation) -> bytes:
    size = slot.size
    if p.is_anonymous:
        return painter.text(slot.x, slot.y, "Kính gửi: Quý Ông/Bà,", Font.REGULAR, size,
                            Align.LEFT)
    label = "Kính gửi: Ông/Bà "
    name = printable_text(p.recipient_name)
    out = [painter.text(slot.x, slot.y, label, Font.REGULAR, size, Align.LEFT)]
    x = slot.x + text_width(label, Font.REGULAR, size)
    out.append(painter.text(x, slot.y, name, Font.BOLD, size, Align.LEFT))
    address = printable_text(p.recipient_address)
    if address:
        lines = wrap_text(f"Địa chỉ: {address}", Font.REGULAR, size, slot.width)
        for i, ln in enumerate(lines[: slot.max_lines - 1], 1):
            out.append(painter.text(slot.x, slot.y - i * slot.leading, ln, Font.REGULAR, size,
                                    Align.LEFT))
    return b"".join(out)


def render_forms(
    layout: FormLayout,
    personalisations: Iterable[Personalisation],
    out: BinaryIO,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Stream one PDF of all forms (each `layout.page_count` pages, in input order) to `out`.

    Memory stays bounded: pages are written as they are made. Returns the number of forms;
    `progress` (if given) receives the running count every 100 forms and at the end.
    """
    template = template_for(layout)
    writer = PdfStreamWriter(out, template)
    painter = _Painter(template)
    count = 0
    for p in personalisations:
        _write_form(writer, painter, layout, p)
        count += 1
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(count)
    writer.close()
    if progress is not None and count % PROGRESS_EVERY:
        progress(count)
    return count


def render_form(layout: FormLayout, p: Personalisation) -> bytes:
    """One form as a PDF."""
    buf = io.BytesIO()
    render_forms(layout, [p], buf)
    return buf.getvalue()


def render_blank_forms(layout: FormLayout, count: int, out: BinaryIO) -> int:
    """`count` identical forms without any personal data (no QR code, code or serial)."""
    return render_forms(layout, (Personalisation("") for _ in range(count)), out)
