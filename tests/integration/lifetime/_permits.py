"""Decisions issued through the signing workflow on a lifetime home (``_home``), for the out-of-county tests
(issue 19), in the home's own process (its own token):

    python -m tests.integration.lifetime._permits HOME OUTDIR

Over HTTP (the service app on the home, in process): 兴江乡's clerk seals six acceptance notices from the
template (``valid``, ``revoked``, ``withdrawn``, ``cancelled``, ``changed``, ``successor``); the journal is
forwarded and a checkpoint signed; each document and its ledger receipt are saved as the holder gets them
(``GET /v1/signing-requests/{id}/document`` and ``/receipt``). The township principal withdraws, cancels and
changes three of them (``changed`` names ``successor``); the county's trust bundle is fetched as another
county would (``GET /pki/trust-bundle.json`` → ``OUTDIR/bundle-0.json``); then ``revoked`` is revoked, so
the bundle of that day does not know it. Prints ``{name: {"pdf", "receipt", "number", "request_id"}}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

NAMES = ("valid", "revoked", "withdrawn", "cancelled", "changed", "successor")
ENDED_BEFORE_BUNDLE = {"withdrawn": "WITHDRAWN", "cancelled": "CANCELLED"}


def issue(home: Path, out: Path) -> dict[str, dict[str, str]]:
    from starlette.testclient import TestClient

    from api._accounts import create_account, issue_token
    from api._journal import forward
    from api.app import create_app
    from api.cli._common import settings_for
    from core.db import transaction
    from tests._fixtures.signer import ACCEPTANCE_DATA, XINGJIANG

    settings = settings_for(home)
    app = create_app(settings, webhook_interval_s=None, checkpoint_interval_s=0, crl_publishing=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        services = app.state.services
        seal = next(iter(services.need_seal_registry().list(township_code=XINGJIANG)))
        centre = services.need_policy_store().organisation(XINGJIANG).service_centre
        headers = {}
        with transaction(services.sessions) as s:
            for username, role in (("xj.clerk", "TOWNSHIP_CLERK"), ("xj.principal", "TOWNSHIP_PRINCIPAL")):
                account = create_account(
                    s,
                    username=username,
                    display_name=username,
                    role=role,
                    org_code=XINGJIANG,
                    service_centre=centre,
                    created_by="lifetime",
                )
                token = issue_token(s, account.account_id, name="lifetime").secret
                headers[username] = {"Authorization": f"Bearer {token}"}
        clerk, principal = headers["xj.clerk"], headers["xj.principal"]

        def ok(r: Any, status: int = 200) -> dict[str, Any]:
            assert r.status_code == status, r.text
            body: dict[str, Any] = r.json()
            return body

        issued = {}
        for name in NAMES:
            view = ok(
                client.post(
                    "/v1/signing-requests/from-template",
                    json={
                        "seal_id": seal.seal_id,
                        "matter_code": "SX-002",
                        "stage": "受理",
                        "document_kind": "受理通知书",
                        "reason": "受理临时救助申请",
                        "idempotency_key": f"lifetime-{name}",
                        "applicant": "刘某某",
                        "template": "acceptance_notice",
                        "data": ACCEPTANCE_DATA,
                    },
                    headers=clerk,
                ),
                201,
            )
            assert view["status"] == "SEALED" and view["document_number"], view
            issued[name] = view
        forward(services)
        services.need_ledger().checkpoint()
        found: dict[str, dict[str, str]] = {}
        for name, view in issued.items():
            rid = view["request_id"]
            pdf, receipt = out / f"{name}.pdf", out / f"{name}.receipt"
            r = client.get(f"/v1/signing-requests/{rid}/document", headers=clerk)
            assert r.status_code == 200, r.text
            pdf.write_bytes(r.content)
            r = client.get(f"/v1/signing-requests/{rid}/receipt", headers=clerk)
            assert r.status_code == 200, r.text
            receipt.write_text(r.text, encoding="utf-8")
            found[name] = {
                "pdf": str(pdf),
                "receipt": str(receipt),
                "number": view["document_number"],
                "request_id": rid,
            }

        def change(name: str, status: str, successor: str | None = None) -> None:
            body = {"status": status, "reason": "依法处理", **({"successor": successor} if successor else {})}
            rid = found[name]["request_id"]
            view = ok(client.post(f"/v1/signing-requests/{rid}/status", json=body, headers=principal))
            assert view["decision_status"] == status, view

        for name, status in ENDED_BEFORE_BUNDLE.items():
            change(name, status)
        change("changed", "CHANGED", found["successor"]["number"])
        r = client.get("/pki/trust-bundle.json")
        assert r.status_code == 200, r.text
        (out / "bundle-0.json").write_bytes(r.content)
        change("revoked", "REVOKED")  # since the bundle of T was fetched
    return found


if __name__ == "__main__":
    print(json.dumps(issue(Path(sys.argv[1]), Path(sys.argv[2])), ensure_ascii=False))
