"""A rejected request is edited and submitted again as a new request linked to the old one (issue 23).

Real HTTP against the served demo county: the principal rejects a No. 2 seal permit, the clerk opens
修改后重新提交, finds the form filled with what the request held, changes a field and submits; the new
request names the old one and the old one names the new. A request is resubmitted once; only a rejected or
refused request can be; nothing is written for a refused resubmission."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.console.conftest import SHOTS, County, login

pytestmark = pytest.mark.softhsm

PERMIT = {
    "f_issuer": "兴国县行政审批局",
    "f_unit_name": "梅窖镇重交茶楼",
    "f_legal_representative": "吴某某",
    "f_address": "兴国县梅窖镇老街11号",
    "f_licensed_items": "茶座",
    "f_valid_from": "2026年11月22日",
    "f_valid_until": "2030年11月21日",
    "f_date": "2026年11月22日",
}


@pytest.fixture
def client(county: County) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=county.base, timeout=120, follow_redirects=False) as c:
        yield c


def _form_values(html: str) -> dict[str, str]:
    values = dict(re.findall(r'<input type="(?:text|hidden)" name="([a-z_]+)"[^>]*? value="([^"]*)"', html))
    values.update(re.findall(r'name="([a-z_]+)"[^>]*?>([^<]*)</textarea>', html))
    return values


def _request_id(location: str) -> str:
    m = re.match(r"/ui/requests/([0-9a-f-]{36})", location)
    assert m, location
    return m.group(1)


def test_rejected_request_is_edited_and_resubmitted_once(county: County, client: httpx.Client) -> None:
    csrf = login(client, county, "mj.clerk")
    data = {
        "csrf_token": csrf,
        "seal_id": county.seals["no2"],
        "matter_code": "XG-15",
        "stage": "审批",
        "document_kind": "许可证及其附件",
        "reason": "重交茶楼申请变更",
        "template": "public_place_hygiene_permit",
        **PERMIT,
    }
    r = client.post("/ui/clerk/submit", data=data)
    assert r.status_code == 303
    old = _request_id(r.headers["location"])
    csrf = login(client, county, "mj.principal")
    r = client.post(f"/ui/requests/{old}/reject", data={"csrf_token": csrf, "comment": "地址有误"})
    assert r.status_code == 303

    csrf = login(client, county, "mj.clerk")
    page = client.get(f"/ui/requests/{old}").text
    assert 'id="status">已驳回<' in page and f'id="resubmit" href="/ui/clerk?resubmit={old}"' in page
    form = client.get("/ui/clerk", params={"resubmit": old})
    assert form.status_code == 200 and 'id="resubmit-note"' in form.text
    values = _form_values(form.text)
    assert values["resubmits"] == old and values["reason"] == "重交茶楼申请变更"
    assert values["matter_code"] == "XG-15" and values["f_address"] == PERMIT["f_address"]
    assert f'value="{county.seals["no2"]}" selected' in form.text
    # the clerk corrects the address and submits: a new request, linked to the old one
    edited = {**data, "csrf_token": csrf, "f_address": "兴国县梅窖镇老街12号", "resubmits": old}
    r = client.post("/ui/clerk/submit", data=edited)
    assert r.status_code == 303, r.text
    new = _request_id(r.headers["location"])
    assert new != old
    page = client.get(f"/ui/requests/{new}").text
    assert 'id="status">待审批<' in page and f'id="resubmits-link" href="/ui/requests/{old}"' in page
    assert "老街12号" in page
    page = client.get(f"/ui/requests/{old}").text
    assert f'id="resubmitted-as" href="/ui/requests/{new}"' in page and 'id="resubmit"' not in page
    # once only: the form refuses, and so does a second submission (the form comes back with the code)
    again = client.get("/ui/clerk", params={"resubmit": old})
    assert again.status_code == 409 and again.headers["x-error-code"] == "RESUBMIT_ALREADY"
    r = client.post("/ui/clerk/submit", data={**edited, "nonce": "ab" * 12})
    assert r.status_code == 409 and "RESUBMIT_ALREADY" in r.text
    # the API takes the same link, with the same rule
    r = client.post(
        "/v1/signing-requests/from-template",
        json={
            "seal_id": county.seals["no2"],
            "matter_code": "XG-15",
            "stage": "审批",
            "document_kind": "许可证及其附件",
            "reason": "重交茶楼申请变更",
            "idempotency_key": "resubmit-api-twice",
            "template": "public_place_hygiene_permit",
            "data": {k[2:]: v for k, v in PERMIT.items()},
            "resubmits": old,
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 409 and r.json()["code"] == "RESUBMIT_ALREADY", r.text


def test_only_rejected_or_refused_requests_are_resubmitted(county: County, client: httpx.Client) -> None:
    csrf = login(client, county, "mj.clerk")
    sealed = client.post(
        "/ui/clerk/submit",
        data={
            "csrf_token": csrf,
            "seal_id": county.seals["mj"],
            "matter_code": "SX-002",
            "stage": "受理",
            "document_kind": "受理通知书",
            "reason": "重交测试受理",
            "template": "acceptance_notice",
            "f_issuer": "兴国县梅窖镇人民政府",
            "f_applicant": "郑某某",
            "f_matter_name": "临时救助",
            "f_submitted_date": "2026年11月20日",
            "f_date": "2026年11月22日",
        },
    )
    assert sealed.status_code == 303
    sealed_id = _request_id(sealed.headers["location"])
    assert 'id="resubmit"' not in client.get(f"/ui/requests/{sealed_id}").text
    r = client.get("/ui/clerk", params={"resubmit": sealed_id})
    assert r.status_code == 409 and r.headers["x-error-code"] == "RESUBMIT_NOT_REFUSED"
    before = len(client.get("/v1/signing-requests", params={"limit": 500}).json())
    body = {
        "seal_id": county.seals["mj"],
        "matter_code": "SX-002",
        "stage": "受理",
        "document_kind": "受理通知书",
        "reason": "重交测试受理",
        "idempotency_key": "resubmit-sealed-one",
        "template": "acceptance_notice",
        "data": {"issuer": "兴国县梅窖镇人民政府", "applicant": "郑某某", "date": "2026年11月22日"},
        "resubmits": sealed_id,
    }
    r = client.post("/v1/signing-requests/from-template", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 409 and r.json()["code"] == "RESUBMIT_NOT_REFUSED", r.text
    assert len(client.get("/v1/signing-requests", params={"limit": 500}).json()) == before  # nothing written
    # another township's request is not this clerk's to resubmit
    login(client, county, "xj.clerk")
    r = client.get("/ui/clerk", params={"resubmit": sealed_id})
    assert r.status_code in (403, 404) and r.headers["x-error-code"]


@pytest.mark.slow
def test_resubmit_in_a_browser(county: County, client: httpx.Client, browser: Any) -> None:
    csrf = login(client, county, "mj.clerk")
    r = client.post(
        "/ui/clerk/submit",
        data={
            "csrf_token": csrf,
            "seal_id": county.seals["no2"],
            "matter_code": "XG-15",
            "stage": "审批",
            "document_kind": "许可证及其附件",
            "reason": "浏览器重交",
            "template": "public_place_hygiene_permit",
            **{**PERMIT, "f_unit_name": "梅窖镇浏览器茶楼"},
        },
    )
    old = _request_id(r.headers["location"])
    csrf = login(client, county, "mj.principal")
    client.post(f"/ui/requests/{old}/reject", data={"csrf_token": csrf, "comment": "名称有误"})
    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    try:
        page.goto(county.base + "/ui/login")
        page.fill("#username", "mj.clerk")
        page.fill("#password", county.passwords["mj.clerk"])
        page.click("#login")
        page.wait_for_url("**/ui/clerk")
        page.goto(f"{county.base}/ui/requests/{old}")
        page.click("#resubmit")
        page.wait_for_selector("#resubmit-note")
        assert page.input_value("#f_unit_name") == "梅窖镇浏览器茶楼"
        assert page.input_value("#reason") == "浏览器重交"
        page.fill("#f_unit_name", "梅窖镇浏览器茶室")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "23-resubmit-form.png"), full_page=True)
        page.click("#submit")
        page.wait_for_selector("#resubmits-link")
        assert page.inner_text("#status") == "待审批"
        assert old in (page.get_attribute("#resubmits-link", "href") or "")
        assert "梅窖镇浏览器茶室" in page.inner_text("main")
    finally:
        context.close()
