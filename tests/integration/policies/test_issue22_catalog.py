"""Issue 22 (domain fidelity), what the catalog says of a matter: each test fails on the code before it.

16  supervising departments are registry codes, validated at import: 兴国县林业局 is 县林业局, a
    four-department cell is four departments, a name that is no department of the county is refused
    (CATALOG_DEPARTMENT_UNKNOWN);
18  the Shanxi catalog's 办理层级 (level) is kept and shown (``catalog show``, stages in handling order);
19  a 派出机构's matter is refused naming the agency's seal, not the township's 行政公章.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from core.errors import BadInput
from policies import CHINA_TZ, OrgKind

XINXIAN = "411523"  # 新县 (Henan), source 000
BALIFAN = f"{XINXIAN}-BLF"  # 八里畈镇

COUNTY_HEAD = "code,name,power_type,department,supervising_department,mode,level,agency\n"


def _xinxian(store: Any, rows: str) -> Any:
    store.register_county(XINXIAN, "新县", actor="admin")
    store.register_township(
        BALIFAN, "八里畈镇", county_code=XINXIAN, service_centre=f"{BALIFAN}-ZX", actor="admin"
    )
    return store.import_catalog(XINXIAN, (COUNTY_HEAD + rows).encode(), actor="admin", fmt="county")


def test_xingguo_supervisors_are_department_codes(policy_store: Any) -> None:
    matters = {m.code: m for m in policy_store.matters("360732")}
    # 林木采伐许可证核发: the cell reads 兴国县林业局; the push must reach 县林业局's accounts
    assert matters["XG-12"].supervising_codes == ("县林业局",)
    assert matters["XG-12"].supervising_department == "兴国县林业局"  # the county's words, shown as written
    # 重大疾病免费救治申请: one cell, four departments, each registered by the county's list (004 附件2)
    assert matters["XG-13"].supervising_codes == ("县卫健委", "县民政局", "县医保局", "县乡村振兴局")
    departments = {o.code for o in policy_store.organisations("360732", OrgKind.DEPARTMENT)}
    assert {"县卫健委", "县民政局", "县医保局", "县乡村振兴局", "县交运局", "县文广新旅局"} <= departments
    assert matters["XG-14"].supervising_codes == ("县卫健委",)


def test_unknown_supervising_department_is_refused(engine: Any) -> None:
    from policies import PolicyStore

    store = PolicyStore(engine)
    with pytest.raises(BadInput) as err:
        _xinxian(store, "XX-001,临时救助,行政给付,新县民政局,新县民正局,,乡级,\n")  # a typo: 民正
    assert err.value.code == "CATALOG_DEPARTMENT_UNKNOWN"
    assert err.value.details["row"] == 2 and err.value.details["field"] == "supervising_department"
    assert err.value.details["code"] == "县民正局"
    assert store.matters(XINXIAN) == []  # all or nothing
    # another county's department (兴国县林业局 in 新县's catalog) is not one of 新县's
    with pytest.raises(BadInput) as err:
        store.import_catalog(
            XINXIAN,
            (COUNTY_HEAD + "XX-001,临时救助,行政给付,新县民政局,兴国县林业局,,,\n").encode(),
            actor="admin",
            fmt="county",
        )
    assert err.value.code == "CATALOG_DEPARTMENT_UNKNOWN" and err.value.details["code"] == "兴国县林业局"
    # registered first, it routes: 新县卫健委 and 县卫健委 are one department
    store.register_department("县卫健委", "新县卫生健康委员会", county_code=XINXIAN, actor="admin")
    store.import_catalog(
        XINXIAN,
        (
            COUNTY_HEAD
            + "XX-001,临时救助,行政给付,新县民政局,新县民政局,,乡级,\n"
            + "XX-002,老年人优待证办理,公共服务,县民政局,县民政局、新县卫健委,,,\n"
        ).encode(),
        actor="admin",
        fmt="county",
    )
    matters = {m.code: m for m in store.matters(XINXIAN)}
    assert matters["XX-001"].department_code == "县民政局"
    assert matters["XX-001"].supervising_codes == ("县民政局",)
    assert matters["XX-002"].supervising_codes == ("县民政局", "县卫健委")
    assert matters["XX-001"].level == "乡级" and matters["XX-002"].level is None


def test_shanxi_level_is_kept(policy_store: Any) -> None:
    matters = {m.code: m for m in policy_store.matters("360732")}
    assert matters["SX-001"].level == "乡级"
    assert {m.level for c, m in matters.items() if c.startswith("SX-")} == {"乡级"}
    with pytest.raises(BadInput) as err:
        policy_store.import_catalog(
            "360732",
            "no,matter,power_type,level,township_scope\n1,老年人高龄补贴发放,公共服务,省级,乡级负责受理\n".encode(),
            actor="admin",
            replace=False,
        )
    assert err.value.code == "CATALOG_ROW_INVALID" and err.value.details["field"] == "level"


def test_agency_matter_is_refused_naming_the_agency_seal(engine: Any) -> None:
    from policies import (
        Actor,
        DocumentKind,
        PolicyStore,
        Role,
        SealFacts,
        SealKindFact,
        SealStatusFact,
        SigningRequest,
        Stage,
    )

    store = PolicyStore(engine)
    _xinxian(store, "XX-101,食品经营许可,行政许可,,,,,新县市场监督管理局八里畈市场监督管理所\n")
    store.grant_powers(BALIFAN, None, actor="admin")
    at = datetime(2026, 3, 2, 10, tzinfo=CHINA_TZ)
    seal = SealFacts(
        "s1",
        SealKindFact.TOWNSHIP_APPROVAL,
        SealStatusFact.ACTIVE,
        BALIFAN,
        datetime(2026, 1, 1, tzinfo=CHINA_TZ),
        datetime(2030, 1, 1, tzinfo=CHINA_TZ),
    )
    clerk = Actor("c1", Role.TOWNSHIP_CLERK, BALIFAN, f"{BALIFAN}-ZX")
    d = store.decide_now(SigningRequest(seal, clerk, "XX-101", Stage.APPROVE, DocumentKind.PERMIT), at)
    assert not d.allowed and d.codes == ("MATTER_REQUIRES_AGENCY_SEAL",)
    assert "新县市场监督管理局八里畈市场监督管理所的印章" in d.reasons[0].message_zh
    assert "须使用乡镇行政公章" not in d.reasons[0].message_zh
    assert store.matters(XINXIAN)[0].agency == "新县市场监督管理局八里畈市场监督管理所"


def test_catalog_show_gives_level_and_stages_in_order(tmp_path: Path, domain_dir: Path) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    runner = CliRunner()
    env = {"YIZHANG_HOME": str(tmp_path / "home"), "YIZHANG_ACTOR": "admin"}

    def run(*args: str) -> Any:
        res = runner.invoke(app, list(args), env=env)
        assert res.exit_code == 0, res.stdout
        return json.loads(res.stdout) if "--json" in args else res.stdout

    run("org", "add-county", "141033", "蒲县")
    run("catalog", "import", str(domain_dir / "shanxi_township_catalog.csv"), "--county", "141033")
    shown = {m["code"]: m for m in run("catalog", "show", "--county", "141033", "--json")}
    assert shown["SX-005"]["level"] == "乡级"  # 农村五保申请初审并转报, 乡级负责受理、初审
    assert shown["SX-005"]["stages"] == ["受理", "初审"]
    assert shown["SX-007"]["stages"] == ["受理", "初审", "审核", "复核", "审批"]  # 结婚登记: 乡级办结
    assert "level=乡级" in run("catalog", "show", "--county", "141033")
