"""The auditor's ledger view and the human receipt (issue 23): Chinese labels, people by name, filters by
township, seal, month and kind, links to the document and its proof; the proof page beside the machine file.
Real HTTP against the served demo county, and the pages in Chromium (screenshots in test-output/console/)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from ledger import NoteVerifier, verify_receipt
from tests.integration.console.conftest import SHOTS, County, login

pytestmark = pytest.mark.softhsm

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ROW = re.compile(r'<tr data-index="(\d+)">(.*?)</tr>', re.S)
MJ = "360732-13"


@pytest.fixture(scope="module")
def sealed(county: County) -> str:
    """A document sealed by 梅窖镇's clerk with the township's own seal (no approval needed)."""
    with httpx.Client(base_url=county.base, timeout=120, follow_redirects=False) as c:
        csrf = login(c, county, "mj.clerk")
        r = c.post(
            "/ui/clerk/submit",
            data={
                "csrf_token": csrf,
                "seal_id": county.seals["mj"],
                "matter_code": "SX-002",
                "stage": "受理",
                "document_kind": "受理通知书",
                "reason": "台账页面测试受理",
                "template": "acceptance_notice",
                "f_issuer": "兴国县梅窖镇人民政府",
                "f_applicant": "周某某",
                "f_matter_name": "临时救助",
                "f_submitted_date": "2026年11月20日",
                "f_date": "2026年11月22日",
            },
        )
        assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]
        return r.headers["location"].split("/")[3].split("?")[0]


def _text(html: str) -> str:
    """What a person reads: the page's main part without tags (links' addresses hold ids, on purpose)."""
    main = html[html.index("<main>") :]
    return re.sub(r"<[^>]+>", " ", main)


def _rows(html: str) -> list[tuple[int, str]]:
    return [(int(i), body) for i, body in ROW.findall(html)]


def test_ledger_view_reads_in_chinese_with_names_and_links(
    county: County, client: httpx.Client, sealed: str
) -> None:
    login(client, county, "auditor")
    page = client.get("/ui/auditor").text
    assert "台账完整无误" in page
    text = _text(page)
    assert not UUID.search(text), UUID.search(text)
    for english in ("SEAL_SIGNED", "ACCOUNT_CHANGED", "operator=", "TOWNSHIP_CLERK", "ACCEPT"):
        assert english not in text, english
    ours = [body for _i, body in _rows(page) if "台账页面测试受理" in body]
    assert len(ours) == 1
    row = ours[0]
    assert "用印" in row and "梅窖镇" in row and "SX-002 临时救助" in row and "受理通知书" in row
    assert re.search(r'title="mj\.clerk">[^<]+</b>', row)  # the clerk by name, the account in a tooltip
    assert f'href="/ui/requests/{sealed}"' in row and 'class="verify-link" href="/verify?no=' in row
    index = int(re.search(r'href="/ui/ledger/(\d+)"', row).group(1))  # type: ignore[union-attr]
    # the receipt for people, and the machine file that verifies offline with the log key
    proof = client.get(f"/ui/ledger/{index}")
    assert proof.status_code == 200 and "本条记录已载入台账" in proof.text
    assert "台账页面测试受理" in proof.text and f'href="/ui/ledger/{index}/receipt.txt"' in proof.text
    machine = client.get(f"/ui/ledger/{index}/receipt.txt")
    assert machine.status_code == 200
    vkey = client.get("/v1/public/log-key").text.strip()
    assert verify_receipt(machine.text, [NoteVerifier.from_vkey(vkey)]).index == index
    assert re.search(r'id="root">[0-9a-f]{64}<', proof.text)


def test_ledger_filters(county: County, client: httpx.Client, sealed: str) -> None:
    login(client, county, "auditor")
    by_kind = _rows(client.get("/ui/auditor", params={"kind": "SEAL_SIGNED"}).text)
    assert by_kind and all('class="nowrap kind">用印<' in body for _i, body in by_kind)
    by_town = _rows(client.get("/ui/auditor", params={"township": MJ}).text)
    assert by_town and all("梅窖镇" in body for _i, body in by_town)
    assert not any("兴江乡人民政府" in body for _i, body in by_town)
    by_seal = _rows(client.get("/ui/auditor", params={"seal": county.seals["no2"]}).text)
    assert by_seal and all("（13）" in body for _i, body in by_seal)
    # a seal of another township under a township filter: nothing, not the seal's entries
    none = client.get("/ui/auditor", params={"township": MJ, "seal": county.seals["xj"]}).text
    assert _rows(none) == [] and 'id="no-entries"' in none
    old = client.get("/ui/auditor", params={"month": "2020-01"}).text
    assert _rows(old) == [] and 'id="no-entries"' in old
    for params, code in (
        ({"kind": "NOPE"}, "LEDGER_KIND_UNKNOWN"),
        ({"month": "2026-13"}, "MONTH_INVALID"),
        ({"seal": "no-such-seal"}, "SEAL_UNKNOWN"),
        ({"township": "000"}, "TOWNSHIP_UNKNOWN"),
    ):
        r = client.get("/ui/auditor", params=params)
        assert r.status_code == 400 and r.headers["x-error-code"] == code, (params, r.status_code)


def test_request_receipt_page_for_the_township(county: County, client: httpx.Client, sealed: str) -> None:
    login(client, county, "mj.clerk")
    page = client.get(f"/ui/requests/{sealed}").text
    assert f'id="receipt-page" href="/ui/requests/{sealed}/receipt"' in page
    r = client.get(f"/ui/requests/{sealed}/receipt")
    assert r.status_code == 200 and "本条记录已载入台账" in r.text
    assert f'href="/ui/requests/{sealed}/receipt.txt"' in r.text
    # the clerk reads no ledger beyond its own documents
    assert client.get("/ui/auditor").status_code == 403
    assert client.get("/ui/ledger/0").status_code == 403
    login(client, county, "xj.clerk")
    assert client.get(f"/ui/requests/{sealed}/receipt").status_code in (403, 404)


@pytest.mark.slow
def test_ledger_view_in_a_browser(county: County, browser: Any, sealed: str) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(county.base + "/ui/login")
        page.fill("#username", "auditor")
        page.fill("#password", county.passwords["auditor"])
        page.click("#login")
        page.wait_for_url("**/ui/auditor")
        page.select_option("#f-township", MJ)
        page.select_option("#f-kind", "SEAL_SIGNED")
        page.click("#apply-filters")
        page.wait_for_load_state()
        assert "township=" + MJ in page.url and "kind=SEAL_SIGNED" in page.url
        kinds = page.locator("#entries td.kind").all_inner_texts()
        assert kinds and set(kinds) == {"用印"}
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "21-auditor-ledger.png"), full_page=True)
        page.locator("#entries a.proof-link").first.click()
        page.wait_for_selector("#proof-result")
        assert "本条记录已载入台账" in page.inner_text("#proof-result")
        page.screenshot(path=str(SHOTS / "22-ledger-receipt.png"), full_page=True)
    finally:
        context.close()
