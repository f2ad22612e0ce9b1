"""ConnectionRecycleMiddleware: every ``max_requests``-th answer on one connection says ``Connection: close``
(and only that one); connections are counted apart; 0 turns it off."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from api._limits import ConnectionRecycleMiddleware


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"connection", b"keep-alive")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _answer(mw: ConnectionRecycleMiddleware, client: tuple[str, int] | None) -> list[tuple[bytes, bytes]]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope: Scope = {"type": "http", "path": "/healthz", "client": client, "headers": []}
    asyncio.run(mw(scope, receive, send))
    assert sent[1]["body"] == b"ok"
    return list(sent[0]["headers"])


def _closes(headers: list[tuple[bytes, bytes]]) -> bool:
    values = [v for k, v in headers if k.lower() == b"connection"]
    assert len(values) == 1  # never two Connection headers
    return values == [b"close"]


def test_every_nth_answer_closes_its_connection() -> None:
    mw = ConnectionRecycleMiddleware(_app, max_requests=3)
    a, b = ("10.0.0.5", 40001), ("10.0.0.5", 40002)
    seen_a = [_closes(_answer(mw, a)) for _ in range(7)]
    assert seen_a == [False, False, True, False, False, True, False]
    # another connection of the same host has its own count
    assert [_closes(_answer(mw, b)) for _ in range(3)] == [False, False, True]


def test_zero_means_no_limit_and_no_client_is_left_alone() -> None:
    off = ConnectionRecycleMiddleware(_app, max_requests=0)
    assert not any(_closes(_answer(off, ("10.0.0.5", 40001))) for _ in range(50))
    on = ConnectionRecycleMiddleware(_app, max_requests=1)
    assert not _closes(_answer(on, None))  # no peer address (a test client): nothing to count
    assert _closes(_answer(on, ("10.0.0.5", 40003)))


def test_the_count_table_stays_bounded() -> None:
    mw = ConnectionRecycleMiddleware(_app, max_requests=5)
    for port in range(ConnectionRecycleMiddleware._MAX_TRACKED * 2):
        _answer(mw, ("10.0.0.9", port))
    assert len(mw._served) <= ConnectionRecycleMiddleware._MAX_TRACKED
