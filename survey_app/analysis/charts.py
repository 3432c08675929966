"""Server-side SVG charts (no script, no inline style, no external resource).

Pure functions: plain tuples in, an SVG string out. Colours and sizes are SVG presentation
attributes (allowed by the CSP); fonts come from the page's stylesheet (`svg.chart text`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

ChartItem = tuple[str, float | None, float | None, float | None]  # label, value, low, high

LABEL_WIDTH = 280
PLOT_WIDTH = 420
RIGHT_PAD = 60
ROW_HEIGHT = 24
TOP = 28
BOTTOM = 8
ACCENT = "#0b5cab"
WHISKER = "#1d2733"
GRID = "#d5dbe1"
MUTED = "#5b6775"


def _ok(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _short(label: str, limit: int = 42) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _fmt(value: float) -> str:
    return f"{value:.1f}".replace(".", ",")


def interval_chart(items: Sequence[ChartItem], *, title: str, max_value: float = 100.0,
                   bars: bool = False, unit_suffix: str = "%") -> str:
    """Horizontal chart: one row per item with its value (a dot, or a bar when `bars`) and a
    95 % confidence whisker from low to high; items without a value say so.

    Used for the scoreboard (units with CI whiskers) and a unit's element profile.
    """
    n = max(len(items), 1)
    width = LABEL_WIDTH + PLOT_WIDTH + RIGHT_PAD
    height = TOP + n * ROW_HEIGHT + BOTTOM + 16
    scale = PLOT_WIDTH / max_value if max_value > 0 else 0.0

    def x(v: float) -> float:
        return LABEL_WIDTH + max(0.0, min(v, max_value)) * scale

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    # Grid and axis labels every fifth of the range.
    for k in range(6):
        v = max_value * k / 5
        gx = x(v)
        out.append(f'<line x1="{gx:.1f}" y1="{TOP - 6}" x2="{gx:.1f}" '
                   f'y2="{TOP + n * ROW_HEIGHT}" stroke="{GRID}" stroke-width="1"/>')
        out.append(f'<text x="{gx:.1f}" y="{TOP - 10}" text-anchor="middle" '
                   f'fill="{MUTED}" class="axis">{v:g}</text>')
    for i, (label, value, low, high) in enumerate(items):
        cy = TOP + i * ROW_HEIGHT + ROW_HEIGHT / 2
        out.append(f'<text x="{LABEL_WIDTH - 8}" y="{cy + 4:.1f}" text-anchor="end" '
                   f'fill="{WHISKER}"><title>{escape(label)}</title>{escape(_short(label))}'
                   "</text>")
        if not _ok(value):
            out.append(f'<text x="{LABEL_WIDTH + 4}" y="{cy + 4:.1f}" fill="{MUTED}">'
                       "chưa có điểm</text>")
            continue
        assert value is not None
        if bars:
            out.append(f'<rect x="{LABEL_WIDTH}" y="{cy - 7:.1f}" '
                       f'width="{x(value) - LABEL_WIDTH:.1f}" height="14" fill="{ACCENT}" '
                       'fill-opacity="0.75"/>')
        if _ok(low) and _ok(high):
            assert low is not None and high is not None
            x1, x2 = x(low), x(high)
            out.append(f'<line x1="{x1:.1f}" y1="{cy:.1f}" x2="{x2:.1f}" y2="{cy:.1f}" '
                       f'stroke="{WHISKER}" stroke-width="1.5"/>')
            for xe in (x1, x2):
                out.append(f'<line x1="{xe:.1f}" y1="{cy - 5:.1f}" x2="{xe:.1f}" '
                           f'y2="{cy + 5:.1f}" stroke="{WHISKER}" stroke-width="1.5"/>')
        if not bars:
            out.append(f'<circle cx="{x(value):.1f}" cy="{cy:.1f}" r="4.5" fill="{ACCENT}"/>')
        right = max(x(value), x(high) if _ok(high) else 0.0)  # type: ignore[arg-type]
        out.append(f'<text x="{right + 6:.1f}" y="{cy + 4:.1f}" fill="{WHISKER}">'
                   f"{_fmt(value)}{escape(unit_suffix)}</text>")
    out.append("</svg>")
    return "".join(out)
