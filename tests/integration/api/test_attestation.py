"""County attestation (书面认证, issue 19 item 6) end to end: API, console, ``yizhang attest`` and ``verify``.

Real token, real policies (the Xingguo catalog: 公共场所卫生许可（首次） is owned by 县行政审批局, supervised
by 县卫健委), the signing workflow over HTTP. The approval bureau's officer attests a permit 兴江乡 sealed
with the bureau's entrusted No. 2 seal, using the bureau's own seal; the attested PDF keeps the number and
verifies TOTAL_PASSED with ``attested_by`` set, through ``POST /v1/verify``, the public page and
``yizhang verify``.
Refused with stable codes: a tampered document, a revoked permit, a township seal, the entrusted No. 2 seal,
another department's seal, a matter the department does not own or supervise.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.integration.api.test_signing_workflow import (  # noqa: F401 - the fixture
    BUREAU,
    HEALTH_LICENCE_FIRST,
    XJ,
    _submit,
    county,
)

pytestmark = pytest.mark.softhsm
HEALTH = "县卫健委"


def _own_seal(client: Any, department: str, name: str, number: int) -> str:
    """A department's own seal (held by the department, not entrusted to a township: its holder code is no
    township of the policy store)."""
    from keystore import SealKind

    registry = client.app.state.services.seal_registry
    event = registry.issue_seal(
        name=name,
        kind=SealKind.DEPARTMENT_NO2,
        number=number,
        township=department,
        township_code=f"360732-{number}",
        department=department,
        department_code=department,
        custodian="局保管员",
        requested_by=department,
        approved_by="局长",
        actor="t",
    )
    registry.activate(event.seal_id, actor="t", approved_by="局长")
    return str(event.seal_id)


def _officer(client: Any, username: str, org: str) -> dict[str, str]:
    from api._accounts import create_account, issue_token
    from core.db import transaction

    with transaction(client.app.state.services.sessions) as s:
        a = create_account(
            s,
            username=username,
            display_name=username,
            role="DEPARTMENT_OFFICER",
            org_code=org,
            created_by="t",
        )
        return {"Authorization": f"Bearer {issue_token(s, a.account_id, name='t').secret}"}


def _permit(cty: dict, key: str) -> dict:  # type: ignore[type-arg]
    """A permit sealed by 兴江乡 with the bureau's No. 2 seal (the principal approves)."""
    c, h, seals = cty["client"], cty["h"], cty["seals"]
    r = _submit(c, h["xj.clerk"], seals["no2"], HEALTH_LICENCE_FIRST, "审批", "许可证及其附件", key)
    assert r.status_code == 201, r.text
    r = c.post(
        f"/v1/signing-requests/{r.json()['request_id']}/approve",
        json={"comment": "同意"},
        headers=h["xj.principal"],
    )
    assert r.status_code == 200 and r.json()["status"] == "SEALED", r.text
    view = r.json()
    view["pdf"] = c.get(f"/v1/signing-requests/{view['request_id']}/document", headers=h["xj.clerk"]).content
    return view


def _attest(c: Any, headers: dict, seal_id: str, pdf: bytes | None = None, **form: str) -> Any:  # type: ignore[type-arg]
    files = {"file": ("permit.pdf", pdf, "application/pdf")} if pdf is not None else None
    return c.post("/v1/attestations", data={"seal_id": seal_id, **form}, files=files, headers=headers)


def _cli(settings: Any, *args: str) -> Any:
    from api.cli import app

    env = {  # the app's settings, as the environment of a command run on the same home
        "YIZHANG_DATABASE_URL": settings.effective_database_url,
        "YIZHANG_PKCS11_URI": settings.pkcs11_uri,
        "YIZHANG_PIN_SOURCE": settings.pin_source,
        "YIZHANG_LOG_KEY_SOURCE": settings.log_key_source,
        "YIZHANG_SIGNATURE_LEVEL": settings.signature_level,
    }
    return CliRunner().invoke(app, [*args, "--home", str(settings.home_dir)], env=env)


def test_attestation_through_the_api_and_verify(county, tmp_path: Path) -> None:  # noqa: F811
    c, h, seals = county["client"], county["h"], county["seals"]
    settings = c.app.state.services.settings
    bureau_seal = _own_seal(c, BUREAU, "兴国县行政审批局书面认证专用章", 20)
    c.post("/v1/seals/crl/publish", headers=h["admin"])
    permit = _permit(county, "att-permit-1")

    # the department's own seal: attested, same number, a ledger entry of its own
    r = _attest(c, h["bureau"], bureau_seal, permit["pdf"], reason="供外县办理营业执照使用")
    assert r.status_code == 200, r.text
    body = r.json()
    attested = base64.b64decode(body["pdf_base64"])
    assert attested.startswith(permit["pdf"])  # an incremental update: the township's seal is untouched
    assert body["document_number"] == permit["document_number"]
    assert body["attested_by"] == "兴国县行政审批局书面认证专用章"
    assert isinstance(body["ledger_index"], int) and body["ledger_index"] > permit["ledger_index"]
    assert body["replayed"] is False
    # a retry of the same attestation answers the same document
    again = _attest(c, h["bureau"], bureau_seal, permit["pdf"], reason="供外县办理营业执照使用")
    assert again.status_code == 200 and again.json()["sha256"] == body["sha256"] and again.json()["replayed"]
    # by document number, as a PDF: the latest stored copy already carries this seal
    r = c.post(
        "/v1/attestations",
        data={"seal_id": bureau_seal, "document_number": permit["document_number"]},
        headers={**h["bureau"], "Accept": "application/pdf"},
    )
    assert (r.status_code, r.json()["code"]) == (409, "ATTEST_ALREADY_ATTESTED"), r.text

    # POST /v1/verify: TOTAL_PASSED, attested_by set, the township's seal stays the primary one
    report = c.post("/v1/verify", files={"file": ("a.pdf", attested, "application/pdf")}).json()
    assert report["indication"] == "TOTAL_PASSED", json.dumps(report, ensure_ascii=False)[:3000]
    assert report["facts"]["attested_by"] == ["兴国县行政审批局书面认证专用章"]
    assert report["facts"]["document_number"] == permit["document_number"]
    assert report["facts"]["seal_id"] == seals["no2"]
    # the public page shows the attestation
    page = c.post("/verify", files={"file": ("a.pdf", attested, "application/pdf")})
    assert page.status_code == 200 and 'id="fact-attested"' in page.text
    assert "认证：兴国县行政审批局书面认证专用章" in page.text

    # yizhang verify --home: exit 0, "认证：<seal>" in the text, attested_by in the JSON
    doc = tmp_path / "attested.pdf"
    doc.write_bytes(attested)
    out = _cli(settings, "verify", str(doc))
    assert out.exit_code == 0, out.output
    assert "认证：兴国县行政审批局书面认证专用章" in out.output
    out = _cli(settings, "verify", str(doc), "--json")
    assert json.loads(out.output)["facts"]["attested_by"] == ["兴国县行政审批局书面认证专用章"]


def test_attestation_refusals(county) -> None:  # noqa: F811
    c, h, seals = county["client"], county["h"], county["seals"]
    bureau_seal = _own_seal(c, BUREAU, "兴国县行政审批局书面认证专用章", 21)
    health_seal = _own_seal(c, HEALTH, "兴国县卫生健康委员会书面认证专用章", 22)
    health = _officer(c, "health.attest", HEALTH)
    c.post("/v1/seals/crl/publish", headers=h["admin"])
    permit = _permit(county, "att-permit-2")
    pdf = permit["pdf"]

    # roles: a clerk, an auditor may not attest
    for who in ("xj.clerk", "auditor", "admin"):
        r = _attest(c, h[who], bureau_seal, pdf)
        assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN"), (who, r.text)
    # seals: a township's, the No. 2 seal entrusted to 兴江乡, another department's
    cases = [
        (seals[XJ], 403, "ATTEST_SEAL_NOT_DEPARTMENT"),
        (seals["no2"], 403, "ATTEST_SEAL_ENTRUSTED"),
        (health_seal, 403, "ATTEST_SEAL_OTHER_DEPARTMENT"),
    ]
    for seal_id, status, code in cases:
        r = _attest(c, h["bureau"], seal_id, pdf)
        assert (r.status_code, r.json()["code"]) == (status, code), (seal_id, r.text)
    # neither a file nor a number; both; an unknown number
    r = _attest(c, h["bureau"], bureau_seal)
    assert (r.status_code, r.json()["code"]) == (400, "ATTEST_DOCUMENT_MISSING"), r.text
    r = _attest(c, h["bureau"], bureau_seal, pdf, document_number=permit["document_number"])
    assert (r.status_code, r.json()["code"]) == (400, "ATTEST_DOCUMENT_MISSING"), r.text
    r = _attest(c, h["bureau"], bureau_seal, document_number="兴江审批〔2026〕999号")
    assert (r.status_code, r.json()["code"]) == (404, "DOCUMENT_NOT_FOUND"), r.text

    # a tampered document: one byte of the sealed revision changed
    at = pdf.index(b"/Contents") - 40
    tampered = pdf[:at] + (b"0" if pdf[at : at + 1] != b"0" else b"1") + pdf[at + 1 :]
    r = _attest(c, h["bureau"], bureau_seal, tampered)
    assert (r.status_code, r.json()["code"]) == (422, "ATTEST_DOCUMENT_NOT_VERIFIED"), r.text
    assert r.json()["details"]["indication"] != "TOTAL_PASSED"
    # a control character in the reason (it would go into the signature and the ledger)
    r = _attest(c, h["bureau"], bureau_seal, pdf, reason="供外县\x00使用")
    assert (r.status_code, r.json()["code"]) == (400, "TEXT_INVALID_CHARACTER"), r.text
    # not a PDF
    r = _attest(c, h["bureau"], bureau_seal, b"not a pdf")
    assert r.status_code == 400 and r.json()["code"] == "PDF_UNREADABLE", r.text

    # an acceptance notice for a township's own matter: no county department owns or supervises it
    r = _submit(c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "att-accept-1")
    assert r.status_code == 201 and r.json()["status"] == "SEALED", r.text
    notice = c.get(f"/v1/signing-requests/{r.json()['request_id']}/document", headers=h["xj.clerk"]).content
    r = _attest(c, h["bureau"], bureau_seal, notice)
    assert (r.status_code, r.json()["code"]) == (403, "ATTEST_DEPARTMENT_NOT_RESPONSIBLE"), r.text

    # the supervising department (县卫健委) may attest the permit too, by its number
    r = _attest(c, health, health_seal, document_number=permit["document_number"])
    assert r.status_code == 200, r.text

    # the permit is revoked (撤销): no attestation any more, by file or by number, by either department
    revoke = {"status": "REVOKED", "reason": "以欺骗手段取得"}
    r = c.post(f"/v1/signing-requests/{permit['request_id']}/status", json=revoke, headers=h["bureau"])
    assert r.status_code == 200, r.text
    size = c.get("/v1/ledger/size", headers=h["auditor"]).json()["size"]
    r = _attest(c, h["bureau"], bureau_seal, pdf)
    assert (r.status_code, r.json()["code"]) == (409, "ATTEST_DECISION_NOT_IN_FORCE"), r.text
    assert r.json()["details"]["decision_status"] == "REVOKED"
    r = _attest(c, health, health_seal, document_number=permit["document_number"])
    assert (r.status_code, r.json()["code"]) == (409, "ATTEST_DECISION_NOT_IN_FORCE"), r.text
    assert c.get("/v1/ledger/size", headers=h["auditor"]).json()["size"] == size  # nothing logged


def test_yizhang_attest_and_the_console(county, tmp_path: Path) -> None:  # noqa: F811
    c, h = county["client"], county["h"]
    settings = c.app.state.services.settings
    bureau_seal = _own_seal(c, BUREAU, "兴国县行政审批局书面认证专用章", 23)
    c.post("/v1/seals/crl/publish", headers=h["admin"])
    permit = _permit(county, "att-permit-3")
    src, out = tmp_path / "permit.pdf", tmp_path / "attested.pdf"
    src.write_bytes(permit["pdf"])

    # yizhang attest: JSON answer, the attested file written, exit 0; verify passes with the attestation
    r = _cli(
        settings,
        "attest",
        str(src),
        "--seal",
        bureau_seal,
        "--reason",
        "供外县使用",
        "--out",
        str(out),
        "--json",
    )
    assert r.exit_code == 0, r.output
    answer = json.loads(r.output)
    assert answer["document_number"] == permit["document_number"] and isinstance(answer["ledger_index"], int)
    assert out.read_bytes().startswith(permit["pdf"])
    v = _cli(settings, "verify", str(out))
    assert v.exit_code == 0 and "认证：兴国县行政审批局书面认证专用章" in v.output, v.output
    # refused: the entrusted No. 2 seal (exit 1, the code in the JSON), an unreadable file (exit 2)
    r = _cli(settings, "attest", str(src), "--seal", county["seals"]["no2"], "--out", str(out), "--json")
    assert (
        r.exit_code == 1 and json.loads(r.output.splitlines()[0])["error"]["code"] == "ATTEST_SEAL_ENTRUSTED"
    )
    r = _cli(settings, "attest", str(tmp_path / "missing.pdf"), "--seal", bureau_seal, "--out", str(out))
    assert r.exit_code == 2, r.output

    # the console: a department officer logs in, opens the form, attests, downloads the result
    _console(c, bureau_seal, permit)


def _console(c: Any, seal_id: str, permit: dict) -> None:  # type: ignore[type-arg]
    from api._accounts import create_account
    from core.db import transaction

    password = "attest-console-pw-1"
    with transaction(c.app.state.services.sessions) as s:
        create_account(
            s,
            username="bureau.web",
            display_name="审批局认证员",
            role="DEPARTMENT_OFFICER",
            org_code=BUREAU,
            created_by="t",
            password=password,
        )
    r = c.post("/ui/login", data={"username": "bureau.web", "password": password}, follow_redirects=False)
    assert r.status_code == 303, r.text
    form = c.get(f"/ui/attest?no={permit['document_number']}")
    assert form.status_code == 200 and 'id="attest-form"' in form.text and seal_id in form.text
    assert "书面认证" in form.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    # without the CSRF token: refused
    r = c.post("/ui/attest", data={"seal_id": seal_id, "document_number": permit["document_number"]})
    assert r.status_code == 403 and r.headers.get("x-error-code") == "CSRF_FAILED"
    # the permit was attested by this seal from the CLI: refused, back on the form with the code
    data = {"csrf_token": csrf.group(1), "seal_id": seal_id, "document_number": permit["document_number"]}
    r = c.post("/ui/attest", data=data, follow_redirects=True)
    assert r.status_code == 200 and "ATTEST_ALREADY_ATTESTED" in r.text, r.text[-2000:]
    # the original file, uploaded by this officer: attested (the ledger records who, the CLI's was another)
    files = {"file": ("permit.pdf", permit["pdf"], "application/pdf")}
    r = c.post("/ui/attest", data={k: v for k, v in data.items() if k != "document_number"}, files=files)
    assert r.status_code == 200 and 'id="attested-by"' in r.text, r.text[-2000:]
    link = re.search(r'href="(/ui/attest/[^"]+\.pdf)"', r.text)
    assert link is not None
    pdf = c.get(link.group(1))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(permit["pdf"])
