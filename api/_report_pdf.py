"""The monthly report (月报) as a PDF: A4, Chinese, the CJK font embedded as a subset.

Laid out with pyHanko's ``pdf_utils`` directly (the signer package exports no layout helpers): face 0 of
the WenQuanYi Zen Hei collection is subset to the report's characters by the signer's
:func:`signer.subset_font` (the one implementation the seal and the templates use) and embedded through
pyHanko's ``GlyphAccumulator`` (CIDFontType2 with a ToUnicode map, so ``pdftotext`` reads it back).

Every text is placed inside the margins (issue 23: the title ran off the page): a text wider than its room
is set smaller, down to :data:`MIN_SIZE`, then cut with an ellipsis. The page is drawn twice: once to learn
which characters it uses (the font subset), once for real.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import TYPE_CHECKING

from api._charts import Line, Rect, layout, rgb
from api._reports import MonthlyReport
from core.errors import SigningError, Unavailable

if TYPE_CHECKING:
    from pyhanko.pdf_utils.font.api import ShapeResult

A4 = (595.28, 841.89)
MARGIN = 56.0
TOP = A4[1] - 64
BOTTOM = 64.0
MIN_SIZE = 7.0


def _subset(chars: str) -> bytes:
    """The signer's CJK subset (one implementation: :func:`signer.subset_font`). A missing font is the
    report's 503 (``Unavailable``), as it always was, not a signing failure."""
    from signer import subset_font

    try:
        return subset_font(chars)
    except SigningError as exc:
        if exc.code != "CJK_FONT_MISSING":
            raise
        raise Unavailable(exc.code, exc.message_en, exc.message_zh) from exc


class _Canvas:
    """Pages of PDF operators with a cursor; ``measure`` gives a text's width at a size."""

    def __init__(self, measure: Callable[[str, float], float], shape: Callable[[str, float], bytes]) -> None:
        self.measure = measure
        self.shape = shape
        self.pages: list[list[bytes]] = [[]]
        self.y = TOP

    def need(self, height: float) -> None:
        if self.y - height < BOTTOM:
            self.pages.append([])
            self.y = TOP

    def text(self, value: str, size: float, x: float, y: float, room: float, align: str = "left") -> None:
        """``value`` inside [x, x + room] (``align`` left), [x - room, x] (right) or centred on x."""
        while size > MIN_SIZE and self.measure(value, size) > room:
            size = max(MIN_SIZE, size - 0.5)
        if self.measure(value, size) > room:
            while value and self.measure(value + "…", size) > room:
                value = value[:-1]
            value += "…"
        width = self.measure(value, size)
        if align == "right":
            x -= width
        elif align == "centre":
            x -= width / 2
        ops = self.shape(value, size)
        self.pages[-1].append(b"BT /F1 %.2f Tf 1 0 0 1 %.2f %.2f Tm %s ET" % (size, x, y, ops))

    def rule(self, x1: float, y1: float, x2: float, y2: float, grey: float = 0.0) -> None:
        self.pages[-1].append(b"%.2f G 0.5 w %.2f %.2f m %.2f %.2f l S 0 G" % (grey, x1, y1, x2, y2))

    def box(self, x: float, y: float, w: float, h: float, colour: str) -> None:
        r, g, b = rgb(colour)
        self.pages[-1].append(b"%.3f %.3f %.3f rg %.2f %.2f %.2f %.2f re f 0 g" % (r, g, b, x, y, w, h))


WIDTH = A4[0] - 2 * MARGIN
RIGHT = A4[0] - MARGIN


def _table(
    c: _Canvas, title: str, header: tuple[str, ...], widths: tuple[float, ...], rows: list[tuple[str, ...]]
) -> None:
    """A table whose last column (a count) is right-aligned; the header repeats on each new page."""
    c.need(44)
    c.text(title, 12, MARGIN, c.y, WIDTH)
    c.y -= 22

    def head() -> None:
        x = MARGIN
        for i, (label, w) in enumerate(zip(header, widths, strict=True)):
            if i == len(header) - 1 or (i > 0 and all(r[i].isdigit() for r in rows if r[i])):
                c.text(label, 10, x + w - 4, c.y, w - 6, "right")
            else:
                c.text(label, 10, x, c.y, w - 6)
            x += w
        c.rule(MARGIN, c.y - 5, RIGHT, c.y - 5)
        c.y -= 19

    head()
    if not rows:
        c.text("本月无办理记录。", 10, MARGIN, c.y, WIDTH)
        c.y -= 17
    for row in rows:
        if c.y - 17 < BOTTOM:
            c.pages.append([])
            c.y = TOP
            head()
        x = MARGIN
        for i, (cell, w) in enumerate(zip(row, widths, strict=True)):
            if cell.isdigit() and i > 0:
                c.text(cell, 9.5, x + w - 4, c.y, w - 6, "right")
            else:
                c.text(cell, 9.5, x, c.y, w - 6)
            x += w
        c.y -= 17
    c.y -= 14


def _draw(c: _Canvas, report: MonthlyReport, org: str) -> None:
    c.text(report.title, 15, A4[0] / 2, c.y, WIDTH, "centre")
    c.y -= 24
    c.text(org, 11, A4[0] / 2, c.y, WIDTH, "centre")
    c.y -= 28
    c.text(report.summary, 11, MARGIN, c.y, WIDTH)
    c.y -= 30
    for chart in report.charts:
        height, shapes = layout(chart, WIDTH)
        c.need(height + 10)
        top = c.y + 10  # the chart's box starts just above the cursor's baseline
        for s in shapes:
            if isinstance(s, Rect):
                c.box(MARGIN + s.x, top - s.y - s.h, s.w, s.h, s.colour)
            elif isinstance(s, Line):
                c.rule(MARGIN + s.x1, top - s.y1, MARGIN + s.x2, top - s.y2, 0.5)
            elif s.anchor == "end":
                c.text(s.text, s.size, MARGIN + s.x, top - s.y, max(s.x, 1.0), "right")
            else:
                c.text(s.text, s.size, MARGIN + s.x, top - s.y, max(WIDTH - s.x, 1.0))
        c.y = top - height - 18
    _table(
        c,
        "一、按乡镇",
        ("乡镇", "办理件数", "已用印", "其中二号章", "拒绝或驳回"),
        (163, 80, 80, 80, WIDTH - 403),
        [
            (t.township, str(t.handled), str(t.sealed), str(t.no2_sealed), str(t.refused))
            for t in report.townships
        ],
    )
    _table(
        c,
        "二、按事项",
        ("事项", "办理件数", "已用印", "拒绝或驳回"),
        (263, 70, 70, WIDTH - 403),
        [
            (f"{m.matter_code} {m.matter_title}".strip(), str(m.handled), str(m.sealed), str(m.refused))
            for m in report.matters
        ],
    )
    _table(
        c,
        "三、明细",
        ("乡镇", "委托部门", "事项", "状态", "件数"),
        (80, 100, 200, 70, WIDTH - 450),
        [
            (
                ln.township,
                ln.department,
                f"{ln.matter_code} {ln.matter_title}".strip(),
                ln.status,
                str(ln.count),
            )
            for ln in report.lines
        ],
    )


def render_monthly_report(report: MonthlyReport, org: str | None = None) -> bytes:
    """One or more A4 pages: heading, totals, the three charts, the tables by township, by matter, in full."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
    from pyhanko.pdf_utils.generic import pdf_name
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    org = org or report.scope
    used: set[str] = set()

    def estimate(value: str, size: float) -> float:
        used.update(value)
        return sum(size if ord(ch) > 0x2E7F else size * 0.55 for ch in value)

    # pass 1: which characters the pages use (estimated widths; a cut text only ever drops characters)
    dry = _Canvas(estimate, lambda value, size: b"")
    _draw(dry, report, org)
    footer = f"生成时间：{report.generated_at}    第{len(dry.pages)}页共{len(dry.pages) + 1}页"
    chars = "".join(sorted(used | set(footer) | set("0123456789…")))

    writer = PdfFileWriter()
    engine = GlyphAccumulator(writer, BytesIO(_subset(chars)), font_size=10, bcp47_lang_code="zh-CN")

    def shaped(value: str, size: float) -> ShapeResult:
        engine.font_size = size  # type: ignore[assignment]  # annotated int; floats work
        return engine.shape(value)

    canvas = _Canvas(
        # pyHanko gives the advance in em (the old title was centred by an em count: it ran off the page)
        lambda value, size: float(shaped(value, size).x_advance) * size,
        lambda value, size: bytes(shaped(value, size).graphics_ops),
    )
    _draw(canvas, report, org)
    pages = canvas.pages
    for number, ops in enumerate(pages, 1):
        canvas.pages = [ops]  # the footer goes on page ``number``
        canvas.text(f"生成时间：{report.generated_at}    第{number}页共{len(pages)}页", 9, MARGIN, 40, WIDTH)
    canvas.pages = pages
    font_ref = engine.as_resource()  # after the last shaping: the embedded subset holds every glyph used
    for ops in canvas.pages:
        stream = generic.StreamObject(stream_data=b"\n".join(ops))
        stream.compress()
        resources = generic.DictionaryObject(
            {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): font_ref})}
        )
        writer.insert_page(
            PageObject(contents=writer.add_object(stream), media_box=(0, 0, *A4), resources=resources)
        )
    out = BytesIO()
    writer.write(out)
    return out.getvalue()
