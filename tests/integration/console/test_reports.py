"""The monthly report page (issue 23): a month picker, tables per township and per matter, three SVG charts
(uses per township per month, refusals by reason, No. 2 seal uses per agreement), the PDF laid out inside
its pages and the CSV with Chinese headers and names. Real HTTP against the served demo county, and the
page in Chromium (screenshot in test-output/console/)."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from policies import CHINA_TZ
from tests._fixtures.pdftext import assert_inside
from tests.integration.console.conftest import SHOTS, County, login

pytestmark = pytest.mark.softhsm

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SVG = "{http://www.w3.org/2000/svg}"
PERMIT = {
    "f_issuer": "兴国县行政审批局",
    "f_unit_name": "梅窖镇月报茶楼",
    "f_legal_representative": "赵某某",
    "f_address": "兴国县梅窖镇老街9号",
    "f_licensed_items": "茶座",
    "f_valid_from": "2026年11月22日",
    "f_valid_until": "2030年11月21日",
    "f_date": "2026年11月22日",
}


@pytest.fixture(scope="module")
def month_with_uses(county: County) -> str:
    """One No. 2 seal use approved and sealed, one refused by the policy, this month (Beijing time)."""
    with httpx.Client(base_url=county.base, timeout=120, follow_redirects=False) as c:
        csrf = login(c, county, "mj.clerk")
        r = c.post(
            "/ui/clerk/submit",
            data={
                "csrf_token": csrf,
                "seal_id": county.seals["no2"],
                "matter_code": "XG-15",
                "stage": "审批",
                "document_kind": "许可证及其附件",
                "reason": "月报茶楼申请变更",
                "template": "public_place_hygiene_permit",
                **PERMIT,
            },
        )
        assert r.status_code == 303, r.text
        request_id = r.headers["location"].split("/")[3].split("?")[0]
        refused = c.post(
            "/ui/clerk/submit",
            data={
                "csrf_token": csrf,
                "seal_id": county.seals["no2"],
                "matter_code": "SX-002",
                "stage": "受理",
                "document_kind": "受理通知书",
                "reason": "越权用章",
                "template": "acceptance_notice",
                "f_issuer": "兴国县梅窖镇人民政府",
                "f_applicant": "钱某某",
                "f_matter_name": "临时救助",
                "f_submitted_date": "2026年11月20日",
                "f_date": "2026年11月22日",
            },
        )
        assert refused.status_code == 303
        csrf = login(c, county, "mj.principal")
        r = c.post(f"/ui/requests/{request_id}/approve", data={"csrf_token": csrf, "comment": "同意"})
        assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]
        created = c.get(f"/v1/signing-requests/{request_id}").json()["created_at"]
        login(c, county, "bureau.officer")
        page = c.get("/ui/reports").text
        month = re.search(r'id="month" name="month" value="([0-9-]+)"', page)
        assert month
        # the page's default month is the county's (Beijing) month of what was just sealed
        assert datetime.fromisoformat(created).astimezone(CHINA_TZ).strftime("%Y-%m") == month.group(1)
        return month.group(1)


def _charts(page: str) -> dict[str, ET.Element]:
    found = {}
    for svg in re.findall(r"<svg .*?</svg>", page, re.S):
        root = ET.fromstring(svg)
        found[str(root.get("id"))] = root
    return found


def _texts(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(SVG + "text")]


def test_department_report_page_has_tables_and_three_charts(
    county: County, client: httpx.Client, month_with_uses: str
) -> None:
    login(client, county, "bureau.officer")
    r = client.get("/ui/reports", params={"month": month_with_uses})
    assert r.status_code == 200
    page = r.text
    assert "行政审批专用章使用情况月报" in page and "（县行政审批局）" in page
    table = page[page.index('id="by-township"') :]
    assert "梅窖镇" in table[: table.index("</table>")]
    matters = page[page.index('id="by-matter"') :]
    matters = matters[: matters.index("</table>")]
    assert "XG-15 公共场所卫生许可" in matters and "公共场所卫生许可（变更）" in matters
    charts = _charts(page)
    assert set(charts) == {"chart-uses", "chart-refusals", "chart-no2"}
    uses = _texts(charts["chart-uses"])
    assert month_with_uses in uses and "梅窖镇" in uses  # legend names the months, labels the townships
    no2 = _texts(charts["chart-no2"])
    assert any(t.startswith("梅窖镇·县行政审批局（13）") for t in no2), no2
    # names, never UUIDs or enum names, on the page
    main = page[page.index("<main>") :]
    assert not UUID.search(main) and "SEALED" not in main and "PENDING_APPROVAL" not in main
    # the county's page counts the refusal (filed under the township): each reason by its Chinese message
    # and its code, the whole label in the tooltip
    login(client, county, "admin")
    charts = _charts(client.get("/ui/reports", params={"month": month_with_uses}).text)
    reasons = [t.text or "" for t in charts["chart-refusals"].iter(SVG + "title")]
    assert any(re.fullmatch(r"[^A-Z]+（[A-Z_]+）", r) for r in reasons), reasons
    assert len(charts["chart-refusals"].findall(SVG + "rect")) >= 1


def test_report_csv_has_chinese_headers_and_names(
    county: County, client: httpx.Client, month_with_uses: str
) -> None:
    login(client, county, "bureau.officer")
    page = client.get("/ui/reports", params={"month": month_with_uses}).text
    link = re.search(r'id="report-csv" href="([^"]+)"', page)
    assert link
    r = client.get(link.group(1).replace("&amp;", "&"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0] == ["月份", "乡镇", "委托部门", "事项代码", "事项名称", "状态", "件数"]
    body = rows[1:]
    assert any(
        row[1:4] == ["梅窖镇", "县行政审批局", "XG-15"] and "（变更）" in row[4] and row[5] == "已用印"
        for row in body
    ), body
    assert any(row[5] == "策略拒绝" for row in body), body
    assert not UUID.search(r.text) and "SEALED" not in r.text and "DENIED" not in r.text


def test_report_pdf_has_every_word_inside_the_page(
    county: County, client: httpx.Client, month_with_uses: str, tmp_path: Path
) -> None:
    login(client, county, "admin")
    page = client.get("/ui/reports", params={"month": month_with_uses}).text
    link = re.search(r'id="report-pdf" href="([^"]+)"', page)
    assert link
    r = client.get(link.group(1).replace("&amp;", "&"))
    assert r.status_code == 200 and r.content.startswith(b"%PDF-")
    words = assert_inside(r.content, tmp_path)
    text = "".join(w[0] for w in words)
    year, mon = month_with_uses.split("-")
    assert f"{year}年{int(mon)}月" in text and "全县" in text
    for heading in (
        "各乡镇每月用印次数",
        "拒绝用印原因",
        "二号章按委托协议用印次数",
        "一、按乡镇",
        "二、按事项",
    ):
        assert heading in text, heading
    assert "梅窖镇·县行政审批局（13）" in text


def test_report_page_refuses_bad_input_and_other_roles(
    county: County, client: httpx.Client, month_with_uses: str
) -> None:
    login(client, county, "admin")
    r = client.get("/ui/reports", params={"month": "2026-13"})
    assert r.status_code == 400 and r.headers["x-error-code"] == "MONTH_INVALID"
    r = client.get("/ui/reports", params={"month": "2026-1２"})
    assert r.status_code == 400 and r.headers["x-error-code"] == "MONTH_INVALID"
    r = client.get("/ui/reports", params={"month": month_with_uses, "township": "no-such-town"})
    assert r.status_code == 400 and r.headers["x-error-code"] == "TOWNSHIP_UNKNOWN"
    # the county sees one township on asking; the township's principal sees only its own
    one = client.get("/ui/reports", params={"month": month_with_uses, "township": "360732-11"})
    assert one.status_code == 200
    login(client, county, "xj.principal")
    own = client.get("/ui/reports", params={"month": month_with_uses, "township": "360732-11"}).text
    assert 'id="township"' not in own and "兴江乡" in own and "梅窖镇" not in own.split('id="by-township"')[1]
    login(client, county, "mj.clerk")
    assert client.get("/ui/reports").status_code == 403


@pytest.mark.slow
def test_report_page_in_a_browser(county: County, browser: Any, month_with_uses: str) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    try:
        page.goto(county.base + "/ui/login")
        page.fill("#username", "bureau.officer")
        page.fill("#password", county.passwords["bureau.officer"])
        page.click("#login")
        page.wait_for_load_state()
        page.click("nav a[href='/ui/reports']")
        page.wait_for_selector("#chart-uses")
        for chart in ("#chart-uses", "#chart-refusals", "#chart-no2"):
            box = page.locator(chart).bounding_box()
            assert box and box["width"] > 300 and box["height"] > 30, (chart, box)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "20-reports.png"), full_page=True)
        # another month through the picker: the page follows
        page.click("#prev-month")
        page.wait_for_load_state()
        earlier = page.input_value("#month")
        assert earlier < month_with_uses and f"month={earlier}" in page.url
        page.fill("#month", month_with_uses)
        page.click("#show-month")
        page.wait_for_load_state()
        assert page.input_value("#month") == month_with_uses
        assert "梅窖镇" in page.inner_text("#by-township")
    finally:
        context.close()


def test_usage_ledger_csv_names_people_and_matters(
    county: County, client: httpx.Client, month_with_uses: str
) -> None:
    """The 台账 of the No. 2 seal: Chinese headers, the matter by name, clerk and principal by display name
    (the demo's display names are the usernames; the ledger itself holds account ids)."""
    login(client, county, "bureau.officer")
    r = client.get("/v1/reports/usage", params={"seal_id": county.seals["no2"], "month": month_with_uses})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0] == [
        "序号", "日期", "事项代码", "事项名称", "事由", "批准人", "使用人", "数量", "证书编号", "文号",
        "文书种类", "办理环节",
    ]  # fmt: skip
    ours = [row for row in rows[1:] if row[4] == "月报茶楼申请变更"]
    assert len(ours) == 1, rows
    row = ours[0]
    assert row[2] == "XG-15" and "（变更）" in row[3] and row[10] == "许可证及其附件" and row[11] == "审批"
    assert (row[5], row[6]) == ("mj.principal", "mj.clerk")
    assert not UUID.search(r.text) and "LICENCE" not in r.text and "APPROVE" not in r.text
