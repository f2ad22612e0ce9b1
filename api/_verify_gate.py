"""Admission for the public verification routes: one client cannot hold more than its share of the verifiers.

The per-address rate limit (5/s) bounds how often a client may *start* a verification, not how many it has
running: a hostile upload that keeps a sandbox worker busy for seconds, sent five times a second from four
addresses, holds every worker and every request thread, and an ordinary verification waits behind them
(issue 18: 0.05 s became 11 s). Three bounds together keep ordinary work moving:

1. Per client address, at most ``per_client`` verifications in flight (default 1); another one is refused at
   once with ``429 VERIFY_BUSY`` and ``Retry-After`` — never queued, so a refused request holds no thread.
2. The pre-parse budget (``verifier._budget``) refuses the known bombs unread in milliseconds.
3. Large documents (``verifier._sandbox.is_large``) run on at most ``size - 1`` sandbox workers, so a
   worker is always left for the permits people actually check; and the public routes run with a shorter
   wall timeout (``PUBLIC_TIMEOUT_S``) than the command line.

Each serve worker has its own gate (like the rate limiter's buckets): with N workers a client can hold N
verifications, one per worker process, which is still bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from api._errors import RateLimited

if TYPE_CHECKING:
    from fastapi import Request
    from starlette.applications import Starlette


#: Wall time for one verification on the public routes (the CLI keeps VerifyLimits' 20 s): an ordinary
#: sealed permit takes 0.05 s, a large honest document a few seconds.
PUBLIC_TIMEOUT_S = 10.0


class VerifyGate:
    """Counts verifications in flight per client; thread-safe (the verify route is a sync route)."""

    def __init__(self, per_client: int = 1, retry_after_s: int = 1) -> None:
        self.per_client = max(1, per_client)
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._inflight: dict[str, int] = {}

    @contextmanager
    def admit(self, client: str) -> Iterator[None]:
        """Hold one of the client's slots while the body runs; else ``RateLimited("VERIFY_BUSY")``."""
        with self._lock:
            held = self._inflight.get(client, 0)
            if held >= self.per_client:
                raise RateLimited(
                    "VERIFY_BUSY",
                    "a verification from this address is still running; retry when it has answered",
                    "该地址仍有验证在进行，请待其完成后重试",
                    details={"retry_after_s": self.retry_after_s, "in_flight": held},
                )
            self._inflight[client] = held + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._inflight.get(client, 1) - 1
                if left > 0:
                    self._inflight[client] = left
                else:
                    self._inflight.pop(client, None)

    def in_flight(self, client: str) -> int:
        with self._lock:
            return self._inflight.get(client, 0)


_CREATE = threading.Lock()


def gate_of(app: Starlette) -> VerifyGate:
    """The app's gate (``app.state.verify_gate``), made on first use."""
    gate: VerifyGate | None = getattr(app.state, "verify_gate", None)
    if gate is None:
        with _CREATE:
            gate = getattr(app.state, "verify_gate", None)
            if gate is None:
                gate = VerifyGate()
                app.state.verify_gate = gate
    return gate


def client_of(request: Request) -> str:
    """The client address the rate limiter also uses (uvicorn's proxy headers already applied)."""
    return request.client.host if request.client else "unknown"


__all__ = ["PUBLIC_TIMEOUT_S", "VerifyGate", "client_of", "gate_of"]
