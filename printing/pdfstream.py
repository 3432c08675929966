"""A streaming PDF writer around a reportlab-made template.

reportlab keeps every page in memory until `save()` (≈45 kB per personalised form, so ≈450 MB for
10,000 forms). Instead, reportlab draws the static pages once, as form XObjects, into a small
template PDF together with every character personal text may need, so its embedded font subsets
(TrueType, with ToUnicode maps) cover them. `PdfStreamWriter` copies the template's fonts and
XObjects verbatim into the output and then writes each form's pages as they come: a tiny content
stream that paints the static page and adds the personal data. Only object offsets stay in memory.
"""

from __future__ import annotations

import io
import re
import zlib
from array import array
from dataclasses import dataclass
from typing import BinaryIO

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from .fonts import PERSONAL_REPERTOIRE, Font, register_fonts
from .layout import Align, FormLayout, LineOp, Op, RectOp, TextOp


class PdfTemplateError(RuntimeError):
    """reportlab's template output was not what this writer understands."""


def draw_ops(canvas: Canvas, ops: tuple[Op, ...] | list[Op]) -> None:
    """Draw layout operations on a reportlab canvas."""
    for op in ops:
        if isinstance(op, TextOp):
            canvas.setFillGray(op.grey)
            canvas.setFont(str(op.font), op.size)
            if op.align is Align.LEFT:
                canvas.drawString(op.x, op.y, op.text)
            elif op.align is Align.CENTER:
                canvas.drawCentredString(op.x, op.y, op.text)
            else:
                canvas.drawRightString(op.x, op.y, op.text)
        elif isinstance(op, RectOp):
            canvas.setLineWidth(op.line_width)
            canvas.setStrokeGray(0)
            if op.fill is not None:
                canvas.setFillGray(op.fill)
            canvas.rect(op.x, op.y, op.w, op.h, stroke=op.line_width > 0,
                        fill=op.fill is not None)
        else:
            assert isinstance(op, LineOp)
            canvas.setLineWidth(op.line_width)
            canvas.setStrokeGray(op.grey)
            canvas.line(op.x1, op.y1, op.x2, op.y2)
    canvas.setFillGray(0)
    canvas.setStrokeGray(0)


@dataclass(frozen=True, slots=True)
class FontEncoding:
    """How reportlab encoded one TrueType font in the template: char → (subset, byte)."""

    codes: dict[str, int]  # char → subset·256 + byte
    names: tuple[str, ...]  # subset → resource name, e.g. "/F1+0"

    def runs(self, text: str) -> list[tuple[str, bytes]]:
        """Split `text` into (font resource name, encoded bytes) runs; unknown chars become '?'."""
        out: list[tuple[str, bytes]] = []
        cur_set = -1
        cur = bytearray()
        fallback = self.codes.get("?", 0)
        for ch in text.replace("\u00a0", " "):  # reportlab draws no-break spaces as spaces
            n = self.codes.get(ch, fallback)
            if n >> 8 != cur_set:
                if cur:
                    out.append((self.names[cur_set], bytes(cur)))
                cur_set, cur = n >> 8, bytearray()
            cur.append(n & 0xFF)
        if cur:
            out.append((self.names[cur_set], bytes(cur)))
        return out


@dataclass(frozen=True, slots=True)
class PdfTemplate:
    """Objects copied into every output PDF, and how to refer to them."""

    objects: tuple[tuple[int, bytes], ...]  # (number, "n 0 obj … endobj\n")
    max_number: int
    font_dict: int  # object number of the shared font resource dictionary
    page_forms: tuple[int, ...]  # object number of each static page's form XObject
    info: int | None
    encodings: dict[Font, FontEncoding]
    page_size: tuple[float, float]


_XREF_ROW = re.compile(rb"(\d{10}) (\d{5}) ([nf])")


def build_template(layout: FormLayout) -> PdfTemplate:
    """Draw a layout's static pages with reportlab and keep what every output needs."""
    register_fonts()
    buf = io.BytesIO()
    canvas = Canvas(
        buf, pagesize=layout.page_size, pageCompression=1, invariant=1,
        initialFontName=str(Font.REGULAR), initialFontSize=9,
    )
    canvas.setTitle(layout.questionnaire.title)
    canvas.setAuthor(layout.campaign.organiser or "survey")
    canvas.setSubject(layout.campaign.name)
    canvas.setCreator("survey/printing")
    for i, ops in enumerate(layout.pages):
        canvas.beginForm(f"p{i}")
        draw_ops(canvas, ops)
        canvas.endForm()
    canvas.beginForm("repertoire")
    for font in (Font.REGULAR, Font.BOLD):
        canvas.setFont(str(font), 8)
        canvas.drawString(0, 0, PERSONAL_REPERTOIRE)
    canvas.endForm()
    for i in range(len(layout.pages)):
        canvas.doForm(f"p{i}")
    canvas.doForm("repertoire")
    doc = canvas._doc  # the font states are keyed by reportlab's document object
    encodings: dict[Font, FontEncoding] = {}
    for font in Font:
        ttf = pdfmetrics.getFont(str(font))
        state = ttf.state.get(doc)
        if state is None:
            continue
        names = tuple(ttf.getSubsetInternalName(s, doc) for s in range(len(state.subsets)))
        encodings[font] = FontEncoding({chr(k): v for k, v in state.assignments.items()}, names)
    canvas.showPage()
    canvas.save()
    return _parse_template(buf.getvalue(), len(layout.pages), encodings, layout.page_size)


def _parse_template(
    data: bytes, n_pages: int, encodings: dict[Font, FontEncoding], page_size: tuple[float, float]
) -> PdfTemplate:
    m = re.search(rb"startxref\s+(\d+)", data[-200:])
    if m is None:
        raise PdfTemplateError("no startxref")
    xref_at = int(m.group(1))
    rows = _XREF_ROW.findall(data[xref_at : data.index(b"trailer", xref_at)])
    offsets = {i: int(off) for i, (off, _gen, kind) in enumerate(rows) if kind == b"n"}
    ends = sorted(offsets.values()) + [xref_at]
    end_of = {start: ends[k + 1] for k, start in enumerate(ends[:-1])}
    bodies = {num: data[off : end_of[off]].rstrip() + b"\n" for num, off in offsets.items()}
    trailer = data[data.index(b"trailer", xref_at) :]
    info_m = re.search(rb"/Info (\d+) 0 R", trailer)
    info = int(info_m.group(1)) if info_m else None

    page_num = next(
        (n for n, b in bodies.items() if re.search(rb"/Type\s*/Page(?![s\w])", b)), None
    )
    if page_num is None:
        raise PdfTemplateError("no page")
    page = bodies[page_num]
    font_m = re.search(rb"/Font (\d+) 0 R", page)
    contents_m = re.search(rb"/Contents (\d+) 0 R", page)
    forms = dict(re.findall(rb"/FormXob\.(\w+) (\d+) 0 R", page))
    if font_m is None or contents_m is None or len(forms) != n_pages + 1:
        raise PdfTemplateError("unexpected page resources")
    page_forms = tuple(int(forms[f"p{i}".encode()]) for i in range(n_pages))
    drop = {page_num, int(contents_m.group(1)), int(forms[b"repertoire"])}
    drop |= {n for n, b in bodies.items() if re.search(rb"/Type\s*/(Catalog|Pages)\b", b)}
    # dropped numbers become null objects so the cross-reference table has no holes
    kept = tuple(
        (n, bodies[n] if n in bodies and n not in drop else b"%d 0 obj\nnull\nendobj\n" % n)
        for n in range(1, max(bodies) + 1)
    )
    return PdfTemplate(kept, max(bodies), int(font_m.group(1)), page_forms, info, encodings,
                       page_size)


def template_for(layout: FormLayout) -> PdfTemplate:
    """The layout's template, built on first use and kept on the layout."""
    if layout._template is None:
        layout._template = build_template(layout)
    assert isinstance(layout._template, PdfTemplate)
    return layout._template


class PdfStreamWriter:
    """Write a PDF object by object; pages are appended as they are made."""

    def __init__(self, out: BinaryIO, template: PdfTemplate, *, compress_level: int = 6) -> None:
        self.out = out
        self.template = template
        self.pos = 0
        self.compress_level = compress_level
        self.offsets = array("q", [-1] * (template.max_number + 1))
        self.kids = array("l")
        self._write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        for num, body in template.objects:
            self.offsets[num] = self.pos
            self._write(body)
        self.pages_number = self.reserve()
        w, h = template.page_size
        self._page_head = (
            f"<< /Type /Page /Parent {self.pages_number} 0 R "
            f"/MediaBox [0 0 {w:.4f} {h:.4f}] /Resources << /Font {template.font_dict} 0 R "
            "/ProcSet [/PDF /Text] /XObject << /P "
        ).encode()

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.pos += len(data)

    def reserve(self) -> int:
        """A new object number, to be written later."""
        self.offsets.append(-1)
        return len(self.offsets) - 1

    def write_object(self, number: int, body: bytes) -> None:
        """Write object `number` with the given body (a dictionary, array…)."""
        self.offsets[number] = self.pos
        self._write(b"%d 0 obj\n%s\nendobj\n" % (number, body))

    def write_stream(self, number: int, content: bytes, extra: bytes = b"") -> None:
        """Write a stream object with extra dictionary entries (Flate-compressed unless tiny)."""
        if len(content) < 256:  # not worth the deflate call
            data, flt = content, b""
        else:
            data, flt = zlib.compress(content, self.compress_level), b" /Filter /FlateDecode"
        self.offsets[number] = self.pos
        self._write(
            b"%d 0 obj\n<< %s/Length %d%s >>\nstream\n%s\nendstream\nendobj\n"
            % (number, extra, len(data), flt, data)
        )

    def form_xobject(self, content: bytes, size: float) -> int:
        """Write a form XObject of bounding box `size`×`size`; returns its object number."""
        number = self.reserve()
        extra = b"/Type /XObject /Subtype /Form /BBox [0 0 %d %d] /Resources << >> " % (
            size, size,
        )
        self.write_stream(number, content, extra)
        return number

    def add_page(self, page_index: int, content: bytes, qr: int | None = None) -> None:
        """Append a page showing static page `page_index` (as /P) then `content`."""
        contents = self.reserve()
        self.write_stream(contents, content)
        page = self.reserve()
        xobj = b"%d 0 R" % self.template.page_forms[page_index]
        if qr is not None:
            xobj += b" /Q %d 0 R" % qr
        self.write_object(page, self._page_head + xobj + b" >> >> /Contents %d 0 R >>" % contents)
        self.kids.append(page)

    def close(self) -> None:
        """Write the page tree, catalogue, cross-reference table and trailer."""
        self.offsets[self.pages_number] = self.pos
        self._write(b"%d 0 obj\n<< /Type /Pages /Count %d /Kids [" % (self.pages_number,
                                                                      len(self.kids)))
        for start in range(0, len(self.kids), 4096):  # in chunks: memory stays flat
            chunk = self.kids[start : start + 4096]
            self._write(b" ".join(b"%d 0 R" % k for k in chunk) + b" ")
        self._write(b"] >>\nendobj\n")
        catalog = self.reserve()
        self.write_object(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % self.pages_number)
        xref_at = self.pos
        self._write(b"xref\n0 %d\n0000000000 65535 f \n" % len(self.offsets))
        for start in range(1, len(self.offsets), 4096):
            chunk = self.offsets[start : start + 4096]
            self._write(b"".join(
                b"%010d 00000 n \n" % off if off >= 0 else b"0000000000 65535 f \n"
                for off in chunk
            ))
        info = b" /Info %d 0 R" % self.template.info if self.template.info else b""
        self._write(
            b"trailer\n<< /Size %d /Root %d 0 R%s >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(self.offsets), catalog, info, xref_at)
        )
