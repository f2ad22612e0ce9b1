"""Issue 21, finding 4: a refusal is the operator's record, and refusals are rate-limited per account.

A clerk of 梅窖镇 (B) trying 兴江乡's (A) seal: the DENIED request and its ledger refusal are filed under
梅窖镇, counted in its anomalies report, shown to 兴江乡's supervisors as an attempt from outside and not
counted among 兴江乡's refusals. 150 refused tries in a row write only ``refusal_limit_per_minute``
refusals; the rest are answered 429 RATE_LIMITED and write nothing.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.api.test_signing_workflow import MJ, XJ, _submit, county  # noqa: F401

pytestmark = pytest.mark.softhsm


def _refusals(c: Any, since: int) -> list[dict[str, Any]]:
    ledger = c.app.state.services.ledger
    entries = [ledger.get(i) for i in range(since, ledger.size())]
    return [e.body for e in entries if e.kind.value == "SIGNING_REFUSED"]


def test_cross_township_refusal_is_filed_under_the_operator(county) -> None:  # noqa: F811
    c, h, seals = county["client"], county["h"], county["seals"]
    before = c.app.state.services.ledger.size()
    r = _submit(c, h["mj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "cross-0001")
    assert r.status_code == 403 and r.json()["code"] == "POLICY_DENIED", r.text
    assert "OPERATOR_WRONG_TOWNSHIP" in {x["code"] for x in r.json()["reasons"]}
    request_id = r.json()["details"]["request_id"]
    # And a refusal that is 兴江乡's own: its clerk, a stage the township does not hold.
    r = _submit(c, h["xj.clerk"], seals[XJ], county["accept_matter"], "审批", "准予决定书", "own-0001")
    assert r.status_code == 403

    # The ledger's refusal names the operator's organisation and the seal's township.
    [cross, own] = _refusals(c, before)
    assert cross["request_id"] == request_id
    assert (cross["operator_org"], cross["township"]) == (MJ, XJ)
    assert (own["operator_org"], own["township"]) == (XJ, XJ)

    # The request is 梅窖镇's record: its principal lists it and can read it; 兴江乡's queue does not hold it.
    assert request_id in {
        v["request_id"] for v in c.get("/v1/signing-requests", headers=h["mj.principal"]).json()
    }
    assert c.get(f"/v1/signing-requests/{request_id}", headers=h["mj.principal"]).status_code == 200
    assert request_id not in {
        v["request_id"] for v in c.get("/v1/signing-requests", headers=h["xj.principal"]).json()
    }
    # 兴江乡's principal still sees the attempt on its seal (the request, and in the report).
    assert c.get(f"/v1/signing-requests/{request_id}", headers=h["xj.principal"]).status_code == 200

    month = c.get(f"/v1/signing-requests/{request_id}", headers=h["admin"]).json()["created_at"][:7]
    xj = c.get(f"/v1/reports/anomalies?month={month}&township_code={XJ}", headers=h["xj.principal"]).json()
    assert f"{XJ}:OPERATOR_WRONG_TOWNSHIP" not in xj["refused"], xj
    assert sum(xj["refused"].values()) >= 1  # its own refusal counts
    assert [(a["request_id"], a["operator_org"]) for a in xj["attempts_from_outside"]] == [(request_id, MJ)]
    mj = c.get(f"/v1/reports/anomalies?month={month}&township_code={MJ}", headers=h["mj.principal"]).json()
    assert mj["refused"].get(f"{MJ}:OPERATOR_WRONG_TOWNSHIP") == 1, mj
    assert mj["attempts_from_outside"] == []
    county_wide = c.get(f"/v1/reports/anomalies?month={month}", headers=h["admin"]).json()
    assert county_wide["refused"].get(f"{MJ}:OPERATOR_WRONG_TOWNSHIP") == 1
    assert f"{XJ}:OPERATOR_WRONG_TOWNSHIP" not in county_wide["refused"]


def test_refusals_are_rate_limited_per_account(county) -> None:  # noqa: F811
    c, h, seals = county["client"], county["h"], county["seals"]
    limit = c.app.state.services.settings.refusal_limit_per_minute
    before = c.app.state.services.ledger.size()
    statuses: list[int] = []
    for n in range(150):
        r = _submit(
            c, h["mj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", f"flood-{n:04d}"
        )
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert r.json()["code"] == "RATE_LIMITED" and int(r.headers["Retry-After"]) >= 1
    assert statuses.count(403) == limit and statuses.count(429) == 150 - limit, statuses
    assert len(_refusals(c, before)) == limit
    mine = c.get("/v1/signing-requests?status=DENIED", headers=h["mj.principal"]).json()
    assert len(mine) == limit
    # Per account: another clerk's refusal is still recorded, and a use the policy allows still seals.
    r = _submit(c, h["gl.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "other-0001")
    assert r.status_code == 403 and r.json()["code"] == "POLICY_DENIED"
    # The flood also spent the account's ordinary request allowance (its own 429, retry after ~1 s; how much
    # is left depends on how fast this machine sent the 150): wait as the answer says, as a client would.
    for _ in range(10):
        r = _submit(c, h["mj.clerk"], seals[MJ], county["accept_matter"], "受理", "受理通知书", "own-seal-01")
        if r.status_code != 429 or r.json()["code"] != "RATE_LIMITED":
            break
        time.sleep(float(r.json()["details"].get("retry_after_s", 1)))
    assert r.status_code == 201 and r.json()["status"] == "SEALED", r.text
    assert len(_refusals(c, before)) == limit + 1
