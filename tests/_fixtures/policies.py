"""Fixtures for the policies package's tests (owned by that area).

Plain builders (``make_seal``, ``make_clerk``, ``minimal_facts`` ...) for the pure engine, and a
``policy_store`` fixture: a migrated database (SQLite and PostgreSQL) holding Xingguo county with its 25
townships, its 26-item list and the 114-item Shanxi catalog, so the real catalogs drive the scenarios.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from policies import (
    Actor,
    Agreement,
    DocumentKind,
    HandlingMode,
    Matter,
    PolicyFacts,
    PowerType,
    Role,
    SealFacts,
    SealKindFact,
    SealStatusFact,
    SigningRequest,
    Stage,
    TownshipPower,
    default_stage_kinds,
)
from policies._model import ALL_STAGES

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
T1, T2 = "T1", "T2"
CENTRE1, CENTRE2 = "T1-BMFW", "T2-BMFW"
DEPT = "D1"

XINGGUO = "360732"
XINGGUO_NAME = "兴国县"
MEIJIAO = f"{XINGGUO}-13"  # 梅窖镇, No. 2 seal （13）
MEIJIAO_CENTRE = f"{MEIJIAO}-BMFW"
APPROVAL_BUREAU = "县行政审批局"
HEALTH_LICENCE_FIRST = "XG-14"  # 公共场所卫生许可（首次）
DISABILITY_CARD = "XG-07"  # 残疾人证件办理（三、四级肢体残疾人证新办）, 乡镇帮办代办


def make_seal(**overrides: Any) -> SealFacts:
    base = SealFacts(
        seal_id="seal-t1",
        kind=SealKindFact.TOWNSHIP_APPROVAL,
        status=SealStatusFact.ACTIVE,
        township_code=T1,
        not_before=NOW - timedelta(days=365),
        not_after=NOW + timedelta(days=365),
    )
    return dataclasses.replace(base, **overrides)


def make_no2_seal(**overrides: Any) -> SealFacts:
    fields: dict[str, Any] = {
        "seal_id": "seal-d1-13",
        "kind": SealKindFact.DEPARTMENT_NO2,
        "number": 13,
        "department_code": DEPT,
    }
    return make_seal(**{**fields, **overrides})


def make_clerk(**overrides: Any) -> Actor:
    return dataclasses.replace(Actor("clerk-1", Role.TOWNSHIP_CLERK, T1, CENTRE1), **overrides)


def make_principal(**overrides: Any) -> Actor:
    return dataclasses.replace(Actor("boss-1", Role.TOWNSHIP_PRINCIPAL, T1, CENTRE1), **overrides)


def township_request(**overrides: Any) -> SigningRequest:
    """Allowed against :func:`minimal_facts`: T1's clerk stamps an acceptance notice for M1."""
    base = SigningRequest(
        seal=make_seal(),
        operator=make_clerk(),
        matter_code="M1",
        stage=Stage.ACCEPT,
        document_kind=DocumentKind.ACCEPTANCE_NOTICE,
    )
    return dataclasses.replace(base, **overrides)


def no2_request(**overrides: Any) -> SigningRequest:
    """Allowed against :func:`minimal_facts`: T1 finalises N1 with D1's seal (13), principal approving."""
    base = SigningRequest(
        seal=make_no2_seal(),
        operator=make_clerk(),
        matter_code="N1",
        stage=Stage.APPROVE,
        document_kind=DocumentKind.PERMIT,
        approver=make_principal(),
    )
    return dataclasses.replace(base, **overrides)


def make_agreement(**overrides: Any) -> Agreement:
    base = Agreement(
        agreement_id="AGR-1",
        department_code=DEPT,
        township_code=T1,
        seal_number=13,
        matters=frozenset({"N1"}),
        stages=ALL_STAGES,
        starts_at=NOW - timedelta(days=30),
        ends_at=NOW + timedelta(days=365),
    )
    return dataclasses.replace(base, **overrides)


def minimal_facts(**overrides: Any) -> PolicyFacts:
    matters = {
        "M1": Matter("M1", "乡级办结事项", PowerType.BENEFIT, HandlingMode.SCOPE_COMPLETE),
        "M2": Matter("M2", "乡级负责受理事项", PowerType.PUBLIC_SERVICE, HandlingMode.SCOPE_ACCEPT),
        "N1": Matter("N1", "2号章事项", PowerType.LICENSING, HandlingMode.NO2_SEAL, department_code=DEPT),
        "N2": Matter(
            "N2", "另一部门2号章事项", PowerType.LICENSING, HandlingMode.NO2_SEAL, department_code="D2"
        ),
        "A1": Matter(
            "A1", "帮办代办事项", PowerType.CONFIRMATION, HandlingMode.ASSIST_PROXY, department_code=DEPT
        ),
        "S1": Matter("S1", "系统延伸办事项", PowerType.PUBLIC_SERVICE, HandlingMode.SYSTEM_EXTENSION),
        "ADM": Matter(
            "ADM", "须用行政公章", PowerType.OTHER, HandlingMode.SCOPE_COMPLETE, requires_admin_seal=True
        ),
        # a 派出机构's matter handled at the centre in the agency's own name (001 四（三）)
        "AGY": Matter(
            "AGY",
            "食品经营许可（仅销售预包装食品备案）",
            PowerType.LICENSING,
            HandlingMode.SCOPE_COMPLETE,
            requires_admin_seal=True,
            agency="融安县市场监督管理局大将市场监督管理所",
        ),
    }
    powers = {
        (T1, "M1"): TownshipPower(T1, "M1", ALL_STAGES, 3),
        (T1, "M2"): TownshipPower(T1, "M2", frozenset({Stage.ACCEPT}), 3),
        (T1, "ADM"): TownshipPower(T1, "ADM", ALL_STAGES, 3),
        (T1, "AGY"): TownshipPower(T1, "AGY", ALL_STAGES, 3),
        (T1, "A1"): TownshipPower(T1, "A1", ALL_STAGES, 3),
        (T1, "S1"): TownshipPower(T1, "S1", ALL_STAGES, 3),
        (T2, "M1"): TownshipPower(T2, "M1", ALL_STAGES, 3),
    }
    base = PolicyFacts(
        matters=matters,
        powers=powers,
        agreements=(make_agreement(),),
        stage_kinds=default_stage_kinds(),
        service_centres={T1: CENTRE1, T2: CENTRE2},
        revision=7,
        catalog_version=1,
        stage_table_version=1,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture(scope="session")
def domain_dir() -> Path:
    """The catalogs shipped in the package (policies/catalogs/): Shanxi 114, Xingguo 26, No. 2 seals."""
    from tests.conftest import CATALOGS

    return CATALOGS


@pytest.fixture
def policy_store(engine: Any, domain_dir: Path) -> Iterator[Any]:
    """Xingguo county (25 townships, the 26-item list and the Shanxi catalog merged in) on ``engine``."""
    from policies import PolicyStore

    store = PolicyStore(engine)
    load_xingguo(store, domain_dir)
    yield store


def load_xingguo(store: Any, domain_dir: Path) -> None:
    store.register_county(XINGGUO, XINGGUO_NAME, actor="admin")
    store.import_no2_townships(XINGGUO, (domain_dir / "xingguo_no2_seals.csv").read_bytes(), actor="admin")
    store.import_catalog(
        XINGGUO, (domain_dir / "xingguo_county_township_catalog.csv").read_bytes(), actor="admin"
    )
    store.import_catalog(
        XINGGUO, (domain_dir / "shanxi_township_catalog.csv").read_bytes(), actor="admin", replace=False
    )


def county_facts(domain_dir: Path, *, at: datetime = NOW) -> PolicyFacts:
    """In-memory facts for Xingguo's 25 townships with both real catalogs: every township holds every
    Shanxi matter at its scope's stages, and 县行政审批局 entrusts its 2号章 matters to every township."""
    from policies._catalog import decode_catalog, parse_no2_seals, parse_shanxi, parse_xingguo

    def text(name: str) -> str:
        return decode_catalog((domain_dir / name).read_bytes())

    shanxi = parse_shanxi(text("shanxi_township_catalog.csv"))
    xingguo = parse_xingguo(text("xingguo_county_township_catalog.csv"))
    towns = parse_no2_seals(text("xingguo_no2_seals.csv"))
    matters = {m.code: m for m in shanxi.matters + xingguo.matters}
    bureau_matters = frozenset(
        m.code
        for m in xingguo.matters
        if m.mode is HandlingMode.NO2_SEAL and m.department_code == APPROVAL_BUREAU
    )
    powers: dict[tuple[str, str], TownshipPower] = {}
    agreements: list[Agreement] = []
    centres: dict[str, str] = {}
    for t in towns:
        code = f"{XINGGUO}-{t.number}"
        centres[code] = f"{code}-BMFW"
        for m in shanxi.matters:
            powers[(code, m.code)] = TownshipPower(code, m.code, m.mode.stages, 2)
        agreements.append(
            Agreement(
                agreement_id=f"AGR-{t.number}",
                department_code=APPROVAL_BUREAU,
                township_code=code,
                seal_number=t.number,
                matters=bureau_matters,
                stages=ALL_STAGES,
                starts_at=at - timedelta(days=30),
                ends_at=at + timedelta(days=365),
            )
        )
    return PolicyFacts(
        matters=matters,
        powers=powers,
        agreements=tuple(agreements),
        stage_kinds=default_stage_kinds(),
        service_centres=centres,
        revision=1,
        catalog_version=2,
        stage_table_version=1,
    )


def meijiao_no2_seal(**overrides: Any) -> SealFacts:
    fields: dict[str, Any] = {
        "seal_id": "seal-bureau-13",
        "kind": SealKindFact.DEPARTMENT_NO2,
        "number": 13,
        "department_code": APPROVAL_BUREAU,
        "township_code": MEIJIAO,
    }
    return make_seal(**{**fields, **overrides})


def meijiao_clerk(**overrides: Any) -> Actor:
    return dataclasses.replace(Actor("mj-clerk", Role.TOWNSHIP_CLERK, MEIJIAO, MEIJIAO_CENTRE), **overrides)


def meijiao_principal(**overrides: Any) -> Actor:
    return dataclasses.replace(
        Actor("mj-head", Role.TOWNSHIP_PRINCIPAL, MEIJIAO, MEIJIAO_CENTRE), **overrides
    )
