"""The monthly report's PDF stays inside its pages, and its charts are the same in SVG and PDF (issue 23).

The report here is built by hand with long names and many rows (the layout is what is tested; the numbers
come from the database in tests/integration/console/test_reports.py). Every word box poppler finds
(``pdftotext -bbox``) lies inside the media box and within the margins."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from api._charts import BarChart, fit, layout, text_width, to_svg
from api._report_pdf import A4, render_monthly_report
from api._reports import MatterRow, MonthlyReport, ReportLine, TownshipRow, previous_months
from tests._fixtures.pdftext import Word, word_boxes

LONG_TOWN = "兴国县某某某某某某乡镇人民政府便民服务中心窗口（名称特别长的乡镇）"


def _report(rows: int) -> MonthlyReport:
    months = tuple(previous_months("2026-12", 6))
    towns = [f"{LONG_TOWN}{i}" for i in range(rows)]
    return MonthlyReport(
        month="2026-12",
        scope="全县",
        generated_at="2026-12-06 14:05",
        lines=tuple(
            ReportLine(t, "兴国县行政审批局", "XG-15", "公共场所卫生许可（变更）" * 3, "已用印", 12345)
            for t in towns
        ),
        townships=tuple(TownshipRow(t, 99999, 88888, 7777, 66666) for t in towns),
        matters=(MatterRow("XG-15", "公共场所卫生许可（变更）" * 4, 1, 1, 0),),
        charts=(
            BarChart(
                "chart-uses",
                "各乡镇每月用印次数",
                tuple(towns[:5]),
                months,
                ((1, 2, 3, 4, 5, 6),) * len(towns[:5]),
            ),
            BarChart(
                "chart-refusals",
                "拒绝用印原因",
                ("主要负责人驳回（REJECTED_BY_PRINCIPAL）",),
                ("次数",),
                ((3,),),
            ),
            BarChart("chart-no2", "二号章按委托协议用印次数", (), ("用印",), ()),
        ),
    )


def _boxes(pdf: bytes, tmp: Path) -> tuple[list[tuple[float, float]], list[Word]]:
    return word_boxes(pdf, tmp)


@pytest.mark.parametrize("rows", [1, 70], ids=["one-page", "many-pages"])
def test_every_text_box_is_inside_the_page(rows: int, tmp_path: Path) -> None:
    pages, words = _boxes(render_monthly_report(_report(rows)), tmp_path)
    assert len(pages) >= (3 if rows > 40 else 1)
    assert all(abs(w - A4[0]) < 1 and abs(h - A4[1]) < 1 for w, h in pages)
    assert words and any("月报" in w[0] for w in words)
    for text, x0, y0, x1, y1 in words:
        # inside the media box with the margins kept (poppler's y grows downward from the top)
        assert 50 <= x0 and x1 <= A4[0] - 50 and 20 <= y0 and y1 <= A4[1] - 20, (text, x0, y0, x1, y1)


def test_the_title_no_longer_runs_off_the_page(tmp_path: Path) -> None:
    pages, words = _boxes(render_monthly_report(_report(1), org="兴国县" + "某" * 80), tmp_path)
    first_line = min(w[2] for w in words)
    title = [w for w in words if abs(w[2] - first_line) < 2]
    assert max(w[3] for w in title) <= A4[0] - 50


def test_charts_in_svg_are_well_formed_and_escaped() -> None:
    chart = BarChart("c1", "标题<script>", ("甲&乙", "丙"), ("1月", "2月"), ((3, 0), (1, 9)))
    svg = to_svg(chart)
    root = ET.fromstring(svg)  # parses: the markup is well formed
    assert root.get("id") == "c1" and "<script>" not in svg
    assert (
        len(root.findall("{http://www.w3.org/2000/svg}rect")) == 3 + 2
    )  # 3 bars (no bar for 0) + 2 swatches
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "甲&乙" in texts and "9" in texts
    height, shapes = layout(BarChart("c2", "空", (), ("x",), ()), 400)
    assert height > 0 and any(getattr(s, "text", "") == "本月无数据" for s in shapes)


def test_fit_cuts_to_the_room() -> None:
    assert fit("短", 10, 100) == "短"
    cut = fit("很长" * 40, 10, 100)
    assert cut.endswith("…") and text_width(cut, 10) <= 100
    assert re.fullmatch(r"(很长)+很?…", cut)
