"""The console's authorisation dependency: session cookie, form CSRF token, role, rate limit; deny by default.

It carries the same access marker as :func:`api._authz.require` (the route-walk test finds it), checks the
same session table (:func:`api._accounts.resolve_session`) and the same role table
(:data:`api._authz.ROLE_PERMISSIONS`). What differs is the answer a browser gets: no session → a redirect to
the login page; a role without the permission or a form without the CSRF token → an HTML page with status
403 and the API's code for the same refusal (``ROLE_FORBIDDEN``, ``CSRF_FAILED``). The handler receives a
:class:`Gate` and must return ``gate.refusal`` when it is set; only an allowed gate carries a principal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from api._accounts import csrf_matches, resolve_session
from api._authz import (
    ROLE_PERMISSIONS,
    UNSAFE_METHODS,
    Permission,
    Principal,
    ServicesDep,
    _check_rate,
    inherited_townships,
)
from api._cookies import SESSION_COOKIE, clear_session_cookie
from core.db import transaction
from core.errors import SealServiceError

if TYPE_CHECKING:
    from api._accounts import ConsoleSession
    from api._services import Services

LOGIN_PATH = "/ui/login"
PASSWORD_PATH = "/ui/account/password"  # noqa: S105 - a path


@dataclass(frozen=True)
class Gate:
    principal: Principal | None
    csrf_token: str = ""
    refusal: Response | None = None

    @property
    def who(self) -> Principal:
        if self.principal is None:  # a handler that forgot to return the refusal must not go on
            raise RuntimeError("console gate refused; return gate.refusal")
        return self.principal


def console_gate(
    *permissions: Permission, refuse: Callable[[Request, int, str, str], Response]
) -> Callable[[Request, Services], Awaitable[Gate]]:
    if not permissions:
        raise ValueError("console_gate() needs at least one permission")
    needed = frozenset(permissions)

    async def dependency(request: Request, services: ServicesDep) -> Gate:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return Gate(None, refusal=RedirectResponse(LOGIN_PATH, status_code=303))

        def load() -> ConsoleSession:
            with transaction(services.sessions) as s:
                return resolve_session(s, cookie)

        try:
            console = await anyio.to_thread.run_sync(load)
        except SealServiceError:  # expired, closed or unknown session
            response = RedirectResponse(LOGIN_PATH + "?expired=1", status_code=303)
            clear_session_cookie(response)
            return Gate(None, refusal=response)
        if request.method in UNSAFE_METHODS:
            form = await request.form()
            presented = form.get("csrf_token")
            if not csrf_matches(console.csrf_token, presented if isinstance(presented, str) else None):
                message = "表单校验失败（CSRF），请刷新页面后重试。"
                return Gate(None, refusal=refuse(request, 403, message, "CSRF_FAILED"))
        principal = Principal(console.account, "session", inherited_townships(services, console.account))
        request.state.account_id = console.account.account_id
        if console.account.must_change_password and needed != {Permission.SELF}:
            # as api._authz.require: a reset password opens nothing until the person changes it. A page is
            # sent to the console's own form; a form post is refused with the same code and a pointer to it.
            if request.method not in UNSAFE_METHODS:
                return Gate(None, refusal=RedirectResponse(PASSWORD_PATH, status_code=303))
            message = "密码已由管理员重置，请先在“修改密码”页面（/ui/account/password）修改密码。"
            return Gate(None, refusal=refuse(request, 403, message, "PASSWORD_CHANGE_REQUIRED"))
        if not needed <= ROLE_PERMISSIONS.get(principal.role, frozenset()):
            # the API's code for the same refusal (api._authz.require)
            return Gate(None, refusal=refuse(request, 403, "当前角色无权访问此页面。", "ROLE_FORBIDDEN"))
        _check_rate(request.app.state.account_bucket, console.account.account_id)
        request.state.principal = principal
        return Gate(principal, console.csrf_token)

    dependency._yizhang_access = ("require", needed)  # type: ignore[attr-defined]
    dependency.__name__ = "console_" + "_".join(sorted(p.value.lower() for p in needed))
    return dependency
