"""兴国县 (Jiangxi, source 004): a day of "县乡同办" at 梅窖镇 with the departments' No. 2 seals (13).

The approval bureau registers the 25 townships from the No. 2 seal table and the 26-item list; 县林业局
and the approval bureau each make their No. 2 seal for 梅窖镇 and entrust it by written agreement (basis,
term); the window at 梅窖镇 applies, the principal approves each use (004 二.2), and the documents are the
departments' licences: a 林木采伐许可证, a 公共场所卫生许可证 and a 不予行政许可决定书. A seal used for
another department's matter, a 帮办代办 matter and a seal under the wrong number are refused. The
departments get their pushes by code (兴国县林业局 is 县林业局; 县卫健委 supervises the bureau's hygiene
licences) and read their 台账 lines; 县林业局 revokes its licence (变更、撤回、撤销、注销, 003).
Rules: docs/policies.md R3-R5, R8, R16, R17.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._fixtures.signer import FELLING_PERMIT_DATA, LICENCE_REFUSAL_DATA, PERMIT_DATA
from tests.domain._day import CATALOGS, CountyDay, reasons, submit

pytestmark = pytest.mark.softhsm

COUNTY, NAME = "360732", "兴国县"
MEIJIAO = f"{COUNTY}-13"  # 梅窖镇, No. 2 seals （13）
FORESTRY, BUREAU, HEALTH = "县林业局", "县行政审批局", "县卫健委"


def _data(fields: dict[str, object]) -> dict[str, object]:
    """Template data as the clerk gives it: the issuer, date and number are the signer's."""
    return {k: v for k, v in fields.items() if k not in ("issuer", "date", "document_number")}


def test_xingguo_day(tmp_path: Path) -> None:
    day = CountyDay(tmp_path / "home", actor="县行政审批局")
    day.ok("county", "init", "--county-code", COUNTY, "--county-name", NAME)
    day.ok("org", "add-county", COUNTY, NAME)
    day.ok("org", "import-townships", str(CATALOGS / "xingguo_no2_seals.csv"), "--county", COUNTY)
    day.ok("catalog", "import", str(CATALOGS / "xingguo_county_township_catalog.csv"), "--county", COUNTY)
    shown = {m["code"]: m for m in day.ok("catalog", "show", "--county", COUNTY)}
    assert shown["XG-12"]["supervising_departments"] == [FORESTRY]  # the list reads 兴国县林业局
    for department, matters in ((FORESTRY, ["XG-12"]), (BUREAU, ["XG-14", "XG-15"])):
        matter_args = [a for m in matters for a in ("--matter", m)]
        # 004 二.1: the agreement states its basis and its term
        err = day.refused(
            "agreement", "create", "--department", department, "--township", MEIJIAO, "--seal-number", "13",
            *matter_args, "--starts", "2026-01-01",
        )  # fmt: skip
        assert err["code"] in {"AGREEMENT_TERM_REQUIRED", "AGREEMENT_BASIS_REQUIRED"}
        day.ok(
            "agreement", "create", "--department", department, "--township", MEIJIAO, "--seal-number", "13",
            *matter_args, "--starts", "2026-01-01", "--ends", "2036-01-01",
            "--basis", "兴国县行政审批“2号章”委托协议书",
        )  # fmt: skip

    def no2(department: str, name: str, number: str) -> list[str]:
        return [
            "seal", "issue", "--kind", "DEPARTMENT_NO2", "--number", number, "--name",
            f"兴国县{name}行政审批专用章（{number}）", "--township", "梅窖镇", "--township-code", MEIJIAO,
            "--department", f"兴国县{name}", "--department-code", department, "--custodian", "钟保管",
            "--requested-by", f"兴国县{name}", "--approved-by", "局长", "--actor", day.actor,
        ]  # fmt: skip

    # 004 附件3-1: 梅窖镇's No. 2 seals are （13）; （14） is 樟木乡's (R4)
    assert day.refused(*no2(FORESTRY, "林业局", "14"))["code"] == "SEAL_NUMBER_MISMATCH"
    forestry_seal = day.ok(*no2(FORESTRY, "林业局", "13"))["seal_id"]
    bureau_seal = day.ok(*no2(BUREAU, "行政审批局", "13"))["seal_id"]
    for seal in (forestry_seal, bureau_seal):
        day.ok("seal", "activate", seal, "--approved-by", "局长", "--actor", day.actor)

    day.account("mj.clerk", "TOWNSHIP_CLERK", MEIJIAO, f"{MEIJIAO}-BMFW", "曾窗口")
    day.account("mj.head", "TOWNSHIP_PRINCIPAL", MEIJIAO, f"{MEIJIAO}-BMFW", "谢镇长")
    day.account("forestry", "DEPARTMENT_OFFICER", FORESTRY, name="兴国县林业局审批股")
    day.account("health", "DEPARTMENT_OFFICER", HEALTH, name="兴国县卫健委监督股")
    h = day.tokens

    with day.serve(tmp_path / "serve.log") as api:

        def approved(
            seal: str, matter: str, template: str, kind: str, data: dict[str, object], key: str
        ) -> dict:  # type: ignore[type-arg]
            r = submit(
                api, h["mj.clerk"], seal=seal, matter=matter, stage="审批", kind=kind, template=template,
                data=_data(data), key=key,
            )  # fmt: skip
            assert r.status_code == 201 and r.json()["status"] == "PENDING_APPROVAL", r.text
            # 004 二.2: the principal signs off every use; he cannot be the one who applied
            r = api.post(
                f"/v1/signing-requests/{r.json()['request_id']}/approve",
                json={"comment": "同意"},
                headers=h["mj.head"],
            )
            assert r.status_code == 200 and r.json()["status"] == "SEALED", r.text
            return dict(r.json())

        felling = approved(
            forestry_seal,
            "XG-12",
            "forest_felling_permit",
            "许可证及其附件",
            FELLING_PERMIT_DATA,
            "meijiao-0001",
        )
        hygiene = approved(
            bureau_seal, "XG-14", "public_place_hygiene_permit", "许可证及其附件", PERMIT_DATA, "meijiao-0002"
        )
        refusal = approved(
            bureau_seal,
            "XG-15",
            "licence_refusal_decision",
            "不予批准决定书",
            LICENCE_REFUSAL_DATA,
            "meijiao-0003",
        )
        # the forestry seal for the bureau's matter, and a 帮办代办 matter: refused, each naming its rule
        r = submit(
            api, h["mj.clerk"], seal=forestry_seal, matter="XG-14", stage="审批", kind="许可证及其附件",
            template="public_place_hygiene_permit", data=_data(PERMIT_DATA), key="meijiao-0004",
        )  # fmt: skip
        assert "SEAL_KIND_MISMATCH" in reasons(r)
        r = submit(
            api, h["mj.clerk"], seal=bureau_seal, matter="XG-07", stage="受理", kind="受理通知书",
            template="acceptance_notice",
            data={"applicant": "刘某某", "matter_name": "残疾人证件办理", "submitted_date": "2026年3月1日"},
            key="meijiao-0005",
        )  # fmt: skip
        assert "MODE_FORBIDS_SEAL" in reasons(r) or "SEAL_KIND_MISMATCH" in reasons(r)

        # 审管联动 by code (R16): 县林业局 gets its licence, 县卫健委 the hygiene licence and the refusal
        def feed(who: str) -> set[str]:
            got = api.get("/v1/supervision/feed", params={"cursor": 0}, headers=h[who]).json()["events"]
            return {e["request_id"] for e in got}

        assert feed("forestry") == {felling["request_id"]}
        assert feed("health") == {hygiene["request_id"], refusal["request_id"]}

        # 台账 (004 二.3): 县林业局 reads its seal's; 县卫健委 the lines of the licences it supervises (R17)
        month = felling["created_at"][:7]
        own = api.get(
            "/v1/ledger/usage", params={"seal_id": forestry_seal, "month": month}, headers=h["forestry"]
        )
        assert own.status_code == 200, own.text
        [line] = own.json()
        assert line["document_number"] == felling["document_number"] and line["cert_serial"]
        assert line["approver"] and line["user"] and line["approver"] != line["user"]
        sup = api.get(
            "/v1/ledger/usage", params={"seal_id": bureau_seal, "month": month}, headers=h["health"]
        )
        assert sup.status_code == 200 and {x["matter"] for x in sup.json()} == {"XG-14", "XG-15"}, sup.text
        r = api.get(
            "/v1/ledger/usage", params={"seal_id": bureau_seal, "month": month}, headers=h["forestry"]
        )
        assert r.status_code == 200 and r.json() == []  # the bureau's seal served no 林业 matter

        # the department corrects: 县林业局 revokes its licence (003), and is told by its push
        r = api.post(
            f"/v1/signing-requests/{felling['request_id']}/status",
            json={"status": "REVOKED", "reason": "采伐地点与林权证不符"},
            headers=h["forestry"],
        )
        assert r.status_code == 200 and r.json()["decision_status"] == "REVOKED", r.text
        events = api.get("/v1/supervision/feed", params={"cursor": 0}, headers=h["forestry"]).json()["events"]
        assert [e["event"] for e in events] == ["DECISION_ISSUED", "DECISION_STATUS_CHANGED"]
        assert {e["supervising_code"] for e in events} == {FORESTRY}
