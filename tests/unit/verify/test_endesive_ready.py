"""The endesive cross-check is there on this machine, and for the reason the code gives (not by luck).

``verifier._endesive`` applies upstream oscrypto's fix of its libcrypto version pattern at import time.
These tests fail when the cross-check would silently become CROSS_CHECK_UNAVAILABLE in CI, and when an
oscrypto release no longer needs the fix (then remove it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from verifier import _endesive as endesive

ROOT = Path(__file__).resolve().parents[3]


def test_the_cross_check_is_available() -> None:
    assert endesive.prepare() is None, endesive.prepare()
    assert endesive.library() is not None


def test_installed_oscrypto_still_needs_the_version_fix() -> None:
    import oscrypto

    assert endesive.oscrypto_needs_fix(), (
        f"oscrypto {oscrypto.__version__} reads two-digit OpenSSL versions itself: "
        "remove install_oscrypto_fix from verifier/_endesive.py"
    )


def test_a_fresh_process_loads_the_system_libcrypto_through_the_fix() -> None:
    """Debian's "OpenSSL 3.0.19 …" is what oscrypto 1.3.0 alone cannot read; with the fix it comes first."""
    code = (
        "import json, oscrypto\n"
        "from verifier import _endesive as e\n"
        "why = e.prepare()\n"
        "from oscrypto._openssl import _libcrypto as lc\n"
        "print(json.dumps({'why': why, 'lib': e.library(), 'version': e._STATE.get('version'),"
        " 'info': list(map(str, lc.libcrypto_version_info))}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIZHANG_OSCRYPTO_")}
    cmd = [sys.executable, "-c", code]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["why"] is None, got
    assert "site-packages" not in got["lib"], got  # the system library, not a wheel's vendored copy
    major, minor, patch = (int(x) for x in got["info"][:3])
    assert f"{major}.{minor}.{patch}" in got["version"], got


def test_the_hook_changes_only_the_version_pattern() -> None:
    import importlib.machinery

    spec = importlib.machinery.PathFinder.find_spec(
        "oscrypto._openssl._libcrypto_ctypes", endesive._oscrypto_path()
    )
    assert spec is not None and spec.origin
    source = Path(spec.origin).read_text(encoding="utf-8")
    fixed = source.replace(endesive._OSCRYPTO_OLD_PATTERN, endesive._OSCRYPTO_NEW_PATTERN)
    changed = [(a, b) for a, b in zip(source.splitlines(), fixed.splitlines(), strict=True) if a != b]
    assert len(changed) == 1, changed
