"""Webhook subscriptions of the supervision feed: a department registers its receiver; the county any."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api._authz import Permission, Principal, ServicesDep, require
from api._json import JsonObject
from api._webhooks import create_webhook, disable_webhook, get_webhook, list_webhooks, webhook_view
from core.settings import Settings

Supervisor = Annotated[Principal, Depends(require(Permission.SUPERVISION_READ))]
# Registering and removing a receiver are writes: not for the auditor, who reads (issue 21 finding 2).
SupervisionAdmin = Annotated[Principal, Depends(require(Permission.SUPERVISION_ADMIN))]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(min_length=8, max_length=500)
    supervising_code: str | None = Field(default=None, max_length=64)
    from_start: bool = False


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/v1/webhooks", tags=["supervision"])

    @router.post("", status_code=201)
    def register(body: WebhookIn, principal: SupervisionAdmin, services: ServicesDep) -> JsonObject:
        """Register a receiver; the answer holds the HMAC secret, shown this once."""
        code = body.supervising_code if principal.county_wide else principal.org_code
        principal.ensure_scope(department_code=code, org_code=code)
        hook, secret = create_webhook(
            services,
            url=body.url,
            supervising_code=code,
            created_by=principal.account.username,
            from_start=body.from_start,
        )
        return {**webhook_view(hook), "secret": secret}

    @router.get("")
    def webhooks(principal: Supervisor, services: ServicesDep) -> list[JsonObject]:
        code = None if principal.county_wide else principal.org_code
        return [webhook_view(w) for w in list_webhooks(services, code)]

    @router.delete("/{webhook_id}")
    def remove(webhook_id: str, principal: SupervisionAdmin, services: ServicesDep) -> JsonObject:
        hook = get_webhook(services, webhook_id)
        principal.ensure_scope(department_code=hook.supervising_code, org_code=hook.supervising_code)
        return webhook_view(disable_webhook(services, webhook_id))

    return router
