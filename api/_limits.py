"""Request body limits, enforced before a body is read whole.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read; a streamed body
(chunked, or lying about its length) is counted as it arrives and reading stops at the first chunk past the
limit. The client gets ``413 PAYLOAD_TOO_LARGE`` in the service's usual JSON shape.

The limit is chosen by path prefix: upload routes (PDFs, catalogs) get the settings' PDF limit, everything
else a small default. It sits inside the observability layer, so a 413 is logged and counted like any
other answer.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, default: int, by_prefix: dict[str, int]) -> None:
        self.app = app
        self.default = default
        # Longest prefix first, so "/v1/signing-requests/batch" can differ from "/v1/signing-requests".
        self.by_prefix = sorted(by_prefix.items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.by_prefix:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
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
