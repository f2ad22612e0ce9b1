"""Running pyHanko's async signing from synchronous code: one private event loop per sealing thread.

``asyncio.run`` made a loop, a selector, a self-pipe and a default executor (whose threads then started for
the token signature and the timestamp) for every document and tore them down again: a seventh of a serve
worker's CPU under load. A sealing thread now keeps one loop for its life (:func:`run_off_loop`).

Nothing but the one document's coroutine ever runs on such a loop, so a blocking call there blocks no one:
:func:`call_blocking` makes the token signature and the in-process county timestamp directly on a private
loop instead of handing them to another thread and back. Each hand-off cost two waits for the GIL (the
executor thread's, then the loop's) while the worker's other sealing threads held it: under load, tens of
milliseconds per document. On any other loop (a caller awaiting the async API on a server's loop) the call
still goes to a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import selectors
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from core.errors import SigningError

T = TypeVar("T")


class _SharedExecutor(concurrent.futures.ThreadPoolExecutor):
    """Lives as long as the process: a loop that closes (its thread ended) must not shut it down for all."""

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        return None


class _ThreadLoop:
    """A thread's sealing loop, closed when the thread ends (its thread-local holder is dropped then).

    Its selector is ``poll``, not ``epoll``: the verification sandbox forks the server, and an epoll instance
    is shared with the child — a child closing its inherited copy of the loop deregistered the parent's
    self-pipe, and the parent's next signing waited forever for a wake-up that never came. ``poll`` keeps no
    kernel state (the loop only ever watches its self-pipe). A loop is never used in a process it was not
    made in.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.SelectorEventLoop(selectors.PollSelector())
        self.loop.set_default_executor(_EXECUTOR)
        _PRIVATE.add(self.loop)

    def __del__(self) -> None:
        if not self.loop.is_closed() and self.pid == os.getpid():
            self.loop.close()


_LOOPS = threading.local()
_EXECUTOR = _SharedExecutor(max_workers=4, thread_name_prefix="yizhang-seal-io")
_PRIVATE: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's private sealing loop (made on first use, and again in a forked child)."""
    held: _ThreadLoop | None = getattr(_LOOPS, "held", None)
    if held is None or held.loop.is_closed() or held.pid != os.getpid():
        held = _LOOPS.held = _ThreadLoop()
    return held.loop


def run_off_loop(coro: Any) -> Any:
    """pyHanko's async signing, driven from synchronous code in its own (worker) thread."""
    try:
        refuse_on_event_loop()
    except SigningError:
        coro.close()
        raise
    loop = thread_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        # What a failed signing left behind (an attribute provider still pending) is cancelled now, not
        # resumed by the next document's signing on this loop.
        leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))


async def call_blocking(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``: directly on a private sealing loop (nothing else waits on it), else in a thread."""
    if asyncio.get_running_loop() in _PRIVATE:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


def refuse_on_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise SigningError(
        "SYNC_CALL_ON_EVENT_LOOP",
        "apply_seal/attest block: from async code await async_apply_seal/async_attest instead",
        "请在异步代码中使用 async_apply_seal",
    )
