"""``qpdf --check`` without a new process: the qpdf CLI's own job code (``QPDFJob``) through libqpdf's C API.

The verifier's structural check used to start the ``qpdf`` binary for every document: a fork/exec, dynamic
linking of libqpdf and libstdc++, a temporary file — on these 2-core machines the largest single cost of a
strict verification. ``qpdfjob_run`` with argv ``qpdf --check FILE`` runs exactly what the binary runs (the
binary is a thin wrapper around the same job in the same library, Debian's ``libqpdf29``), and a custom
logger collects what it would have printed. Exit codes are the CLI's: 0 fine, 2 errors, 3 warnings only.

Hostile input: this runs inside the verification sandbox (a forked worker bounded by RLIMIT_AS and a wall
timeout that kills it), so a qpdf hang or crash costs that worker, not the service. Outside the sandbox the
same job runs in a long-lived checker child (:class:`Checker`, below) with the caller's timeout.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

_LOG_DEST_CUSTOM = 4  # enum qpdf_log_dest_e
_LOG_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)

_lib: Any = None
_lib_error: str | None = None
_load_lock = threading.Lock()
_run_lock = threading.Lock()  # one job at a time per process: the handler writes one buffer


def _load() -> Any:
    """libqpdf with the job and logger functions typed, or ``None`` (with the reason kept) if unusable."""
    global _lib, _lib_error
    with _load_lock:
        if _lib is not None or _lib_error is not None:
            return _lib
        name = ctypes.util.find_library("qpdf") or "libqpdf.so.29"
        try:
            lib = ctypes.CDLL(name)
            lib.qpdfjob_init.restype = ctypes.c_void_p
            lib.qpdfjob_init.argtypes = []
            lib.qpdfjob_cleanup.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
            lib.qpdfjob_initialize_from_argv.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p)]
            lib.qpdfjob_initialize_from_argv.restype = ctypes.c_int
            lib.qpdfjob_run.argtypes = [ctypes.c_void_p]
            lib.qpdfjob_run.restype = ctypes.c_int
            lib.qpdfjob_set_logger.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            lib.qpdflogger_create.restype = ctypes.c_void_p
            lib.qpdflogger_create.argtypes = []
            lib.qpdflogger_cleanup.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
            for setter in (lib.qpdflogger_set_info, lib.qpdflogger_set_warn, lib.qpdflogger_set_error):
                setter.argtypes = [ctypes.c_void_p, ctypes.c_int, _LOG_FN, ctypes.c_void_p]
        except (OSError, AttributeError) as exc:
            _lib_error = f"libqpdf not usable: {exc}"
            return None
        _lib = lib
        return _lib


def available() -> bool:
    return _load() is not None


def check_file(path: str) -> tuple[int, str]:
    """``qpdf --check path`` in this process: (exit code, everything it printed)."""
    lib = _load()
    if lib is None:
        raise RuntimeError(_lib_error or "libqpdf not usable")
    out: list[bytes] = []

    def _collect(data: int | None, length: int, _udata: int | None) -> int:
        if data and length:
            out.append(ctypes.string_at(data, min(length, 65536)))
        return 0

    handler = _LOG_FN(_collect)  # kept alive until the job is cleaned up
    argv = (ctypes.c_char_p * 4)(b"qpdf", b"--check", path.encode(), None)
    with _run_lock:
        logger = ctypes.c_void_p(lib.qpdflogger_create())
        job = ctypes.c_void_p(lib.qpdfjob_init())
        try:
            for setter in (lib.qpdflogger_set_info, lib.qpdflogger_set_warn, lib.qpdflogger_set_error):
                setter(logger, _LOG_DEST_CUSTOM, handler, None)
            lib.qpdfjob_set_logger(job, logger)
            code = lib.qpdfjob_initialize_from_argv(job, argv)
            if code == 0:
                code = lib.qpdfjob_run(job)
        finally:
            lib.qpdfjob_cleanup(ctypes.byref(job))
            lib.qpdflogger_cleanup(ctypes.byref(logger))
    return code, b"".join(out)[:65536].decode("utf-8", "replace")


# --- A long-lived checker process (outside the sandbox) ---------------------------------------------------
#
# Outside the sandbox the check must not run in the caller's process (a qpdf crash or hang on hostile input
# would take the sealing worker with it), so it used to start the ``qpdf`` binary per document. Most of that
# cost is starting the process, not checking: ~400 page faults and dynamic linking of libqpdf, libstdc++ and
# gnutls, ~5-7 ms of CPU per sealed document on these VMs (and invisible in the serve worker's own CPU
# figure). A checker is this file run as a script by the same interpreter (``python -I``: the standard
# library only, not the ``signer`` package), answering ``qpdf --check`` for one file path at a time through
# libqpdf's job API, the same job the binary runs. A crash or hang still costs only that child: a hang is
# killed at the caller's timeout, a crash reads as the binary's would (its signal as a negative exit code),
# and either way the child is replaced. Each child serves at most ``CHECKER_USES`` documents, then a new one
# starts.

CHECKER_USES = 500
CHECKER_IDLE_MAX = 4  # checkers kept per process (a serve worker seals on 4 threads)


class Checker:
    """One checker child; :meth:`start` sends a path, :meth:`finish` reads its answer (or kills it)."""

    def __init__(self) -> None:
        import subprocess
        import sys

        self.proc = subprocess.Popen(  # noqa: S603 - this file, by this interpreter, no shell
            [sys.executable, "-I", __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.uses = 0
        self.healthy = True

    def start(self, path: str) -> None:
        assert self.proc.stdin is not None
        self.uses += 1
        try:
            self.proc.stdin.write(path.encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:  # it died: finish() reads the end of the pipe and the exit code
            self.healthy = False

    def finish(self, timeout_s: float) -> tuple[int, str] | None:
        """(exit code, output) as the binary gives them, or ``None`` if the check ran out of time."""
        import os
        import select
        import time

        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        buf = b""
        need: int | None = None
        head = code = 0
        while need is None or len(buf) < head + need:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.kill()
                return None
            chunk = os.read(fd, 65536 + 64)
            if not chunk:  # the child died (a crash): its signal, as the binary's exit code would show
                self.healthy = False
                try:
                    code = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 - it does not go away: kill it, report the time-out
                    self.kill()
                    return None
                return (code or 2), buf.decode("utf-8", "replace")
            buf += chunk
            if need is None and b"\n" in buf:
                line, _, _ = buf.partition(b"\n")
                code_s, need_s = line.split()
                code, need, head = int(code_s), int(need_s), len(line) + 1
        return code, buf[head : head + need].decode("utf-8", "replace")

    def kill(self) -> None:
        self.healthy = False
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


_idle: list[Checker] = []
_idle_lock = threading.Lock()
_idle_pid = 0


def acquire_checker() -> Checker:
    """A checker ready for one document (an idle one, or a new child)."""
    import os

    global _idle_pid
    with _idle_lock:
        if _idle_pid != os.getpid():  # a forked child: the parent's checkers are not its own
            _idle.clear()
            _idle_pid = os.getpid()
        while _idle:
            checker = _idle.pop()
            if checker.proc.poll() is None:
                return checker
    return Checker()


def release_checker(checker: Checker) -> None:
    """Back to the idle list after a complete answer; retired when worn out, unhealthy or surplus."""
    import os

    if checker.healthy and checker.uses < CHECKER_USES and checker.proc.poll() is None:
        with _idle_lock:
            if _idle_pid == os.getpid() and len(_idle) < CHECKER_IDLE_MAX:
                _idle.append(checker)
                return
    retire(checker)


def retire(checker: Checker) -> None:
    """Kill it: a checker keeps nothing worth a graceful end, and a forked child of this process (the
    verification sandbox) may hold its stdin open, so waiting for it to read EOF could wait a long time."""
    checker.kill()


def _serve() -> None:
    """The checker child: a path per line in, ``<code> <length>\\n<output>`` out."""
    import sys

    inp, out = sys.stdin.buffer, sys.stdout.buffer
    for line in inp:
        try:
            code, text = check_file(line.rstrip(b"\n").decode())
        except RuntimeError as exc:  # libqpdf not usable here: said as the binary says a missing file
            code, text = 2, f"qpdf: {exc}"
        data = text.encode("utf-8", "replace")
        out.write(b"%d %d\n" % (code, len(data)) + data)
        out.flush()


if __name__ == "__main__":
    _serve()
