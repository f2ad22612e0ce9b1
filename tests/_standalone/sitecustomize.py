"""Guard for the test run: nothing may read beside the checkout (issue 20).

The test session (tests/conftest.py) installs the same hook in its own process and puts this folder on the
``PYTHONPATH`` of every Python process a test starts (``yizhang`` CLIs, ``yizhang serve`` and its workers), so
a child that opens a file under the forbidden folder fails there, and the attempt is written to the log the
session checks at its end (an ``except Exception`` somewhere cannot hide it). Inert when the variables are
unset. Standard library only; this folder holds nothing else, so it adds no importable module.
"""

from __future__ import annotations

import os
import sys


class ReadOutsideRepository(RuntimeError):
    """A file beside the checkout was opened: the product and its tests must stand alone."""


def install(forbidden: str, log: str) -> None:
    """Refuse opening or listing anything under ``forbidden`` in this process; log each attempt in ``log``."""
    root = os.path.normpath(forbidden)
    prefix = root + os.sep
    name = os.path.basename(root)

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event not in ("open", "os.listdir", "os.scandir") or not args:
            return
        path = args[0]
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str) or name not in path:  # cheap test first: most opens are not near it
            return
        full = os.path.normpath(os.path.abspath(path))
        if full != root and not full.startswith(prefix):
            return
        try:
            with open(log, "a", encoding="utf-8") as fh:  # not under root: the hook does not fire on it
                fh.write(f"{os.getpid()} {event} {full} argv={sys.argv!r}\n")
        except OSError:
            pass
        raise ReadOutsideRepository(f"{event} {full}: the repository must not read beside the checkout")

    sys.addaudithook(hook)


_FORBIDDEN = os.environ.get("YIZHANG_TEST_FORBIDDEN_DIR")
_LOG = os.environ.get("YIZHANG_TEST_FORBIDDEN_LOG")
if _FORBIDDEN and _LOG:
    install(_FORBIDDEN, _LOG)
