"""The decision lifecycle (变更、撤回、撤销、注销) in the console, in a real headless Chromium.

A clerk of 梅窖镇 has an acceptance notice sealed. On its page the clerk sees no lifecycle action, and a
forged POST from the clerk's session (valid CSRF token, wrong role) is refused 403 ``ROLE_FORBIDDEN``; one
without the token 403 ``CSRF_FAILED``; the principal of another township gets 403 ``OTHER_ORGANISATION``.
梅窖镇's principal chooses 撤销 with a reason, sees the confirmation, confirms, and sees the new status, the
ledger entry's index and the history; an empty reason is refused with its code. Then anyone dropping the old
document on ``/verify`` is told it was revoked. Screenshots go to ``test-output/console/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.console.conftest import SHOTS, County

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _login(page: Any, county: County, username: str) -> None:
    page.goto(county.base + "/ui/login")
    page.fill("#username", username)
    page.fill("#password", county.passwords[username])
    page.click("#login")
    page.wait_for_load_state()
    assert "/ui/login" not in page.url, page.content()


def _logout(page: Any) -> None:
    page.click("#logout")
    page.wait_for_url("**/ui/login")


def _sealed_acceptance(county: County) -> str:
    """A sealed acceptance notice of 梅窖镇 (submitted over HTTP by its clerk): the request id."""
    with httpx.Client(base_url=county.base, timeout=120, follow_redirects=False) as c:
        r = c.post("/ui/login", data={"username": "mj.clerk", "password": county.passwords["mj.clerk"]})
        assert r.status_code == 303, r.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', c.get(r.headers["location"]).text)
        assert csrf
        r = c.post(
            "/ui/clerk/submit",
            data={
                "csrf_token": csrf.group(1),
                "seal_id": county.seals["mj"],
                "matter_code": "SX-002",
                "stage": "受理",
                "document_kind": "受理通知书",
                "reason": "临时救助申请受理",
                "template": "acceptance_notice",
                "f_issuer": "兴国县梅窖镇人民政府",
                "f_applicant": "钟某某",
                "f_matter_name": "临时救助",
                "f_submitted_date": "2026年11月20日",
                "f_date": "2026年11月22日",
            },
        )
        m = re.match(r"/ui/requests/([0-9a-f-]{36})", r.headers.get("location", ""))
        assert r.status_code == 303 and m, r.text
        return m.group(1)


def _forged(page: Any, url: str, form: dict[str, str]) -> Any:
    """A POST made from the page's session (its cookie) without going through any form on the page."""
    return page.request.post(url, form=form, max_redirects=0)


def test_principal_revokes_and_verifiers_learn_it(county: County, browser: Any, tmp_path: Path) -> None:
    request_id = _sealed_acceptance(county)
    url = f"{county.base}/ui/requests/{request_id}"
    status_url = url + "/status"
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 1200, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    try:
        # 1. the clerk sees the sealed document and its history, but no lifecycle action
        _login(page, county, "mj.clerk")
        page.goto(url)
        assert page.inner_text("#status") == "已用印"
        assert page.inner_text("#decision-status") == "有效"
        assert page.locator("#lifecycle").count() == 0
        assert page.locator("#history tr[data-status='ISSUED']").count() == 1
        _shot(page, "20-clerk-no-lifecycle-action")
        # ... and a forged POST from the clerk's session is refused, with the API's codes
        csrf = page.get_attribute("input[name=csrf_token]", "value")
        assert csrf
        for path in (status_url + "/confirm", status_url):
            r = _forged(page, path, {"csrf_token": csrf, "status": "REVOKED", "reason": "伪造"})
            assert r.status == 403 and r.headers.get("x-error-code") == "ROLE_FORBIDDEN", (path, r.status)
            assert "ROLE_FORBIDDEN" in r.text()
        r = _forged(page, status_url, {"status": "REVOKED", "reason": "伪造"})
        assert r.status == 403 and r.headers.get("x-error-code") == "CSRF_FAILED"
        page.goto(status_url + "/confirm")  # a GET is no way in either
        assert page.locator("#lifecycle-confirm").count() == 0
        page.goto(url)
        _logout(page)

        # 2. the principal of another township: may change decisions, but not 梅窖镇's
        _login(page, county, "xj.principal")
        csrf = page.get_attribute("input[name=csrf_token]", "value")
        assert csrf
        r = _forged(page, status_url, {"csrf_token": csrf, "status": "REVOKED", "reason": "越权"})
        assert r.status == 403 and r.headers.get("x-error-code") == "OTHER_ORGANISATION", r.status
        page.goto(url)  # the request itself is out of scope: a refusal page, no action
        assert page.locator("#lifecycle").count() == 0
        assert page.inner_text("#error-code") == "OTHER_ORGANISATION"
        page.goto(county.base + "/ui/principal")
        _logout(page)

        # 3. 梅窖镇's principal: an empty reason is refused with its code; then 撤销, confirm, result
        _login(page, county, "mj.principal")
        page.goto(url)
        assert page.locator("#lifecycle").is_visible()
        options = page.eval_on_selector_all("#lifecycle-status option", "os => os.map(o => o.textContent)")
        assert options == ["变更", "撤回", "撤销", "注销"]
        csrf = page.get_attribute("input[name=csrf_token]", "value")
        assert csrf
        r = _forged(page, status_url + "/confirm", {"csrf_token": csrf, "status": "REVOKED", "reason": " "})
        assert r.status == 303 and "REASON_REQUIRED" in r.headers["location"], r.headers
        page.select_option("#lifecycle-status", "REVOKED")
        page.fill("#lifecycle-reason", "申请人隐瞒有关情况，依法撤销")
        _shot(page, "21-principal-lifecycle-form")
        page.click("#lifecycle-next")
        page.wait_for_selector("#lifecycle-confirm")
        assert page.inner_text("#confirm-action") == "撤销"
        assert page.inner_text("#confirm-reason") == "申请人隐瞒有关情况，依法撤销"
        _shot(page, "22-principal-lifecycle-confirm")
        page.click("#lifecycle-confirm")
        page.wait_for_selector("#flash")
        flash = page.inner_text("#flash")
        index = re.search(r"台账序号 (\d+)", flash)
        assert "已撤销" in flash and index, flash
        assert page.inner_text("#decision-status") == "已撤销"
        revoked = page.locator("#history tr[data-status='REVOKED']")
        assert revoked.count() == 1
        assert revoked.get_attribute("data-ledger-index") == index.group(1)
        assert "申请人隐瞒有关情况" in revoked.inner_text()
        issued = page.locator("#history tr[data-status='ISSUED']").get_attribute("data-ledger-index")
        assert issued is not None and int(issued) < int(index.group(1))
        assert page.locator("#lifecycle").count() == 0  # a revoked decision has no action left
        _shot(page, "23-principal-revoked")
        # a second change is refused with its code (the decision is final)
        r = _forged(page, status_url, {"csrf_token": csrf, "status": "CANCELLED", "reason": "再次"})
        assert r.status == 303 and "DECISION_FINAL" in r.headers["location"], r.headers
        with page.expect_download() as info:
            page.click("#download-pdf")
        sealed = tmp_path / "revoked.pdf"
        info.value.save_as(str(sealed))
        _logout(page)

        # 4. the public verification page tells anyone holding the old document that it was revoked
        page.goto(county.base + "/verify")
        page.set_input_files("#file", str(sealed))
        page.click("#verify")
        page.wait_for_selector("#verdict")
        assert page.inner_text("#fact-status") == "已撤销", page.inner_text("main")
        assert page.inner_text("#verdict") != "通过"
        _shot(page, "24-verify-revoked")
    finally:
        context.close()
