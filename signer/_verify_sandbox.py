"""Run the checks on hostile bytes in forked children bounded by RLIMIT_AS and a wall timeout.

Two modes. ``SandboxPool`` (the default): pre-forked workers, each with its own RLIMIT_AS, that verify one
document at a time; a worker that overruns the timeout, dies, or has served ``max_tasks`` documents is
killed and replaced, so hostile input costs at most one worker. ``run_sandboxed``: one fresh fork per
document (also RLIMIT_CPU), slower (copy-on-write faults in every child) but with no state kept between
documents at all.

Why fork: the parent has already imported pyHanko, cryptography and endesive, so a fork costs a few
milliseconds where a fresh interpreter costs hundreds. The child sets its own limits (they bound qpdf too,
which it spawns), runs :func:`signer._verify_core.run_checks`, and writes the report as length-prefixed
JSON to a pipe; the parent never unpickles anything from the child. A child that dies (MemoryError → exit,
SIGKILL from the kernel, SIGXCPU) or overruns the timeout is killed and reported as
``VERIFY_RESOURCE_LIMIT`` (TOTAL_FAILED, unreadable).

Caveat (documented in docs/verification.md): fork in a multi-threaded parent copies only the calling
thread; a lock held by another thread at fork time stays held in the child. The child touches no shared
locks on its path except logging's, and the timeout bounds even that case.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import struct
import time
from datetime import datetime

from signer._verify_model import VerificationReport, VerifyLimits
from signer._verify_trust import TrustList

_CHILD_EXIT_OK = 0
_CHILD_EXIT_ERROR = 3
_MAX_REPORT_BYTES = 8 * 1024 * 1024
_PRELOADED = False


def _child(
    wfd: int, data: bytes, trust: TrustList, now: datetime, limits: VerifyLimits
) -> None:  # pragma: no cover - runs in the forked child; its outcome is asserted via the parent
    code = _CHILD_EXIT_ERROR
    try:
        mem = int(limits.memory_bytes)
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        cpu = max(1, int(limits.timeout_s) + 1)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        import signer._verify_core as core
        from signer._verify_core import run_checks, unreadable_report

        core.IN_SANDBOX = True  # bounded by the parent's wall timeout: qpdf may run in this process

        try:
            report = run_checks(data, trust, now, limits)
        except MemoryError:
            report = unreadable_report(len(data), now, "VERIFY_RESOURCE_LIMIT", "memory limit", None)
        except RecursionError:
            report = unreadable_report(len(data), now, "PDF_UNREADABLE", "nesting too deep", None)
        payload = json.dumps(report.to_dict(), ensure_ascii=False).encode()
        os.write(wfd, struct.pack(">I", len(payload)))
        view = memoryview(payload)
        while view:
            n = os.write(wfd, view)
            view = view[n:]
        code = _CHILD_EXIT_OK
    except BaseException:  # noqa: BLE001, S110 - the child must exit, whatever happened
        pass
    finally:
        os._exit(code)


def run_sandboxed(
    unverified_pdf: bytes, trust: TrustList, now: datetime, limits: VerifyLimits
) -> VerificationReport:
    from signer._verify_core import preload, unreadable_report

    global _PRELOADED
    if not _PRELOADED:
        preload()
        _PRELOADED = True
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(rfd)
        _child(wfd, unverified_pdf, trust, now, limits)
    os.close(wfd)
    deadline = time.monotonic() + limits.timeout_s
    buf = bytearray()
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([rfd], [], [], left)
            if not ready:
                continue
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            buf.extend(chunk)
            if len(buf) > _MAX_REPORT_BYTES:
                timed_out = True  # a runaway child; treat like a resource overrun
                break
    finally:
        os.close(rfd)
        if timed_out:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(pid, 0)
    if timed_out:
        return unreadable_report(len(unverified_pdf), now, "VERIFY_RESOURCE_LIMIT", "time limit", None)
    if len(buf) >= 4:
        (n,) = struct.unpack(">I", bytes(buf[:4]))
        if len(buf) - 4 == n and os.WIFEXITED(status) and os.WEXITSTATUS(status) == _CHILD_EXIT_OK:
            try:
                return VerificationReport.from_dict(json.loads(bytes(buf[4:])))
            except (ValueError, KeyError, TypeError):
                pass
    how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
    return unreadable_report(
        len(unverified_pdf), now, "VERIFY_RESOURCE_LIMIT", f"verifier child ended abnormally ({how})", None
    )


# ---------------------------------------------------------------------------------------------------------
# the pool


def _read_exact(fd: int, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError
        buf.extend(chunk)
    return bytes(buf)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _encode_request(data: bytes, trust: TrustList, now: datetime, limits: VerifyLimits) -> bytes:
    from dataclasses import asdict

    header = json.dumps(
        {
            "trust": {k: [d.hex() for d in getattr(trust, k)] for k in ("roots", "intermediates", "crls")},
            "now": now.isoformat(),
            "limits": asdict(limits),
        }
    ).encode()
    return struct.pack(">I", len(header)) + header + struct.pack(">Q", len(data)) + data


def _worker_loop(rfd: int, wfd: int, memory_bytes: int) -> None:  # pragma: no cover - forked child
    code = _CHILD_EXIT_ERROR
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        import signer._verify_core as core
        from signer._verify_core import run_checks, unreadable_report

        core.IN_SANDBOX = True  # bounded by the parent's wall timeout: qpdf may run in this process

        while True:
            try:
                (hlen,) = struct.unpack(">I", _read_exact(rfd, 4))
                header = json.loads(_read_exact(rfd, hlen))
                (dlen,) = struct.unpack(">Q", _read_exact(rfd, 8))
                data = _read_exact(rfd, dlen)
            except EOFError:
                code = _CHILD_EXIT_OK
                return
            trust = TrustList(**{k: tuple(bytes.fromhex(x) for x in v) for k, v in header["trust"].items()})
            now = datetime.fromisoformat(header["now"])
            limits = VerifyLimits(**header["limits"])
            try:
                report = run_checks(data, trust, now, limits)
            except MemoryError:
                report = unreadable_report(len(data), now, "VERIFY_RESOURCE_LIMIT", "memory limit", None)
            except RecursionError:
                report = unreadable_report(len(data), now, "PDF_UNREADABLE", "nesting too deep", None)
            del data
            payload = json.dumps(report.to_dict(), ensure_ascii=False).encode()
            _write_all(wfd, struct.pack(">I", len(payload)) + payload)
    except BaseException:  # noqa: BLE001, S110 - the worker must exit, whatever happened
        pass
    finally:
        os._exit(code)


class _Worker:
    def __init__(self, memory_bytes: int) -> None:
        from signer._verify_core import preload

        preload()
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(req_w)
            os.close(resp_r)
            _worker_loop(req_r, resp_w, memory_bytes)
        os.close(req_r)
        os.close(resp_w)
        self.pid, self.req, self.resp = pid, req_w, resp_r
        self.memory_bytes = memory_bytes
        self.tasks = 0

    def kill(self) -> None:
        for fd in (self.req, self.resp):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass

    def run(
        self, data: bytes, trust: TrustList, now: datetime, limits: VerifyLimits
    ) -> dict[str, object] | str:
        """The report as a dict, or why the worker failed (the caller kills it)."""
        self.tasks += 1
        deadline = time.monotonic() + limits.timeout_s
        try:
            _write_all(self.req, _encode_request(data, trust, now, limits))
        except OSError as exc:
            return f"worker gone ({exc})"
        buf = bytearray()
        need: int | None = None
        while need is None or len(buf) < need + 4:
            left = deadline - time.monotonic()
            if left <= 0:
                return "time limit"
            ready, _, _ = select.select([self.resp], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.resp, 1 << 20)
            if not chunk:
                return "worker ended abnormally"
            buf.extend(chunk)
            if need is None and len(buf) >= 4:
                (need,) = struct.unpack(">I", bytes(buf[:4]))
                if need > _MAX_REPORT_BYTES:
                    return "report too large"
        try:
            out = json.loads(bytes(buf[4 : 4 + need]))
        except ValueError:
            return "unreadable report"
        return out if isinstance(out, dict) else "unreadable report"


class SandboxPool:
    """Pre-forked verifier workers; thread-safe; each call holds one worker for one document."""

    def __init__(self, size: int = 2, max_tasks: int = 500) -> None:
        import queue
        import threading

        self.size = max(1, size)
        self.max_tasks = max_tasks
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._spawned = 0

    def _acquire(self, memory_bytes: int) -> _Worker:
        """An idle worker, a new one while under ``size``, else wait (re-checking: workers may be discarded
        by other threads, which frees a slot without putting anything in the queue)."""
        import queue

        while True:
            with self._lock:
                try:
                    w: _Worker | None = self._idle.get_nowait()
                except queue.Empty:
                    w = None
                if w is None and self._spawned < self.size:
                    self._spawned += 1
                    try:
                        return _Worker(memory_bytes)
                    except BaseException:
                        self._spawned -= 1
                        raise
            if w is None:
                try:
                    w = self._idle.get(timeout=0.05)
                except queue.Empty:
                    continue
            if w.memory_bytes == memory_bytes:
                return w
            self._discard(w)  # other limits: a worker's RLIMIT_AS is fixed at its start

    def _discard(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            self._spawned -= 1

    def run(
        self, unverified_pdf: bytes, trust: TrustList, now: datetime, limits: VerifyLimits
    ) -> VerificationReport:
        from signer._verify_core import unreadable_report

        for attempt in range(2):
            w = self._acquire(limits.memory_bytes)
            reused = w.tasks > 0
            result = w.run(unverified_pdf, trust, now, limits)
            if isinstance(result, str):
                self._discard(w)
                if result.startswith("worker gone") and reused and attempt == 0:
                    continue  # an idle worker that had died: not this document's doing, try a fresh one
                return unreadable_report(len(unverified_pdf), now, "VERIFY_RESOURCE_LIMIT", result, None)
            try:
                report = VerificationReport.from_dict(result)
            except (ValueError, KeyError, TypeError):
                self._discard(w)
                return unreadable_report(
                    len(unverified_pdf), now, "VERIFY_RESOURCE_LIMIT", "bad report", None
                )
            if w.tasks >= self.max_tasks or "VERIFY_RESOURCE_LIMIT" in report.codes:
                self._discard(w)  # recycled, or it just hit a limit and its heap is not to be trusted
            else:
                self._idle.put(w)
            return report
        raise AssertionError("unreachable")

    def close(self) -> None:
        import queue

        while True:
            try:
                w = self._idle.get_nowait()
            except queue.Empty:
                break
            self._discard(w)


_DEFAULT_POOL: SandboxPool | None = None


def default_pool() -> SandboxPool:
    """The process-wide pool (sized to the CPUs); created on first use, closed at exit."""
    global _DEFAULT_POOL
    if _DEFAULT_POOL is None or _DEFAULT_POOL_PID != os.getpid():
        import atexit

        _set_default(SandboxPool(size=os.cpu_count() or 2))
        atexit.register(_DEFAULT_POOL.close)  # type: ignore[union-attr]
    assert _DEFAULT_POOL is not None
    return _DEFAULT_POOL


_DEFAULT_POOL_PID = 0


def _set_default(pool: SandboxPool) -> None:
    global _DEFAULT_POOL, _DEFAULT_POOL_PID
    _DEFAULT_POOL, _DEFAULT_POOL_PID = pool, os.getpid()
