"""The console's rules over real HTTP against a served demo county: organisation scope, CSRF, deny by
default, role landing pages, and the public verification page on hostile input (a page, never a 500)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.console.conftest import County

pytestmark = pytest.mark.softhsm

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def client(county: County) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=county.base, timeout=60, follow_redirects=False) as c:
        yield c


def _login(c: httpx.Client, county: County, username: str) -> str:
    c.cookies.clear()
    r = c.post("/ui/login", data={"username": username, "password": county.passwords[username]})
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    landing = c.get(r.headers["location"])
    assert landing.status_code == 200
    m = CSRF.search(landing.text)
    assert m, landing.text
    return m.group(1)


def _submit_acceptance(c: httpx.Client, csrf: str, seal_id: str) -> str:
    r = c.post(
        "/ui/clerk/submit",
        data={
            "csrf_token": csrf,
            "seal_id": seal_id,
            "matter_code": "SX-002",
            "stage": "受理",
            "document_kind": "受理通知书",
            "reason": "临时救助申请受理",
            "template": "acceptance_notice",
            "f_issuer": "兴国县梅窖镇人民政府",
            "f_applicant": "王某某",
            "f_matter_name": "临时救助",
            "f_submitted_date": "2026年11月20日",
            "f_date": "2026年11月22日",
        },
    )
    assert r.status_code == 303, r.text
    m = re.match(r"/ui/requests/([0-9a-f-]{36})", r.headers["location"])
    assert m, r.headers["location"]
    return m.group(1)


def test_clerk_of_one_township_never_sees_another(county: County, client: httpx.Client) -> None:
    csrf = _login(client, county, "mj.clerk")
    mj_request = _submit_acceptance(client, csrf, county.seals["mj"])
    page = client.get(f"/ui/requests/{mj_request}")
    assert page.status_code == 200 and "梅窖镇" in page.text

    csrf = _login(client, county, "xj.clerk")
    clerk_page = client.get("/ui/clerk").text
    assert "兴江乡" in clerk_page
    assert "梅窖" not in clerk_page and mj_request not in clerk_page
    assert county.seals["mj"] not in clerk_page and county.seals["no2"] not in clerk_page
    seals_page = client.get("/ui/seals").text
    assert "兴江乡" in seals_page and "梅窖镇" not in seals_page
    # Asking for 梅窖镇's request, its sealed PDF or its receipt by id: refused, nothing leaks.
    for path in ("", "/sealed.pdf", "/receipt.txt"):
        r = client.get(f"/ui/requests/{mj_request}{path}")
        assert r.status_code == 403, (path, r.status_code)
        assert "王某某" not in r.text and "梅窖" not in r.text
    # Submitting with 梅窖镇's seal: refused by the rules, not sealed.
    r = client.post(
        "/ui/clerk/submit",
        data={
            "csrf_token": csrf,
            "seal_id": county.seals["mj"],
            "matter_code": "SX-002",
            "stage": "受理",
            "document_kind": "受理通知书",
            "reason": "x",
            "template": "acceptance_notice",
            "f_issuer": "x",
            "f_applicant": "x",
            "f_matter_name": "x",
            "f_submitted_date": "x",
            "f_date": "x",
        },
        follow_redirects=True,
    )
    assert r.status_code == 200
    assert "已用印" not in r.text
    assert re.search(r"(无权|其他单位|未通过)", r.text), r.text


def test_post_without_csrf_token_is_refused(county: County, client: httpx.Client) -> None:
    csrf = _login(client, county, "mj.principal")
    for data in ({}, {"csrf_token": "forged-" + csrf[:8]}):
        r = client.post("/ui/logout", data=data)
        assert r.status_code == 403 and "CSRF" in r.text
        r = client.post(
            f"/ui/requests/{'0' * 8}-0000-0000-0000-{'0' * 12}/approve", data={"comment": "x", **data}
        )
        assert r.status_code == 403 and "CSRF" in r.text
    # The session is still good and the real token works.
    assert client.post("/ui/logout", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/ui/principal").headers["location"].startswith("/ui/login")


def test_roles_land_on_their_pages_and_are_denied_the_others(county: County, client: httpx.Client) -> None:
    landings = {
        "xj.clerk": ("/ui/clerk", "用章申请"),
        "xj.principal": ("/ui/principal", "审批队列"),
        "bureau.officer": ("/ui/department", "委托协议"),
        "auditor": ("/ui/auditor", "台账完整无误"),
        "admin": ("/ui/seals", "兴国县行政审批局行政审批专用章"),
    }
    for username, (path, text) in landings.items():
        client.cookies.clear()
        r = client.post("/ui/login", data={"username": username, "password": county.passwords[username]})
        assert r.headers["location"] == path, username
        page = client.get(path)
        assert page.status_code == 200 and text in page.text, username
    # deny by default: the auditor may not submit or approve, the clerk may not read the ledger
    client.cookies.clear()
    _login(client, county, "auditor")
    for path in ("/ui/clerk", "/ui/principal"):
        assert client.get(path).status_code == 403
    _login(client, county, "xj.clerk")
    for path in ("/ui/auditor", "/ui/principal", "/ui/department"):
        assert client.get(path).status_code == 403
    # no session: the login page
    client.cookies.clear()
    r = client.get("/ui/clerk")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    r = client.post("/ui/login", data={"username": "xj.clerk", "password": "wrong password!"})
    assert r.status_code == 303 and "error=" in r.headers["location"]


def test_monthly_report_link_downloads_csv(county: County, client: httpx.Client) -> None:
    _login(client, county, "bureau.officer")
    page = client.get("/ui/department").text
    link = re.search(r'id="monthly-csv" href="([^"]+)"', page)
    assert link
    r = client.get(link.group(1).replace("&amp;", "&"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.lstrip("\ufeff").startswith("月份,乡镇,委托部门,事项代码,事项名称,状态,件数")


@pytest.mark.parametrize(
    "body",
    [b"", b"not a pdf at all", b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\n" * 50, bytes(range(256)) * 64],
    ids=["empty", "text", "broken-pdf", "binary"],
)
def test_verify_page_answers_hostile_files_with_a_page(
    county: County, client: httpx.Client, body: bytes
) -> None:
    r = client.post("/verify", files={"file": ("x.pdf", body, "application/pdf")})
    assert r.status_code in (200, 400), r.status_code
    assert "text/html" in r.headers["content-type"]
    if r.status_code == 200:
        verdict = re.search(r'id="verdict">([^<]+)<', r.text)
        assert verdict and verdict.group(1) in {"无法读取", "未通过"}
        assert 'id="seal-picture"' not in r.text


def test_verify_page_other_malformed_requests(county: County, client: httpx.Client) -> None:
    assert (
        client.post("/verify", content=b"junk", headers={"content-type": "multipart/form-data"}).status_code
        == 400
    )
    assert client.post("/verify", data={"file": "text"}).status_code == 400
    r = client.get("/verify", params={"no": "兴江审批〔2099〕9号", "h": "0" * 64})
    assert r.status_code == 404 and "没有这个文号" in r.text
    r = client.get("/verify", params={"no": "x", "h": "not-a-hash"})
    assert r.status_code == 400


def test_qr_lookup_shows_the_registered_document(county: County, client: httpx.Client) -> None:
    permit = county.home / "sealed" / "public_place_hygiene_permit.pdf"
    # the QR's link is printed on the page; read it from the verification facts instead of decoding the image
    upload = client.post("/verify", files={"file": ("p.pdf", permit.read_bytes(), "application/pdf")})
    assert re.search(r'id="verdict">通过<', upload.text)
    number = re.search(r'id="fact-number">([^<]+)<', upload.text)
    assert number
    # read_binding parses in this process: verify_document would fork its sandbox pool here, and a forked
    # child holding the Playwright driver's pipes keeps the browser fixture from shutting down
    from signer import read_binding

    source = read_binding(permit.read_bytes())[0]["source_sha256"]
    r = client.get("/verify", params={"no": number.group(1), "h": source})
    assert r.status_code == 200 and re.search(r'id="verdict">通过<', r.text), r.text
    assert 'id="seal-picture"' in r.text
    r = client.get("/verify", params={"no": number.group(1), "h": "f" * 64})
    assert re.search(r'id="verdict">未通过<', r.text) and "QR_HASH_MISMATCH" in r.text


def test_tampered_sealed_document_fails_without_a_picture(county: County, client: httpx.Client) -> None:
    original = (county.home / "sealed" / "acceptance_notice.pdf").read_bytes()
    # an incremental update appended after the seal (content change after signing)
    tampered = original + b"\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
    r = client.post("/verify", files={"file": ("t.pdf", tampered, "application/pdf")})
    assert r.status_code == 200
    assert re.search(r'id="verdict">(未通过|无法读取)<', r.text), r.text
    assert 'id="seal-picture"' not in r.text
    status = re.search(r'id="fact-status">([^<]*)<', r.text)
    assert status is None or "有效" not in status.group(1)


def test_revoked_decision_shows_as_revoked_on_the_verify_page(county: County, client: httpx.Client) -> None:
    csrf = _login(client, county, "mj.clerk")
    request_id = _submit_acceptance(client, csrf, county.seals["mj"])
    page = client.get(f"/ui/requests/{request_id}").text
    assert 'id="status">已用印<' in page, page
    sealed = client.get(f"/ui/requests/{request_id}/sealed.pdf")
    assert sealed.status_code == 200 and sealed.content.startswith(b"%PDF")

    def verdict_and_status() -> tuple[str, str]:
        r = client.post("/verify", files={"file": ("a.pdf", sealed.content, "application/pdf")})
        verdict = re.search(r'id="verdict">([^<]+)<', r.text)
        status = re.search(r'id="fact-status">([^<]+)<', r.text)
        assert verdict and status, r.text
        return verdict.group(1), status.group(1)

    assert verdict_and_status()[0] == "通过"
    # the principal revokes the decision through the API (same session, CSRF token in the header)
    csrf = _login(client, county, "mj.principal")
    r = client.post(
        f"/v1/signing-requests/{request_id}/status",
        json={"status": "REVOKED", "reason": "申请人隐瞒有关情况"},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 200, r.text
    verdict, status = verdict_and_status()
    assert status == "已撤销" and verdict != "通过"


def test_clerk_uploads_a_pdf_and_downloads_the_receipt(county: County, client: httpx.Client) -> None:
    from signer import render_template

    unsigned = render_template(
        "acceptance_notice",
        {
            "issuer": "兴国县兴江乡人民政府",
            "applicant": "赵某某",
            "matter_name": "临时救助",
            "submitted_date": "2026年11月21日",
            "date": "2026年11月22日",
        },
    )
    csrf = _login(client, county, "xj.clerk")
    form = {
        "csrf_token": csrf,
        "seal_id": county.seals["xj"],
        "matter_code": "SX-002",
        "stage": "受理",
        "document_kind": "受理通知书",
        "reason": "赵某某临时救助申请受理",
    }
    r = client.post(
        "/ui/clerk/submit", data=form, files={"file": ("notice.pdf", unsigned, "application/pdf")}
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/requests/"), r.text
    request_path = r.headers["location"].split("?")[0]
    assert 'id="status">已用印<' in client.get(request_path).text
    receipt = client.get(request_path + "/receipt.txt")
    assert receipt.status_code == 200 and receipt.text.strip()
    sealed = client.get(request_path + "/sealed.pdf")
    assert sealed.status_code == 200 and sealed.content.startswith(b"%PDF")
    # not a PDF: refused with the reason, nothing recorded as sealed
    r = client.post(
        "/ui/clerk/submit",
        data=form,
        files={"file": ("x.pdf", b"hello", "application/pdf")},
        follow_redirects=True,
    )
    # the form again (400) with the reason and what was typed (issue 23)
    assert r.status_code == 400 and "不是 PDF" in r.text and 'value="赵某某临时救助申请受理"' in r.text
