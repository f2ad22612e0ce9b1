"""Console login/logout and the caller's own account and tokens.

A person changes their own password and makes and revokes their own tokens here; each act is a ledger entry
(``ACCOUNT_CHANGED``). A password change ends every session and token of the account, this one included.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Request, Response

from api._accounts import (
    AccountChange,
    check_password,
    close_session,
    get_account,
    issue_token,
    list_tokens,
    open_session,
    record_account_change,
    resolve_session,
    revoke_token,
    set_password,
)
from api._accounts import get_token as get_token_row
from api._authz import Permission, Principal, ServicesDep, public, require
from api._cookies import SESSION_COOKIE, clear_session_cookie, set_session_cookie
from api._json import JsonValue
from api._login_guard import client_address, guarded
from api._schemas import AccountOut, IssuedTokenOut, LoginIn, PasswordIn, SessionOut, TokenIn, TokenOut
from core.db import transaction
from core.errors import NotFound
from core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from api._accounts import Account, ConsoleSession
    from ledger import Ledger


Me = Annotated[Principal, Depends(require(Permission.SELF))]


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["auth"])

    @router.post("/auth/login", dependencies=[Depends(public(rate_limited=True))])
    def login(body: LoginIn, request: Request, services: ServicesDep, response: Response) -> SessionOut:
        """Username and password → a console session cookie (HttpOnly, SameSite=Strict) and its CSRF token."""

        def attempt() -> tuple[Account, str, str, ConsoleSession]:
            with transaction(services.sessions) as s:
                account = check_password(s, body.username, body.password)
                cookie, csrf = open_session(s, account)
                return account, cookie, csrf, resolve_session(s, cookie)

        # Backoff per account name and per address (429 LOGIN_THROTTLED + Retry-After), issue 21 finding 7.
        account, cookie, csrf, console = guarded(
            services.sessions, body.username, client_address(request), attempt
        )
        request.state.account_id = account.account_id
        set_session_cookie(response, settings, cookie)
        return SessionOut(account=AccountOut.of(account), csrf_token=csrf, expires_at=console.expires_at)

    @router.post("/auth/logout", status_code=204, dependencies=[Depends(public())])
    def logout(request: Request, services: ServicesDep, response: Response) -> None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            with transaction(services.sessions) as s:
                close_session(s, cookie)
        clear_session_cookie(response)

    @router.get("/me")
    def me(principal: Me) -> AccountOut:
        return AccountOut.of(principal.account)

    @router.post("/me/password", status_code=204)
    def change_password(body: PasswordIn, principal: Me, request: Request, services: ServicesDep) -> None:
        """The person's own change (also the one a reset asks for): every session and token of the account
        ends, so the caller logs in again with the new password and makes new tokens."""
        ledger = services.need_ledger()

        def attempt() -> None:
            with transaction(services.sessions) as s:
                check_password(s, principal.account.username, body.current_password)
                set_password(s, principal.account.account_id, body.new_password)
                _record(s, ledger, principal, AccountChange.PASSWORD_CHANGED)

        # The current password is guessed no faster here than at the login.
        guarded(services.sessions, principal.account.username, client_address(request), attempt)

    @router.get("/me/tokens")
    def my_tokens(principal: Me, services: ServicesDep) -> list[TokenOut]:
        with transaction(services.sessions) as s:
            return [TokenOut.of(t) for t in list_tokens(s, principal.account.account_id)]

    @router.post("/me/tokens", status_code=201)
    def new_token(body: TokenIn, principal: Me, services: ServicesDep) -> IssuedTokenOut:
        ledger = services.need_ledger()
        with transaction(services.sessions) as s:
            issued = issue_token(
                s, principal.account.account_id, name=body.name, ttl=timedelta(days=body.ttl_days)
            )
            _record(s, ledger, principal, AccountChange.TOKEN_ISSUED, token_id=issued.token.token_id)
        return IssuedTokenOut(**TokenOut.of(issued.token).model_dump(), token=issued.secret)

    @router.delete("/me/tokens/{token_id}")
    def revoke_my_token(token_id: str, principal: Me, services: ServicesDep) -> TokenOut:
        ledger = services.need_ledger()
        with transaction(services.sessions) as s:
            token = get_token_row(s, token_id)
            if token.account_id != principal.account.account_id:
                raise NotFound("TOKEN_NOT_FOUND", "no such token", "令牌不存在")
            get_account(s, token.account_id)
            revoked = revoke_token(s, token_id)
            if token.revoked_at is None:
                _record(s, ledger, principal, AccountChange.TOKEN_REVOKED, token_id=token_id)
            return TokenOut.of(revoked)

    return router


def _record(
    s: Session, ledger: Ledger, principal: Principal, change: AccountChange, **details: JsonValue
) -> None:
    from api.routes._accounts import via_of

    record_account_change(
        s,
        ledger,
        principal.account,
        change,
        actor=principal.account.username,
        via=via_of(principal),
        details=details,
    )
