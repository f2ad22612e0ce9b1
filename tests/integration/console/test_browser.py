"""The console and the verification page in a real headless Chromium (Debian's, driven by Playwright).

A clerk of 梅窖镇 fills the public-place hygiene permit template for the county's No. 2 seal （13）, the
policy sends it to the principal's queue, the principal approves, the clerk downloads the sealed PDF
(checked by poppler's ``pdfsig``), and anyone can drop it on ``/verify`` and see 通过 with the seal picture.
Screenshots go to ``test-output/console/``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.console.conftest import SHOTS, County

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]

PERMIT = {
    "issuer": "兴国县行政审批局",
    "unit_name": "梅窖镇福来旅社",
    "legal_representative": "刘某某",
    "address": "兴国县梅窖镇新街8号",
    "licensed_items": "住宿",
    "valid_from": "2026年11月22日",
    "valid_until": "2030年11月21日",
    "date": "2026年11月22日",
}


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


def test_submit_approve_download_verify(county: County, browser: Any, tmp_path: Path) -> None:
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 1200, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    try:
        # 1. the clerk lands on the submission page and fills the permit template for the No. 2 seal
        _login(page, county, "mj.clerk")
        assert page.url.endswith("/ui/clerk")
        assert "梅窖镇" in page.inner_text("#who")
        page.select_option("#template", "public_place_hygiene_permit")
        page.click("#choose-template")
        page.wait_for_selector("#f_unit_name")
        page.select_option("#seal_id", county.seals["no2"])
        page.fill("#matter_code", "XG-14")
        page.select_option("#stage", "审批")
        assert page.input_value("#document_kind") == "许可证及其附件"
        page.fill("#reason", "梅窖镇福来旅社申请公共场所卫生许可，材料齐全")
        for name, value in PERMIT.items():
            page.fill(f"#f_{name}", value)
        _shot(page, "01-clerk-form")
        page.click("#submit")
        page.wait_for_selector("#status")
        # the policy pre-check answered at once: a No. 2 seal use waits for the principal
        assert page.inner_text("#status") == "待审批"
        assert "主要负责人" in page.inner_text("#reasons")
        request_url = page.url.split("?")[0]
        _shot(page, "02-clerk-submitted")
        _logout(page)

        # 2. the principal opens it from the queue and sees the document as it will be sealed: the page
        # image with the stamp's place, the filled fields, the submitter, the seal and its agreement
        _login(page, county, "mj.principal")
        assert page.url.endswith("/ui/principal")
        row = page.locator(f"#queue tr[data-request='{request_url.rsplit('/', 1)[1]}']")
        _shot(page, "03-principal-queue")
        row.locator("a.review").click()
        page.wait_for_selector("#preview")
        image = page.locator("#preview img.page-image").first
        assert image.is_visible()
        size = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size[0] > 700 and size[1] > 1000, size  # A4 at 100 dpi
        assert page.locator("#preview .stamp-box").is_visible()
        fields = page.inner_text("#template-fields")
        assert PERMIT["unit_name"] in fields and PERMIT["valid_until"] in fields
        assert "（13）" in page.inner_text("#seal-name")
        assert page.inner_text("#agreement-status") == "有效"
        assert "（首次）" in page.inner_text("#matter")
        _shot(page, "03b-principal-approval-page")
        # keyboard: the comment field, then Enter submits the approval
        page.focus("#approve-comment")
        page.fill("#approve-comment", "同意，请按规定用印")
        page.keyboard.press("Enter")
        page.wait_for_selector("#flash")
        flash = page.inner_text("#flash")
        # the No. 2 seal's licence carries the department's series (issue 22, leak 15)
        assert "已批准" in flash and "兴国县行政审批局审批〔" in flash, flash
        _shot(page, "04-principal-approved")
        _logout(page)

        # 3. the clerk downloads the sealed PDF; poppler checks its signature
        _login(page, county, "mj.clerk")
        page.goto(request_url)
        assert page.inner_text("#status") == "已用印"
        number = page.inner_text("#document-number")
        _shot(page, "05-clerk-sealed")
        with page.expect_download() as info:
            page.click("#download-pdf")
        sealed = tmp_path / "sealed.pdf"
        info.value.save_as(str(sealed))
        assert sealed.read_bytes().startswith(b"%PDF")
        pdfsig = subprocess.run(["pdfsig", str(sealed)], capture_output=True, text=True, timeout=60)
        assert "Signature is Valid" in pdfsig.stdout, pdfsig.stdout + pdfsig.stderr
        _logout(page)

        # 4. anyone verifies it on the public page: 通过, the facts and the seal picture
        page.goto(county.base + "/verify")
        _shot(page, "06-verify-form")
        page.set_input_files("#file", str(sealed))
        page.click("#verify")
        page.wait_for_selector("#verdict")
        assert page.inner_text("#verdict") == "通过", page.inner_text("main")
        assert page.inner_text("#fact-number") == number
        assert page.inner_text("#fact-township") == "梅窖镇"
        assert "（13）" in page.inner_text("#fact-seal")
        picture = page.locator("#seal-picture")
        assert picture.is_visible()
        size = picture.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size[0] > 100 and size[1] > 100, size
        _shot(page, "07-verify-passed")
    finally:
        context.close()


def test_garbage_on_verify_page_is_a_clear_answer(county: County, browser: Any, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    page = browser.new_page(locale="zh-CN")
    try:
        page.goto(county.base + "/verify")
        page.set_input_files("#file", str(junk))
        page.click("#verify")
        page.wait_for_selector("#verdict")
        assert page.inner_text("#verdict") in {"无法读取", "未通过"}
        assert page.locator("#seal-picture").count() == 0
        _shot(page, "08-verify-garbage")
    finally:
        page.close()


def test_role_landing_pages_render(county: County, browser: Any) -> None:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    try:
        expected = {
            "auditor": ("/ui/auditor", "#audit-result", "台账完整无误"),
            "bureau.officer": ("/ui/department", "#monthly-csv", "月报"),
            "admin": ("/ui/seals", "#seals", "在用"),
            "xj.custodian": ("/ui/seals", "#seals", "兴江乡"),
        }
        for username, (path, selector, text) in expected.items():
            _login(page, county, username)
            assert page.url.endswith(path), (username, page.url)
            assert text in page.inner_text(selector), username
            _shot(page, f"10-{username.replace('.', '-')}")
            _logout(page)
    finally:
        context.close()
