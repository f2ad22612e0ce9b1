"""Console login through the configured OpenID Provider: ``/ui/login/oidc`` and its callback.

Both routes are public (they are the way in). Success opens the same console session (cookie + CSRF token)
as the password login. Every failure has a stable code: a browser gets the login page with the reason and
the code; a client that asks for ``application/json`` gets the usual error body. The state cookie is
cleared by every callback answer. Nothing here is in the OpenAPI document (the console is not an API).
"""

from __future__ import annotations

import logging
from html import escape
from typing import TYPE_CHECKING

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api._accounts import AccountChange, account_for_oidc, open_session, record_account_change
from api._authz import ServicesDep, public
from api._cookies import set_cookie, set_session_cookie
from api._errors import error_body, status_for
from api._oidc import (
    STATE_COOKIE,
    STATE_COOKIE_PATH,
    STATE_TTL_S,
    OidcClient,
    OidcConfig,
    VerifiedIdentity,
    describe,
)
from api.console._pages import LANDING
from api.console._render import page
from core.db import transaction
from core.errors import NotFound, PermissionDenied, SealServiceError
from core.settings import Settings

if TYPE_CHECKING:
    from api._accounts import Account
    from api._services import Services

log = logging.getLogger("yizhang.api.oidc")

OIDC_DISABLED = NotFound("OIDC_DISABLED", "OpenID Connect login is not configured", "未配置统一身份认证登录")


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _failure(request: Request, exc: SealServiceError) -> Response:
    status = status_for(exc)
    log.warning("oidc login refused", extra={"code": exc.code, "status": status})
    response: Response
    if _wants_json(request):
        response = JSONResponse(error_body(exc, request), status_code=status)
    else:
        response = page(
            request,
            "login.html",
            None,
            status_code=status,
            message=describe(exc),
            is_error=True,
            oidc_enabled=True,
            error_code=exc.code,
        )
    response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
    return response


def account_for(services: Services, identity: VerifiedIdentity) -> tuple[Account, str]:
    """The enabled local account the identity opens (bound by issuer and subject, see
    :func:`api._accounts.account_for_oidc`), and a new console session cookie for it."""
    issuer = str(identity.claims["iss"])  # verified equal to the configured issuer
    with transaction(services.sessions) as s:
        try:
            account, bound = account_for_oidc(s, issuer, identity.subject, identity.username.lower())
        except NotFound:
            raise PermissionDenied(
                "OIDC_ACCOUNT_UNKNOWN",
                "the identity provider knows you but there is no account here; ask the county administrator",
                "统一身份认证已通过，但本系统中没有对应账号，请联系县行政审批局管理员开通",
            ) from None
        if account.disabled:
            raise PermissionDenied(
                "OIDC_ACCOUNT_DISABLED", "this account is disabled", "该账号已停用，请联系县行政审批局管理员"
            )
        if bound:
            ledger = services.ledger
            if ledger is not None:
                record_account_change(
                    s, ledger, account, AccountChange.OIDC_BOUND, actor=account.username, via="oidc"
                )
            log.info("oidc identity bound", extra={"account_id": account.account_id})
        cookie, _csrf = open_session(s, account)
    return account, cookie


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/ui", tags=["console"], include_in_schema=False)
    config = OidcConfig.from_settings(settings)
    client = OidcClient(config) if config is not None else None

    @router.get("/login/oidc", dependencies=[Depends(public(rate_limited=True))])
    async def oidc_start(request: Request) -> Response:
        """Redirect to the provider with a new state, nonce and PKCE challenge."""
        if client is None:
            return _failure(request, OIDC_DISABLED)
        try:
            started = await anyio.to_thread.run_sync(client.start_login)
        except SealServiceError as exc:
            return _failure(request, exc)
        response = RedirectResponse(started.authorize_url, status_code=303)
        # SameSite=Lax, not Strict: the callback is a top-level navigation from the provider's site.
        set_cookie(
            response,
            settings,
            STATE_COOKIE,
            started.cookie,
            max_age=STATE_TTL_S,
            path=STATE_COOKIE_PATH,
            samesite="lax",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get("/login/oidc/callback", dependencies=[Depends(public(rate_limited=True))])
    async def oidc_callback(request: Request, services: ServicesDep) -> Response:
        """The provider's answer: verify it, map it to a local account, open a console session."""
        if client is None:
            return _failure(request, OIDC_DISABLED)
        params = {k: v for k, v in request.query_params.items() if k in _CALLBACK_PARAMS}
        cookie = request.cookies.get(STATE_COOKIE)

        def run() -> tuple[Account, str]:
            identity = client.finish_login(cookie=cookie, params=params)
            return account_for(services, identity)

        try:
            account, session_cookie = await anyio.to_thread.run_sync(run)
        except SealServiceError as exc:
            return _failure(request, exc)
        request.state.account_id = account.account_id
        log.info("console login", extra={"method": "oidc", "account_id": account.account_id})
        target = LANDING.get(account.role, "/ui/")
        if _wants_json(request):
            response: Response = JSONResponse(
                {"account_id": account.account_id, "username": account.username, "location": target}
            )
        else:
            # A page that moves on by itself, not a redirect: the session cookie is SameSite=Strict, and a
            # redirect chain that began on the provider's site would not carry it to the landing page.
            response = HTMLResponse(
                "<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
                f'<meta http-equiv="refresh" content="0;url={escape(target)}"><title>登录成功 · 一章</title>'
                f'</head><body><p>登录成功，正在进入…… <a id="continue" href="{escape(target)}">继续</a></p>'
                "</body></html>"
            )
            response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
        set_session_cookie(response, settings, session_cookie)
        return response

    return router


_CALLBACK_PARAMS = frozenset({"code", "state", "error", "iss"})
