"""``yizhang demo``: a complete demo county in a home, from nothing, harmless to run twice.

Xingguo county (兴国县) with its 25 townships, the 26-item Xingguo list and the 114-item Shanxi catalog;
approval seals for three townships (兴江乡, 古龙岗镇, 梅窖镇) with every catalog matter on their lists of
powers; the county approval bureau's No. 2 seal （13） entrusted to 梅窖镇 by agreement; one account per role;
one document of every template sealed into ``HOME/sealed/``; the county root in ``HOME/trust/``.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import typer

from api._json import JsonObject
from api.cli._common import HomeOpt, JsonOpt, cli_errors, emit, ensure_log_key, settings_for
from core.errors import NotFound

if TYPE_CHECKING:
    from api._services import Services
    from keystore import Seal, SealKind, SealRegistry
    from policies import PolicyStore


COUNTY_CODE = "360732"
COUNTY_NAME = "兴国县"
BUREAU = "县行政审批局"  # the department code the Xingguo list uses for the county approval bureau
ACTOR = "demo"


@dataclass(frozen=True)
class DemoTownship:
    code: str
    name: str
    short: str


TOWNSHIPS = (
    DemoTownship("360732-11", "兴江乡", "xj"),
    DemoTownship("360732-12", "古龙岗镇", "glg"),
    DemoTownship("360732-13", "梅窖镇", "mj"),
)
NO2_TOWNSHIP = TOWNSHIPS[2]
NO2_NUMBER = 13
NO2_MATTERS = ("XG-14", "XG-15", "XG-16", "XG-17", "XG-18")  # 公共场所卫生许可 (首次/变更/补证/延续/注销)


def _ensure_policies(store: PolicyStore) -> None:
    """The county, its townships and both catalogs, from the tables shipped in ``policies/catalogs/``."""
    from policies import BundledCatalog, bundled_catalog

    try:
        store.organisation(COUNTY_CODE)
        return  # loaded by an earlier run
    except NotFound:
        pass
    store.register_county(COUNTY_CODE, COUNTY_NAME, actor=ACTOR)
    store.import_no2_townships(COUNTY_CODE, bundled_catalog(BundledCatalog.XINGGUO_NO2_SEALS), actor=ACTOR)
    store.import_catalog(COUNTY_CODE, bundled_catalog(BundledCatalog.XINGGUO), actor=ACTOR)
    store.import_catalog(COUNTY_CODE, bundled_catalog(BundledCatalog.SHANXI), actor=ACTOR, replace=False)
    for t in TOWNSHIPS:
        store.grant_powers(t.code, None, actor=ACTOR)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    store.create_agreement(
        department_code=BUREAU,
        township_code=NO2_TOWNSHIP.code,
        seal_number=NO2_NUMBER,
        matter_codes=list(NO2_MATTERS),
        starts_at=start,
        ends_at=start + timedelta(days=3 * 365),
        actor=ACTOR,
        basis="兴国县“县乡同办”“2号章”委托协议书（演示）",
    )


class _SealSpec(TypedDict, total=False):
    """What ``SealRegistry.issue_seal`` is given for one demo seal."""

    name: str
    kind: SealKind
    number: int
    township: str
    township_code: str
    department: str
    department_code: str
    custodian: str
    requested_by: str
    approved_by: str


def _ensure_seals(registry: SealRegistry) -> dict[str, Seal]:
    from keystore import SealKind, SealStatus

    wanted: dict[str, _SealSpec] = {}
    for t in TOWNSHIPS:
        wanted[t.short] = {
            "name": f"{COUNTY_NAME}{t.name}人民政府行政审批服务专用章",
            "kind": SealKind.TOWNSHIP_APPROVAL,
            "township": t.name,
            "township_code": t.code,
            "custodian": f"{t.name}印章保管员",
            "requested_by": f"{t.name}人民政府",
            "approved_by": f"{t.name}人民政府主要负责人",
        }
    wanted["no2"] = {
        "name": f"{COUNTY_NAME}行政审批局行政审批专用章（{NO2_NUMBER}）",
        "kind": SealKind.DEPARTMENT_NO2,
        "number": NO2_NUMBER,
        "township": NO2_TOWNSHIP.name,
        "township_code": NO2_TOWNSHIP.code,
        "department": f"{COUNTY_NAME}行政审批局",
        "department_code": BUREAU,
        "custodian": f"{NO2_TOWNSHIP.name}印章保管员",
        "requested_by": f"{COUNTY_NAME}行政审批局",
        "approved_by": f"{COUNTY_NAME}行政审批局局长",
    }
    existing = {s.name: s for s in registry.list()}
    out: dict[str, Seal] = {}
    for key, spec in wanted.items():
        seal = existing.get(spec["name"])
        if seal is None:
            event = registry.issue_seal(actor=ACTOR, **spec)
            seal = registry.get(event.seal_id)
        if seal.status == SealStatus.ISSUED:
            registry.activate(seal.seal_id, actor=ACTOR, approved_by=spec["approved_by"])
            seal = registry.get(seal.seal_id)
        out[key] = seal
    return out


def _ensure_accounts(services: Services, home: Path) -> dict[str, str]:
    """One account per role; passwords are random and written once to a 0600 file in the home."""
    from api._accounts import AccountChange, create_account, get_account_by_username, record_account_change
    from core.db import transaction

    people: list[tuple[str, str, str, str | None]] = [
        ("admin", "COUNTY_ADMIN", COUNTY_CODE, None),
        ("auditor", "AUDITOR", COUNTY_CODE, None),
        ("bureau.officer", "DEPARTMENT_OFFICER", BUREAU, None),
    ]
    for t in TOWNSHIPS:
        centre = services.need_policy_store().organisation(t.code).service_centre
        people += [
            (f"{t.short}.clerk", "TOWNSHIP_CLERK", t.code, centre),
            (f"{t.short}.principal", "TOWNSHIP_PRINCIPAL", t.code, centre),
            (f"{t.short}.custodian", "SEAL_CUSTODIAN", t.code, None),
        ]
    creds_path = home / "secrets" / "demo-accounts.json"
    creds: dict[str, str] = json.loads(creds_path.read_text()) if creds_path.exists() else {}
    with transaction(services.sessions) as s:
        for username, role, org, centre in people:
            try:
                get_account_by_username(s, username)
                continue
            except NotFound:
                pass
            password = secrets.token_urlsafe(12)
            account = create_account(
                s,
                username=username,
                display_name=username,
                role=role,
                org_code=org,
                service_centre=centre,
                password=password,
                created_by=ACTOR,
            )
            record_account_change(
                s,
                services.need_ledger(),
                account,
                AccountChange.CREATED,
                actor=ACTOR,
                via="cli",
                details={"role": role, "org_code": org, "linked_to_existing_person": False},
            )
            creds[username] = password
    creds_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(creds_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(creds, f, ensure_ascii=False, indent=2)
    return {u: r for u, r, _, _ in people}


def _documents(seals: dict[str, Seal]) -> list[JsonObject]:
    xj = TOWNSHIPS[0]
    common = {"applicant": "刘某某", "submitted_date": "2026年3月1日", "date": "2026年3月5日"}
    return [
        {
            "template": "acceptance_notice",
            "seal": "xj",
            "township": xj,
            "matter": "SX-002",
            "stage": "受理",
            "kind": "受理通知书",
            "data": {**common, "matter_name": "临时救助"},
        },
        {
            "template": "non_acceptance_notice",
            "seal": "xj",
            "township": xj,
            "matter": "SX-004",
            "stage": "受理",
            "kind": "不予受理通知书",
            "data": {
                **common,
                "matter_name": "最低生活保障申请",
                "reason": "申请人户籍不在本乡，不属于本机关受理范围。",
            },
        },
        {
            "template": "supplement_notice",
            "seal": "xj",
            "township": xj,
            "matter": "SX-002",
            "stage": "受理",
            "kind": "补正材料告知书",
            "data": {**common, "matter_name": "临时救助", "items": ["家庭收入情况说明", "户口簿复印件"]},
        },
        {
            "template": "refusal_decision",
            "seal": "xj",
            "township": xj,
            "matter": "SX-015",
            "stage": "审批",
            "kind": "不予批准决定书",
            "data": {
                **common,
                "matter_name": "城乡低收入家庭认定",
                "reasons": ["家庭人均收入高于本县低收入家庭认定标准", "申报材料与核查结果不符"],
                "basis": "《江西省最低生活保障和低收入家庭认定办法》",
            },
        },
        {
            "template": "public_place_hygiene_permit",
            "seal": "no2",
            "township": NO2_TOWNSHIP,
            "matter": "XG-14",
            "stage": "审批",
            "kind": "许可证及其附件",
            "approve": True,
            "data": {
                "unit_name": "梅窖镇悦来宾馆",
                "legal_representative": "陈某某",
                "address": "兴国县梅窖镇圩镇街12号",
                "licensed_items": "住宿",
                "valid_from": "2026年3月5日",
                "valid_until": "2030年3月4日",
                "date": "2026年3月5日",
            },
        },
    ]


def _seal_documents(services: Services, seals: dict[str, Seal], home: Path) -> list[JsonObject]:
    from policies import Actor, Role
    from signer import SealRequest

    out_dir = home / "sealed"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for doc in _documents(seals):
        seal = seals[doc["seal"]]
        t: DemoTownship = doc["township"]
        centre = services.need_policy_store().organisation(t.code).service_centre
        operator = Actor(
            user_id=f"{t.short}.clerk", role=Role.TOWNSHIP_CLERK, org_code=t.code, service_centre=centre
        )
        approver = (
            Actor(
                user_id=f"{t.short}.principal",
                role=Role.TOWNSHIP_PRINCIPAL,
                org_code=t.code,
                service_centre=centre,
            )
            if doc.get("approve")
            else None
        )
        issuer = seal.department or f"{COUNTY_NAME}{t.name}人民政府"
        done = services.need_signer().seal(
            SealRequest(
                seal_id=seal.seal_id,
                matter_code=doc["matter"],
                stage=doc["stage"],
                document_kind=doc["kind"],
                idempotency_key=f"demo-{doc['template']}",
                operator=operator,
                approver=approver,
                reason="演示",
                template=doc["template"],
                template_data={**doc["data"], "issuer": issuer},
            )
        )
        path = out_dir / f"{doc['template']}.pdf"
        path.write_bytes(done.pdf)
        results.append(
            {
                "template": doc["template"],
                "file": str(path),
                "seal": seal.name,
                "document_number": done.document_number,
                "sha256": done.sha256,
                "level": done.level,
                "ledger_index": done.ledger_index,
                "replayed": done.replayed,
            }
        )
    return results


def _write_trust(services: Services, home: Path) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    trust = home / "trust"
    trust.mkdir(parents=True, exist_ok=True)
    path = trust / f"{COUNTY_CODE}-root.pem"
    path.write_bytes(services.need_county_pki().root_certificate.public_bytes(Encoding.PEM))
    return str(path)


def run_demo(home: Path | None) -> JsonObject:
    from api._services import build_services
    from core.db import migrate
    from keystore import init_county

    settings = settings_for(home)
    init_county(settings, COUNTY_CODE, COUNTY_NAME)
    migrate(settings.effective_database_url)
    ensure_log_key(settings)
    services = build_services(settings)
    try:
        services.need_keystore()
        registry = services.need_seal_registry()
        store = services.need_policy_store()
        services.need_ledger()
        services.need_signer()
        _ensure_policies(store)
        seals = _ensure_seals(registry)
        accounts = _ensure_accounts(services, settings.home_dir)
        docs = _seal_documents(services, seals, settings.home_dir)
        trust = _write_trust(services, settings.home_dir)
        from api._journal import forward

        forward(services)
        services.need_ledger().checkpoint()
        return {
            "home": str(settings.home_dir),
            "county": {"code": COUNTY_CODE, "name": COUNTY_NAME},
            "seals": [
                {
                    "seal_id": s.seal_id,
                    "name": s.name,
                    "kind": s.kind.value,
                    "township": s.township,
                    "status": s.status.value,
                }
                for s in seals.values()
            ],
            "accounts": accounts,
            "accounts_passwords_file": str(settings.home_dir / "secrets" / "demo-accounts.json"),
            "sealed": docs,
            "trust_roots": [trust],
        }
    finally:
        services.close()


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
        """Build a complete demo county in the home (idempotent) and seal one document of each template."""
        with cli_errors(as_json):
            summary = run_demo(home)
            if as_json:
                emit(summary, True)
            else:
                typer.echo(f"demo county {COUNTY_NAME} ready in {summary['home']}")
                for s in summary["seals"]:
                    typer.echo(f"  seal {s['seal_id']}  {s['name']}  {s['status']}")
                for d in summary["sealed"]:
                    typer.echo(f"  sealed {d['document_number']}  {d['file']}")
                typer.echo(
                    f"  accounts (passwords in {summary['accounts_passwords_file']}): "
                    + ", ".join(summary["accounts"])
                )
