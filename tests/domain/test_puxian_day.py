"""蒲县 (Shanxi, source 002): a day under the provincial township catalog (附件1, 114 matters).

The county approval bureau (县行政审批服务管理局) imports the catalog, grants 克城镇 every matter and
薛关镇 two, and files and makes the seals (四（四）); a station's old business seal (林业站业务专用章) is not
made again. At 克城镇's window the clerk accepts 临时救助 (乡级负责受理、审核), asks for missing materials,
and decides a matter the township completes; the catalog's scope keeps the township from deciding what it
may only accept or review. 薛关镇's seal is retired and sealed away (封存): it no longer signs, and what
it signed still verifies. Rules: docs/policies.md R1, R2, R5, R18, the engine's scope rules.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.domain._day import CATALOGS, CountyDay, reasons, submit

pytestmark = pytest.mark.softhsm

COUNTY, NAME = "141033", "蒲县"
KECHENG, XUEGUAN = f"{COUNTY}-102", f"{COUNTY}-103"  # 克城镇, 薛关镇
CASE = {"applicant": "郭某某", "matter_name": "临时救助", "submitted_date": "2026年3月2日"}


def test_puxian_day(tmp_path: Path) -> None:
    day = CountyDay(tmp_path / "home", actor="县行政审批服务管理局")
    day.ok("county", "init", "--county-code", COUNTY, "--county-name", NAME)
    day.ok("org", "add-county", COUNTY, NAME)
    for code, town in ((KECHENG, "克城镇"), (XUEGUAN, "薛关镇")):
        day.ok("org", "add-township", code, town, "--county", COUNTY, "--service-centre", f"{code}-BMFW")
    assert (
        day.ok("catalog", "import", str(CATALOGS / "shanxi_township_catalog.csv"), "--county", COUNTY)[
            "matters"
        ]
        == 114
    )
    shown = {m["code"]: m for m in day.ok("catalog", "show", "--county", COUNTY)}
    assert shown["SX-002"]["title"] == "临时救助" and shown["SX-002"]["stages"] == ["受理", "审核"]
    assert shown["SX-003"]["stages"] == ["审核"] and {m["level"] for m in shown.values()} == {"乡级"}
    day.ok("powers", "grant", KECHENG, "--all")
    day.ok("powers", "grant", XUEGUAN, "SX-002", "SX-015")

    def issue(name: str, town: str, code: str) -> list[str]:
        return [
            "seal", "issue", "--name", name, "--township", town, "--township-code", code,
            "--custodian", "便民服务中心主任", "--requested-by", f"{town}人民政府", "--approved-by", "县政府",
            "--actor", day.actor,
        ]  # fmt: skip

    # 四（六）3: the stations' old business seals are stopped; none is made as the approval seal (R5)
    err = day.refused(*issue("蒲县克城镇林业站业务专用章", "克城镇", KECHENG))
    assert err["code"] == "SEAL_NAME_INVALID"
    # a township code the county never registered (R4)
    err = day.refused(*issue("蒲县山中乡人民政府行政审批服务专用章", "山中乡", f"{COUNTY}-109"))
    assert err["code"] == "SEAL_TOWNSHIP_UNREGISTERED"
    kecheng = day.ok(*issue("蒲县克城镇人民政府行政审批服务专用章", "克城镇", KECHENG))["seal_id"]
    xueguan = day.ok(*issue("蒲县薛关镇人民政府行政审批服务专用章", "薛关镇", XUEGUAN))["seal_id"]
    for seal in (kecheng, xueguan):
        day.ok("seal", "activate", seal, "--approved-by", "镇长", "--actor", day.actor)
    day.account("kc.clerk", "TOWNSHIP_CLERK", KECHENG, f"{KECHENG}-BMFW", "王窗口")
    day.account("xg.clerk", "TOWNSHIP_CLERK", XUEGUAN, f"{XUEGUAN}-BMFW", "冯窗口")
    h = day.tokens

    with day.serve(tmp_path / "serve.log") as api:
        r = submit(
            api, h["kc.clerk"], seal=kecheng, matter="SX-002", stage="受理", kind="受理通知书",
            template="acceptance_notice", data=CASE, key="kecheng-001",
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["status"] == "SEALED", r.text
        accepted = r.json()
        r = submit(
            api, h["kc.clerk"], seal=kecheng, matter="ＳＸ－００２", stage="受理", kind="补正材料告知书",
            template="supplement_notice", data={**CASE, "items": ["户口簿复印件", "收入证明"]},
            key="kecheng-002",
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["matter_code"] == "SX-002", r.text  # one code (R1)
        # 临时救助 is accepted and reviewed here, decided by the county: no decision at 审批
        refusal = {**CASE, "reasons": ["家庭人均收入高于救助标准"], "basis": "《社会救助暂行办法》第十八条"}
        r = submit(
            api, h["kc.clerk"], seal=kecheng, matter="SX-002", stage="审批", kind="不予批准决定书",
            template="refusal_decision", data=refusal, key="kecheng-003",
        )  # fmt: skip
        assert set(reasons(r)) == {"STAGE_NOT_DELEGATED"}
        # 对孤儿基本生活保障金的给付: review only, so not even the acceptance notice
        r = submit(
            api, h["kc.clerk"], seal=kecheng, matter="SX-003", stage="受理", kind="受理通知书",
            template="acceptance_notice", data=CASE, key="kecheng-004",
        )  # fmt: skip
        assert "STAGE_NOT_DELEGATED" in reasons(r)
        # 城乡低收入家庭认定: the township completes it and refuses with reasons (003)
        r = submit(
            api, h["kc.clerk"], seal=kecheng, matter="SX-015", stage="审批", kind="不予批准决定书",
            template="refusal_decision", data={**refusal, "matter_name": "城乡低收入家庭认定"},
            key="kecheng-005",
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["status"] == "SEALED", r.text
        decided = r.json()
        # the refusal template declared as an acceptance notice: refused before a number is drawn (R2)
        r = submit(
            api, h["kc.clerk"], seal=kecheng, matter="SX-015", stage="受理", kind="受理通知书",
            template="refusal_decision", data=refusal, key="kecheng-006",
        )  # fmt: skip
        assert r.status_code == 400 and r.json()["code"] == "TEMPLATE_KIND_MISMATCH", r.text
        # R15: acceptance papers and decisions each have their series (受理 1, 补正 2; 审批 1)
        assert accepted["document_number"].startswith("克城受理〔") and accepted["document_number"].endswith(
            "〕1号"
        )
        assert decided["document_number"].startswith("克城审批〔") and decided["document_number"].endswith(
            "〕1号"
        )
        # 薛关镇 holds only two matters
        r = submit(
            api, h["xg.clerk"], seal=xueguan, matter="SX-007", stage="审批", kind="不予批准决定书",
            template="refusal_decision", data=refusal, key="xueguan-01",
        )  # fmt: skip
        assert "MATTER_NOT_HELD" in reasons(r)
        r = submit(
            api, h["xg.clerk"], seal=xueguan, matter="SX-002", stage="受理", kind="受理通知书",
            template="acceptance_notice", data=CASE, key="xueguan-02",
        )  # fmt: skip
        assert r.status_code == 201, r.text
        old = api.get(f"/v1/signing-requests/{r.json()['request_id']}/document", headers=h["xg.clerk"])
        assert old.status_code == 200
    (tmp_path / "old.pdf").write_bytes(old.content)

    # 封存: 薛关镇's seal is retired; it signs no more, and its documents still verify
    day.ok("seal", "retire", xueguan, "--reason", "乡镇合并，印章停用封存", "--actor", day.actor)
    with day.serve(tmp_path / "serve2.log") as api:
        r = submit(
            api, h["xg.clerk"], seal=xueguan, matter="SX-002", stage="受理", kind="受理通知书",
            template="acceptance_notice", data=CASE, key="xueguan-03",
        )  # fmt: skip
        assert "SEAL_RETIRED" in reasons(r)
    day.ok("ledger", "checkpoint")
    verified = json.loads(day.run("verify", str(tmp_path / "old.pdf"), "--json").stdout)
    assert verified["indication"] == "TOTAL_PASSED", verified["reasons"]
    assert verified["facts"]["document_number"].startswith("薛关受理〔")
