"""The monthly report (月报) as a PDF: A4, Chinese, the CJK font embedded as a subset.

Laid out with pyHanko's ``pdf_utils`` directly (the signer package exports no layout helpers): face 0 of
the WenQuanYi Zen Hei collection is subset by fontTools to the report's characters and embedded through
pyHanko's ``GlyphAccumulator`` (CIDFontType2 with a ToUnicode map, so ``pdftotext`` reads it back).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from core.errors import Unavailable

A4 = (595.28, 841.89)
MARGIN = 56.0
CJK_COLLECTION = Path(os.environ.get("YIZHANG_CJK_FONT", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"))
#: Column x positions: 乡镇, 委托部门, 事项, 状态, 件数 (right-aligned at the margin).
COLUMNS = (MARGIN, MARGIN + 110, MARGIN + 240, MARGIN + 340)
STATUS_ZH = {
    "SEALED": "已用印",
    "APPROVED": "已批准",
    "PENDING_APPROVAL": "待审批",
    "DENIED": "政策拒绝",
    "REJECTED": "审批退回",
    "FAILED": "用印失败",
}


@dataclass(frozen=True)
class ReportLine:
    township: str
    department: str
    matter_code: str
    status: str
    count: int


@lru_cache(maxsize=64)
def _subset(chars: str) -> bytes:
    from fontTools import subset as ft_subset
    from fontTools.ttLib import TTFont

    if not CJK_COLLECTION.exists():
        raise Unavailable(
            "CJK_FONT_MISSING",
            f"CJK font {CJK_COLLECTION} not found (install fonts-wqy-zenhei)",
            f"未找到中文字体 {CJK_COLLECTION}（请安装 fonts-wqy-zenhei）",
        )
    font = TTFont(str(CJK_COLLECTION), fontNumber=0)
    options = ft_subset.Options()
    options.notdef_outline = True
    sub = ft_subset.Subsetter(options=options)
    sub.populate(text=chars)
    sub.subset(font)
    out = BytesIO()
    font.save(out)
    return out.getvalue()


def render_monthly_report(title_org: str, month: str, lines: list[ReportLine], generated_at: str) -> bytes:
    """One or more A4 pages: heading, totals (matters handled, No. 2 seal uses), then one row per line."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
    from pyhanko.pdf_utils.generic import pdf_name
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    year, mon = month.split("-")
    title = f"{year}年{int(mon)}月 委托事项办理及行政审批专用章使用情况月报"
    handled = sum(line.count for line in lines)
    no2_uses = sum(line.count for line in lines if line.department and line.status == "SEALED")
    summary = f"本月办理事项 {handled} 件，其中二号章（行政审批专用章）用印 {no2_uses} 次。"
    header = ("乡镇", "委托部门", "事项", "状态", "件数")
    rows = [
        (ln.township, ln.department or "—", ln.matter_code, STATUS_ZH.get(ln.status, ln.status), str(n))
        for ln in lines
        for n in (ln.count,)
    ]
    texts = [title, title_org, summary, f"生成时间：{generated_at}", "第页共", *header]
    texts += [cell for row in rows for cell in row]
    chars = "".join(sorted(set("".join(texts)) | set("0123456789-: /")))

    writer = PdfFileWriter()
    engine = GlyphAccumulator(writer, BytesIO(_subset(chars)), font_size=10, bcp47_lang_code="zh-CN")
    pages: list[list[bytes]] = [[]]

    def text(value: str, size: float, x: float, y: float, *, right: bool = False, centre: bool = False) -> None:  # noqa: E501
        engine.font_size = size  # type: ignore[assignment]  # annotated int; floats work
        shaped = engine.shape(value)
        if right:
            x -= shaped.x_advance
        elif centre:
            x -= shaped.x_advance / 2
        pages[-1].append(b"BT /F1 %.2f Tf 1 0 0 1 %.2f %.2f Tm %s ET" % (size, x, y, shaped.graphics_ops))

    right_edge = A4[0] - MARGIN
    y = A4[1] - 80
    text(title, 15, A4[0] / 2, y, centre=True)
    y -= 26
    text(title_org, 11, A4[0] / 2, y, centre=True)
    y -= 30
    text(summary, 11, MARGIN, y)
    y -= 28

    def table_header(y: float) -> float:
        for x, label in zip(COLUMNS, header[:4], strict=True):
            text(label, 10, x, y)
        text(header[4], 10, right_edge, y, right=True)
        pages[-1].append(b"0.5 w %.2f %.2f m %.2f %.2f l S" % (MARGIN, y - 5, right_edge, y - 5))
        return y - 20

    y = table_header(y)
    for row in rows:
        if y < 80:
            pages.append([])
            y = table_header(A4[1] - 70)
        for x, cell in zip(COLUMNS, row[:4], strict=True):
            text(cell[:18], 9.5, x, y)
        text(row[4], 9.5, right_edge, y, right=True)
        y -= 17
    if not rows:
        text("本月无办理记录。", 10, MARGIN, y)

    total = len(pages)
    for number in range(1, total + 1):
        engine.font_size = 9  # type: ignore[assignment]
        shaped = engine.shape(f"生成时间：{generated_at}    第{number}页共{total}页")
        pages[number - 1].append(b"BT /F1 9 Tf 1 0 0 1 %.2f 40 Tm %s ET" % (MARGIN, shaped.graphics_ops))
    font_ref = engine.as_resource()  # after the last shaping: the embedded subset holds every glyph used
    for ops in pages:
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
