"""融安县 (Guangxi, source 001): a day of "一枚印章管审批（服务）" at 泗顶镇 and 大将镇.

001 四（二） lets the seal be named 融安县XX乡（镇）人民政府行政审批（服务）专用章 or …政务服务专用章:
泗顶镇 takes the first, 大将镇 the second; the 行政公章's name (融安县泗顶镇人民政府) is not made. The stamp
on the page says 行政审批（服务）专用章 whole, under the star. 001 四（三）: the 市场监管所 (a 派出机构)
handles its matters at the centre in its own name, so the township's seal is refused for them, naming the
agency's seal; the public-service matters of the 综合服务专窗 are sealed; the approval results are pushed to
the supervising department (四（五）). Rules: docs/policies.md R3, R5, R16, R19.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.domain._day import CountyDay, reasons, submit

pytestmark = pytest.mark.softhsm

COUNTY, NAME = "450224", "融安县"
SIDING, DAJIANG = f"{COUNTY}-104", f"{COUNTY}-102"  # 泗顶镇, 大将镇
CATALOG = (
    "code,name,power_type,department,supervising_department,mode,level,agency\n"
    "RA-001,农村村民宅基地审批,行政许可,融安县自然资源局,融安县自然资源局,,乡级,\n"
    "RA-002,80周岁以上高龄老人津贴申领,行政给付,融安县民政局,融安县民政局,乡级负责受理、审核,乡级,\n"
    "RA-003,小餐饮经营许可,行政许可,,,,乡级,融安县市场监督管理局泗顶市场监督管理所\n"
)
CASE = {"applicant": "韦某某", "matter_name": "80周岁以上高龄老人津贴申领", "submitted_date": "2026年3月3日"}


def test_rongan_day(tmp_path: Path) -> None:
    day = CountyDay(tmp_path / "home", actor="融安县政务服务监督管理办公室")
    day.ok("county", "init", "--county-code", COUNTY, "--county-name", NAME)
    day.ok("org", "add-county", COUNTY, NAME)
    for code, town in ((SIDING, "泗顶镇"), (DAJIANG, "大将镇")):
        day.ok("org", "add-township", code, town, "--county", COUNTY, "--service-centre", f"{code}-BMFW")
    catalog = tmp_path / "rongan.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    day.ok("catalog", "import", str(catalog), "--county", COUNTY)
    for code in (SIDING, DAJIANG):
        day.ok("powers", "grant", code, "--all")

    def issue(name: str, town: str, code: str) -> list[str]:
        return [
            "seal", "issue", "--name", name, "--township", town, "--township-code", code,
            "--custodian", "便民服务中心主任", "--requested-by", f"{town}人民政府", "--approved-by", "镇长",
            "--actor", day.actor,
        ]  # fmt: skip

    assert day.refused(*issue("融安县泗顶镇人民政府", "泗顶镇", SIDING))["code"] == "SEAL_NAME_INVALID"
    siding = day.ok(*issue("融安县泗顶镇人民政府行政审批（服务）专用章", "泗顶镇", SIDING))["seal_id"]
    dajiang = day.ok(*issue("融安县大将镇人民政府政务服务专用章", "大将镇", DAJIANG))["seal_id"]
    # one seal per township, whichever of the two names (R3)
    err = day.refused(*issue("融安县泗顶镇人民政府政务服务专用章", "泗顶镇", SIDING), exit_code=1)
    assert err["code"] == "SEAL_ONE_PER_TOWNSHIP"
    for seal in (siding, dajiang):
        day.ok("seal", "activate", seal, "--approved-by", "镇长", "--actor", day.actor)
    day.account("sd.clerk", "TOWNSHIP_CLERK", SIDING, f"{SIDING}-BMFW", "覃窗口")
    day.account("dj.clerk", "TOWNSHIP_CLERK", DAJIANG, f"{DAJIANG}-BMFW", "蓝窗口")
    day.account("civil", "DEPARTMENT_OFFICER", "县民政局", name="融安县民政局")
    h = day.tokens

    with day.serve(tmp_path / "serve.log") as api:
        # 综合服务专窗: a benefit accepted at 泗顶镇
        r = submit(
            api, h["sd.clerk"], seal=siding, matter="RA-002", stage="受理", kind="受理通知书",
            template="acceptance_notice", data=CASE, key="siding-0001",
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["document_number"].startswith("泗顶受理〔"), r.text
        accepted = r.json()
        page = api.get(f"/v1/signing-requests/{accepted['request_id']}/document", headers=h["sd.clerk"])
        (tmp_path / "accepted.pdf").write_bytes(page.content)
        text = subprocess.run(
            ["pdftotext", str(tmp_path / "accepted.pdf"), "-"], capture_output=True, text=True, check=True
        ).stdout
        # the stamp: the government on the arc, the whole purpose line under the star (001 四（二）)
        assert "行政审批（服务）专用章" in "".join(text.split())
        # 大将镇 under its 政务服务专用章
        r = submit(
            api, h["dj.clerk"], seal=dajiang, matter="RA-002", stage="受理", kind="受理通知书",
            template="acceptance_notice", data=CASE, key="dajiang-0001",
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["document_number"].startswith("大将受理〔"), r.text
        # 行政审批专窗: the 市场监管所's licence takes its own seal (001 四（三）, R19)
        r = submit(
            api, h["sd.clerk"], seal=siding, matter="RA-003", stage="受理", kind="受理通知书",
            template="acceptance_notice", data={**CASE, "matter_name": "小餐饮经营许可"}, key="siding-0002",
        )  # fmt: skip
        refused = reasons(r)
        assert set(refused) == {"MATTER_REQUIRES_AGENCY_SEAL"}
        assert (
            "融安县市场监督管理局泗顶市场监督管理所的印章"
            in refused["MATTER_REQUIRES_AGENCY_SEAL"]["message_zh"]
        )
        # 审管衔接 (四（五）): 融安县民政局 gets both townships' decisions on its matter, by its code
        events = api.get("/v1/supervision/feed", params={"cursor": 0}, headers=h["civil"]).json()["events"]
        assert {e["township_code"] for e in events} == {SIDING, DAJIANG}
        assert {e["routing"] for e in events} == {"SUPERVISING_DEPARTMENT"}
