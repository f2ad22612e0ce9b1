"""Request ids, structured JSON logs and Prometheus metrics.

Logs are one JSON object a line. They never carry PINs, tokens, passwords, cookies or personal data: the
access log records the route *template* (``/v1/seals/{seal_id}``), never the query string or any header but
the request id, and a last-line filter scrubs anything that looks like a bearer token or a password field
should some library put one into a message.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api._json import JsonObject

log = logging.getLogger("yizhang.api")
access_log = logging.getLogger("yizhang.api.access")

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# Anything shaped like a credential is cut out of every log line, whatever logger wrote it.
_SCRUB = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"yz_[A-Za-z0-9_-]{16,}"),
    re.compile(
        r"(?i)((?:password|passwd|pin|token|secret|csrf[_-]?token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&}]+"
    ),
    re.compile(r"(?i)(yz_session=)[^;\s]+"),
    # SQLAlchemy puts statement parameters (hashes, names) into its error messages.
    re.compile(r"(\[parameters: )[^\n]*"),
)

_STD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


def scrub(text: str) -> str:
    for pat in _SCRUB:
        text = pat.sub(lambda m: (m.group(1) if m.groups() else "") + "[REDACTED]", text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: JsonObject = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["traceback"] = self.formatException(record.exc_info)
        return scrub(json.dumps(out, ensure_ascii=False, default=str))


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines on stderr for the service's loggers and uvicorn's (idempotent)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.set_name("yizhang-json")
    for name in ("yizhang", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if h.get_name() != "yizhang-json"] + [handler]
        logger.setLevel(level)
        logger.propagate = False
    # uvicorn's own access log prints the raw path with its query string: ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True


class Metrics:
    """The service's Prometheus metrics, on a registry of their own (one per app)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "yizhang_http_requests_total",
            "HTTP requests by route template, method and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "yizhang_http_request_duration_seconds",
            "HTTP request latency by route template",
            ("method", "route"),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.signings = Counter(
            "yizhang_signings_total",
            "documents sealed, by seal and matter",
            ("seal", "matter"),
            registry=self.registry,
        )
        self.denials = Counter(
            "yizhang_denials_total",
            "signing requests refused, by reason code",
            ("code",),
            registry=self.registry,
        )

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Several uvicorn workers: add up every worker's files.
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))


def new_request_id() -> str:
    return secrets.token_hex(8)


def route_template(scope: Scope) -> str:
    """The matched route's path template, so metrics and logs have bounded labels and no ids."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "<unmatched>"


class ObservabilityMiddleware:
    """Outermost layer: request id, access log, metrics, and the last guard against a stack trace.

    An exception that escapes everything else becomes ``500 {code: INTERNAL}`` here, logged with its request
    id; the client never sees the traceback.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # noqa: BLE001 - the last guard: log it, answer 500 without a trace
            log.error(
                "unhandled exception",
                extra={"request_id": request_id, "exc_type": type(exc).__name__},
                exc_info=exc,
            )
            if not started:
                body = json.dumps(
                    {
                        "code": "INTERNAL",
                        "family": "error",
                        "message": "服务内部错误 / internal error",
                        "message_en": "internal error",
                        "message_zh": "服务内部错误",
                        "request_id": request_id,
                    },
                    ensure_ascii=False,
                ).encode()
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - start
            route = route_template(scope)
            method = str(scope.get("method", "?"))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            state = scope.get("state", {})
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "account_id": state.get("account_id"),
                },
            )
