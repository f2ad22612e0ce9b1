"""Service errors → HTTP: one status table, one JSON body shape, never a stack trace.

Every error a client sees has the body ``{code, message, message_en, message_zh, family, request_id, ...}``.
Policy denials add ``reasons`` (every reason the decision gave). Validation errors add ``errors`` without the
offending input values (they may hold a password or personal data).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from api._json import JsonObject
from core.db import database_unavailable
from core.errors import (
    BadInput,
    Conflict,
    KeystoreError,
    LedgerIntegrityError,
    NotFound,
    PermissionDenied,
    PolicyDenied,
    SealServiceError,
    SigningError,
    Unavailable,
    VerificationError,
)

log = logging.getLogger("yizhang.api")


class Unauthenticated(SealServiceError):
    """No credentials, or credentials that are unknown, expired or revoked."""

    family = "unauthenticated"
    default_code = "UNAUTHENTICATED"


class RateLimited(SealServiceError):
    family = "rate_limited"
    default_code = "RATE_LIMITED"


class PayloadTooLarge(SealServiceError):
    family = "payload_too_large"
    default_code = "PAYLOAD_TOO_LARGE"


# The one table. Order matters: subclasses before their parents (NotFound is a BadInput).
STATUS_TABLE: tuple[tuple[type[SealServiceError], int], ...] = (
    (NotFound, 404),
    (BadInput, 400),
    (Conflict, 409),
    (PolicyDenied, 403),
    (PermissionDenied, 403),
    (Unauthenticated, 401),
    (RateLimited, 429),
    (PayloadTooLarge, 413),
    (KeystoreError, 503),
    (Unavailable, 503),
    (VerificationError, 422),
    (SigningError, 500),
    (LedgerIntegrityError, 500),
)

_HTTP_CODES = {
    400: ("BAD_REQUEST", "bad request", "请求无效"),
    401: ("UNAUTHENTICATED", "authentication required", "需要登录"),
    403: ("FORBIDDEN", "forbidden", "无权访问"),
    404: ("NOT_FOUND", "not found", "未找到"),
    405: ("METHOD_NOT_ALLOWED", "method not allowed", "不支持该请求方法"),
    406: ("NOT_ACCEPTABLE", "not acceptable", "不可接受的格式"),
    413: ("PAYLOAD_TOO_LARGE", "request body too large", "请求内容过大"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "unsupported media type", "不支持的内容类型"),
    422: ("VALIDATION_FAILED", "request validation failed", "请求参数校验失败"),
    429: ("RATE_LIMITED", "too many requests", "请求过于频繁"),
}


class ErrorOut(BaseModel):
    """The JSON error body of every 4xx/5xx answer (documented in the OpenAPI document)."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    message_en: str
    message_zh: str
    family: str
    request_id: str | None = None
    #: Policy denials: every reason the decision gave.
    reasons: list[JsonObject] | None = None
    #: Validation errors: location, type and message of each (never the submitted value).
    errors: list[JsonObject] | None = None


_DOCUMENTED = {
    400: "Bad input (stable code in the body)",
    401: "No credentials, or unknown, expired or revoked ones",
    403: "Forbidden: role, organisation, CSRF or policy (with every reason)",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    422: "Request validation failed",
    429: "Rate limited (Retry-After)",
    503: "A service is not configured or not reachable (token, database)",
}
#: Every route's error answers, for ``include_router(..., responses=ERROR_RESPONSES)``.
ERROR_RESPONSES: dict[int | str, JsonObject] = {
    status: {"model": ErrorOut, "description": text} for status, text in _DOCUMENTED.items()
}


def status_for(exc: SealServiceError) -> int:
    for cls, status in STATUS_TABLE:
        if isinstance(exc, cls):
            return status
    return 500


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_body(exc: SealServiceError, request: Request) -> JsonObject:
    body = exc.to_dict()
    if isinstance(exc, PolicyDenied):
        body["reasons"] = list(exc.details.get("reasons", []))
    body["request_id"] = request_id_of(request)
    return body


def _json(status: int, body: JsonObject, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SealServiceError)
    status = status_for(exc)
    if status >= 500:
        log.error("service error", extra={"code": exc.code, "status": status}, exc_info=exc)
    headers = None
    if isinstance(exc, RateLimited) and "retry_after_s" in exc.details:
        headers = {"Retry-After": str(exc.details["retry_after_s"])}
    elif isinstance(exc, Unavailable):  # token, TSA, database, an expired number reservation: retry soon
        headers = {"Retry-After": str(exc.details.get("retry_after_s", 2))}
    return _json(status, error_body(exc, request), headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only the location, type and message: never the submitted value (``input``) nor ``ctx``.
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type"), "msg": e.get("msg")}
        for e in exc.errors()
    ]
    err = BadInput("VALIDATION_FAILED", "request validation failed", "请求参数校验失败")
    body = error_body(err, request)
    body["errors"] = errors
    return _json(422, body)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, en, zh = _HTTP_CODES.get(exc.status_code, ("HTTP_ERROR", "request failed", "请求失败"))
    err = SealServiceError(code, en, zh)
    err.family = "http"
    return _json(exc.status_code, error_body(err, request), dict(exc.headers or {}) or None)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """The database is gone or busy (``core.db.database_unavailable``: server restarting, connection
    dropped, pool exhausted, SQLite locked): a deliberate 503 the client may retry with the same
    idempotency key, never a 500. The transaction that met it was rolled back, so nothing is half-written.
    Every other database error is unexpected."""
    if not database_unavailable(exc):
        return await _unexpected(request, exc)
    log.warning("database unavailable", extra={"exc_type": type(exc).__name__})
    err = Unavailable(
        "DATABASE_UNAVAILABLE",
        "the database is not reachable; retry shortly",
        "数据库暂不可用，请稍后重试",
    )
    return _json(503, error_body(err, request), {"Retry-After": "2"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled exception", extra={"exc_type": type(exc).__name__}, exc_info=exc)
    err = SealServiceError("INTERNAL", "internal error", "服务内部错误")
    return _json(500, error_body(err, request))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SealServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa_exc.SQLAlchemyError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
