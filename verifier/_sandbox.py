"""Run the checks on hostile bytes in forked children bounded by RLIMIT_DATA and a wall timeout.

Two modes. ``SandboxPool`` (the default): pre-forked workers, each with its own memory limit, that verify one
document at a time; a worker that overruns the timeout, dies, or has served ``max_tasks`` documents is
killed and replaced, so hostile input costs at most one worker. Large documents (``is_large``) have their
own lane of workers at nice 19, so they cannot take a worker or CPU time from ordinary ones (issue 18:
four hostile uploads made a 0.05 s verification take 11 s). ``run_sandboxed``: one fresh fork per
document (also RLIMIT_CPU), slower (copy-on-write faults in every child) but with no state kept between
documents at all.

Why fork: the parent has already imported pyHanko, cryptography and endesive, so a fork costs a few
milliseconds where a fresh interpreter costs hundreds. The child sets its own limits (they bound qpdf too,
which it spawns), runs :func:`verifier._core.run_checks`, and writes the report as length-prefixed
JSON to a pipe; the parent never unpickles anything from the child. A child that dies (MemoryError → exit,
SIGKILL from the kernel, SIGXCPU) or overruns the timeout is killed and reported as
``VERIFY_RESOURCE_LIMIT`` (TOTAL_FAILED, unreadable).

Memory: ``VerifyLimits.memory_bytes`` is what a verification may *add* to the forked child. The child sets
RLIMIT_DATA to its own private writable mappings at the start (``VmData``: the parent's heap, inherited)
plus that budget. RLIMIT_DATA (Linux ≥ 4.7) counts brk and every private writable mmap — what malloc,
Python's arenas, zlib, libqpdf and PDFium allocate — but not address space merely reserved
(``PROT_NONE``) or shared libraries, so an allocator that reserves gigabytes of address space up front
costs nothing against it, where RLIMIT_AS would refuse it. A child's real memory therefore grows by at most
``memory_bytes`` (plus copy-on-write copies of pages it shared with the parent, which hostile input cannot
enlarge). Each task's resident-set peak is measured (``/proc/self/clear_refs`` resets ``VmHWM`` per task;
a child that died is measured through ``wait4``'s rusage) and returned by ``run_measured``.

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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from verifier._model import VerificationReport, VerifyLimits
from verifier._trust import TrustList

_CHILD_EXIT_OK = 0
_CHILD_EXIT_ERROR = 3
_MAX_REPORT_BYTES = 8 * 1024 * 1024
#: A task whose RSS grew to within this of ``memory_bytes`` hit the limit (see ``_run_guarded``).
_NEAR_LIMIT = 16 * 1024 * 1024
_PRELOADED = False


@dataclass(frozen=True)
class TaskUsage:
    """Resident memory of the child around one verification, in bytes (``None``: not measurable)."""

    start_rss: int | None  # when the task began (the forked baseline, shared pages included)
    peak_rss: int | None  # the high-water mark during the task
    limit_bytes: int  # memory_bytes: what the task was allowed to add
    ended: str  # "answered" or why the child was lost ("time limit", "signal 9", …)

    @property
    def growth(self) -> int | None:
        """What the verification itself added at its peak."""
        if self.start_rss is None or self.peak_rss is None:
            return None
        return max(0, self.peak_rss - self.start_rss)


def _status_kb(*keys: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                k, _, v = line.partition(b":")
                name = k.decode()
                if name in keys:
                    out[name] = int(v.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def _limit_memory(memory_bytes: int) -> None:  # pragma: no cover - runs in forked children
    """RLIMIT_DATA = what the child already has (inherited) + ``memory_bytes``; see the module docstring."""
    have = _status_kb("VmData").get("VmData")
    if have is None:  # no /proc: the whole budget as an absolute bound, as before
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        return
    cap = have + int(memory_bytes)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))


#: In a confined child: ``/proc/self/clear_refs`` opened before dropping to the unprivileged user (after
#: ``setuid`` the process is not dumpable and its /proc files belong to root; a descriptor opened earlier
#: still writes).
_CLEAR_REFS_FD: int | None = None


def _reset_peak() -> int | None:  # pragma: no cover - runs in forked children
    """Reset VmHWM to the current RSS (Linux ≥ 4.0) and return that RSS."""
    try:
        if _CLEAR_REFS_FD is not None:
            os.write(_CLEAR_REFS_FD, b"5")
        else:
            with open("/proc/self/clear_refs", "wb") as f:
                f.write(b"5")
    except OSError:
        return None
    return _status_kb("VmRSS").get("VmRSS")


def _peak() -> int | None:  # pragma: no cover - runs in forked children
    return _status_kb("VmHWM").get("VmHWM")


#: Open files a confined child may hold: its two pipes, stdio (/dev/null), /proc/self/clear_refs, qpdf's
#: two temporary files and the document libqpdf opens, PDFium's fonts, an import now and then.
SANDBOX_NOFILE = 32
#: The user a child runs as when the service runs as root (``YIZHANG_SANDBOX_USER`` overrides it).
SANDBOX_USER = "nobody"
_PR_SET_NO_NEW_PRIVS = 38


class SandboxSetupError(RuntimeError):
    """The child could not confine itself; it exits rather than read a document unconfined."""


def _sandbox_ids() -> tuple[int, int]:  # pragma: no cover - runs in forked children
    import pwd

    name = os.environ.get("YIZHANG_SANDBOX_USER") or SANDBOX_USER
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return 65534, 65534  # the kernel's overflow ids: nobody/nogroup on every distribution
    return pw.pw_uid, pw.pw_gid


def _confine(keep: tuple[int, ...], file_bytes: int) -> None:  # pragma: no cover - runs in forked children
    """Shed what the serve process holds before a forked child reads any hostile byte.

    Every inherited descriptor but ``keep`` (the child's pipes) is closed — the listening socket, client
    connections, the database, other workers' pipes — and stdio points at /dev/null. Limits: at most
    ``SANDBOX_NOFILE`` open files, files written no larger than ``file_bytes`` (qpdf's temporary copy of
    the document), no core dumps. ``PR_SET_NO_NEW_PRIVS`` (no set-uid or file-capability gain through exec),
    and when running as root: no supplementary groups, then the sandbox user's gid and uid, which drops
    every capability. A step that fails raises :class:`SandboxSetupError`: the child exits unconfined work
    undone.
    """
    import ctypes

    global _CLEAR_REFS_FD
    uid_gid = _sandbox_ids() if os.geteuid() == 0 else None
    try:
        _CLEAR_REFS_FD = os.open("/proc/self/clear_refs", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        _CLEAR_REFS_FD = None
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    kept = sorted({0, 1, 2, *keep, *((_CLEAR_REFS_FD,) if _CLEAR_REFS_FD is not None else ())})
    low = 0
    for fd in kept:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    os.closerange(low, hard if 0 < hard < 1 << 30 else 1 << 20)
    resource.setrlimit(resource.RLIMIT_NOFILE, (SANDBOX_NOFILE, SANDBOX_NOFILE))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails (EFBIG), no signal
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SandboxSetupError(f"prctl(PR_SET_NO_NEW_PRIVS): errno {ctypes.get_errno()}")
    if uid_gid is not None:
        uid, gid = uid_gid
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if os.getuid() == 0 or os.geteuid() == 0:
            raise SandboxSetupError("still root after setuid")


def _run_guarded(data: bytes, trust: TrustList, now: datetime, limits: VerifyLimits) -> bytes:
    """In a child: one verification, its answer as the JSON payload ``{"report", "usage"}``."""
    from verifier._core import run_checks, unreadable_report

    start_rss = _reset_peak()
    try:
        report = run_checks(data, trust, now, limits)
    except MemoryError:
        report = unreadable_report(len(data), now, "VERIFY_RESOURCE_LIMIT", "memory limit", None)
    except RecursionError:
        report = unreadable_report(len(data), now, "PDF_UNREADABLE", "nesting too deep", None)
    peak = _peak()
    grew = peak - start_rss if start_rss is not None and peak is not None else 0
    swallowed = any("MemoryError" in (r.detail or "") for r in report.reasons) or any(
        "MemoryError" in (r.detail or "") for sig in report.signatures for r in sig.reasons
    )
    if swallowed or grew >= limits.memory_bytes - _NEAR_LIMIT:
        # The child reached its memory bound: an allocation was refused, and a library that caught the
        # MemoryError (pyHanko's parser does; the checks name it in a reason's detail) may have turned it
        # into an ordinary-looking verdict. Only the resource answer is sure.
        report = unreadable_report(
            len(data), now, "VERIFY_RESOURCE_LIMIT", f"memory limit (peak +{grew >> 20} MiB)", None
        )
    usage = {"start_rss": start_rss, "peak_rss": peak}
    return json.dumps({"report": report.to_dict(), "usage": usage}, ensure_ascii=False).encode()


def _child(
    wfd: int, data: bytes, trust: TrustList, now: datetime, limits: VerifyLimits
) -> None:  # pragma: no cover - runs in the forked child; its outcome is asserted via the parent
    code = _CHILD_EXIT_ERROR
    try:
        import verifier._core as core
        import verifier._qpdf

        verifier._qpdf.available()  # dlopen before the descriptor limit
        _confine((wfd,), _file_bytes(limits))
        _limit_memory(limits.memory_bytes)
        cpu = max(1, int(limits.timeout_s) + 1)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))

        core.IN_SANDBOX = True  # bounded by the parent's wall timeout: qpdf may run in this process
        payload = _run_guarded(data, trust, now, limits)
        _write_all(wfd, struct.pack(">I", len(payload)) + payload)
        code = _CHILD_EXIT_OK
    except BaseException:  # noqa: BLE001, S110 - the child must exit, whatever happened
        pass
    finally:
        os._exit(code)


def _decode_answer(
    payload: bytes, data_len: int, now: datetime, limits: VerifyLimits
) -> tuple[VerificationReport, TaskUsage] | None:
    """The child's report and its memory figures, or None when the payload is not a well-formed answer."""
    try:
        out = json.loads(payload)
        report = VerificationReport.from_dict(out["report"])
        usage = out.get("usage") or {}
        start, peak = usage.get("start_rss"), usage.get("peak_rss")
        return report, TaskUsage(
            start_rss=int(start) if start is not None else None,
            peak_rss=int(peak) if peak is not None else None,
            limit_bytes=limits.memory_bytes,
            ended="answered",
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _lost(
    data_len: int, now: datetime, limits: VerifyLimits, why: str, maxrss_kb: int | None
) -> tuple[VerificationReport, TaskUsage]:
    from verifier._core import unreadable_report

    usage = TaskUsage(
        start_rss=None,
        peak_rss=maxrss_kb * 1024 if maxrss_kb is not None else None,
        limit_bytes=limits.memory_bytes,
        ended=why,
    )
    return unreadable_report(data_len, now, "VERIFY_RESOURCE_LIMIT", why, None), usage


def run_sandboxed(
    unverified_pdf: bytes, trust: TrustList, now: datetime, limits: VerifyLimits
) -> VerificationReport:
    return run_sandboxed_measured(unverified_pdf, trust, now, limits)[0]


def run_sandboxed_measured(
    unverified_pdf: bytes, trust: TrustList, now: datetime, limits: VerifyLimits
) -> tuple[VerificationReport, TaskUsage]:
    """One fresh forked child for one document; the report and the child's memory figures."""
    from verifier._core import preload

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
        _, status, rusage = os.wait4(pid, 0)
    if timed_out:
        return _lost(len(unverified_pdf), now, limits, "time limit", rusage.ru_maxrss)
    if len(buf) >= 4:
        (n,) = struct.unpack(">I", bytes(buf[:4]))
        if len(buf) - 4 == n and os.WIFEXITED(status) and os.WEXITSTATUS(status) == _CHILD_EXIT_OK:
            answer = _decode_answer(bytes(buf[4:]), len(unverified_pdf), now, limits)
            if answer is not None:
                return answer
    how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
    return _lost(
        len(unverified_pdf), now, limits, f"verifier child ended abnormally ({how})", rusage.ru_maxrss
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


def _file_bytes(limits: VerifyLimits) -> int:
    """RLIMIT_FSIZE of a child: the largest document it may be given (qpdf reads a temporary copy)."""
    return int(limits.max_bytes) + (1 << 20)


def _worker_loop(
    rfd: int, wfd: int, memory_bytes: int, nice: int, file_bytes: int
) -> None:  # pragma: no cover - child
    code = _CHILD_EXIT_ERROR
    try:
        import verifier._core as core
        import verifier._qpdf

        verifier._qpdf.available()  # dlopen before the descriptor limit
        _confine((rfd, wfd), file_bytes)
        _limit_memory(memory_bytes)
        if nice:
            os.nice(nice)

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
            payload = _run_guarded(data, trust, now, limits)
            del data
            _write_all(wfd, struct.pack(">I", len(payload)) + payload)
    except BaseException:  # noqa: BLE001, S110 - the worker must exit, whatever happened
        pass
    finally:
        os._exit(code)


class _Worker:
    def __init__(self, memory_bytes: int, nice: int = 0, file_bytes: int | None = None) -> None:
        from verifier._core import preload

        preload()
        if file_bytes is None:
            file_bytes = _file_bytes(VerifyLimits())
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(req_w)
            os.close(resp_r)
            _worker_loop(req_r, resp_w, memory_bytes, nice, file_bytes)
        os.close(req_r)
        os.close(resp_w)
        self.pid, self.req, self.resp = pid, req_w, resp_r
        self.memory_bytes = memory_bytes
        self.file_bytes = file_bytes
        self.tasks = 0

    def kill(self) -> int | None:
        """Kill and reap the worker; its lifetime peak RSS in kB (``ru_maxrss``), if it could be reaped."""
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
            _, _, rusage = os.wait4(self.pid, 0)
        except ChildProcessError:
            return None
        return int(rusage.ru_maxrss)

    def run(self, data: bytes, trust: TrustList, now: datetime, limits: VerifyLimits) -> bytes | str:
        """The answer's JSON payload, or why the worker failed (the caller kills it)."""
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
        return bytes(buf[4 : 4 + need])


#: A document is "large" (served by the pool's low-priority lane) above these: our own sealed
#: permits are 100–300 objects and well under 1 MiB, and so is nearly every document a person uploads.
LARGE_DOCUMENT_BYTES = 1 << 20
LARGE_DOCUMENT_OBJ_KEYWORDS = 4_000  # b"obj" occurrences (an object has two: "obj" and "endobj")


def is_large(unverified_pdf: bytes) -> bool:
    """Cheap (memchr-speed) guess that a document will cost more than a permit: big, or many objects."""
    return len(unverified_pdf) > LARGE_DOCUMENT_BYTES or (
        unverified_pdf.count(b"obj") > LARGE_DOCUMENT_OBJ_KEYWORDS
    )


class _Lane:
    """Workers of one kind: their idle queue, how many exist, how many may, their CPU priority."""

    def __init__(self, size: int, nice: int) -> None:
        import queue

        self.size = max(1, size)
        self.nice = nice
        self.idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self.spawned = 0


class SandboxPool:
    """Pre-forked verifier workers; thread-safe; each call holds one worker for one document.

    Two lanes. Ordinary documents run on ``size`` workers. Large documents (:func:`is_large`: the
    expensive and the hostile ones) run on their own ``large_slots`` workers (default 1) at the lowest CPU
    priority (nice 19), so however many arrive together they neither take an ordinary worker nor CPU time
    an ordinary verification wants: on a busy machine they run in what is left over, bounded by the same
    wall timeout. ``large_slots=0`` puts everything in one lane (the pool before issue 18).
    """

    LARGE_NICE = 19

    def __init__(self, size: int = 2, max_tasks: int = 500, large_slots: int | None = 1) -> None:
        import threading

        self.size = max(1, size)
        self.max_tasks = max_tasks
        self._normal = _Lane(self.size, 0)
        self._large: _Lane | None = _Lane(large_slots or 1, self.LARGE_NICE) if large_slots != 0 else None
        self._lock = threading.Lock()

    @property
    def _idle(self) -> Any:  # the ordinary lane's idle queue (tests look at it)
        return self._normal.idle

    @property
    def _spawned(self) -> int:
        return self._normal.spawned

    def _acquire(self, lane: _Lane, memory_bytes: int, file_bytes: int | None = None) -> _Worker:
        """An idle worker, a new one while under the lane's size, else wait (re-checking: workers may be
        discarded by other threads, which frees a slot without putting anything in the queue)."""
        import queue

        while True:
            with self._lock:
                try:
                    w: _Worker | None = lane.idle.get_nowait()
                except queue.Empty:
                    w = None
                if w is None and lane.spawned < lane.size:
                    lane.spawned += 1
                    try:
                        return _Worker(memory_bytes, lane.nice, file_bytes)
                    except BaseException:
                        lane.spawned -= 1
                        raise
            if w is None:
                try:
                    w = lane.idle.get(timeout=0.05)
                except queue.Empty:
                    continue
            if w.memory_bytes == memory_bytes and (file_bytes is None or w.file_bytes == file_bytes):
                return w
            self._discard(lane, w)  # other limits: a worker's memory and file limits are fixed at its start

    def _discard(self, lane: _Lane, w: _Worker) -> int | None:
        maxrss_kb = w.kill()
        with self._lock:
            lane.spawned -= 1
        return maxrss_kb

    def run(
        self, unverified_pdf: bytes, trust: TrustList, now: datetime, limits: VerifyLimits
    ) -> VerificationReport:
        return self.run_measured(unverified_pdf, trust, now, limits)[0]

    def run_measured(
        self, unverified_pdf: bytes, trust: TrustList, now: datetime, limits: VerifyLimits
    ) -> tuple[VerificationReport, TaskUsage]:
        """The report and the worker's memory figures for this one document."""
        lane = self._large if self._large is not None and is_large(unverified_pdf) else self._normal
        n = len(unverified_pdf)
        for attempt in range(2):
            w = self._acquire(lane, limits.memory_bytes, _file_bytes(limits))
            reused = w.tasks > 0
            result = w.run(unverified_pdf, trust, now, limits)
            if isinstance(result, str):
                maxrss_kb = self._discard(lane, w)
                if result.startswith("worker gone") and reused and attempt == 0:
                    continue  # an idle worker that had died: not this document's doing, try a fresh one
                return _lost(n, now, limits, result, maxrss_kb)
            answer = _decode_answer(result, n, now, limits)
            if answer is None:
                return _lost(n, now, limits, "bad report", self._discard(lane, w))
            report, usage = answer
            if w.tasks >= self.max_tasks or "VERIFY_RESOURCE_LIMIT" in report.codes:
                self._discard(lane, w)  # recycled, or it just hit a limit and its heap is not to be trusted
            else:
                lane.idle.put(w)
            return report, usage
        raise AssertionError("unreachable")

    def close(self) -> None:
        import queue

        for lane in (self._normal, self._large):
            while lane is not None:
                try:
                    w = lane.idle.get_nowait()
                except queue.Empty:
                    break
                self._discard(lane, w)


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
