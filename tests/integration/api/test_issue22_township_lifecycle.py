"""Issue 22, leak 7 over HTTP: only the county admin renames, merges or retires a township; a merged
township's clerk is refused naming the rule, and its powers are the successor's (the successor's principal
may now change the status of a decision the merged township issued)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api import test_signing_workflow as workflow
from tests.integration.api.test_signing_workflow import GL, MJ, XJ, _submit

pytestmark = pytest.mark.softhsm

county = workflow.county  # the workflow tests' county: accounts, seals, HTTP client
BASIS = "赣府字〔2026〕5号"


def _principal_of(c: Any, township: str) -> dict[str, str]:
    from api._accounts import create_account, issue_token
    from core.db import transaction

    with transaction(c.app.state.services.sessions) as s:
        a = create_account(
            s,
            username="successor.head",
            display_name="镇长",
            role="TOWNSHIP_PRINCIPAL",
            org_code=township,
            service_centre=f"{township}-BMFW",
            created_by="t",
        )
        return {"Authorization": f"Bearer {issue_token(s, a.account_id, name='t').secret}"}


def test_only_the_county_admin_changes_a_township(county: Any) -> None:
    c, h, seals = county["client"], county["h"], county["seals"]
    for who in ("xj.principal", "xj.clerk", "bureau", "auditor"):
        r = c.post(f"/v1/townships/{XJ}/rename", json={"name": "兴江镇", "basis": BASIS}, headers=h[who])
        assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN", (who, r.text)
    r = c.post(f"/v1/townships/{XJ}/rename", json={"name": "兴江镇"}, headers=h["admin"])
    assert r.status_code == 422, r.text  # the basis is required

    r = c.post(f"/v1/townships/{XJ}/rename", json={"name": "兴江镇", "basis": BASIS}, headers=h["admin"])
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "兴江镇" and r.json()["former_names"] == ["兴江乡"]
    assert set(r.json()["seals_changed"]) == {seals[XJ], seals["no2"]}  # both seals kept at 兴江
    seal = c.get(f"/v1/seals/{seals[XJ]}", headers=h["admin"]).json()
    assert seal["name"] == "兴国县兴江镇人民政府行政审批服务专用章"
    shown = c.get(f"/v1/townships/{XJ}", headers=h["xj.clerk"]).json()
    assert (shown["state"], shown["name"]) == ("ACTIVE", "兴江镇")

    # 梅窖 issues a decision, then merges into 古龙岗: the decision is 古龙岗's to withdraw, not before
    r = _submit(c, h["mj.clerk"], seals[MJ], county["accept_matter"], "受理", "受理通知书", "before-merge")
    assert r.status_code == 201 and r.json()["status"] == "SEALED", r.text
    issued = r.json()["request_id"]
    gl_head = _principal_of(c, GL)
    withdraw = {"status": "WITHDRAWN", "reason": "依法撤回"}
    r = c.post(f"/v1/signing-requests/{issued}/status", json=withdraw, headers=gl_head)
    assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION", r.text

    r = c.post(f"/v1/townships/{MJ}/merge", json={"into": GL, "basis": BASIS}, headers=h["admin"])
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["successor_code"]) == ("MERGED", GL)
    r = _submit(c, h["mj.clerk"], seals[MJ], county["accept_matter"], "受理", "受理通知书", "after-merge")
    assert r.status_code == 403, r.text
    assert "TOWNSHIP_MERGED" in [x["code"] for x in r.json()["details"]["reasons"]]
    r = c.post(f"/v1/signing-requests/{issued}/status", json=withdraw, headers=gl_head)
    assert r.status_code == 200 and r.json()["decision_status"] == "WITHDRAWN", r.text
    r = c.post(f"/v1/townships/{MJ}/retire", json={"basis": BASIS}, headers=h["admin"])
    assert r.status_code == 409 and r.json()["code"] == "TOWNSHIP_CLOSED", r.text
