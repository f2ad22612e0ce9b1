"""新县 (Henan, source 000): a day of the "一枚印章管审批" pilot at 八里畈镇 and 金兰山街道.

The county's approval bureau (县行政审批和政务信息管理局) registers the two pilots and the catalog its
departments entrust, makes the two seals with each government's consent, and opens the accounts; then the
window at 八里畈镇 works: acceptance notices and decisions of the matters on its list, a 派出机构's matter and
a matter reported upward refused with the seal they need, the 街道's clerk kept off 八里畈镇's seal; the
department (新县民政局) gets its pushes and reads its lines of the 台账, and the discipline inspector
(纪检监察) reads the whole 台账. Rules checked: docs/policies.md R3, R5, R16, R17, R19, the engine's reasons.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.domain._day import CountyDay, reasons, submit

pytestmark = pytest.mark.softhsm

COUNTY, NAME = "411523", "新县"
BALIFAN, JINLANSHAN = f"{COUNTY}-101", f"{COUNTY}-001"  # 八里畈镇, 金兰山街道
CIVIL = "县民政局"

# The catalog as the county writes it: departments by their full names (新县民政局), 办理层级, the
# 派出机构 that implements a matter in its own name, and a matter reported upward (行政公章).
CATALOG = (
    "code,name,sub_item,power_type,department,supervising_department,mode,requires_admin_seal,level,agency\n"
)
CATALOG += """XX-001,临时救助,,行政给付,新县民政局,新县民政局,,否,乡级,
XX-002,老年人优待证办理,,公共服务,新县民政局,新县民政局、新县卫健委,乡级负责受理,否,乡级,
XX-003,农村宅基地和建房（规划许可）审批,,行政许可,新县自然资源局,新县自然资源局,乡级负责受理、审核,否,乡级,
XX-004,食品小作坊登记,,行政许可,,,,否,乡级,新县市场监督管理局八里畈市场监督管理所
XX-005,兵役登记（上报）,,行政确认,新县人民武装部,新县人民武装部,,是,乡级,
"""
ACCEPT = {"applicant": "刘某某", "matter_name": "临时救助", "submitted_date": "2026年3月1日"}


def test_xinxian_day(tmp_path: Path) -> None:
    day = CountyDay(tmp_path / "home", actor="县行政审批和政务信息管理局")
    day.ok("county", "init", "--county-code", COUNTY, "--county-name", NAME)
    day.ok("org", "add-county", COUNTY, NAME)
    day.ok(
        "org", "add-township", BALIFAN, "八里畈镇", "--county", COUNTY, "--service-centre", f"{BALIFAN}-ZX"
    )
    day.ok(
        "org",
        "add-township",
        JINLANSHAN,
        "金兰山街道",
        "--county",
        COUNTY,
        "--service-centre",
        f"{JINLANSHAN}-ZX",
    )
    day.ok("org", "add-department", "县卫健委", "新县卫生健康委员会", "--county", COUNTY)
    catalog = tmp_path / "xinxian.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    # a supervising department nobody registered (a typo) is refused, all or nothing (R16)
    typo = tmp_path / "typo.csv"
    typo.write_text(CATALOG.replace("新县民政局、新县卫健委", "新县民政局、新县卫建委"), encoding="utf-8")
    err = day.refused("catalog", "import", str(typo), "--county", COUNTY)
    assert err["code"] == "CATALOG_DEPARTMENT_UNKNOWN" and err["details"]["row"] == 3
    assert day.ok("catalog", "import", str(catalog), "--county", COUNTY)["matters"] == 5
    shown = {m["code"]: m for m in day.ok("catalog", "show", "--county", COUNTY)}
    assert shown["XX-002"]["supervising_departments"] == [CIVIL, "县卫健委"]  # 新县民政局 is 县民政局
    assert shown["XX-003"]["stages"] == ["受理", "审核"] and shown["XX-001"]["level"] == "乡级"
    for town in (BALIFAN, JINLANSHAN):
        day.ok("powers", "grant", town, "--all")

    # 刻制: the seal is named for the township's government (000 （二）); the 行政公章's name is refused (R5)
    err = day.refused(
        "seal", "issue", "--name", "新县八里畈镇人民政府", "--township", "八里畈镇",
        "--township-code", BALIFAN, "--custodian", "周保管", "--requested-by", "八里畈镇人民政府",
        "--approved-by", "镇长", "--actor", day.actor,
    )  # fmt: skip
    assert err["code"] == "SEAL_NAME_INVALID"
    blf = day.seal("新县八里畈镇人民政府行政审批服务专用章", "八里畈镇", BALIFAN, "周保管", "镇长")
    jls = day.seal("新县金兰山街道办事处行政审批服务专用章", "金兰山街道", JINLANSHAN, "吴保管", "主任")
    # one seal per township (R3): a second, under the other name the sources allow, is refused
    err = day.refused(
        "seal", "issue", "--name", "新县八里畈镇人民政府政务服务专用章", "--township", "八里畈镇",
        "--township-code", BALIFAN, "--custodian", "周保管", "--requested-by", "八里畈镇人民政府",
        "--approved-by", "镇长", "--actor", day.actor, exit_code=1,
    )  # fmt: skip
    assert err["code"] == "SEAL_ONE_PER_TOWNSHIP"

    day.account("blf.clerk", "TOWNSHIP_CLERK", BALIFAN, f"{BALIFAN}-ZX", "陈窗口")
    day.account("blf.head", "TOWNSHIP_PRINCIPAL", BALIFAN, f"{BALIFAN}-ZX", "黄镇长")
    day.account("jls.clerk", "TOWNSHIP_CLERK", JINLANSHAN, f"{JINLANSHAN}-ZX", "林窗口")
    day.account("civil", "DEPARTMENT_OFFICER", CIVIL, name="新县民政局审批股")
    day.account("inspector", "AUDITOR", COUNTY, name="县纪委监委")
    h = day.tokens

    with day.serve(tmp_path / "serve.log") as api:
        # 受理: the window issues the acceptance notice (000 （四）)
        r = submit(
            api, h["blf.clerk"], seal=blf, matter="XX-001", stage="受理", kind="受理通知书",
            template="acceptance_notice", data=ACCEPT, key="blf-0001", reason="临时救助申请受理",
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["status"] == "SEALED", r.text
        accepted = r.json()
        assert accepted["document_number"].startswith("八里畈受理〔")
        # 审批: the township completes 临时救助, here with a refusal that gives its reasons (003)
        r = submit(
            api, h["blf.clerk"], seal=blf, matter="XX-001", stage="审批", kind="不予批准决定书",
            template="refusal_decision", key="blf-0002", reason="临时救助不予批准",
            data={**ACCEPT, "reasons": ["家庭人均收入高于救助标准"], "basis": "《社会救助暂行办法》第十八条"},
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["status"] == "SEALED", r.text
        # 审批 of a matter the township may only accept and review (R1/R2 scope): refused before a number
        r = submit(
            api, h["blf.clerk"], seal=blf, matter="XX-003", stage="审批", kind="不予批准决定书",
            template="refusal_decision", key="blf-0003",
            data={**ACCEPT, "reasons": ["不符合规划"], "basis": "《乡村规划条例》"},
        )  # fmt: skip
        assert "STAGE_NOT_DELEGATED" in reasons(r)
        # the 派出机构's matter takes the agency's own seal, and the refusal says which (R19)
        r = submit(
            api, h["blf.clerk"], seal=blf, matter="XX-004", stage="受理", kind="受理通知书",
            template="acceptance_notice", data=ACCEPT, key="blf-0004",
        )  # fmt: skip
        agency = reasons(r)["MATTER_REQUIRES_AGENCY_SEAL"]["message_zh"]
        assert (
            "新县市场监督管理局八里畈市场监督管理所的印章" in agency
            and "MATTER_REQUIRES_ADMIN_SEAL" not in reasons(r)
        )
        # a matter reported upward keeps the 行政公章 (000 （四）)
        r = submit(
            api, h["blf.clerk"], seal=blf, matter="XX-005", stage="受理", kind="受理通知书",
            template="acceptance_notice", data=ACCEPT, key="blf-0005",
        )  # fmt: skip
        assert "MATTER_REQUIRES_ADMIN_SEAL" in reasons(r)
        # 不得异地挪用: the 街道's clerk cannot use 八里畈镇's seal
        r = submit(
            api, h["jls.clerk"], seal=blf, matter="XX-001", stage="受理", kind="受理通知书",
            template="acceptance_notice", data=ACCEPT, key="jls-0001",
        )  # fmt: skip
        assert "OPERATOR_WRONG_TOWNSHIP" in reasons(r)
        r = submit(
            api, h["jls.clerk"], seal=jls, matter="XX-002", stage="受理", kind="受理通知书",
            template="acceptance_notice", data={**ACCEPT, "matter_name": "老年人优待证办理"}, key="jls-0002",
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["document_number"].startswith("金兰山受理〔"), r.text

        # 审管联动: 新县民政局 gets the decisions on its matters, by its code (R16)
        feed = api.get("/v1/supervision/feed", params={"cursor": 0}, headers=h["civil"]).json()["events"]
        assert {e["request_id"] for e in feed} >= {accepted["request_id"]}
        assert {e["supervising_code"] for e in feed} == {CIVIL}
        # 台账 (000 （三）): the department reads its matters' lines on the township's seal (R17)
        month = accepted["created_at"][:7]
        r = api.get("/v1/ledger/usage", params={"seal_id": blf, "month": month}, headers=h["civil"])
        assert r.status_code == 200 and {x["matter"] for x in r.json()} == {"XX-001"}, r.text
        lines = api.get(
            "/v1/ledger/usage", params={"seal_id": blf, "month": month}, headers=h["inspector"]
        ).json()
        assert [x["document_number"] for x in lines] == [
            accepted["document_number"],
            f"八里畈审批〔{month[:4]}〕1号",
        ]
        assert all(x["date"] and x["reason"] and x["user"] and x["count"] == 1 for x in lines)
        r = api.get("/v1/ledger/usage", params={"seal_id": jls, "month": month}, headers=h["blf.head"])
        assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION"
        assert api.get("/v1/ledger/audit", headers=h["inspector"]).json()["ok"] is True
        refused = api.get("/v1/reports/anomalies", params={"month": month}, headers=h["inspector"]).json()
        assert {k.split(":")[1] for k in refused["refused"]} >= {
            "STAGE_NOT_DELEGATED",
            "MATTER_REQUIRES_AGENCY_SEAL",
            "MATTER_REQUIRES_ADMIN_SEAL",
        }
    audit = json.loads(day.run("ledger", "audit", "--json").stdout)
    assert audit["ok"] is True
