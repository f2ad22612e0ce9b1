"""Seals, CRLs, the ledger and verification over HTTP with a real SoftHSM token, on SQLite and PostgreSQL.

The organisation rule is the point: a 兴江乡 clerk never sees or touches 梅窖镇's seal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from starlette.testclient import TestClient

XJ = "xingjiang"
MJ = "meijiao"

pytestmark = pytest.mark.softhsm


@pytest.fixture
def api_client(ks_settings, county_pki, tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """Overrides the plain client: this deployment has a county PKI in the token and a file log key."""
    from api.app import create_app

    settings = ks_settings.model_copy(update={"log_key_source": f"file:{tmp_path / 'log.key'}"})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.app.state.services.seal_registry is not None, client.app.state.services.problems
        yield client


def _register(client: TestClient, township: str, code: str) -> None:
    """Seals are made only for townships on the county's register (issue 22): register it first."""
    from core.errors import Conflict

    store = client.app.state.services.need_policy_store()  # type: ignore[attr-defined]
    try:
        store.register_county("360732", "兴国县", actor="test")
    except Conflict:
        pass
    try:
        store.register_township(
            code, township, county_code="360732", service_centre=f"{code}-BMFW", actor="t"
        )
    except Conflict:
        pass


def _issue(client: TestClient, admin, township: str, code: str) -> str:  # type: ignore[no-untyped-def]
    _register(client, township, code)
    r = client.post(
        "/v1/seals",
        json={
            "name": f"兴国县{township}人民政府行政审批服务专用章",
            "kind": "TOWNSHIP_APPROVAL",
            "township": township,
            "township_code": code,
            "custodian": "李保管",
            "requested_by": f"{township}人民政府",
            "approved_by": "王乡长",
        },
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    seal_id = r.json()["seal"]["seal_id"]
    r = client.post(f"/v1/seals/{seal_id}/activate", json={"approved_by": "王乡长"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["seal"]["status"] == "ACTIVE", r.text
    return str(seal_id)


def test_seals_are_confined_to_their_township(api_client, county_accounts) -> None:
    c, a = api_client, county_accounts
    xj_seal = _issue(c, a["admin"], "兴江乡", XJ)
    mj_seal = _issue(c, a["admin"], "梅窖镇", MJ)

    listed = {s["seal_id"] for s in c.get("/v1/seals", headers=a["xj.clerk"].headers).json()}
    assert listed == {xj_seal}
    listed = {s["seal_id"] for s in c.get("/v1/seals", headers=a["auditor"].headers).json()}
    assert listed == {xj_seal, mj_seal}
    # Asking for the other township's seal by id, or by filter, gives nothing.
    r = c.get(f"/v1/seals/{mj_seal}", headers=a["xj.clerk"].headers)
    assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION"
    assert c.get(f"/v1/seals?township_code={MJ}", headers=a["xj.clerk"].headers).json() == []
    r = c.get(f"/v1/seals/{mj_seal}/certificate", headers=a["xj.principal"].headers)
    assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION"
    # The certificate of one's own seal is served as DER.
    r = c.get(f"/v1/seals/{xj_seal}/certificate", headers=a["xj.clerk"].headers)
    assert r.status_code == 200 and x509.load_der_x509_certificate(r.content)

    # A custodian suspends and resumes only their own township's seal; a clerk not at all.
    body = {"reason": "保管人休假"}
    r = c.post(f"/v1/seals/{xj_seal}/suspend", json=body, headers=a["xj.clerk"].headers)
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN"
    r = c.post(f"/v1/seals/{mj_seal}/suspend", json=body, headers=a["xj.custodian"].headers)
    assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION"
    r = c.post(f"/v1/seals/{xj_seal}/suspend", json=body, headers=a["xj.custodian"].headers)
    assert r.status_code == 200 and r.json()["seal"]["status"] == "SUSPENDED"
    r = c.post(f"/v1/seals/{xj_seal}/resume", json={}, headers=a["xj.custodian"].headers)
    assert r.status_code == 200 and r.json()["seal"]["status"] == "ACTIVE"
    # Only the bureau makes or cancels seals.
    r = c.post(
        f"/v1/seals/{xj_seal}/cancel",
        json={"reason": "x", "approved_by": "y"},
        headers=a["xj.custodian"].headers,
    )
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN"
    events = c.get(f"/v1/seals/{xj_seal}/events", headers=a["xj.principal"].headers).json()
    assert [e["event"] for e in events][-2:] == ["SUSPEND", "RESUME"] or len(events) >= 4


def test_readyz_checks_the_real_token(api_client) -> None:
    r = api_client.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"] == {"database": "ok", "token": "ok"}, r.text


def test_seal_errors_have_codes(api_client, county_accounts) -> None:
    c, admin = api_client, county_accounts["admin"]
    r = c.get("/v1/seals/no-such-seal", headers=admin.headers)
    assert r.status_code == 404 and r.json()["code"] == "SEAL_NOT_FOUND"
    seal_id = _issue(c, admin, "兴江乡", XJ)
    r = c.post(f"/v1/seals/{seal_id}/cancel", json={"reason": "撤并"}, headers=admin.headers)
    assert r.status_code == 400 and r.json()["code"] == "APPROVED_BY_REQUIRED"
    r = c.post(
        f"/v1/seals/{seal_id}/cancel", json={"reason": "撤并", "approved_by": "王乡长"}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["seal"]["status"] == "CANCELLED"
    # No resurrecting a cancelled seal.
    r = c.post(f"/v1/seals/{seal_id}/resume", json={}, headers=admin.headers)
    assert r.status_code == 409, r.text
    assert r.json()["code"]
    r = c.post("/v1/seals", json={"name": "x", "kind": "NOPE"}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_FAILED"


def test_crl_and_ca_certificates_are_public(api_client, county_accounts) -> None:
    c, admin = api_client, county_accounts["admin"]
    seal_id = _issue(c, admin, "兴江乡", XJ)
    serial = int(c.get(f"/v1/seals/{seal_id}", headers=admin.headers).json()["cert_serial"], 16)
    c.post(
        f"/v1/seals/{seal_id}/cancel", json={"reason": "撤并", "approved_by": "王乡长"}, headers=admin.headers
    )
    assert c.post("/v1/seals/crl/publish", headers=county_accounts["xj.clerk"].headers).status_code == 403
    r = c.post("/v1/seals/crl/publish", headers=admin.headers)
    assert r.status_code == 200, r.text
    # No login for any of these.
    r = c.get("/pki/crl/issuing.crl")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(r.content)
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    root = x509.load_der_x509_certificate(c.get("/pki/root.crt").content)
    issuing = x509.load_der_x509_certificate(c.get("/pki/issuing.crt").content)
    assert issuing.issuer == root.subject
    assert crl.is_signature_valid(issuing.public_key())  # type: ignore[arg-type]
    assert c.get("/pki/other.crt").status_code == 404
    assert c.get("/pki/crl/../../secrets/token.pin").status_code == 404


def test_ledger_audit_checkpoint_and_public_proofs(api_client, county_accounts, make_fields) -> None:
    c, a = api_client, county_accounts
    r = c.get("/v1/ledger/audit", headers=a["auditor"].headers)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert c.get("/v1/ledger/audit", headers=a["xj.clerk"].headers).json()["code"] == "ROLE_FORBIDDEN"
    assert c.post("/v1/ledger/checkpoint", headers=a["auditor"].headers).json()["code"] == "ROLE_FORBIDDEN"
    r = c.post("/v1/ledger/checkpoint", headers=a["admin"].headers)
    assert r.status_code == 409 and r.json()["code"] == "LEDGER_EMPTY"
    _append_entries(c, make_fields, 3)
    r = c.post("/v1/ledger/checkpoint", headers=a["admin"].headers)
    assert r.status_code == 200, r.text
    note = r.json()["note"]
    r = c.get("/v1/public/checkpoint")
    assert r.status_code == 200 and r.text == note
    vkey = c.get("/v1/public/log-key")
    assert vkey.status_code == 200 and vkey.text.strip()
    from ledger import NoteVerifier, verify_checkpoint

    verifier = NoteVerifier.from_vkey(vkey.text.strip())
    cp = verify_checkpoint(note, [verifier])
    assert cp.size == 3
    # A receipt checks offline against the published key.
    from ledger import verify_receipt

    r = c.get("/v1/public/proofs/1")
    assert r.status_code == 200, r.text
    assert r.text.startswith("c2sp.org/tlog-proof")
    r2 = c.get("/v1/public/consistency?first=1&second=3")
    assert r2.status_code == 200 and len(r2.json()["proof"]) >= 1
    assert c.get("/v1/ledger/size", headers=a["auditor"].headers).json() == {"size": 3}
    assert c.get("/v1/ledger/entries/2", headers=a["auditor"].headers).status_code == 200
    assert c.get("/v1/ledger/entries/9", headers=a["auditor"].headers).status_code in (400, 404)
    assert verify_receipt is not None
    r = c.get("/v1/public/proofs/5")
    assert 400 <= r.status_code < 500 and r.json()["code"]
    r = c.get("/v1/public/consistency?first=3&second=1")
    assert r.status_code == 400 and r.json()["code"] == "SIZE_ORDER_INVALID"


def _append_entries(client: TestClient, make_fields, n: int) -> None:  # type: ignore[no-untyped-def]
    from core.db import transaction

    services = client.app.state.services
    with transaction(services.sessions) as s:
        for i in range(n):
            services.ledger.append(s, make_fields(i), f"api-test-{i}")


def test_public_verify_refuses_garbage_with_a_report(api_client, county_accounts) -> None:
    c = api_client
    c.post("/v1/seals/crl/publish", headers=county_accounts["admin"].headers)
    r = c.post("/v1/verify", files={"file": ("x.pdf", b"not a pdf at all", "application/pdf")})
    assert r.status_code == 200, r.text
    assert r.json()["indication"] == "TOTAL_FAILED"
    r = c.post("/v1/verify", content=b"junk", headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert 400 <= r.status_code < 500


def test_tsa_over_http_verifies_with_openssl(api_client, county_accounts, tmp_path: Path) -> None:
    import subprocess

    from cryptography.hazmat.primitives import serialization

    c = api_client
    data = tmp_path / "doc.bin"
    data.write_bytes(b"township permit 17")
    query = subprocess.run(
        ["openssl", "ts", "-query", "-data", str(data), "-sha256", "-cert"], capture_output=True, check=True
    ).stdout
    tsq = {"Content-Type": "application/timestamp-query"}
    # Not a public oracle (issue 18): no account, no timestamp; an account that does not seal, neither.
    r = c.post("/v1/tsa", content=query, headers=tsq)
    assert (r.status_code, r.json()["code"]) == (401, "UNAUTHENTICATED"), r.text
    r = c.post("/v1/tsa", content=query, headers={**tsq, "Authorization": "Bearer yz_not-a-token"})
    assert r.status_code == 401, r.text
    for who in ("auditor", "admin", "xj.custodian"):
        r = c.post("/v1/tsa", content=query, headers={**tsq, **county_accounts[who].headers})
        assert (r.status_code, r.json()["code"]) == (403, "ROLE_FORBIDDEN"), (who, r.text)
    clerk = county_accounts["xj.clerk"].headers
    r = c.post("/v1/tsa", content=query, headers={**tsq, **clerk})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/timestamp-reply"
    (tmp_path / "resp.tsr").write_bytes(r.content)
    pki = c.app.state.services.county_pki
    (tmp_path / "root.pem").write_bytes(pki.root_certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "issuing.pem").write_bytes(pki.issuing_certificate.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-data",
            str(data),
            "-in",
            str(tmp_path / "resp.tsr"),
            "-CAfile",
            str(tmp_path / "root.pem"),
            "-untrusted",
            str(tmp_path / "issuing.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "Verification: OK" in out.stdout, out.stdout + out.stderr
    # Wrong content type and garbage: 4xx with a code, never a 500.
    r = c.post("/v1/tsa", content=query, headers={"Content-Type": "application/octet-stream", **clerk})
    assert r.status_code == 400 and r.json()["code"] == "CONTENT_TYPE_INVALID"
    r = c.post("/v1/tsa", content=b"\x30\x03garbage", headers={**tsq, **clerk})
    assert r.status_code < 500


def test_lifecycle_changes_reach_the_ledger_at_once_and_checkpoints_come_regularly(
    ks_settings, county_pki, county_accounts, tmp_path: Path
) -> None:
    """A seal made and activated over the API is in the ledger when the response arrives (journal), and
    the serve loop signs a checkpoint covering it without anyone asking (checkpoint_interval_s)."""
    import time

    from api.app import create_app

    settings = ks_settings.model_copy(
        update={"log_key_source": f"file:{tmp_path / 'log.key'}", "checkpoint_interval_s": 0.2}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        assert c.get("/v1/public/checkpoint").status_code == 404
        seal_id = _issue(c, county_accounts["admin"], "兴江乡", XJ)
        ledger = c.app.state.services.ledger
        size = ledger.size()
        kinds = [ledger.get(i).kind.value for i in range(size)]
        bodies = [ledger.get(i).body for i in range(size)]
        lifecycle = [b for k, b in zip(kinds, bodies, strict=True) if k == "SEAL_LIFECYCLE"]
        assert [b["seal_id"] for b in lifecycle] == [seal_id, seal_id], kinds
        assert [b["event"] for b in lifecycle] == ["ISSUED", "ACTIVATED"]
        # The 200 of a refused change forwards nothing new.
        r = c.post(f"/v1/seals/{seal_id}/activate", json={"approved_by": "王乡长"}, **_h(county_accounts))
        assert r.status_code == 409, r.text
        assert ledger.size() == size
        # The loop may already have signed a smaller head (it runs while the seal is made); it must come
        # to cover the whole ledger without anyone asking.
        for _ in range(300):
            r = c.get("/v1/public/checkpoint")
            if r.status_code == 200 and r.text.splitlines()[1] == str(size):
                break
            time.sleep(0.1)
        assert r.status_code == 200 and r.text.splitlines()[1] == str(size), "no head checkpoint"


def _h(accounts) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    return {"headers": accounts["admin"].headers}


@pytest.mark.parametrize("code", ["兴江乡", "a_b", "x y", "-lead", "a" * 49])
def test_organisation_code_that_cannot_go_into_a_certificate_is_bad_input(
    api_client, county_accounts, code
) -> None:
    """Regression (schemathesis, 70 examples per operation): a township code the certificate's
    PrintableString serialNumber cannot hold reached the CA and came back as a 500."""
    r = api_client.post(
        "/v1/seals",
        json={
            "name": "兴国县兴江乡人民政府行政审批服务专用章",
            "kind": "TOWNSHIP_APPROVAL",
            "township": "兴江乡",
            "township_code": code,
            "custodian": "李保管",
            "requested_by": "兴江乡人民政府",
            "approved_by": "王乡长",
        },
        headers=county_accounts["admin"].headers,
    )
    assert r.status_code == 400 and r.json()["code"] == "ORG_CODE_INVALID", r.text
    assert api_client.get("/v1/seals", headers=county_accounts["admin"].headers).json() == []
