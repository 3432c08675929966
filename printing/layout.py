"""Lay a questionnaire out on A4 pages, once per questionnaire and campaign.

`prepare_layout` turns a `Questionnaire` plus `CampaignInfo` into a `FormLayout`: the static
drawing of every page (cover letter, questions, check boxes, page numbers) as plain drawing
operations, and the positions ("slots") where each form's personal data goes. Rendering
(`printing.forms`) draws the static pages once per PDF as form XObjects and adds only the personal
data per form.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm

from questionnaires.model import ConditionOp, Question, QuestionKind, Questionnaire, Section

from .fonts import Font, fit_text, register_fonts, text_width, wrap_text

PAGE_W, PAGE_H = A4
MARGIN_X = 15 * mm
MARGIN_TOP = 12 * mm
MARGIN_BOTTOM = 11 * mm
CONTENT_W = PAGE_W - 2 * MARGIN_X
FOOTER_Y = MARGIN_BOTTOM  # baseline of the footer line
CONTENT_BOTTOM = MARGIN_BOTTOM + 22
HEADER_H = 58  # pages 2..n: strip with title and small QR code

QR_MAIN = 30 * mm
QR_SMALL = 15 * mm
RIGHT_COL_W = 46 * mm  # page 1: QR code, form code, serial, link

BODY = 9.5
LEADING = 12.5
SMALL = 8.0
BOX = 9.0  # check box side


class Align(StrEnum):
    """Horizontal alignment of a text operation."""

    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


@dataclass(frozen=True, slots=True)
class TextOp:
    """Draw one line of text; `x` is the left edge, centre or right edge depending on `align`."""

    x: float
    y: float
    text: str
    font: Font = Font.REGULAR
    size: float = BODY
    align: Align = Align.LEFT
    grey: float = 0.0


@dataclass(frozen=True, slots=True)
class RectOp:
    """A rectangle: stroked (`line_width` > 0) and/or filled with grey level `fill`."""

    x: float
    y: float
    w: float
    h: float
    line_width: float = 0.7
    fill: float | None = None


@dataclass(frozen=True, slots=True)
class LineOp:
    """A straight line."""

    x1: float
    y1: float
    x2: float
    y2: float
    line_width: float = 0.5
    grey: float = 0.0


Op = TextOp | RectOp | LineOp


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    """What the form says about the campaign it belongs to.

    `rated_unit_name` empty means one layout serves several rated units: each form then prints
    its `Personalisation.unit_name` in the header instead.
    """

    name: str
    year: int
    rated_unit_name: str = ""
    organiser: str = ""  # e.g. "UBND TỈNH QUẢNG BÌNH – SỞ NỘI VỤ"
    contact: str = ""  # e.g. "Phòng CCHC, Sở Nội vụ, ĐT 0232 3822 xxx" (overrides none)
    return_address: str = ""  # printed with the return instructions and on envelopes
    deadline: dt.date | None = None  # reply by


@dataclass(frozen=True, slots=True)
class TextSlot:
    """Where a personal text line goes."""

    x: float
    y: float
    width: float
    font: Font
    size: float
    align: Align = Align.LEFT
    max_lines: int = 1
    leading: float = LEADING


@dataclass(frozen=True, slots=True)
class QrSlot:
    """Where a QR code goes (lower-left corner and side, in points)."""

    x: float
    y: float
    size: float


@dataclass(frozen=True, slots=True)
class Slots:
    """Positions of the personal data; page 0 is the first page."""

    qr_main: QrSlot
    code_main: TextSlot
    serial_main: TextSlot
    link_main: TextSlot
    recipient: TextSlot
    rated_unit: TextSlot | None  # set when the campaign names no rated unit
    qr_small: QrSlot  # pages 2..n
    code_small: TextSlot  # pages 2..n, under the small QR code
    footer: TextSlot  # every page


@dataclass(slots=True)
class FormLayout:
    """A questionnaire laid out for one campaign: static pages plus personal-data slots."""

    questionnaire: Questionnaire
    campaign: CampaignInfo
    pages: tuple[tuple[Op, ...], ...]
    slots: Slots
    page_size: tuple[float, float] = (PAGE_W, PAGE_H)
    _template: object | None = field(default=None, repr=False, compare=False)

    @property
    def page_count(self) -> int:
        """Pages per form."""
        return len(self.pages)


# --- question helpers ------------------------------------------------------------------------


def keying_codes(question: Question) -> tuple[str, ...]:
    """What is printed next to each option's box and typed by a keyer.

    The option codes themselves when they are all short numbers (e.g. "1".."5", "9"),
    otherwise the options' positions "1".."n" (codes like "duoi_25" are not typable).
    """
    codes = tuple(o.code for o in question.options)
    if codes and all(c.isdigit() and len(c) <= 3 for c in codes):
        return codes
    return tuple(str(i) for i in range(1, len(codes) + 1))


_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")


def _roman(n: int) -> str:
    return _ROMAN[n - 1] if n <= len(_ROMAN) else str(n)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def _paragraphs(text: str) -> list[str]:
    """Split on blank lines; join wrapped source lines."""
    paras, cur = [], []
    for line in _nfc(text).splitlines():
        if line.strip():
            cur.append(line.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras


# --- blocks and pagination -------------------------------------------------------------------

Emit = Callable[[float], list[Op]]  # top y → operations


@dataclass(slots=True)
class _Block:
    height: float
    emit: Emit
    keep_with_next: bool = False
    header: _Block | None = None  # repeated at the top of a page when a table continues
    space_before: float = 0.0


def _text_lines(
    x: float, lines: Sequence[str], font: Font, size: float, leading: float, first_baseline: float
) -> list[Op]:
    return [TextOp(x, first_baseline - i * leading, ln, font, size) for i, ln in enumerate(lines)]


def _paragraph_block(
    text: str,
    *,
    font: Font = Font.REGULAR,
    size: float = BODY,
    leading: float = LEADING,
    indent: float = 0.0,
    width: float = CONTENT_W,
    space_before: float = 4.0,
    keep_with_next: bool = False,
    align: Align = Align.LEFT,
) -> _Block:
    lines = wrap_text(text, font, size, width - indent)

    def emit(top: float) -> list[Op]:
        base = top - size
        if align is Align.RIGHT:
            return [
                TextOp(MARGIN_X + width, base - i * leading, ln, font, size, Align.RIGHT)
                for i, ln in enumerate(lines)
            ]
        return _text_lines(MARGIN_X + indent, lines, font, size, leading, base)

    return _Block(
        len(lines) * leading + 2, emit, keep_with_next=keep_with_next, space_before=space_before
    )


def _section_block(number: int, section: Section) -> list[_Block]:
    title = f"{_roman(number)}. {_nfc(section.title)}"
    lines = wrap_text(title, Font.BOLD, 10.5, CONTENT_W - 12)
    h = len(lines) * 13 + 7

    def emit(top: float) -> list[Op]:
        ops: list[Op] = [RectOp(MARGIN_X, top - h, CONTENT_W, h, 0, fill=0.86)]
        ops += _text_lines(MARGIN_X + 6, lines, Font.BOLD, 10.5, 13, top - 13.5)
        return ops

    blocks = [_Block(h, emit, keep_with_next=True, space_before=10)]
    if section.intro:
        blocks.append(
            _paragraph_block(
                section.intro, font=Font.ITALIC, size=8.5, leading=11, space_before=3,
                keep_with_next=True,
            )
        )
    return blocks


def _condition_note(q: Question, numbers: dict[str, int], codes: dict[str, dict[str, str]]) -> str:
    cond = q.show_if
    if cond is None:
        return ""
    ref = numbers.get(cond.question)
    target = f"câu {ref}" if ref is not None else f"câu {cond.question}"
    keyed = codes.get(cond.question, {})
    values = ", ".join(keyed.get(v, v) for v in cond.values)
    if cond.op is ConditionOp.IN:
        return f"(Chỉ trả lời nếu ở {target} đã chọn: {values})"
    if cond.op is ConditionOp.NOT_IN:
        return f"(Chỉ trả lời nếu ở {target} không chọn: {values})"
    return f"(Chỉ trả lời nếu đã trả lời {target})"


def _question_lines(
    number: int, q: Question, note: str, width: float
) -> tuple[list[tuple[str, Font, float]], float]:
    """Wrapped lines (text, font, size) of a question's text, help and notes, and their height."""
    out: list[tuple[str, Font, float]] = []
    for ln in wrap_text(_nfc(q.text), Font.BOLD, BODY, width):
        out.append((ln, Font.BOLD, BODY))
    extras = []
    if q.kind is QuestionKind.MULTI:
        extras.append("(Có thể chọn nhiều phương án)")
    if q.help:
        extras.append(_nfc(q.help))
    if note:
        extras.append(note)
    for extra in extras:
        for ln in wrap_text(extra, Font.ITALIC, 8.5, width):
            out.append((ln, Font.ITALIC, 8.5))
    height = sum(LEADING if f is Font.BOLD else 11 for _, f, _ in out)
    return out, height


def _emit_question_text(
    top: float, number: int, lines: list[tuple[str, Font, float]], x_text: float
) -> tuple[list[Op], float]:
    ops: list[Op] = [TextOp(MARGIN_X, top - BODY, f"{number}.", Font.BOLD, BODY)]
    y = top
    for text, font, size in lines:
        step = LEADING if font is Font.BOLD else 11
        ops.append(TextOp(x_text, y - size, text, font, size))
        y -= step
    return ops, y


def _checkbox(x: float, y_top: float, code: str) -> list[Op]:
    """A box whose top-left is (x, y_top), with its keying code just right of it."""
    return [
        RectOp(x, y_top - BOX, BOX, BOX, 0.8, fill=1.0),
        TextOp(x + BOX + 2, y_top - BOX + 1.2, code, Font.BOLD, 7, grey=0.35),
    ]


NUM_W = 20.0  # question-number column


def _choice_blocks(number: int, q: Question, note: str) -> list[_Block]:
    """A question with its options as check boxes, flowing in one row or in columns."""
    x_text = MARGIN_X + NUM_W
    width = CONTENT_W - NUM_W
    qlines, qh = _question_lines(number, q, note, width)
    codes = keying_codes(q)
    labels = [_nfc(o.label) for o in q.options]
    code_w = max(text_width(c, Font.BOLD, 7) for c in codes)
    item_ws = [BOX + 4 + code_w + 4 + text_width(lb, Font.REGULAR, BODY) for lb in labels]
    gap = 16.0
    row_h = 15.0
    if sum(item_ws) + gap * (len(item_ws) - 1) <= width:
        ncols, col_w = len(item_ws), 0.0
        positions = []
        x = x_text
        for w in item_ws:
            positions.append(x)
            x += w + gap
        wrapped = [[lb] for lb in labels]
        rows = 1
        row_heights = [row_h]
    else:
        ncols = 3 if max(item_ws) <= (width - 2 * gap) / 3 else 2
        if max(item_ws) > (width - gap) / 2:
            ncols = 1 if max(item_ws) > width else 2
        col_w = (width - gap * (ncols - 1)) / ncols
        label_w = col_w - (BOX + 4 + code_w + 4)
        wrapped = [wrap_text(lb, Font.REGULAR, BODY, label_w) or [""] for lb in labels]
        rows = -(-len(labels) // ncols)
        # fill down the columns, as people read lists
        row_heights = []
        for r in range(rows):
            lines_here = [
                len(wrapped[c * rows + r]) for c in range(ncols) if c * rows + r < len(labels)
            ]
            row_heights.append(max(row_h, max(lines_here) * 11.5 + 3.5))
        positions = []
    height = qh + 3 + sum(row_heights) + 2

    def emit(top: float) -> list[Op]:
        ops, y = _emit_question_text(top, number, qlines, x_text)
        y -= 3
        if col_w == 0.0:
            for x, code, lb in zip(positions, codes, labels, strict=True):
                ops += _checkbox(x, y - 2, code)
                ops.append(TextOp(x + BOX + 4 + code_w + 4, y - BODY - 0.5, lb))
            return ops
        for i, (code, lines) in enumerate(zip(codes, wrapped, strict=True)):
            col, row = divmod(i, rows)
            x = x_text + col * (col_w + gap)
            ry = y - sum(row_heights[:row])
            ops += _checkbox(x, ry - 2, code)
            for j, ln in enumerate(lines):
                ops.append(TextOp(x + BOX + 4 + code_w + 4, ry - BODY - 0.5 - j * 11.5, ln))
        return ops

    return [_Block(height, emit, space_before=7)]


def _free_blocks(number: int, q: Question, note: str) -> list[_Block]:
    """TEXT: ruled lines to write on; NUMBER: digit boxes."""
    x_text = MARGIN_X + NUM_W
    width = CONTENT_W - NUM_W
    qlines, qh = _question_lines(number, q, note, width)
    if q.kind is QuestionKind.NUMBER:
        digits = 4
        if q.max_value is not None:
            digits = max(1, min(12, len(str(int(abs(q.max_value))))))
        if q.min_value is not None and q.min_value < 0:
            digits += 1
        height = qh + 22

        def emit_number(top: float) -> list[Op]:
            ops, y = _emit_question_text(top, number, qlines, x_text)
            for i in range(digits):
                ops.append(RectOp(x_text + i * 15, y - 19, 15, 16, 0.8, fill=1.0))
            return ops

        return [_Block(height, emit_number, space_before=7)]

    n_lines = 1 if q.max_length <= 60 else 2 if q.max_length <= 200 else 4
    height = qh + n_lines * 20 + 2

    def emit_text(top: float) -> list[Op]:
        ops, y = _emit_question_text(top, number, qlines, x_text)
        for i in range(n_lines):
            yy = y - 18 - i * 20
            ops.append(LineOp(x_text, yy, MARGIN_X + CONTENT_W, yy, 0.5, grey=0.55))
        return ops

    return [_Block(height, emit_text, space_before=7)]


GRID_KINDS = (QuestionKind.SATISFACTION, QuestionKind.YES_NO, QuestionKind.RATING)


def _grid_blocks(
    first_number: int,
    questions: Sequence[Question],
    notes: Sequence[str],
) -> list[_Block]:
    """Questions sharing one option set as a table: one row per question, one column per option."""
    q0 = questions[0]
    codes = keying_codes(q0)
    labels = [_nfc(o.label) for o in q0.options]
    k = len(codes)
    col_w = min(44.0, max(24.0, 0.5 * CONTENT_W / k))
    text_w = CONTENT_W - NUM_W - k * col_w - 6
    x_cols = MARGIN_X + CONTENT_W - k * col_w
    head_lines = [
        wrap_text(lb, Font.REGULAR, 7, col_w - 3) if lb != code else []
        for lb, code in zip(labels, codes, strict=True)
    ]
    head_h = max(len(h) for h in head_lines) * 8.2 + 14
    box_codes = col_w >= 30  # narrow columns: the header alone names the code

    def emit_header(top: float) -> list[Op]:
        ops: list[Op] = [RectOp(MARGIN_X, top - head_h, CONTENT_W, head_h, 0, fill=0.93)]
        ops.append(
            TextOp(MARGIN_X + NUM_W, top - 12, "Đánh dấu X vào một ô mỗi dòng",
                   Font.ITALIC, 7.5, grey=0.3)
        )
        for i, (code, lines) in enumerate(zip(codes, head_lines, strict=True)):
            cx = x_cols + (i + 0.5) * col_w
            ops.append(TextOp(cx, top - 9.5, code, Font.BOLD, 8, Align.CENTER))
            for j, ln in enumerate(lines):
                ops.append(TextOp(cx, top - 18 - j * 8.2, ln, Font.REGULAR, 7, Align.CENTER))
        ops.append(LineOp(MARGIN_X, top - head_h, MARGIN_X + CONTENT_W, top - head_h, 0.6))
        return ops

    header = _Block(head_h, emit_header, keep_with_next=True, space_before=6)
    blocks = [header]
    for i, (q, note) in enumerate(zip(questions, notes, strict=True)):
        number = first_number + i
        qlines, qh = _question_lines(number, q, note, text_w)
        # the question text in a grid row is regular weight, there are many rows
        qlines = [(t, Font.REGULAR if f is Font.BOLD else f, s) for t, f, s in qlines]
        row_h = max(17.0, qh + 5)
        shade = i % 2 == 1

        def emit_row(
            top: float, qlines=qlines, row_h=row_h, shade=shade, number=number
        ) -> list[Op]:
            ops: list[Op] = []
            if shade:
                ops.append(RectOp(MARGIN_X, top - row_h, CONTENT_W, row_h, 0, fill=0.96))
            ops.append(TextOp(MARGIN_X + 2, top - BODY - 2.5, f"{number}.", Font.BOLD, BODY))
            y = top - 2.5
            for text, font, size in qlines:
                ops.append(TextOp(MARGIN_X + NUM_W, y - size, text, font, size))
                y -= LEADING if size == BODY else 11
            box_top = top - (row_h - BOX) / 2
            for j, code in enumerate(codes):
                cx = x_cols + (j + 0.5) * col_w
                if box_codes:
                    ops += _checkbox(cx - BOX / 2 - 3, box_top, code)
                else:
                    ops.append(RectOp(cx - BOX / 2, box_top - BOX, BOX, BOX, 0.8, fill=1.0))
            ops.append(LineOp(MARGIN_X, top - row_h, MARGIN_X + CONTENT_W, top - row_h, 0.3,
                              grey=0.6))
            return ops

        blocks.append(_Block(row_h, emit_row, header=header))
    return blocks


def _same_options(a: Question, b: Question) -> bool:
    return [(o.code, o.label) for o in a.options] == [(o.code, o.label) for o in b.options]


def _question_blocks(questionnaire: Questionnaire) -> list[_Block]:
    numbers = {q.id: i for i, q in enumerate(questionnaire.questions(), 1)}
    keyed = {
        q.id: dict(zip((o.code for o in q.options), keying_codes(q), strict=True))
        for q in questionnaire.questions()
    }
    blocks: list[_Block] = []
    for s_index, section in enumerate(questionnaire.sections, 1):
        blocks += _section_block(s_index, section)
        qs = list(section.questions)
        i = 0
        while i < len(qs):
            q = qs[i]
            note = _condition_note(q, numbers, keyed)
            if q.kind in GRID_KINDS and q.options and len(q.options) <= 12:
                j = i + 1
                while j < len(qs) and qs[j].kind in GRID_KINDS and _same_options(q, qs[j]):
                    j += 1
                group = qs[i:j]
                notes = [_condition_note(g, numbers, keyed) for g in group]
                blocks += _grid_blocks(numbers[q.id], group, notes)
                i = j
                continue
            if q.kind.has_options and q.options:
                blocks += _choice_blocks(numbers[q.id], q, note)
            else:
                blocks += _free_blocks(numbers[q.id], q, note)
            i += 1
    return blocks


def _paginate(
    blocks: list[_Block], first_top: float, other_top: float, bottom: float
) -> list[list[Op]]:
    pages: list[list[Op]] = [[]]
    y = first_top
    at_page_top = False
    last_header: _Block | None = None
    i = 0
    while i < len(blocks):
        b = blocks[i]
        # a block that must stay with the next one moves along if they do not fit together
        need = b.space_before + b.height
        j = i
        while blocks[j].keep_with_next and j + 1 < len(blocks):
            j += 1
            need += blocks[j].space_before + blocks[j].height
        if y - need < bottom and not at_page_top:
            pages.append([])
            y = other_top
            at_page_top = True
            if b.header is not None and b.header is last_header:
                pages[-1] += b.header.emit(y)
                y -= b.header.height
                at_page_top = True  # a row taller than a page must not loop forever
            continue
        if not at_page_top:
            y -= b.space_before
        pages[-1] += b.emit(y)
        y -= b.height
        at_page_top = False
        if b.header is None and b.keep_with_next:
            last_header = b
        i += 1
    return pages


# --- page furniture --------------------------------------------------------------------------


def _first_page_head(
    q: Questionnaire, c: CampaignInfo
) -> tuple[list[Op], float, dict[str, object]]:
    """Header, recipient block and cover letter of page 1; returns ops, next y and slot data."""
    ops: list[Op] = []
    left_w = CONTENT_W - RIGHT_COL_W - 10
    y = PAGE_H - MARGIN_TOP
    if c.organiser:
        for ln in wrap_text(_nfc(c.organiser), Font.BOLD, 9, left_w):
            ops.append(TextOp(MARGIN_X, y - 9, ln, Font.BOLD, 9))
            y -= 11.5
    campaign = _nfc(c.name)
    if str(c.year) not in campaign:
        campaign = f"{campaign} năm {c.year}"
    for ln in wrap_text(campaign, Font.REGULAR, 9, left_w):
        ops.append(TextOp(MARGIN_X, y - 9, ln, Font.REGULAR, 9))
        y -= 11.5
    y -= 8
    for ln in wrap_text(_nfc(q.title).upper(), Font.BOLD, 12.5, left_w):
        ops.append(TextOp(MARGIN_X, y - 12.5, ln, Font.BOLD, 12.5))
        y -= 15.5
    y -= 6
    label = "Đơn vị được đánh giá: "
    label_w = text_width(label, Font.REGULAR, 10)
    ops.append(TextOp(MARGIN_X, y - 10, label, Font.REGULAR, 10))
    rated_slot: TextSlot | None = None
    if c.rated_unit_name:
        lines = wrap_text(_nfc(c.rated_unit_name), Font.BOLD, 10, left_w - label_w)
        for ln in lines:
            ops.append(TextOp(MARGIN_X + label_w, y - 10, ln, Font.BOLD, 10))
            y -= 13
    else:
        rated_slot = TextSlot(MARGIN_X + label_w, y - 10, left_w - label_w, Font.BOLD, 10,
                              max_lines=2, leading=13)
        y -= 26
    left_bottom = y

    # right column: QR code (personal), its code, serial and link
    rx = MARGIN_X + CONTENT_W - RIGHT_COL_W
    cx = rx + RIGHT_COL_W / 2
    top = PAGE_H - MARGIN_TOP
    qr_main = QrSlot(cx - QR_MAIN / 2, top - QR_MAIN, QR_MAIN)
    ry = top - QR_MAIN - 8
    ops.append(TextOp(cx, ry - 7, "Mã phiếu (nhập khi trả lời qua mạng)", Font.REGULAR, 6.5,
                      Align.CENTER, grey=0.3))
    code_main = TextSlot(cx, ry - 7 - 13, RIGHT_COL_W, Font.BOLD, 12, Align.CENTER)
    serial_main = TextSlot(cx, ry - 7 - 13 - 11, RIGHT_COL_W, Font.REGULAR, 8, Align.CENTER)
    link_main = TextSlot(cx, ry - 7 - 13 - 11 - 10, RIGHT_COL_W, Font.REGULAR, 6.8, Align.CENTER,
                         max_lines=2, leading=8.5)
    right_bottom = ry - 7 - 13 - 11 - 10 - 8.5 - 4
    y = min(left_bottom, right_bottom) - 6
    ops.append(LineOp(MARGIN_X, y, MARGIN_X + CONTENT_W, y, 0.8))
    y -= 6
    recipient = TextSlot(MARGIN_X, y - BODY, CONTENT_W, Font.REGULAR, BODY, max_lines=3,
                         leading=LEADING)
    y -= 3 * LEADING + 4
    slot_data: dict[str, object] = {
        "qr_main": qr_main, "code_main": code_main, "serial_main": serial_main,
        "link_main": link_main, "recipient": recipient, "rated_unit": rated_slot,
    }
    return ops, y, slot_data


def _cover_blocks(q: Questionnaire, c: CampaignInfo) -> list[_Block]:
    paras = _paragraphs(q.intro) if q.intro.strip() else []
    # a greeting line belongs to the recipient block, which prints its own
    if paras and paras[0].lower().startswith("kính gửi"):
        paras = paras[1:]
    organiser = _nfc(c.organiser) or "Cơ quan tổ chức khảo sát"
    if not paras:
        paras = [
            f"{organiser} tổ chức lấy ý kiến trong khuôn khổ {_nfc(c.name)} nhằm đánh giá khách "
            "quan chất lượng phục vụ và công tác cải cách hành chính. Xin Ông/Bà dành ít phút "
            "trả lời các câu hỏi dưới đây."
        ]
    text = " ".join(paras).lower()
    if "bí mật" not in text and "tổng hợp" not in text:
        paras.append(
            "Mọi thông tin Ông/Bà cung cấp được giữ bí mật và chỉ được sử dụng dưới dạng số liệu "
            "tổng hợp, không dùng để nhận diện cá nhân."
        )
    blocks = [_paragraph_block(p, space_before=4) for p in paras]
    how = (
        "Cách trả lời: đánh dấu X vào ô trước phương án Ông/Bà chọn (con số cạnh mỗi ô là mã "
        "dùng để nhập liệu). Ông/Bà cũng có thể trả lời trên điện thoại: quét mã QR ở góc trên "
        "bên phải hoặc mở đường dẫn in dưới mã QR; mỗi mã chỉ dùng cho một phiếu."
    )
    blocks.append(_paragraph_block(how, size=8.8, leading=11.5, font=Font.ITALIC, space_before=5))
    contact = " ".join(x for x in (_nfc(q.contact), _nfc(c.contact)) if x)
    if contact:
        blocks.append(_paragraph_block(f"Liên hệ: {contact}", size=8.8, leading=11.5,
                                       space_before=3))
    return blocks


def _closing_blocks(c: CampaignInfo) -> list[_Block]:
    parts = ["Xin trân trọng cảm ơn Ông/Bà!"]
    ret = "Xin gửi lại phiếu"
    if c.deadline is not None:
        ret += f" trước ngày {c.deadline:%d/%m/%Y}"
    ret += " bằng phong bì trả lời kèm theo"
    if c.return_address:
        ret += f" về địa chỉ: {_nfc(c.return_address)}"
    ret += ", hoặc trả lời trên điện thoại bằng mã QR."
    return [
        _paragraph_block(parts[0], font=Font.BOLD, size=10.5, leading=13, space_before=14),
        _paragraph_block(ret, size=8.8, leading=11.5, space_before=2),
    ]


def _page_furniture(q: Questionnaire, c: CampaignInfo, index: int, count: int) -> list[Op]:
    ops: list[Op] = []
    if index > 0:
        top = PAGE_H - MARGIN_TOP
        w = CONTENT_W - QR_SMALL - 130
        ops.append(TextOp(MARGIN_X, top - 8, fit_text(_nfc(q.title), Font.BOLD, 8, w), Font.BOLD,
                          8, grey=0.25))
        campaign = _nfc(c.name) + (f" · {_nfc(c.rated_unit_name)}" if c.rated_unit_name else "")
        ops.append(TextOp(MARGIN_X, top - 19, fit_text(campaign, Font.REGULAR, 7.5, w),
                          Font.REGULAR, 7.5, grey=0.25))
        y = top - HEADER_H + 6
        ops.append(LineOp(MARGIN_X, y, MARGIN_X + CONTENT_W, y, 0.6, grey=0.3))
    fy = FOOTER_Y + 11
    ops.append(LineOp(MARGIN_X, fy, MARGIN_X + CONTENT_W, fy, 0.4, grey=0.5))
    ops.append(TextOp(MARGIN_X + CONTENT_W, FOOTER_Y, f"Trang {index + 1}/{count}", Font.BOLD,
                      8.5, Align.RIGHT))
    return ops


def prepare_layout(
    questionnaire: Questionnaire, campaign: CampaignInfo, *, duplex: bool = True
) -> FormLayout:
    """Lay the questionnaire out for a campaign.

    With `duplex`, an odd page count is padded with a blank last page so that, printed two-sided
    in one batch, each form starts on a new sheet.
    """
    register_fonts()
    head_ops, y, slot_data = _first_page_head(questionnaire, campaign)
    blocks = _cover_blocks(questionnaire, campaign)
    blocks += _question_blocks(questionnaire)
    blocks += _closing_blocks(campaign)
    other_top = PAGE_H - MARGIN_TOP - HEADER_H
    pages = _paginate(blocks, y, other_top, CONTENT_BOTTOM)
    pages[0] = head_ops + pages[0]
    if duplex and len(pages) % 2:
        pages.append([TextOp(PAGE_W / 2, PAGE_H / 2, "(Trang để trống)", Font.ITALIC, 9,
                             Align.CENTER, grey=0.5)])
    count = len(pages)
    final = tuple(
        tuple(ops + _page_furniture(questionnaire, campaign, i, count))
        for i, ops in enumerate(pages)
    )
    top = PAGE_H - MARGIN_TOP
    qr_small = QrSlot(MARGIN_X + CONTENT_W - QR_SMALL, top - QR_SMALL, QR_SMALL)
    code_small = TextSlot(MARGIN_X + CONTENT_W - QR_SMALL - 10, top - 8, 120, Font.BOLD, 9,
                          Align.RIGHT)
    footer = TextSlot(MARGIN_X, FOOTER_Y, CONTENT_W - 80, Font.REGULAR, 8.5)
    slots = Slots(qr_small=qr_small, code_small=code_small, footer=footer, **slot_data)  # type: ignore[arg-type]
    return FormLayout(questionnaire, campaign, final, slots)
