"""Seals over HTTP, with the CLI's rules (the keystore's SealRegistry decides every transition).

Making, activating, changing, cancelling and retiring (刻制、启用、变更、注销、封存) are the county approval
bureau's; a custodian may suspend and resume the seal of their own township; everyone with SEALS_READ sees
the seals of their own organisation (county roles: all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api._authz import Permission, Principal, ServicesDep, require
from api._journal import journal_after_change
from api._json import JsonObject
from api._limits import Code, check_cert_name
from api._views import event_view, seal_view
from core.settings import Settings

if TYPE_CHECKING:
    from api._services import Services
    from keystore import Seal, SealRegistry


Reader = Annotated[Principal, Depends(require(Permission.SEALS_READ))]
Admin = Annotated[Principal, Depends(require(Permission.SEALS_ADMIN))]
Custody = Annotated[Principal, Depends(require(Permission.SEALS_CUSTODY))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SealIssueIn(_In):
    name: str = Field(min_length=1, max_length=200)  # checked against the certificate: check_cert_name
    kind: Literal["TOWNSHIP_APPROVAL", "DEPARTMENT_NO2"]
    township: str = Field(min_length=1, max_length=100)
    township_code: Code
    custodian: str = Field(min_length=1, max_length=100)
    requested_by: str = Field(min_length=1, max_length=200)
    approved_by: str = Field(min_length=1, max_length=200)
    number: int | None = Field(default=None, ge=1, le=99)
    department: str | None = Field(default=None, max_length=200)
    department_code: Code | None = None
    algorithm: Literal["EC_P256", "RSA_3072"] = "EC_P256"
    reason: str | None = Field(default=None, max_length=500)
    validity_days: int = Field(default=1826, ge=1, le=3660)


class TransitionIn(_In):
    reason: str | None = Field(default=None, max_length=500)
    approved_by: str | None = Field(default=None, max_length=200)
    requested_by: str | None = Field(default=None, max_length=200)


class ChangeIn(_In):
    reason: str = Field(min_length=1, max_length=500)
    approved_by: str = Field(min_length=1, max_length=200)
    requested_by: str = Field(min_length=1, max_length=200)
    new_name: str | None = Field(default=None, max_length=200)
    algorithm: Literal["EC_P256", "RSA_3072"] | None = None


def _actor(principal: Principal) -> str:
    return f"{principal.account.username}({principal.account.display_name})"


def _scoped_seal(registry: SealRegistry, seal_id: str, principal: Principal) -> Seal:
    seal = registry.get(seal_id)
    principal.ensure_scope(township_code=seal.township_code, department_code=seal.department_code)
    return seal


def _required(value: str | None, field: str) -> str:
    from core.errors import BadInput

    if not value:
        raise BadInput(f"{field.upper()}_REQUIRED", f"{field} is required", f"缺少 {field}")
    return value


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(
        prefix="/v1/seals", tags=["seals"], dependencies=[Depends(journal_after_change, scope="function")]
    )

    @router.get("")
    def seals(principal: Reader, services: ServicesDep, township_code: str | None = None) -> list[JsonObject]:
        registry = services.need_seal_registry()
        found = registry.list(township_code=township_code)
        return [
            seal_view(s)
            for s in found
            if principal.in_scope(township_code=s.township_code, department_code=s.department_code)
        ]

    @router.get("/{seal_id}")
    def seal(seal_id: str, principal: Reader, services: ServicesDep) -> JsonObject:
        registry = services.need_seal_registry()
        return seal_view(_scoped_seal(registry, seal_id, principal))

    @router.get("/{seal_id}/certificate", response_class=Response)
    def certificate(seal_id: str, principal: Reader, services: ServicesDep) -> Response:
        registry = services.need_seal_registry()
        found = _scoped_seal(registry, seal_id, principal)
        return Response(found.cert_der, media_type="application/pkix-cert")

    @router.get("/{seal_id}/events")
    def events(seal_id: str, principal: Reader, services: ServicesDep) -> list[JsonObject]:
        registry = services.need_seal_registry()
        _scoped_seal(registry, seal_id, principal)
        return [event_view(e) for e in registry.lifecycle_events(seal_id)]

    @router.post("", status_code=201)
    def issue(body: SealIssueIn, principal: Admin, services: ServicesDep) -> JsonObject:
        """Make a seal (刻制): key generated in the token, certificate from the county's issuing CA."""
        from keystore import KeyAlgorithm, SealKind

        # The name, township and department go into the certificate's subject (CN, OU): refused here, with
        # the limit, before a key is made (issue 21/22: a 22-character name was a 500).
        check_cert_name(body.name, "name")
        check_cert_name(body.township, "township")
        if body.department:
            check_cert_name(body.department, "department")
        from keystore import check_township_code
        from policies import SealKindFact

        check_township_code(body.township_code)
        # the policy register: a registered township, under its own name and the kind's naming pattern
        services.need_policy_store().check_seal_issue(
            kind=SealKindFact(SealKind(body.kind).name),
            name=body.name,
            township_code=body.township_code,
            township_name=body.township,
            department_code=body.department_code,
            number=body.number,
        )
        registry = services.need_seal_registry()
        event = registry.issue_seal(
            name=body.name,
            kind=SealKind(body.kind),
            township=body.township,
            township_code=body.township_code,
            custodian=body.custodian,
            requested_by=body.requested_by,
            approved_by=body.approved_by,
            actor=_actor(principal),
            number=body.number,
            department=body.department,
            department_code=body.department_code,
            algorithm=KeyAlgorithm(body.algorithm),
            reason=body.reason,
            validity_days=body.validity_days,
        )
        return {"event": event_view(event), "seal": seal_view(registry.get(event.seal_id))}

    def _transition(
        action: str, seal_id: str, body: TransitionIn, principal: Principal, services: Services
    ) -> JsonObject:
        from keystore import LIFECYCLE

        registry = services.need_seal_registry()
        _scoped_seal(registry, seal_id, principal)
        step = LIFECYCLE[action]
        event = registry.step(
            action,
            seal_id,
            actor=_actor(principal),
            approved_by=_required(body.approved_by, "approved_by")
            if step.approver_required
            else body.approved_by,
            reason=_required(body.reason, "reason") if step.reason_required else body.reason,
            requested_by=body.requested_by,
        )
        return {"event": event_view(event), "seal": seal_view(registry.get(seal_id))}

    @router.post("/{seal_id}/activate")
    def activate(seal_id: str, body: TransitionIn, principal: Admin, services: ServicesDep) -> JsonObject:
        return _transition("activate", seal_id, body, principal, services)

    @router.post("/{seal_id}/suspend")
    def suspend(seal_id: str, body: TransitionIn, principal: Custody, services: ServicesDep) -> JsonObject:
        return _transition("suspend", seal_id, body, principal, services)

    @router.post("/{seal_id}/resume")
    def resume(seal_id: str, body: TransitionIn, principal: Custody, services: ServicesDep) -> JsonObject:
        return _transition("resume", seal_id, body, principal, services)

    @router.post("/{seal_id}/cancel")
    def cancel(seal_id: str, body: TransitionIn, principal: Admin, services: ServicesDep) -> JsonObject:
        return _transition("cancel", seal_id, body, principal, services)

    @router.post("/{seal_id}/retire")
    def retire(seal_id: str, body: TransitionIn, principal: Admin, services: ServicesDep) -> JsonObject:
        return _transition("retire", seal_id, body, principal, services)

    @router.post("/crl/publish")
    def publish_crl(principal: Admin, services: ServicesDep) -> JsonObject:
        """Make fresh CRLs (signed in the token) and publish them at /pki/crl/*.crl."""
        pki = services.need_county_pki()
        published = pki.publish_crl()
        return {"issuing_crl_number": published.issuing_crl_number}

    @router.post("/{seal_id}/change")
    def change(seal_id: str, body: ChangeIn, principal: Admin, services: ServicesDep) -> JsonObject:
        """Re-key or rename (变更): a new certificate; the old one is revoked as superseded."""
        from keystore import KeyAlgorithm

        if body.new_name:
            check_cert_name(body.new_name, "new_name")
        registry = services.need_seal_registry()
        _scoped_seal(registry, seal_id, principal)
        event = registry.change(
            seal_id,
            actor=_actor(principal),
            approved_by=body.approved_by,
            requested_by=body.requested_by,
            reason=body.reason,
            new_name=body.new_name,
            algorithm=KeyAlgorithm(body.algorithm) if body.algorithm else None,
        )
        return {"event": event_view(event), "seal": seal_view(registry.get(seal_id))}

    return router
