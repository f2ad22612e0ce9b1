"""Organisations, catalogs, township powers and No. 2 seal agreements over HTTP (the policies PolicyStore).

The county approval bureau registers organisations, imports catalogs and grants powers; a county department
makes, amends, suspends and revokes the agreements of its own No. 2 seals (the bureau may too); township
staff read their own township's powers and agreements.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api._authz import Permission, Principal, ServicesDep, require
from api._journal import journal_after_change
from api._json import JsonObject, JsonValue
from api._limits import Code
from api._views import jsonable
from core.errors import BadInput
from core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from api._services import Services
    from keystore import SealRegistry
    from policies import Agreement, PolicyStore
    from policies import Stage as PolicyStage


Reader = Annotated[Principal, Depends(require(Permission.POLICY_READ))]
Admin = Annotated[Principal, Depends(require(Permission.POLICY_ADMIN))]
AgreementAdmin = Annotated[Principal, Depends(require(Permission.AGREEMENTS_ADMIN))]
# A township's rename, merger or retirement changes its registry entry and its seals: the county admin only.
TownshipAdmin = Annotated[Principal, Depends(require(Permission.POLICY_ADMIN, Permission.SEALS_ADMIN))]

MAX_CATALOG_BYTES = 8 * 1024 * 1024


Stage = Annotated[str, Field(min_length=1, max_length=32)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrganisationIn(_In):
    kind: Literal["county", "township", "department"]
    code: Annotated[Code, Field(pattern=r"^[^\s/\\]+$")]
    name: str = Field(min_length=1, max_length=200)
    county_code: Code | None = None
    service_centre: str | None = Field(default=None, max_length=64)
    township_seal_requires_approval: bool = False


class PowersIn(_In):
    matter_codes: list[Code] | None = Field(default=None, max_length=5000)
    stages: list[Stage] | None = Field(default=None, max_length=10)


class RevokePowersIn(_In):
    matter_codes: list[Code] = Field(min_length=1, max_length=5000)


class AgreementIn(_In):
    department_code: Code
    township_code: Code
    seal_number: int = Field(ge=1, le=99)
    matter_codes: list[Code] = Field(min_length=1, max_length=5000)
    starts_at: datetime
    ends_at: datetime | None = None
    stages: list[Stage] | None = Field(default=None, max_length=10)
    basis: str = Field(default="", max_length=2000)


class AmendIn(_In):
    matter_codes: list[Code] | None = Field(default=None, max_length=5000)
    stages: list[Stage] | None = Field(default=None, max_length=10)
    ends_at: datetime | None = None
    basis: str | None = Field(default=None, max_length=2000)
    note: str = Field(default="", max_length=2000)


class ReasonIn(_In):
    reason: str = Field(default="", max_length=2000)


class TownshipRenameIn(_In):
    name: str = Field(min_length=1, max_length=200)
    basis: str = Field(min_length=1, max_length=2000)


class TownshipMergeIn(_In):
    into: Code
    basis: str = Field(min_length=1, max_length=2000)


class TownshipRetireIn(_In):
    basis: str = Field(min_length=1, max_length=2000)


def _actor(principal: Principal) -> str:
    return f"{principal.account.username}({principal.account.display_name})"


def _stages(values: list[str] | None) -> list[PolicyStage] | None:
    from policies import Stage as PolicyStage

    if values is None:
        return None
    try:
        return [PolicyStage.parse(v) for v in values]
    except (ValueError, KeyError) as exc:
        raise BadInput(
            "STAGE_UNKNOWN", "unknown stage", "未知的办理环节", details={"stages": values}
        ) from exc


def _agreement_scope(principal: Principal, agreement: Agreement) -> None:
    principal.ensure_scope(township_code=agreement.township_code, department_code=agreement.department_code)


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(
        prefix="/v1", tags=["policies"], dependencies=[Depends(journal_after_change, scope="function")]
    )

    @router.get("/organisations")
    def organisations(
        principal: Reader, services: ServicesDep, county_code: str | None = None
    ) -> list[JsonObject]:
        store = services.need_policy_store()
        return [jsonable(o) for o in store.organisations(county_code)]

    @router.post("/organisations", status_code=201)
    def register(body: OrganisationIn, principal: Admin, services: ServicesDep) -> JsonObject:
        store = services.need_policy_store()
        actor = _actor(principal)
        if body.kind == "county":
            org = store.register_county(
                body.code,
                body.name,
                actor=actor,
                township_seal_requires_approval=body.township_seal_requires_approval,
            )
        elif body.kind == "township":
            if not body.county_code or not body.service_centre:
                raise BadInput(
                    "TOWNSHIP_FIELDS_REQUIRED",
                    "a township needs county_code and service_centre",
                    "乡镇须填写所属县和便民服务中心",
                )
            org = store.register_township(
                body.code,
                body.name,
                county_code=body.county_code,
                service_centre=body.service_centre,
                actor=actor,
            )
        else:
            if not body.county_code:
                raise BadInput("COUNTY_CODE_REQUIRED", "a department needs county_code", "部门须填写所属县")
            org = store.register_department(body.code, body.name, county_code=body.county_code, actor=actor)
        return dict(jsonable(org))

    @router.post("/catalogs/{county_code}/import")
    async def import_catalog(
        county_code: str,
        principal: Admin,
        request: Request,
        services: ServicesDep,
        fmt: Annotated[Literal["shanxi", "xingguo", "county"] | None, Query()] = None,
        encoding: Annotated[str | None, Query(max_length=20)] = None,
        replace: bool = True,
    ) -> JsonObject:
        """The request body is the catalog file (CSV or JSON, UTF-8 or GBK); all or nothing."""
        import anyio

        data = await request.body()
        if not data:
            raise BadInput(
                "CATALOG_EMPTY", "the request body must be the catalog file", "请求体须为事项目录文件"
            )
        if len(data) > MAX_CATALOG_BYTES:
            raise BadInput("CATALOG_TOO_LARGE", "catalog file too large", "事项目录文件过大")
        store = services.need_policy_store()
        result = await anyio.to_thread.run_sync(
            lambda: store.import_catalog(
                county_code, data, actor=_actor(principal), fmt=fmt, encoding=encoding, replace=replace
            )
        )
        return dict(jsonable(result))

    @router.get("/catalogs/{county_code}/matters")
    def matters(county_code: str, principal: Reader, services: ServicesDep) -> list[JsonValue]:
        return list(jsonable(services.need_policy_store().matters(county_code)))

    @router.get("/townships/{township_code}/powers")
    def powers(township_code: str, principal: Reader, services: ServicesDep) -> list[JsonValue]:
        principal.ensure_scope(township_code=township_code)
        return list(jsonable(services.need_policy_store().powers(township_code)))

    # -- township lifecycle (issue 22, leak 7) -------------------------------------------------------------

    @router.get("/townships/{township_code}")
    def township(township_code: str, principal: Reader, services: ServicesDep) -> JsonObject:
        principal.ensure_scope(township_code=township_code)
        return dict(jsonable(services.need_policy_store().township_record(township_code)))

    def _lifecycle(
        services: Services,
        principal: Principal,
        township_code: str,
        act: Callable[[PolicyStore, SealRegistry, str], object],
    ) -> JsonObject:
        principal.ensure_scope(township_code=township_code)
        store, registry = services.need_policy_store(), services.need_seal_registry()
        return dict(jsonable(act(store, registry, _actor(principal))))

    @router.post("/townships/{township_code}/rename")
    def rename_township(
        township_code: str, body: TownshipRenameIn, principal: TownshipAdmin, services: ServicesDep
    ) -> JsonObject:
        from api._townships import rename_township as rename

        return _lifecycle(
            services,
            principal,
            township_code,
            lambda st, reg, actor: rename(st, reg, township_code, body.name, actor=actor, basis=body.basis),
        )

    @router.post("/townships/{township_code}/merge")
    def merge_township(
        township_code: str, body: TownshipMergeIn, principal: TownshipAdmin, services: ServicesDep
    ) -> JsonObject:
        from api._townships import merge_township as merge

        principal.ensure_scope(township_code=body.into)
        return _lifecycle(
            services,
            principal,
            township_code,
            lambda st, reg, actor: merge(st, reg, township_code, body.into, actor=actor, basis=body.basis),
        )

    @router.post("/townships/{township_code}/retire")
    def retire_township(
        township_code: str, body: TownshipRetireIn, principal: TownshipAdmin, services: ServicesDep
    ) -> JsonObject:
        from api._townships import retire_township as retire

        return _lifecycle(
            services,
            principal,
            township_code,
            lambda st, reg, actor: retire(st, reg, township_code, actor=actor, basis=body.basis),
        )

    @router.post("/townships/{township_code}/powers/grant")
    def grant(township_code: str, body: PowersIn, principal: Admin, services: ServicesDep) -> list[JsonValue]:
        store = services.need_policy_store()
        granted = store.grant_powers(
            township_code, body.matter_codes, actor=_actor(principal), stages=_stages(body.stages)
        )
        return list(jsonable(granted))

    @router.post("/townships/{township_code}/powers/revoke")
    def revoke(
        township_code: str, body: RevokePowersIn, principal: Admin, services: ServicesDep
    ) -> dict[str, int]:
        store = services.need_policy_store()
        return {
            "revision": int(store.revoke_powers(township_code, body.matter_codes, actor=_actor(principal)))
        }

    @router.get("/agreements")
    def agreements(
        principal: Reader,
        services: ServicesDep,
        township_code: Annotated[str, Query(min_length=1, max_length=64)],
    ) -> list[JsonValue]:
        found = services.need_policy_store().agreements(township_code)
        return [
            jsonable(a)
            for a in found
            if principal.in_scope(township_code=a.township_code, department_code=a.department_code)
        ]

    @router.get("/agreements/{agreement_id}")
    def agreement(agreement_id: str, principal: Reader, services: ServicesDep) -> JsonObject:
        found = services.need_policy_store().agreement(agreement_id)
        _agreement_scope(principal, found)
        return dict(jsonable(found))

    @router.post("/agreements", status_code=201)
    def create_agreement(body: AgreementIn, principal: AgreementAdmin, services: ServicesDep) -> JsonObject:
        """A department entrusts its No. 2 seal to a township (委托协议); only its own department's."""
        principal.ensure_scope(department_code=body.department_code)
        store = services.need_policy_store()
        made = store.create_agreement(
            department_code=body.department_code,
            township_code=body.township_code,
            seal_number=body.seal_number,
            matter_codes=body.matter_codes,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            actor=_actor(principal),
            stages=_stages(body.stages),
            basis=body.basis,
        )
        return dict(jsonable(made))

    @router.post("/agreements/{agreement_id}/amend")
    def amend(
        agreement_id: str, body: AmendIn, principal: AgreementAdmin, services: ServicesDep
    ) -> JsonObject:
        store = services.need_policy_store()
        current = store.agreement(agreement_id)
        principal.ensure_scope(department_code=current.department_code)
        amended = store.amend_agreement(
            agreement_id,
            actor=_actor(principal),
            matter_codes=body.matter_codes,
            stages=_stages(body.stages),
            ends_at=body.ends_at,
            basis=body.basis,
            note=body.note,
        )
        return dict(jsonable(amended))

    def _status_change(
        action: str, agreement_id: str, body: ReasonIn, principal: Principal, services: Services
    ) -> JsonValue:
        store = services.need_policy_store()
        current = store.agreement(agreement_id)
        principal.ensure_scope(department_code=current.department_code)
        fn = getattr(store, f"{action}_agreement")
        return jsonable(fn(agreement_id, actor=_actor(principal), reason=body.reason))

    @router.post("/agreements/{agreement_id}/suspend")
    def suspend(
        agreement_id: str, body: ReasonIn, principal: AgreementAdmin, services: ServicesDep
    ) -> JsonObject:
        return dict(_status_change("suspend", agreement_id, body, principal, services))

    @router.post("/agreements/{agreement_id}/resume")
    def resume(
        agreement_id: str, body: ReasonIn, principal: AgreementAdmin, services: ServicesDep
    ) -> JsonObject:
        return dict(_status_change("resume", agreement_id, body, principal, services))

    @router.post("/agreements/{agreement_id}/revoke")
    def revoke_agreement(
        agreement_id: str, body: ReasonIn, principal: AgreementAdmin, services: ServicesDep
    ) -> JsonObject:
        return dict(_status_change("revoke", agreement_id, body, principal, services))

    return router
