"""Issue 22 (domain fidelity), the county departments over HTTP: each test fails on the code before it.

16  审管联动 routes by department code: 兴国县林业局's 林木采伐 licence reaches 县林业局, the four-department
    重大疾病免费救治 reaches all four, a matter whose catalog names no department goes to the county
    (``routing: COUNTY``), never to no one;
17  a county department reads the 台账 lines of the matters it entrusts or supervises on a township's seal
    (000 四（三）), and only those; the 403s that must stay, stay.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.test_signing_workflow import XG, XJ, _submit, county  # noqa: F401

pytestmark = pytest.mark.softhsm

OFFICERS = {
    "forestry": "县林业局",
    "health": "县卫健委",
    "civil": "县民政局",
    "medical": "县医保局",
    "rural": "县乡村振兴局",
    "statistics": "县统计局",  # registered, responsible for no matter
}


def _officers(c: Any, h: dict[str, Any]) -> None:
    from api._accounts import create_account, issue_token
    from core.db import transaction

    services = c.app.state.services
    services.policy_store.register_department("县统计局", "兴国县统计局", county_code=XG, actor="t")
    with transaction(services.sessions) as s:
        for username, org in OFFICERS.items():
            a = create_account(
                s,
                username=username,
                display_name=username,
                role="DEPARTMENT_OFFICER",
                org_code=org,
                created_by="t",
            )
            h[username] = {"Authorization": f"Bearer {issue_token(s, a.account_id, name='t').secret}"}


def _no2(c: Any, department: str, name: str, matter: str) -> str:
    """A No. 2 seal (11) of ``department`` at 兴江乡, entrusted for ``matter``."""
    from datetime import UTC, datetime

    from keystore import SealKind

    services = c.app.state.services
    services.policy_store.create_agreement(
        department_code=department,
        township_code=XJ,
        seal_number=11,
        matter_codes=[matter],
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        ends_at=datetime(2036, 1, 1, tzinfo=UTC),
        actor="t",
        basis="兴国县行政审批“2号章”委托协议书",
    )
    registry = services.seal_registry
    seal = registry.issue_seal(
        name=f"兴国县{name}行政审批专用章（11）",
        kind=SealKind.DEPARTMENT_NO2,
        number=11,
        township="兴江乡",
        township_code=XJ,
        department=f"兴国县{name}",
        department_code=department,
        custodian="李保管",
        requested_by=department,
        approved_by="局长",
        actor="t",
    )
    registry.activate(seal.seal_id, actor="t", approved_by="局长")
    return str(seal.seal_id)


def _seal_no2(c: Any, h: dict[str, Any], seal: str, matter: str, key: str) -> dict[str, Any]:
    r = _submit(c, h["xj.clerk"], seal, matter, "审批", "许可证及其附件", key)
    assert r.status_code == 201 and r.json()["status"] == "PENDING_APPROVAL", r.text
    r = c.post(
        f"/v1/signing-requests/{r.json()['request_id']}/approve",
        json={"comment": "同意"},
        headers=h["xj.principal"],
    )
    assert r.status_code == 200 and r.json()["status"] == "SEALED", r.text
    return dict(r.json())


def _feed(c: Any, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = c.get("/v1/supervision/feed?cursor=0&limit=1000", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


def test_supervision_push_routes_by_department_code(county: dict[str, Any]) -> None:  # noqa: F811
    c, h, seals = county["client"], county["h"], county["seals"]
    _officers(c, h)
    # 林木采伐许可证核发: the catalog's cell reads 兴国县林业局
    felling = _seal_no2(c, h, _no2(c, "县林业局", "林业局", "XG-12"), "XG-12", "route-felling")
    events = [e for e in _feed(c, h["forestry"]) if e["request_id"] == felling["request_id"]]
    assert [(e["event"], e["supervising_code"], e["routing"]) for e in events] == [
        ("DECISION_ISSUED", "县林业局", "SUPERVISING_DEPARTMENT")
    ]
    # 重大疾病免费救治申请: 县卫健委、县民政局、县医保局、县乡村振兴局, each its own event
    treatment = _seal_no2(c, h, _no2(c, "县卫健委", "卫健委", "XG-13"), "XG-13", "route-treatment")
    for officer in ("health", "civil", "medical", "rural"):
        mine = [e for e in _feed(c, h[officer]) if e["request_id"] == treatment["request_id"]]
        assert [e["supervising_code"] for e in mine] == [OFFICERS[officer]], officer
        assert mine[0]["supervising_codes"] == ["县卫健委", "县民政局", "县医保局", "县乡村振兴局"]
    assert not [e for e in _feed(c, h["forestry"]) if e["request_id"] == treatment["request_id"]]
    # the principal's history shows one issue, however many departments it went to
    history = c.get(f"/v1/signing-requests/{treatment['request_id']}/history", headers=h["xj.principal"])
    assert [e["status"] for e in history.json()] == ["ISSUED"], history.text
    # a Shanxi matter names no department: it goes to the county, and says so
    r = _submit(c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "route-county")
    assert r.status_code == 201, r.text
    county_events = [e for e in _feed(c, h["admin"]) if e["request_id"] == r.json()["request_id"]]
    assert [(e["supervising_code"], e["routing"]) for e in county_events] == [(XG, "COUNTY")]
    assert all(e["supervising_code"] is not None for e in _feed(c, h["admin"]))


def test_departments_read_the_ledger_of_what_they_entrusted(county: dict[str, Any]) -> None:  # noqa: F811
    c, h, seals = county["client"], county["h"], county["seals"]
    _officers(c, h)
    store = c.app.state.services.policy_store
    # a matter 县民政局 entrusts to the townships, stamped with the township's own seal (000 四（一）)
    store.import_catalog(
        XG,
        "code,name,power_type,department,supervising_department,mode\n"
        "CV-01,老年人优待证办理,公共服务,兴国县民政局,兴国县民政局,\n".encode(),
        actor="t",
        fmt="county",
        replace=False,
    )
    store.grant_powers(XJ, ["CV-01"], actor="t")
    entrusted = _submit(c, h["xj.clerk"], seals[XJ], "CV-01", "受理", "受理通知书", "ledger-civil")
    assert entrusted.status_code == 201 and entrusted.json()["status"] == "SEALED", entrusted.text
    other = _submit(
        c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "ledger-other"
    )
    assert other.status_code == 201, other.text
    month = entrusted.json()["created_at"][:7]
    query = f"seal_id={seals[XJ]}&month={month}"

    r = c.get(f"/v1/ledger/usage?{query}", headers=h["civil"])
    assert r.status_code == 200, r.text
    assert [row["matter"] for row in r.json()] == ["CV-01"]  # its own matter's line, not the township's other
    assert r.json()[0]["document_number"] == entrusted.json()["document_number"]
    csv = c.get(f"/v1/reports/usage?{query}", headers=h["civil"])
    assert csv.status_code == 200 and "CV-01" in csv.text and county["accept_matter"] not in csv.text
    # the township reads all of its seal's lines; the county's auditor too
    assert len(c.get(f"/v1/ledger/usage?{query}", headers=h["xj.principal"]).json()) == 2
    assert len(c.get(f"/v1/ledger/usage?{query}", headers=h["auditor"]).json()) == 2

    # the refusals that stay
    for who in ("statistics", "mj.principal"):  # responsible for nothing here; another township
        r = c.get(f"/v1/ledger/usage?{query}", headers=h[who])
        assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION", (who, r.text)
        r = c.get(f"/v1/reports/usage?{query}", headers=h[who])
        assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION", (who, r.text)
    assert c.get("/v1/ledger/audit", headers=h["civil"]).json()["code"] == "ROLE_FORBIDDEN"
    assert c.get("/v1/ledger/entries/0", headers=h["civil"]).json()["code"] == "ROLE_FORBIDDEN"
    # the approval bureau's No. 2 seal serves no 民政 matter: an empty 台账 for 县民政局
    r = c.get(f"/v1/ledger/usage?seal_id={seals['no2']}&month={month}", headers=h["civil"])
    assert r.status_code == 200 and r.json() == []
