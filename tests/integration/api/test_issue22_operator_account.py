"""Issue 22, leak 13: a clerk's request does not seal once the clerk's account is disabled or moved.

Before: the principal approved a No. 2 seal request of a clerk disabled meanwhile, and it was SEALED. Now
the account's state is read again at approval and at sealing: ``OPERATOR_ACCOUNT_DISABLED`` (moved to
another township: ``OPERATOR_WRONG_TOWNSHIP``), the request is DENIED, a ``SIGNING_REFUSED`` entry names the
code, and no number is drawn.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api import test_signing_workflow as workflow
from tests.integration.api.test_signing_workflow import GL, HEALTH_LICENCE_FIRST, _submit

county = workflow.county  # the workflow tests' county: accounts, seals, a No. 2 agreement, HTTP client

pytestmark = pytest.mark.softhsm


def _account_id(c: Any, admin: dict[str, str], username: str) -> str:
    accounts = c.get("/v1/accounts", headers=admin).json()
    return next(a["account_id"] for a in accounts if a["username"] == username)


def _refusals(c: Any) -> list[Any]:
    ledger = c.app.state.services.ledger
    entries = [ledger.get(i) for i in range(ledger.audit().size)]
    return [e for e in entries if e.kind.value == "SIGNING_REFUSED"]


def _nothing_numbered(c: Any) -> None:
    from core.db import reading
    from signer._numbers import numbers

    with reading(c.app.state.services.sessions) as s:
        assert numbers(s, "dept:县行政审批局", 2026) == []


@pytest.mark.parametrize("change", ["disabled", "moved"])
def test_a_pending_request_of_a_disabled_or_moved_clerk_does_not_seal(county: Any, change: str) -> None:
    c, h, seals = county["client"], county["h"], county["seals"]
    r = _submit(
        c, h["xj.clerk"], seals["no2"], HEALTH_LICENCE_FIRST, "审批", "许可证及其附件", f"l13-{change}"
    )
    assert r.status_code == 201 and r.json()["status"] == "PENDING_APPROVAL", r.text
    rid = r.json()["request_id"]

    clerk = _account_id(c, h["admin"], "xj.clerk")
    body: dict[str, Any] = (
        {"disabled": True}
        if change == "disabled"
        else {"role": "TOWNSHIP_CLERK", "org_code": GL, "service_centre": f"{GL}-BMFW"}
    )
    r = c.patch(f"/v1/accounts/{clerk}", json=body, headers=h["admin"])
    assert r.status_code == 200, r.text

    r = c.post(f"/v1/signing-requests/{rid}/approve", json={"comment": "同意"}, headers=h["xj.principal"])
    assert r.status_code == 403, r.text
    code = "OPERATOR_ACCOUNT_DISABLED" if change == "disabled" else "OPERATOR_WRONG_TOWNSHIP"
    reasons = r.json()["details"]["reasons"]
    assert code in [x["code"] for x in reasons]
    named = next(x for x in reasons if x["code"] == code)
    assert named["message_zh"] and named["message_en"]  # bilingual

    view = c.get(f"/v1/signing-requests/{rid}", headers=h["xj.principal"]).json()
    assert view["status"] == "DENIED" and view["document_number"] is None
    refused = [e for e in _refusals(c) if e.body.get("request_id") == rid]
    assert len(refused) == 1 and code in refused[0].body["reason_codes"]
    _nothing_numbered(c)
