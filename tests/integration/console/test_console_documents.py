"""The console and the documents (issue 23), over real HTTP against the served demo county: the principal
sees the document before approving it, the verification QR code on a sealed document leads to a passing
verify page (decoded from the rendered page with zbar), names instead of codes, the password form,
login messages by code only, forms that keep what was typed, and 文书效力 only on sealed documents."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.console.conftest import County

pytestmark = pytest.mark.softhsm

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PERMIT = {
    "f_issuer": "兴国县行政审批局",
    "f_unit_name": "梅窖镇清风茶楼",
    "f_legal_representative": "陈某某",
    "f_address": "兴国县梅窖镇老街3号",
    "f_licensed_items": "茶座",
    "f_valid_from": "2026年11月22日",
    "f_valid_until": "2030年11月21日",
    "f_date": "2026年11月22日",
}


@pytest.fixture
def client(county: County) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=county.base, timeout=60, follow_redirects=False) as c:
        yield c


def _login(c: httpx.Client, county: County, username: str, password: str | None = None) -> str:
    c.cookies.clear()
    r = c.post("/ui/login", data={"username": username, "password": password or county.passwords[username]})
    assert r.status_code == 303, r.text
    landing = c.get(r.headers["location"])
    assert landing.status_code == 200, landing.text
    m = CSRF.search(landing.text)
    assert m, landing.text
    return m.group(1)


def _submit_permit(c: httpx.Client, csrf: str, county: County, matter: str) -> str:
    r = c.post(
        "/ui/clerk/submit",
        data={
            "csrf_token": csrf,
            "seal_id": county.seals["no2"],
            "matter_code": matter,
            "stage": "审批",
            "document_kind": "许可证及其附件",
            "reason": "清风茶楼申请公共场所卫生许可",
            "template": "public_place_hygiene_permit",
            **PERMIT,
        },
    )
    assert r.status_code == 303, r.text
    m = re.match(r"/ui/requests/([0-9a-f-]{36})", r.headers["location"])
    assert m, r.headers["location"]
    return m.group(1)


def test_principal_sees_the_document_fields_seal_and_agreement_before_approving(
    county: County, client: httpx.Client
) -> None:
    csrf = _login(client, county, "mj.clerk")
    request_id = _submit_permit(client, csrf, county, "XG-15")
    csrf = _login(client, county, "mj.principal")
    queue = client.get("/ui/principal").text
    # the queue names the matter with its sub-item and has no blind approve button: approval is on the page
    assert f'href="/ui/requests/{request_id}"' in queue and "（变更）" in queue
    assert 'class="approve-form"' not in queue
    page = client.get(f"/ui/requests/{request_id}").text
    assert 'id="status">待审批<' in page
    # the document as it will be sealed: a rendered page image, with the stamp and the QR code outlined
    assert 'id="preview-problem"' not in page, page[page.find("preview-problem") :][:300]
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="第 1 页"', page)
    assert len(images) == 1 and len(images[0]) > 20_000
    assert 'class="stamp-box"' in page and 'class="qr-box"' in page
    # every filled field, the submitter by name, the seal, its agreement as it stands today, the matter
    for value in PERMIT.values():
        assert value in page
    submitter = re.search(r'id="submitter" title="mj\.clerk">([^<]+)<', page)
    assert submitter and not UUID.search(submitter.group(1))
    assert "（13）" in re.search(r'id="seal-name">(.*?)</span>', page, re.S).group(1)  # type: ignore[union-attr]
    assert 'id="agreement-status">有效<' in page
    assert "XG-15" in page and "公共场所卫生许可（变更）" in page
    assert 'id="decision-status"' not in page  # nothing sealed yet: no 文书效力
    # approve from this page
    r = client.post(
        f"/ui/requests/{request_id}/approve", data={"csrf_token": csrf, "comment": "同意", "from": "request"}
    )
    assert r.status_code == 303 and "/ui/principal" in r.headers["location"]
    sealed = client.get(f"/ui/requests/{request_id}").text
    assert 'id="status">已用印<' in sealed and 'id="decision-status">有效<' in sealed
    assert 'id="approver" title="mj.principal"' in sealed
    assert 'class="page-image"' not in sealed  # the preview is for what is still to be sealed


def _qr_link(pdf: bytes, tmp: Path) -> str:
    if shutil.which("zbarimg") is None:
        pytest.fail("zbarimg not installed (scripts/setup.sh installs zbar-tools with the browser)")
    src = tmp / "sealed.pdf"
    src.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "200", "-png", "-singlefile", str(src), str(tmp / "page")], check=True)
    out = subprocess.run(
        ["zbarimg", "-q", "--raw", str(tmp / "page.png")], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_qr_code_on_a_template_document_opens_a_passing_verify_page(
    county: County, client: httpx.Client, tmp_path: Path
) -> None:
    csrf = _login(client, county, "mj.clerk")
    r = client.post(
        "/ui/clerk/submit",
        data={
            "csrf_token": csrf,
            "seal_id": county.seals["mj"],
            "matter_code": "SX-002",
            "stage": "受理",
            "document_kind": "受理通知书",
            "reason": "临时救助申请受理",
            "template": "acceptance_notice",
            "f_issuer": "兴国县梅窖镇人民政府",
            "f_applicant": "孙某某",
            "f_matter_name": "临时救助",
            "f_submitted_date": "2026年11月20日",
            "f_date": "2026年11月22日",
        },
    )
    assert r.status_code == 303, r.text
    request_id = r.headers["location"].split("/")[3].split("?")[0]
    pdf = client.get(f"/ui/requests/{request_id}/sealed.pdf")
    assert pdf.status_code == 200
    link = urlsplit(_qr_link(pdf.content, tmp_path))
    assert link.path == "/verify" and "no=" in link.query and "h=" in link.query
    # the county's public URL is where the QR code points; here the same server answers on another port
    page = client.get(f"{link.path}?{link.query}")
    assert page.status_code == 200 and re.search(r'id="verdict">通过<', page.text), page.text
    assert 'id="fact-matter">SX-002 ' in page.text  # the matter by name too
    # the same number with another hash: 未通过, and no TOTAL_PASSED beside it
    wrong = re.sub(r"h=[0-9a-f]{64}", "h=" + "e" * 64, link.query)
    page = client.get(f"/verify?{wrong}")
    assert re.search(r'id="verdict">未通过<', page.text) and 'id="qr-mismatch"' in page.text
    assert "TOTAL_PASSED" not in page.text and 'id="seal-picture"' not in page.text


def test_login_page_shows_known_codes_only(client: httpx.Client) -> None:
    forged = client.get("/ui/login", params={"error": "系统升级，请将密码发送至 attacker@example.com"})
    assert forged.status_code == 200
    assert "attacker" not in forged.text and "用户名或密码错误" in forged.text
    failed = client.post("/ui/login", data={"username": "nobody", "password": "wrong-password"})
    assert failed.status_code == 303 and failed.headers["location"].endswith("?error=LOGIN_FAILED")


def test_password_set_by_an_administrator_is_changed_through_the_console_form(
    county: County, client: httpx.Client
) -> None:
    csrf = _login(client, county, "admin")
    username = f"aud{uuid.uuid4().hex[:8]}"
    first = "Initial-Password-123"
    r = client.post(
        "/v1/accounts",
        json={
            "username": username,
            "display_name": "审计员甲",
            "role": "AUDITOR",
            "org_code": "360732",
            "password": first,
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 201, r.text
    client.cookies.clear()
    r = client.post("/ui/login", data={"username": username, "password": first})
    assert r.status_code == 303 and r.headers["location"] == "/ui/account/password"
    form = client.get("/ui/account/password")
    assert form.status_code == 200 and 'id="must-change"' in form.text
    csrf = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    # every other page sends the person to the form instead of a 403
    r = client.get("/ui/auditor")
    assert r.status_code == 303 and r.headers["location"] == "/ui/account/password"
    new = "Changed-Password-456"
    mismatch = {"csrf_token": csrf, "current_password": first, "new_password": new, "new_password_again": "x"}
    r = client.post("/ui/account/password", data=mismatch)
    assert r.status_code == 303 and r.headers["location"].endswith("error=PASSWORD_MISMATCH")
    wrong = {**mismatch, "current_password": "not-it-at-all", "new_password_again": new}
    r = client.post("/ui/account/password", data=wrong)
    assert r.status_code == 303 and r.headers["location"].endswith("error=LOGIN_FAILED")
    good = {"csrf_token": csrf, "current_password": first, "new_password": new, "new_password_again": new}
    r = client.post("/ui/account/password", data=good)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?done=password"
    assert "密码已修改" in client.get(r.headers["location"]).text
    r = client.post("/ui/login", data={"username": username, "password": new})
    assert r.status_code == 303 and r.headers["location"] == "/ui/auditor"
    assert client.get("/ui/auditor").status_code == 200


def test_a_refused_form_keeps_what_was_typed(county: County, client: httpx.Client) -> None:
    csrf = _login(client, county, "mj.clerk")
    r = client.post(
        "/ui/clerk/submit",
        data={
            "csrf_token": csrf,
            "seal_id": "no-such-seal",
            "matter_code": "XG-14",
            "stage": "审批",
            "document_kind": "许可证及其附件",
            "reason": "这段事由不应丢失",
            "template": "public_place_hygiene_permit",
            **PERMIT,
        },
    )
    assert 400 <= r.status_code < 500, r.text
    assert 'id="flash"' in r.text
    assert 'value="这段事由不应丢失"' in r.text and 'value="XG-14"' in r.text
    assert f'value="{PERMIT["f_unit_name"]}"' in r.text


def test_a_refused_request_shows_no_decision_validity(county: County, client: httpx.Client) -> None:
    csrf = _login(client, county, "mj.clerk")
    # the No. 2 seal for a matter outside its agreement: refused by the policy, filed as DENIED
    r = client.post(
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
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/requests/"), r.text
    page = client.get(r.headers["location"]).text
    assert 'id="status">策略拒绝<' in page
    assert 'id="decision-status"' not in page and "文书效力" not in page


def test_agreement_state_counts_the_term() -> None:
    from api.console._approval import agreement_state

    now = datetime(2027, 1, 1, tzinfo=UTC)

    def agreement(status: str, starts: int, ends: int | None) -> SimpleNamespace:
        return SimpleNamespace(
            status=SimpleNamespace(value=status),
            starts_at=now + timedelta(days=starts),
            ends_at=None if ends is None else now + timedelta(days=ends),
        )

    assert agreement_state(agreement("ACTIVE", -10, 10), now) == "有效"
    assert agreement_state(agreement("ACTIVE", -10, None), now) == "有效"
    assert agreement_state(agreement("ACTIVE", -10, -1), now) == "已过期"
    assert agreement_state(agreement("ACTIVE", 1, 10), now) == "未生效"
    assert agreement_state(agreement("SUSPENDED", -10, 10), now) == "已暂停"
    assert agreement_state(agreement("REVOKED", -10, -1), now) == "已撤销"
