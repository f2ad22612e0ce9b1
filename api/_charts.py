"""Bar charts for the monthly report, laid out once and drawn twice: as SVG in the console page and as
PDF operators in the report PDF (issue 23: the same charts in both).

A chart is horizontal bars: one group per category (a township, a refusal reason, an agreement), one bar per
series in each group (the months, or a single series). :func:`layout` turns it into shapes in a box of the
given width, origin top-left, y growing down; :func:`to_svg` writes them as an ``<svg>`` element and the
report's canvas draws the same shapes in the PDF.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

#: Fill colours of the series, in order (print well in grey too: the lightness differs).
PALETTE = ("#b22222", "#1f5f99", "#d9822b", "#2e7d32", "#6a3d9a", "#7f7f7f", "#00838f", "#8d6e63")
TEXT_COLOUR = "#222222"
AXIS_COLOUR = "#888888"
TITLE_SIZE = 11.0
LABEL_SIZE = 9.0
VALUE_SIZE = 8.0


@dataclass(frozen=True)
class BarChart:
    chart_id: str
    title: str
    categories: tuple[str, ...]
    series: tuple[str, ...]
    #: one row per category, one value per series
    values: tuple[tuple[int, ...], ...]
    empty_text: str = "本月无数据"


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    colour: str


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # the baseline
    text: str
    size: float
    anchor: str = "start"  # start | end
    colour: str = TEXT_COLOUR
    full: str = ""  # the whole text when ``text`` was cut (a tooltip in SVG)


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    colour: str = AXIS_COLOUR


Shape = Rect | Text | Line


def text_width(text: str, size: float) -> float:
    """A conservative width estimate: CJK and full-width forms one em, everything else 0.62 em."""
    return sum(size if ord(c) > 0x2E7F else size * 0.62 for c in text)


def fit(text: str, size: float, width: float) -> str:
    """``text`` cut (with …) so that its estimated width is at most ``width``."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def layout(chart: BarChart, width: float) -> tuple[float, list[Shape]]:
    """The chart's shapes in a ``width``-wide box, and the box's height."""
    shapes: list[Shape] = [Text(0, TITLE_SIZE + 1, fit(chart.title, TITLE_SIZE, width), TITLE_SIZE)]
    y = TITLE_SIZE + 8
    multi = len(chart.series) > 1
    if multi:  # the legend: a swatch and the series' name, wrapping at the width
        x = 0.0
        y += 4
        for i, name in enumerate(chart.series):
            item = 12 + text_width(name, LABEL_SIZE) + 12
            if x + item > width and x > 0:
                x, y = 0.0, y + 14
            shapes.append(Rect(x, y - 8, 9, 9, PALETTE[i % len(PALETTE)]))
            shapes.append(Text(x + 12, y, name, LABEL_SIZE))
            x += item
        y += 10
    y += 4
    total = sum(sum(row) for row in chart.values)
    if not chart.categories or total == 0:
        shapes.append(Text(0, y + 12, chart.empty_text, LABEL_SIZE, colour=AXIS_COLOUR))
        return y + 20, shapes
    label_w = min(240.0, width * 0.4)
    x0 = label_w + 6
    value_room = text_width(str(max(max(row) for row in chart.values)), VALUE_SIZE) + 6
    span = max(20.0, width - x0 - value_room)
    peak = max(max(row) for row in chart.values)
    bar_h = 8.0 if multi else 12.0
    top = y
    for label, row in zip(chart.categories, chart.values, strict=True):
        group_h = bar_h * len(row)
        shapes.append(
            Text(
                label_w,
                y + group_h / 2 + LABEL_SIZE * 0.35,
                fit(label, LABEL_SIZE, label_w),
                LABEL_SIZE,
                "end",
                full=label,
            )
        )
        for i, value in enumerate(row):
            w = span * value / peak
            if w > 0:
                shapes.append(Rect(x0, y + i * bar_h, w, bar_h - 1, PALETTE[i % len(PALETTE)]))
            if value or not multi:
                shapes.append(Text(x0 + w + 3, y + i * bar_h + bar_h - 2, str(value), VALUE_SIZE))
        y += group_h + 6
    shapes.append(Line(x0, top - 2, x0, y - 4))
    return y, shapes


def to_svg(chart: BarChart, width: float = 640) -> str:
    """The chart as an inline ``<svg>`` element (every text escaped; no script, no external reference)."""
    height, shapes = layout(chart, width)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart.chart_id)}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" role="img" '
        f'aria-label="{escape(chart.title)}"><title>{escape(chart.title)}</title>'
    ]
    for s in shapes:
        if isinstance(s, Rect):
            parts.append(
                f'<rect x="{s.x:.1f}" y="{s.y:.1f}" width="{s.w:.1f}" height="{s.h:.1f}" fill="{s.colour}"/>'
            )
        elif isinstance(s, Line):
            parts.append(
                f'<line x1="{s.x1:.1f}" y1="{s.y1:.1f}" x2="{s.x2:.1f}" y2="{s.y2:.1f}" stroke="{s.colour}"/>'
            )
        else:
            anchor = ' text-anchor="end"' if s.anchor == "end" else ""
            parts.append(
                f'<text x="{s.x:.1f}" y="{s.y:.1f}" font-size="{s.size:g}" fill="{s.colour}"{anchor}>'
                f"{escape(s.text)}{f'<title>{escape(s.full)}</title>' if s.full else ''}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def rgb(colour: str) -> tuple[float, float, float]:
    """``#rrggbb`` as PDF colour components in 0..1."""
    return (int(colour[1:3], 16) / 255, int(colour[3:5], 16) / 255, int(colour[5:7], 16) / 255)
