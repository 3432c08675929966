"""Fonts with full Vietnamese coverage (Roboto from the `font-roboto` package) and text fitting.

Fonts are registered with reportlab as TrueType fonts, which reportlab embeds as subsets; nothing
is read from system font paths and no standard-14 font is ever used.
"""

from __future__ import annotations

import string
import unicodedata
from enum import StrEnum
from functools import cache

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


def text_width(text: str, font: Font, size: float) -> float:
    """Width in points of `text` set in `font` at `size`."""
    return pdfmetrics.stringWidth(text, str(font), size)


def wrap_text(text: str, font: Font, size: float, width: float) -> list[str]:
    """Greedy word wrap to `width` points; words longer than a line are split by characters.

    Explicit newlines start new lines; an empty string gives no lines.
    """
    lines: list[str] = []
    space = text_width(" ", font, size)
    for paragraph in text.split("\n"):
        current = ""
        current_w = 0.0
        for word in paragraph.split():
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
