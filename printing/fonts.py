"""Fonts with full Vietnamese coverage (Roboto from the `font-roboto` package) and text fitting.

Fonts are registered with reportlab as TrueType fonts, which reportlab embeds as subsets; nothing
is read from system font paths and no standard-14 font is ever used.
"""

from __future__ import annotations

import re
import string
import unicodedata
from enum import StrEnum
from functools import cache, lru_cache
from itertools import repeat

import font_roboto
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont


class Font(StrEnum):
    """The faces forms use (reportlab font names)."""

    REGULAR = "Roboto"
    BOLD = "Roboto-Bold"
    ITALIC = "Roboto-Italic"


_FILES = {Font.REGULAR: "Roboto", Font.BOLD: "RobotoBold", Font.ITALIC: "RobotoItalic"}


@cache
def register_fonts() -> None:
    """Register the Roboto faces with reportlab (idempotent)."""
    for font, key in _FILES.items():
        pdfmetrics.registerFont(TTFont(str(font), font_roboto.font_files[key]))


def _vietnamese_letters() -> str:
    bases = "aăâeêioôơuưy"
    tones = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
    letters = {unicodedata.normalize("NFC", b + t) for b in bases for t in tones}
    letters |= {ch.upper() for ch in letters}
    letters |= {"đ", "Đ"}
    return "".join(sorted(letters))


# Every character personal text (names, addresses, units, links) may use. The form template
# draws them once so the embedded font subsets contain them; anything else is transliterated.
PERSONAL_REPERTOIRE = (
    string.digits + string.ascii_letters + string.punctuation + " " + _vietnamese_letters()
    + "–—·…“”‘’°№"
)
_REPERTOIRE_SET = frozenset(PERSONAL_REPERTOIRE)


def printable_text(text: str) -> str:
    """NFC text restricted to the personal repertoire (other letters lose their marks, or '?')."""
    text = unicodedata.normalize("NFC", " ".join(text.split()))
    if all(ch in _REPERTOIRE_SET for ch in text):
        return text
    out = []
    for ch in text:
        if ch in _REPERTOIRE_SET:
            out.append(ch)
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)
        )
        out.append(base if base and all(c in _REPERTOIRE_SET for c in base) else "?")
    return "".join(out)


@lru_cache(maxsize=8192)
def _unit_width(text: str, font: Font) -> float:
    return pdfmetrics.stringWidth(text, str(font), 1.0)


_DIGITS = frozenset("0123456789")
_DIGIT_GAP = re.compile(r"(?<=\d) (?=\d)")
_SPACES = re.compile(r"[ \t\r\f\v]+")  # not U+00A0, which glues words


def text_width(text: str, font: Font, size: float) -> float:
    """Width in points of `text` set in `font` at `size`.

    Widths of digit-free text (words of names, addresses, questions: a limited vocabulary) are
    cached; text with digits (codes, serials, links, house numbers) is mostly unique, so it is
    measured afresh rather than filling the cache.
    """
    if _DIGITS.isdisjoint(text):
        return _unit_width(text, font) * size
    widths, default = _char_widths(font)
    return sum(map(widths.get, text, repeat(default, len(text)))) * size / 1000


@cache
def _char_widths(font: Font) -> tuple[dict[str, float], float]:
    """Advance widths (per 1000 em) by character, as reportlab measures them."""
    face = pdfmetrics.getFont(str(font)).face
    return {chr(k): v for k, v in face.charWidths.items()}, face.defaultWidth


def wrap_text(text: str, font: Font, size: float, width: float) -> list[str]:
    """Greedy word wrap to `width` points; words longer than a line are split by characters.

    Explicit newlines start new lines; an empty string gives no lines.
    """
    lines: list[str] = []
    space = text_width(" ", font, size)
    for paragraph in text.split("\n"):
        # keep digit groups together ("0232 3822 123"): join them with no-break spaces
        paragraph = _DIGIT_GAP.sub("\u00a0", paragraph)
        current = ""
        current_w = 0.0
        for word in _SPACES.split(paragraph.strip()):
            if not word:
                continue
            w = text_width(word, font, size)
            if w > width:  # e.g. a long link: break it by characters
                if current:
                    lines.append(current)
                    current, current_w = "", 0.0
                piece = ""
                for ch in word:
                    if text_width(piece + ch, font, size) > width and piece:
                        lines.append(piece)
                        piece = ch
                    else:
                        piece += ch
                current, current_w = piece, text_width(piece, font, size)
                continue
            if not current:
                current, current_w = word, w
            elif current_w + space + w <= width:
                current += " " + word
                current_w += space + w
            else:
                lines.append(current)
                current, current_w = word, w
        if current:
            lines.append(current)
    return lines


def fit_text(text: str, font: Font, size: float, width: float) -> str:
    """`text` cut with an ellipsis so that it fits on one line of `width` points."""
    if text_width(text, font, size) <= width:
        return text
    while text and text_width(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"
