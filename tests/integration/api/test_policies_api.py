"""Organisations, the real Xingguo catalog, powers and No. 2 seal agreements over HTTP."""

from __future__ import annotations

from pathlib import Path

XG = "360732"
XJ = f"{XG}-11"  # 兴江乡, No. 2 seal （11）
MJ = f"{XG}-13"  # 梅窖镇
BUREAU = "县行政审批局"
HEALTH_LICENCE_FIRST = "XG-14"
DISABILITY_CARD = "XG-07"  # 乡镇帮办代办: never entrusted


def _account(client, username: str, role: str, org: str, centre: str | None = None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from api._accounts import create_account, issue_token
    from core.db import transaction

    with transaction(client.app.state.services.sessions) as s:
        a = create_account(
            s,
            username=username,
            display_name=username,
            role=role,
            org_code=org,
            service_centre=centre,
            created_by="test",
        )
        return {"Authorization": f"Bearer {issue_token(s, a.account_id, name='t').secret}"}


def test_county_policies_over_http(api_client, domain_dir: Path) -> None:
    c = api_client
    admin = _account(c, "admin", "COUNTY_ADMIN", XG)
    bureau = _account(c, "bureau.officer", "DEPARTMENT_OFFICER", BUREAU)
    health = _account(c, "health.officer", "DEPARTMENT_OFFICER", "县卫健委")
    xj_clerk = _account(c, "xj.clerk", "TOWNSHIP_CLERK", XJ, f"{XJ}-BMFW")
    mj_clerk = _account(c, "mj.clerk", "TOWNSHIP_CLERK", MJ, f"{MJ}-BMFW")

    for body in (
        {"kind": "county", "code": XG, "name": "兴国县"},
        {"kind": "department", "code": BUREAU, "name": BUREAU, "county_code": XG},
        {"kind": "township", "code": XJ, "name": "兴江乡", "county_code": XG, "service_centre": f"{XJ}-BMFW"},
        {"kind": "township", "code": MJ, "name": "梅窖镇", "county_code": XG, "service_centre": f"{MJ}-BMFW"},
    ):
        r = c.post("/v1/organisations", json=body, headers=admin)
        assert r.status_code == 201, r.text
    r = c.post("/v1/organisations", json={"kind": "county", "code": XG, "name": "x"}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "ORGANISATION_EXISTS"
    r = c.post("/v1/organisations", json={"kind": "county", "code": "X2", "name": "x"}, headers=xj_clerk)
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN"

    # The real catalog, as a raw upload; a broken one is refused whole with a code.
    csv = (domain_dir / "xingguo_county_township_catalog.csv").read_bytes()
    r = c.post(f"/v1/catalogs/{XG}/import?fmt=xingguo", content=csv, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["matters"] == 26
    r = c.post(f"/v1/catalogs/{XG}/import?fmt=xingguo", content=b"no,matter\n1,\xff\xfe", headers=admin)
    assert 400 <= r.status_code < 500 and r.json()["code"], r.text
    r = c.post(f"/v1/catalogs/{XG}/import", content=b"", headers=admin)
    assert r.status_code == 400 and r.json()["code"] == "CATALOG_EMPTY"
    matters = {m["code"] for m in c.get(f"/v1/catalogs/{XG}/matters", headers=xj_clerk).json()}
    assert HEALTH_LICENCE_FIRST in matters and len(matters) == 26

    # A department entrusts its own No. 2 seal; another department cannot do it in its name.
    agreement = {
        "department_code": BUREAU,
        "township_code": XJ,
        "seal_number": 11,
        "matter_codes": [HEALTH_LICENCE_FIRST],
        "starts_at": "2026-01-01T00:00:00+08:00",
        "ends_at": "2027-12-31T00:00:00+08:00",
        "basis": "兴国县“一枚印章管审批”实施方案",
    }
    r = c.post("/v1/agreements", json=agreement, headers=health)
    assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION"
    r = c.post("/v1/agreements", json=agreement, headers=xj_clerk)
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN"
    r = c.post("/v1/agreements", json={**agreement, "matter_codes": [DISABILITY_CARD]}, headers=bureau)
    assert 400 <= r.status_code < 500 and r.json()["code"], r.text
    r = c.post("/v1/agreements", json=agreement, headers=bureau)
    assert r.status_code == 201, r.text
    agreement_id = r.json()["agreement_id"]

    # Township staff see only their own township's agreements.
    assert len(c.get(f"/v1/agreements?township_code={XJ}", headers=xj_clerk).json()) == 1
    assert c.get(f"/v1/agreements?township_code={XJ}", headers=mj_clerk).json() == []
    r = c.get(f"/v1/agreements/{agreement_id}", headers=mj_clerk)
    assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION"
    r = c.get(f"/v1/townships/{XJ}/powers", headers=mj_clerk)
    assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION"

    # Suspension and revocation by the department, versioned.
    r = c.post(f"/v1/agreements/{agreement_id}/suspend", json={"reason": "检查整改"}, headers=bureau)
    assert r.status_code == 200 and r.json()["status"] == "SUSPENDED", r.text
    r = c.post(f"/v1/agreements/{agreement_id}/revoke", json={"reason": "x"}, headers=health)
    assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION"
    r = c.post(f"/v1/agreements/{agreement_id}/revoke", json={"reason": "到期不续"}, headers=bureau)
    assert r.status_code == 200 and r.json()["status"] == "REVOKED"
    assert c.get("/v1/agreements/no-such", headers=admin).status_code == 404
