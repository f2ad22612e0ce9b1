"""Operations: liveness, readiness, metrics."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from api._authz import ServicesDep, public
from api._json import JsonObject
from api._services import Services, token_configured
from core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

READY_TIMEOUT_S = 2.0


def _db_ok(services: Services) -> None:
    with services.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _token_ok(services: Services) -> None:
    ks = services.need_keystore()
    # A find-objects call: it reaches the token through a pooled session and raises a KeystoreError when the
    # token is gone, locked or the module fails.
    ks.has_key("__yizhang_readyz__")


async def _check(fn: Callable[[Services], object], services: Services, timeout: float) -> str:
    try:
        await asyncio.wait_for(asyncio.to_thread(fn, services), timeout)
        return "ok"
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # noqa: BLE001 - readiness reports the failure by code, never raises
        code = getattr(exc, "code", None)
        if code in {"KEY_NOT_FOUND", "NOT_FOUND"}:  # the token answered: reachable
            return "ok"
        return str(code or type(exc).__name__)


async def _ltv_check(services: Services, timeout: float) -> JsonObject | None:
    from api._ltv import health

    try:
        h = await asyncio.wait_for(asyncio.to_thread(health, services), timeout)
    except Exception:  # noqa: BLE001 - no sealing tables, or a slow database: the database check says so
        return None
    result: JsonObject = h.to_dict()
    return result


def _metrics_token(settings: Settings) -> bytes | None:
    """The scraper's token, read once from its source (``env:VAR`` / ``file:/path``); None: not configured."""
    from core.settings import read_secret

    if not settings.metrics_token_source:
        return None
    token = read_secret(settings.metrics_token_source).strip()
    return token.encode() if token else None


def _check_metrics_token(expected: bytes | None, request: Request) -> None:
    """404 while no metrics token is configured; 401 for a missing or wrong bearer token."""
    import hmac

    from api._errors import Unauthenticated
    from core.errors import NotFound

    if expected is None:
        raise NotFound("NOT_FOUND", "not found", "未找到")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise Unauthenticated(
            "METRICS_TOKEN_INVALID", "metrics need the scraper's bearer token", "需要监控令牌"
        )


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", dependencies=[Depends(public())])
    def healthz() -> dict[str, str]:
        """The process is up (no dependency is checked)."""
        return {"status": "ok"}

    @router.get("/readyz", dependencies=[Depends(public())])
    async def readyz(services: ServicesDep) -> JSONResponse:
        """Ready to serve: the database answers, and the token too when one is configured (2 s bound).

        ``checks.token`` is the keystore's code while the token is not usable: the code it failed to open
        with at start (``TOKEN_NOT_FOUND``, ``TOKEN_PIN_INCORRECT`` ...; the token loop keeps trying), or
        ``TOKEN_UNAVAILABLE`` while a token that failed under the running service is being re-opened."""
        timeout = min(READY_TIMEOUT_S, services.settings.token_timeout_s)
        checks = {"database": await _check(_db_ok, services, timeout)}
        if token_configured(services.settings):
            if services.keystore is None:
                checks["token"] = services.problems.get("keystore", "not_opened")
            else:
                checks["token"] = await _check(_token_ok, services, timeout)
        ok = all(v == "ok" for v in checks.values())
        body: JsonObject = {"status": "ok" if ok else "unavailable", "checks": checks}
        if token_configured(services.settings):
            # Long-term validation: a warning, not unreadiness (it is reported a year before anything
            # expires; taking the service out of rotation would not help). api/_ltv.py
            ltv = await _ltv_check(services, timeout)
            if ltv is not None:
                body["ltv"] = ltv
                if ltv["status"] != "ok":
                    body["warnings"] = {"ltv": ltv["status"]}
        return JSONResponse(body, 200 if ok else 503)

    metrics_token = _metrics_token(settings)

    @router.get("/metrics", dependencies=[Depends(public())], include_in_schema=False)
    async def metrics(request: Request, services: ServicesDep) -> Response:
        """Prometheus text format, for the scraper holding the token of ``YIZHANG_METRICS_TOKEN_SOURCE``
        (``Authorization: Bearer``); without the setting nobody gets it (404, as if there were no such
        page: issue 21 finding 14; the counters name routes, refusal codes and the token's health)."""
        from prometheus_client import CONTENT_TYPE_LATEST

        _check_metrics_token(metrics_token, request)

        from api._ltv import metrics_text

        ltv = await asyncio.to_thread(metrics_text, services)
        return Response(request.app.state.metrics.render() + ltv, media_type=CONTENT_TYPE_LATEST)

    return router
