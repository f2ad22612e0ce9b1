"""Authentication and authorisation: one dependency every route declares, deny by default.

A route says who may call it with exactly one of::

    Depends(require(Permission.SEALS_READ))   # an account whose role holds the permission
    Depends(public())                          # anyone (CRLs, CA certificates, proofs, TSA, verify)

``tests/integration/api/test_routes_guarded.py`` walks ``app.routes`` and fails on a route with neither,
so a new endpoint cannot escape. Organisation checks (a 兴江乡 clerk never sees 梅窖镇's things) are made
in the handler with :meth:`Principal.ensure_scope` once the resource's organisation is known.

Credentials: ``Authorization: Bearer yz_…`` (API tokens), or the console's session cookie, which on any
unsafe method also needs the session's CSRF token in ``X-CSRF-Token`` (synchronizer token: the browser
cannot forge a header on a cross-site request and the token is not in any cookie).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api._accounts import (
    Account,
    authenticate_token,
    csrf_matches,
    password_change_required,
    resolve_session,
)
from api._cookies import SESSION_COOKIE
from api._errors import RateLimited, Unauthenticated
from api._services import Services
from core.db import transaction
from core.errors import PermissionDenied
from policies import ROLE_ORG_KIND, OrgKind, Role

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from starlette.routing import BaseRoute

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="API token (yz_…) from /v1/me/tokens or `yizhang account token`",
)
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Permission(StrEnum):
    SELF = "SELF"  # read one's own account, manage one's own tokens
    ACCOUNTS_READ = "ACCOUNTS_READ"
    ACCOUNTS_ADMIN = "ACCOUNTS_ADMIN"
    SEALS_READ = "SEALS_READ"
    SEALS_ADMIN = "SEALS_ADMIN"  # issue, activate, change, cancel, retire
    SEALS_CUSTODY = "SEALS_CUSTODY"  # suspend / resume as the custodian
    POLICY_READ = "POLICY_READ"
    POLICY_ADMIN = "POLICY_ADMIN"  # catalogs and township powers
    AGREEMENTS_ADMIN = "AGREEMENTS_ADMIN"  # No. 2 seal agreements (departments: their own)
    LEDGER_READ = "LEDGER_READ"  # audit, entries, usage ledger
    LEDGER_CHECKPOINT = "LEDGER_CHECKPOINT"
    SIGNING_SUBMIT = "SIGNING_SUBMIT"
    SIGNING_APPROVE = "SIGNING_APPROVE"
    SIGNING_READ = "SIGNING_READ"
    DECISION_LIFECYCLE = "DECISION_LIFECYCLE"  # 变更、撤回、撤销、注销
    ATTEST = "ATTEST"  # county attestation for out-of-county recognition
    REPORTS_READ = "REPORTS_READ"
    SUPERVISION_READ = "SUPERVISION_READ"
    SUPERVISION_ADMIN = "SUPERVISION_ADMIN"  # register / remove the supervision feed's webhooks


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.COUNTY_ADMIN: frozenset(
        {
            P.SELF,
            P.ACCOUNTS_READ,
            P.ACCOUNTS_ADMIN,
            P.SEALS_READ,
            P.SEALS_ADMIN,
            P.SEALS_CUSTODY,
            P.POLICY_READ,
            P.POLICY_ADMIN,
            P.AGREEMENTS_ADMIN,
            P.LEDGER_READ,
            P.LEDGER_CHECKPOINT,
            P.SIGNING_READ,
            P.REPORTS_READ,
            P.SUPERVISION_READ,
            P.SUPERVISION_ADMIN,
        }
    ),
    Role.DEPARTMENT_OFFICER: frozenset(
        {
            P.SELF,
            P.SEALS_READ,
            P.POLICY_READ,
            P.AGREEMENTS_ADMIN,
            P.SIGNING_READ,
            P.DECISION_LIFECYCLE,
            P.ATTEST,
            P.REPORTS_READ,
            P.SUPERVISION_READ,
            P.SUPERVISION_ADMIN,
        }
    ),
    Role.TOWNSHIP_CLERK: frozenset({P.SELF, P.SEALS_READ, P.POLICY_READ, P.SIGNING_SUBMIT, P.SIGNING_READ}),
    Role.TOWNSHIP_PRINCIPAL: frozenset(
        {
            P.SELF,
            P.SEALS_READ,
            P.POLICY_READ,
            P.SIGNING_READ,
            P.SIGNING_APPROVE,
            P.DECISION_LIFECYCLE,
            P.REPORTS_READ,
        }
    ),
    Role.SEAL_CUSTODIAN: frozenset({P.SELF, P.SEALS_READ, P.SEALS_CUSTODY, P.SIGNING_READ}),
    Role.AUDITOR: frozenset(
        {
            P.SELF,
            P.ACCOUNTS_READ,
            P.SEALS_READ,
            P.POLICY_READ,
            P.LEDGER_READ,
            P.SIGNING_READ,
            P.REPORTS_READ,
            P.SUPERVISION_READ,
        }
    ),
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    account: Account
    via: str  # "token" | "session"
    # The townships merged into the caller's township (issue 22, leak 7): their issued decisions are now the
    # successor's to read and change. Read when the caller is authenticated, from the policy store's
    # short-lived cache (a scope check may run inside a transaction, where no other may be opened).
    inherited: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def role(self) -> Role:
        return self.account.role

    @property
    def org_code(self) -> str:
        return self.account.org_code

    @property
    def county_wide(self) -> bool:
        return ROLE_ORG_KIND[self.role] is OrgKind.COUNTY

    def may(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())

    def in_scope(
        self,
        *,
        township_code: str | None = None,
        department_code: str | None = None,
        org_code: str | None = None,
    ) -> bool:
        """Whether a resource owned by these organisations is visible to the caller (fail closed)."""
        if self.county_wide:
            return True
        kind = ROLE_ORG_KIND[self.role]
        mine = {org_code}
        mine.add(department_code if kind is OrgKind.DEPARTMENT else township_code)
        mine.discard(None)
        if self.org_code in mine:
            return True
        return bool(township_code and kind is OrgKind.TOWNSHIP and township_code in self.inherited)

    def ensure_scope(
        self,
        *,
        township_code: str | None = None,
        department_code: str | None = None,
        org_code: str | None = None,
    ) -> None:
        if not self.in_scope(township_code=township_code, department_code=department_code, org_code=org_code):
            raise PermissionDenied(
                "OTHER_ORGANISATION",
                "this belongs to another organisation",
                "无权访问其他单位的资源",
            )


class TokenBucket:
    """A per-key token bucket in process memory.

    Each uvicorn worker keeps its own buckets, so with N workers a client can reach up to N× the rate; the
    bound is against runaway scripts and stuck clients, not a distributed quota (put one at the proxy).
    """

    def __init__(self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Take one token; returns 0 on success, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, last = self._state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._state[key] = (tokens - 1.0, now)
                if len(self._state) > 100_000:  # bounded memory under an address sweep
                    self._state.clear()
                return 0.0
            self._state[key] = (tokens, now)
            return (1.0 - tokens) / self.rate if self.rate > 0 else 60.0


def _check_rate(bucket: TokenBucket, key: str) -> None:
    wait = bucket.take(key)
    if wait > 0:
        retry = max(1, int(wait + 0.999))
        raise RateLimited(
            "RATE_LIMITED",
            "too many requests, slow down",
            "请求过于频繁，请稍后再试",
            details={"retry_after_s": retry},
        )


def services_of(request: Request) -> Services:
    """The app's :class:`Services`, built once in its lifespan (``api.app``)."""
    services: Services = request.app.state.services
    return services


async def _services_dependency(request: Request) -> Services:
    """:func:`services_of` as a dependency: ``async``, so FastAPI reads the attribute on the event loop
    instead of taking a worker thread for it (a sync dependency runs in the threadpool)."""
    return services_of(request)


#: The composition root, injected: ``services: ServicesDep`` in a route's parameters.
ServicesDep = Annotated[Services, Depends(_services_dependency)]


def authenticate(request: Request, services: Services) -> Principal:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("TOKEN_INVALID", "use Authorization: Bearer <token>", "请使用 Bearer 令牌")
        account = authenticate_token(services.engine, secret.strip())
        return Principal(account, "token", inherited_townships(services, account))
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with transaction(services.sessions) as s:
            console = resolve_session(s, cookie)
        if request.method in UNSAFE_METHODS and not csrf_matches(
            console.csrf_token, request.headers.get(CSRF_HEADER)
        ):
            raise PermissionDenied("CSRF_FAILED", "missing or wrong CSRF token", "CSRF 校验失败")
        return Principal(console.account, "session", inherited_townships(services, console.account))
    raise Unauthenticated("UNAUTHENTICATED", "authentication required", "需要登录")


def inherited_townships(services: Services, account: Account) -> frozenset[str]:
    """The townships merged into the account's township (issue 22, leak 7); none for other roles."""
    store = services.policy_store
    if store is None or ROLE_ORG_KIND[account.role] is not OrgKind.TOWNSHIP:
        return frozenset()
    return frozenset(store.predecessors(account.org_code))


def require(*permissions: Permission) -> Callable[[Request, Services], Principal]:
    """The authorisation dependency: authenticated, role holds every permission, within the rate limit."""
    if not permissions:
        raise ValueError("require() needs at least one permission; use public() for open routes")
    needed = frozenset(permissions)

    def dependency(
        request: Request,
        services: ServicesDep,
        _bearer: HTTPAuthorizationCredentials | None = Depends(BEARER),
    ) -> Principal:
        # ``_bearer`` only declares the scheme in the OpenAPI document; ``authenticate`` reads the header
        # itself (and falls back to the console session).
        principal = authenticate(request, services)
        request.state.account_id = principal.account.account_id
        if principal.account.must_change_password and not password_change_allows(needed, request):
            raise password_change_required()
        if not needed <= ROLE_PERMISSIONS.get(principal.role, frozenset()):
            raise PermissionDenied(
                "ROLE_FORBIDDEN",
                f"role {principal.role.value} may not do this",
                f"角色 {principal.role.value} 无此权限",
                details={"needed": sorted(p.value for p in needed)},
            )
        _check_rate(request.app.state.account_bucket, principal.account.account_id)
        request.state.principal = principal
        return principal

    dependency._yizhang_access = ("require", needed)  # type: ignore[attr-defined]
    dependency.__name__ = "require_" + "_".join(sorted(p.value.lower() for p in needed))
    return dependency


#: What an account whose password an administrator reset may still do: read itself and change the password.
PASSWORD_CHANGE_PATH = "/v1/me/password"  # noqa: S105 - a path


def password_change_allows(needed: frozenset[Permission], request: Request) -> bool:
    """Whether a request is open to an account that must change its password first (issue 21: whoever
    reset it learnt it; until the person changes it, it opens nothing but the change itself)."""
    if needed != {Permission.SELF}:
        return False
    return request.method not in UNSAFE_METHODS or request.url.path == PASSWORD_CHANGE_PATH


def public(*, rate_limited: bool = False) -> Callable[[Request], None]:
    """Marks a route as open to anyone; expensive ones are rate-limited per client address."""

    def dependency(request: Request) -> None:
        if rate_limited:
            client = request.client.host if request.client else "unknown"
            _check_rate(request.app.state.public_bucket, client)

    dependency._yizhang_access = ("public", frozenset())  # type: ignore[attr-defined]
    dependency.__name__ = "public_rate_limited" if rate_limited else "public"
    return dependency


def access_of(route: BaseRoute) -> tuple[str, frozenset[Permission]] | None:
    """The access marker a route declares (searched through its dependency tree), or None."""
    dependant = getattr(route, "dependant", None)
    stack = [dependant] if dependant is not None else []
    while stack:
        dep = stack.pop()
        marker = getattr(dep.call, "_yizhang_access", None) if dep.call is not None else None
        if marker is not None:
            return marker  # type: ignore[no-any-return]
        stack.extend(dep.dependencies)
    return None


def iter_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route of an app, through included routers (FastAPI keeps those as nested branches)."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            yield from iter_routes(original.routes)
        else:
            yield route
