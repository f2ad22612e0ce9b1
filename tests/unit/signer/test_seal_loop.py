"""The per-thread sealing loop survives the verification sandbox forking the server.

A forked child that drops its inherited copy of a thread's loop must not take the parent's wake-ups with it
(an epoll instance is shared across fork: the child's close deregistered the parent's self-pipe and the
parent's next signing waited forever).
"""

from __future__ import annotations

import asyncio
import os
import threading

from signer._loops import _LOOPS
from signer._loops import run_off_loop as _run_off_loop


async def _hand_off() -> int:
    # needs the loop's self-pipe: the result comes back from an executor thread
    return await asyncio.to_thread(lambda: 42)


def test_loop_wakes_after_a_forked_child_closed_its_copy() -> None:
    results: list[int] = []

    def sealing_thread() -> None:
        results.append(_run_off_loop(_hand_off()))
        pid = os.fork()
        if pid == 0:  # the sandbox worker: drops what it inherited, as at its exit
            try:
                held = getattr(_LOOPS, "held", None)
                if held is not None:
                    held.loop.close()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        results.append(_run_off_loop(_hand_off()))

    t = threading.Thread(target=sealing_thread, daemon=True)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "the sealing loop never woke up after the fork"
    assert results == [42, 42]


def test_each_thread_has_its_own_loop_and_a_fresh_one_in_a_child() -> None:
    from signer._loops import thread_loop as _thread_loop

    mine = _thread_loop()
    assert _thread_loop() is mine
    other: list[asyncio.AbstractEventLoop] = []
    t = threading.Thread(target=lambda: other.append(_thread_loop()))
    t.start()
    t.join()
    assert other and other[0] is not mine
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b"1" if _thread_loop() is not mine else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1"


def test_blocking_calls_run_in_place_on_a_private_loop_and_in_a_thread_elsewhere() -> None:
    from signer._loops import call_blocking

    async def where() -> int:
        return await call_blocking(threading.get_ident)

    me = threading.get_ident()
    assert _run_off_loop(where()) == me  # the sealing thread's own loop: no hand-off
    assert asyncio.run(where()) != me  # any other loop must not be blocked: a worker thread
