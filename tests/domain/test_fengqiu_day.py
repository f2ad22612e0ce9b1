"""封丘县 (Henan, source 003): a day under the approval-service procedure, at 城关镇 (各乡（镇）可参照本规程).

003: window staff receive applications and issue the 受理凭证 themselves; the 首席代表 (the principal)
signs off each decision; results carry the unified approval seal and an approval document number; a refusal
states its reasons (不予行政许可决定书); the decision is pushed to the supervising office, which may later
have the approval service change, withdraw, revoke or cancel it. The county switches approval on at 审批
only (R12); one person's clerk and principal accounts never approve his own request; the 卫健委's finding
has the principal revoke a licence, and the 卫健委 is told. Rules: docs/policies.md R12, R16, the engine's
approval rules (SELF_APPROVAL across one person's accounts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests._fixtures.signer import LICENCE_REFUSAL_DATA, PERMIT_DATA
from tests.domain._day import CountyDay, submit

pytestmark = pytest.mark.softhsm

COUNTY, NAME = "410727", "封丘县"
CHENGGUAN = f"{COUNTY}-100"  # 城关镇
HEALTH = "县卫健委"
CATALOG = (
    "code,name,sub_item,power_type,department,supervising_department,mode,level\n"
    "FQ-001,公共场所卫生许可,公共场所卫生许可（首次）,行政许可,封丘县卫健委,封丘县卫健委,,乡级\n"
)
APPLICANT = {
    "applicant": "封丘县城关镇好客来宾馆",
    "matter_name": "公共场所卫生许可（首次）",
    "submitted_date": "2026年3月2日",
}


def _data(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in ("issuer", "date", "document_number")}


def test_fengqiu_day(tmp_path: Path) -> None:
    day = CountyDay(tmp_path / "home", actor="封丘县政务服务和大数据管理局")
    day.ok("county", "init", "--county-code", COUNTY, "--county-name", NAME)
    day.ok("org", "add-county", COUNTY, NAME, "--township-seal-approval", "--approval-stage", "审批")
    day.ok(
        "org",
        "add-township",
        CHENGGUAN,
        "城关镇",
        "--county",
        COUNTY,
        "--service-centre",
        f"{CHENGGUAN}-BMFW",
    )
    catalog = tmp_path / "fengqiu.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    day.ok("catalog", "import", str(catalog), "--county", COUNTY)
    day.ok("powers", "grant", CHENGGUAN, "--all")
    made = day.ok(
        "seal", "issue", "--name", "封丘县城关镇人民政府行政审批服务专用章", "--township", "城关镇",
        "--township-code", CHENGGUAN, "--custodian", "审批服务股", "--requested-by", "城关镇人民政府",
        "--approved-by", "镇长", "--actor", day.actor,
    )  # fmt: skip
    seal = made["seal_id"]
    day.ok("seal", "activate", seal, "--approved-by", "镇长", "--actor", day.actor)
    day.account("cg.clerk", "TOWNSHIP_CLERK", CHENGGUAN, f"{CHENGGUAN}-BMFW", "赵窗口")
    day.account("cg.head", "TOWNSHIP_PRINCIPAL", CHENGGUAN, f"{CHENGGUAN}-BMFW", "孙首席代表")
    # the same person as the clerk, holding a principal's account too (issue 21: people, not accounts)
    day.ok(
        "account", "create", "--username", "cg.clerk.head", "--role", "TOWNSHIP_PRINCIPAL",
        "--org", CHENGGUAN, "--service-centre", f"{CHENGGUAN}-BMFW", "--same-person-as", "cg.clerk",
    )  # fmt: skip
    day.tokens["cg.clerk.head"] = {
        "Authorization": "Bearer " + day.ok("account", "token", "--username", "cg.clerk.head")["token"]
    }
    day.account("health", "DEPARTMENT_OFFICER", HEALTH, name="封丘县卫健委监督股")
    h = day.tokens

    with day.serve(tmp_path / "serve.log") as api:
        # 受理凭证: issued by the window at once, no sign-off (003; R12)
        r = submit(
            api, h["cg.clerk"], seal=seal, matter="FQ-001", stage="受理", kind="受理通知书",
            template="acceptance_notice", data=APPLICANT, key="chengguan-01",
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["status"] == "SEALED", r.text
        assert r.json()["requires_approval"] is False
        # the licence waits for the 首席代表
        r = submit(
            api, h["cg.clerk"], seal=seal, matter="FQ-001", stage="审批", kind="许可证及其附件",
            template="public_place_hygiene_permit", data=_data(PERMIT_DATA), key="chengguan-02",
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["status"] == "PENDING_APPROVAL", r.text
        permit_id = r.json()["request_id"]
        # not by the clerk himself under his other account
        r = api.post(
            f"/v1/signing-requests/{permit_id}/approve", json={"comment": "同意"}, headers=h["cg.clerk.head"]
        )
        assert r.status_code == 403, r.text
        codes = {r.json()["code"]} | {x["code"] for x in r.json().get("reasons") or []}
        assert "SELF_APPROVAL" in codes, r.text
        r = api.post(
            f"/v1/signing-requests/{permit_id}/approve", json={"comment": "同意"}, headers=h["cg.head"]
        )
        assert r.status_code == 200 and r.json()["status"] == "SEALED", r.text
        permit = r.json()
        assert permit["document_number"].startswith("城关审批〔")  # 行政审批专用文号 (003)
        # a refusal states its reasons and the remedies (不予行政许可决定书)
        r = submit(
            api, h["cg.clerk"], seal=seal, matter="FQ-001", stage="审批", kind="不予批准决定书",
            template="licence_refusal_decision",
            data={**_data(LICENCE_REFUSAL_DATA), "review_body": "封丘县人民政府"}, key="chengguan-03",
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["status"] == "PENDING_APPROVAL", r.text
        r = api.post(
            f"/v1/signing-requests/{r.json()['request_id']}/approve",
            json={"comment": "同意"},
            headers=h["cg.head"],
        )
        assert r.status_code == 200 and r.json()["status"] == "SEALED", r.text
        refusal = r.json()

        # 审管联动: the supervising office gets both decisions
        events = api.get("/v1/supervision/feed", params={"cursor": 0}, headers=h["health"]).json()["events"]
        issued = {e["request_id"] for e in events if e["event"] == "DECISION_ISSUED"}
        assert {permit["request_id"], refusal["request_id"]} <= issued
        # 003: the supervising office finds a problem and passes it on; the approval service makes the change
        # (由审批服务股依法作出相应的处理), so the department itself may not revoke the township's decision
        revoke = {"status": "REVOKED", "reason": "县卫健委监督发现申请人隐瞒有关情况取得许可"}
        r = api.post(f"/v1/signing-requests/{permit['request_id']}/status", json=revoke, headers=h["health"])
        assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION", r.text
        r = api.post(f"/v1/signing-requests/{permit['request_id']}/status", json=revoke, headers=h["cg.head"])
        assert r.status_code == 200 and r.json()["decision_status"] == "REVOKED", r.text
        events = api.get("/v1/supervision/feed", params={"cursor": 0}, headers=h["health"]).json()["events"]
        changed = [e for e in events if e["event"] == "DECISION_STATUS_CHANGED"]
        assert [(e["request_id"], e["decision_status"]) for e in changed] == [
            (permit["request_id"], "REVOKED")
        ]
        # the principal's history of the licence: issued, then revoked with the reason
        history = api.get(f"/v1/signing-requests/{permit['request_id']}/history", headers=h["cg.head"]).json()
        assert [e["status"] for e in history] == ["ISSUED", "REVOKED"]
