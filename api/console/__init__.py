"""The web console (server-rendered Jinja2, Chinese) and the public verification page.

``router_for(settings)`` returns one router with the console under ``/ui/`` (login by username and password,
or through the configured OpenID Provider; one landing page per role: clerk, principal, department officer,
auditor, bureau/custodian) and the public ``/verify`` page. Pages call the same library functions as the HTTP
API; nothing here decides a rule.
"""

from __future__ import annotations

from fastapi import APIRouter

from core.settings import Settings

__all__ = ["router_for"]


def router_for(settings: Settings) -> APIRouter:
    from api.console import _attest_page, _ledger_page, _oidc_login, _pages, _verify_page

    router = APIRouter()
    router.include_router(_pages.router_for(settings))
    router.include_router(_oidc_login.router_for(settings))
    router.include_router(_verify_page.router_for(settings))
    router.include_router(_attest_page.router_for(settings))
    router.include_router(_ledger_page.router_for(settings))
    return router
