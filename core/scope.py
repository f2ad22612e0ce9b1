"""A read scope: within one unit of work, slowly-changing facts are read from the database once.

Sealing one submission reads the same seal record and the same policy revision number several times: the
API's pre-check, then the signer's own decision, then the supervisor lookup, a few milliseconds apart. Inside
``read_scope()`` the first read of a key is kept and the later ones get the same answer, so the work sees
one consistent state instead of paying a round trip each time. Outside a scope nothing is kept.

Only readers that may be answered from the start of the unit of work use it (a seal's record, the current
policy revision): a change committed meanwhile is seen by the next unit of work, as if it had committed a
few milliseconds later. Writers never read through it. The scope is a ``ContextVar``: it follows the work into
threads started with a copied context (anyio's worker threads, asyncio tasks), never into other requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

_SCOPE: ContextVar[dict[Any, Any] | None] = ContextVar("yizhang_read_scope", default=None)


@contextmanager
def read_scope() -> Iterator[None]:
    """Open a scope (a nested call joins the one already open)."""
    if _SCOPE.get() is not None:
        yield
        return
    token = _SCOPE.set({})
    try:
        yield
    finally:
        _SCOPE.reset(token)


def scoped(key: Any, load: Callable[[], T]) -> T:
    """``load()``, or within a scope the value it gave the first time for ``key`` (errors are not kept)."""
    memo = _SCOPE.get()
    if memo is None:
        return load()
    if key in memo:
        return memo[key]  # type: ignore[no-any-return]
    value = load()
    memo[key] = value
    return value
