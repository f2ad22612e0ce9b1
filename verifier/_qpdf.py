"""``qpdf --check`` without a new process: the qpdf CLI's own job code (``QPDFJob``) through libqpdf's C API.

The verifier's structural check used to start the ``qpdf`` binary for every document: a fork/exec, dynamic
linking of libqpdf and libstdc++, a temporary file — on these 2-core machines the largest single cost of a
strict verification. ``qpdfjob_run`` with argv ``qpdf --check FILE`` runs exactly what the binary runs (the
binary is a thin wrapper around the same job in the same library, Debian's ``libqpdf29``), and a custom
logger collects what it would have printed. Exit codes are the CLI's: 0 fine, 2 errors, 3 warnings only.

Hostile input: this runs inside the verification sandbox (a forked worker bounded by RLIMIT_AS and a wall
timeout that kills it), so a qpdf hang or crash costs that worker, not the service. Outside the sandbox the
caller uses the subprocess, which has its own timeout.
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
