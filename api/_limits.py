"""Request body limits, enforced before a body is read whole; and the text every request may carry.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read; a streamed body
(chunked, or lying about its length) is counted as it arrives and reading stops at the first chunk past the
limit. The client gets ``413 PAYLOAD_TOO_LARGE`` in the service's usual JSON shape.

The limit is chosen by what the body is, not by a path prefix (issue 21: ``/v1/signing-requests`` as a
prefix gave the JSON route ``/v1/signing-requests/from-template`` the 50 MB PDF limit, and a 5,000,000
character ``matter_name`` was sealed after 184 s). A JSON body gets the small default (1 MiB) on every route.
Only a non-JSON body (a multipart PDF upload, a catalog file) sent to one of the named upload routes (exact
paths; ``{name}`` matches one path segment) gets the upload limit. It sits inside the observability layer,
so a 413 is logged and counted like any other answer.

:class:`TextGuardMiddleware` then reads JSON and form bodies (bounded by the limit above), the path and the
query string, and refuses text no field of this service may hold: control characters other than tab, line
feed and carriage return (NUL among them), and lone UTF-16 surrogates (``"\\ud800"`` in JSON decodes to
one, and the first UTF-8 encoder it meets answered 500). The answer is ``400 TEXT_INVALID_CHARACTER`` with
the field's path. Codes (seal ids, organisation and matter codes) are NFKC-normalised and trimmed by the
:data:`Code` type, so a full-width ``３６０７３２-１１`` is ``360732-11``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Annotated
from urllib.parse import parse_qsl

from pydantic import AfterValidator, BeforeValidator, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import BadInput

# C0 controls but tab, LF and CR; DEL; C1 controls; any surrogate (a decoded str holds one only when lone).
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def bad_character(value: str) -> str | None:
    """A description of the first character no text field may hold, or None."""
    m = _BAD_CHAR.search(value)
    if m is None:
        return None
    ch = m.group(0)
    kind = "lone surrogate" if 0xD800 <= ord(ch) <= 0xDFFF else "control character"
    return f"{kind} U+{ord(ch):04X} at {m.start()}"


def check_text(value: str, field: str) -> None:
    """Raise ``TEXT_INVALID_CHARACTER`` (400) when ``value`` holds a control character or a lone surrogate."""
    problem = bad_character(value)
    if problem is not None:
        raise BadInput(
            "TEXT_INVALID_CHARACTER",
            f"{field}: {problem} is not allowed",
            f"{field}：含有不允许的控制字符或无效字符",
            details={"field": field},
        )


def walk_text(value: object, path: str = "body") -> Iterator[tuple[str, str]]:
    """(path, text) of every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                yield f"{path}.{k}", k
            yield from walk_text(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk_text(v, f"{path}[{i}]")


def normalize_code(value: object) -> object:
    """NFKC and trimmed: full-width digits, letters and hyphens of a code become their ASCII forms."""
    return unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else value


def _no_bad_character(value: str) -> str:
    problem = bad_character(value)
    if problem is not None:
        raise ValueError(f"TEXT_INVALID_CHARACTER: {problem}")
    return value


#: A code (seal id, organisation, township, department, matter code): NFKC, trimmed, 1..64 characters.
Code = Annotated[
    str,
    BeforeValidator(normalize_code),
    AfterValidator(_no_bad_character),
    Field(min_length=1, max_length=64),
]


#: What an X.509 name attribute can hold: the certificate library counts UTF-8 bytes against RFC 5280's
#: upper bound of 64 (ub-common-name), so 64 ASCII characters, or 21 Chinese ones.
CERT_NAME_MAX_BYTES = 64


def check_cert_name(value: str, field: str) -> None:
    """Raise ``CERT_NAME_TOO_LONG`` (400, with the limit) for a name a certificate's subject cannot hold."""
    n = len(value.encode("utf-8", "surrogatepass"))
    if n > CERT_NAME_MAX_BYTES:
        raise BadInput(
            "CERT_NAME_TOO_LONG",
            f"{field}: {n} bytes in UTF-8; a certificate name holds at most {CERT_NAME_MAX_BYTES} "
            f"(64 ASCII or 21 Chinese characters)",
            f"{field}：证书名称最多 {CERT_NAME_MAX_BYTES} 字节（21 个汉字），当前 {n} 字节",
            details={"field": field, "limit_bytes": CERT_NAME_MAX_BYTES, "bytes": n},
        )


class _TooLarge(Exception):
    pass


def _body_413(request_id: str | None, limit: int) -> bytes:
    return json.dumps(
        {
            "code": "PAYLOAD_TOO_LARGE",
            "family": "payload_too_large",
            "message": f"请求内容超过 {limit} 字节上限 / request body over the {limit} byte limit",
            "message_en": f"request body over the {limit} byte limit",
            "message_zh": f"请求内容超过 {limit} 字节上限",
            "details": {"limit_bytes": limit},
            "request_id": request_id,
        },
        ensure_ascii=False,
    ).encode()


def _content_type(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


def is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _route_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}/]+\}", template)
    return re.compile("[^/]+".join(re.escape(p) for p in parts))


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, default: int, uploads: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.uploads = [(_route_pattern(path), limit) for path, limit in uploads.items()]

    def limit_for(self, path: str, content_type: str = "") -> int:
        """The default for JSON and for every route that takes no upload; an upload route's own limit for
        what it uploads (exact path match, not a prefix)."""
        if is_json(content_type):
            return self.default
        for pattern, limit in self.uploads:
            if pattern.fullmatch(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""), _content_type(scope))
        request_id = scope.get("state", {}).get("request_id")
        declared: int | None = None
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        if declared is not None and declared > limit:
            await self._refuse(send, request_id, limit)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if received > limit:
                    # The framework turned our signal into its own error answer (FastAPI: 400 "error
                    # parsing the body"); drop it and answer 413 instead.
                    raise _TooLarge
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(send, request_id, limit)
        except BaseException as exc:
            # Frameworks wrap errors raised while parsing a body (ExceptionGroup, "error parsing the body").
            if received > limit and not started:
                await self._refuse(send, request_id, limit)
                return
            raise exc

    @staticmethod
    async def _refuse(send: Send, request_id: str | None, limit: int) -> None:
        body = _body_413(request_id, limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class ConnectionRecycleMiddleware:
    """Close a keep-alive connection after ``max_requests`` answers on it (nginx ``keepalive_requests``).

    The serve workers share one listening socket, and an event loop accepts every connection pending when
    it wakes: a burst of clients (or a proxy's upstream pool) opening connections together lands mostly on
    one worker, and a kept-alive connection never moves. One worker then runs at its one-core limit while
    the other idles. Answering ``Connection: close`` every ``max_requests`` requests makes the client
    reconnect, and the idle worker, whose loop is not waiting for the GIL, is the one that accepts.

    A connection is known by its peer address (``scope["client"]``); behind a proxy that rewrites it
    (``X-Forwarded-For``) connections share a count, which only recycles some of them sooner.
    """

    _MAX_TRACKED = 4096

    def __init__(self, app: ASGIApp, *, max_requests: int) -> None:
        self.app = app
        self.max_requests = max_requests
        self._served: dict[tuple[str, int], int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or not self.max_requests or not client:
            await self.app(scope, receive, send)
            return
        peer = (client[0], client[1])
        served = self._served.get(peer, 0) + 1
        if served < self.max_requests:
            if len(self._served) >= self._MAX_TRACKED:
                self._served.clear()  # peers that left; at worst a connection lives a little longer
            self._served[peer] = served
            await self.app(scope, receive, send)
            return
        self._served.pop(peer, None)

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing_send)


def _body_400(request_id: str | None, field: str, problem: str) -> bytes:
    return json.dumps(
        {
            "code": "TEXT_INVALID_CHARACTER",
            "family": "bad_input",
            "message": f"{field}：含有不允许的控制字符或无效字符 / {field}: {problem} is not allowed",
            "message_en": f"{field}: {problem} is not allowed",
            "message_zh": f"{field}：含有不允许的控制字符或无效字符",
            "details": {"field": field},
            "request_id": request_id,
        },
        ensure_ascii=True,  # the problem may name a surrogate: escaped, the answer stays valid UTF-8
    ).encode()


def _form_text(raw: bytes, where: str) -> Iterable[tuple[str, str]]:
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8"):
        yield f"{where}.{key}", key
        yield f"{where}.{key}", value


class TextGuardMiddleware:
    """Refuse control characters and lone surrogates in the path, the query string and JSON or form
    bodies before any route sees them (``400 TEXT_INVALID_CHARACTER``). Multipart bodies (PDF uploads) are
    left to their routes, which check their text fields (``api._signing``). Sits inside
    :class:`BodyLimitMiddleware`, so the body it reads whole is at most the JSON limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        found = self._first_bad([("path", scope.get("path", ""))])
        found = found or self._first_bad(_form_text(scope.get("query_string", b""), "query"))
        if found:
            await self._refuse(send, request_id, *found)
            return
        content_type = _content_type(scope)
        json_body = is_json(content_type)
        if not json_body and content_type != "application/x-www-form-urlencoded":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if json_body:
            try:
                texts: Iterable[tuple[str, str]] = walk_text(json.loads(raw.decode("utf-8")))
            except (UnicodeDecodeError, ValueError, RecursionError):
                texts = ()  # not JSON: the route's own parser answers
        else:
            texts = _form_text(raw, "form")
        found = self._first_bad(texts)
        if found:
            await self._refuse(send, request_id, *found)
            return
        await self.app(
            scope, _replay([{"type": "http.request", "body": raw, "more_body": False}], receive), send
        )

    @staticmethod
    def _first_bad(texts: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
        try:
            for field, text in texts:
                problem = bad_character(text)
                if problem is not None:
                    return field[:200], problem
        except RecursionError:  # nested past what a route's parser takes: that parser refuses it
            return None
        return None

    @staticmethod
    async def _refuse(send: Send, request_id: str | None, field: str, problem: str) -> None:
        body = _body_400(request_id, field, problem)
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
