"""``pip install .`` in a fresh virtualenv gives a working ``yizhang`` (issue 20, packaging).

A copy of the checkout (so the build leaves nothing in it) is installed into a new ``python -m venv`` with the
project's installer, uv (the version scripts/setup.sh and docs/install.md use; it reuses the machine's wheel
cache, so this takes seconds rather than pip's minutes), the way docs/install.md tells a county: only the
package's own declared dependencies (no dev extra), every version held to requirements.lock. Then, from
that virtualenv alone: ``yizhang --help`` answers and ``yizhang demo --home X`` builds a working demo
county (its catalogs are package data). A dependency imported but not declared fails the demo; one
declared but missing from the lock shows up as an unpinned distribution.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]

#: Not part of a release: working state of the checkout (same list as .gitignore, plus git itself).
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "var",
    "__pycache__",
    "*.pyc",
    ".*_cache",
    ".hypothesis",
    "test-output",
    "build",
    "*.egg-info",
    "node_modules",
    "out",
)
#: The dev extra's tools: a county's install must not carry them.
DEV_ONLY = {"pytest", "playwright", "mypy", "ruff", "hypothesis", "schemathesis", "import-linter"}


def _lock() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", (REPO / "requirements.lock").read_text(), re.M)
    return {_norm(name): version for name, version in pins}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _env() -> dict[str, str]:
    drop = ("SOFTHSM2_CONF", "YIZHANG_HOME", "VIRTUAL_ENV", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_install_into_a_fresh_virtualenv_gives_a_working_yizhang(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=NOT_SOURCE, symlinks=True)
    lock = _lock()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in sorted(lock.items())))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    uv = Path(sys.executable).parent / "uv"
    installed = subprocess.run(
        [
            str(uv),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "--constraint",
            str(constraints),
            str(src),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr[-4000:]

    frozen = subprocess.run(
        [str(uv), "pip", "freeze", "--python", str(venv / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
        timeout=120,
    ).stdout
    dists = {}
    for line in frozen.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            dists[_norm(name)] = version.strip()
    assert [line for line in frozen.splitlines() if line.startswith("yizhang")] == [
        f"yizhang @ {src.as_uri()}"
    ]
    assert "pyhanko" in dists and "fastapi-offline" in dists and "python-pkcs11" in dists
    unpinned = {n: v for n, v in dists.items() if lock.get(n) != v}
    assert unpinned == {}, f"installed but not at the version in requirements.lock: {unpinned}"
    assert DEV_ONLY.isdisjoint(dists), DEV_ONLY & set(dists)

    yizhang = venv / "bin" / "yizhang"
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import api, policies; print(api.__file__)"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert where.stdout.strip().startswith(str(venv)), where  # the venv's copy, not the checkout's
    helped = subprocess.run(
        [str(yizhang), "--help"], capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120
    )
    assert helped.returncode == 0, helped.stderr
    assert "demo" in helped.stdout and "serve" in helped.stdout

    home = tmp_path / "home"
    demo = subprocess.run(
        [str(yizhang), "demo", "--home", str(home), "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr[-4000:]
    summary = json.loads(demo.stdout)
    assert len(summary["seals"]) >= 4
    audited = subprocess.run(
        [str(yizhang), "ledger", "audit", "--home", str(home), "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=300,
    )
    assert audited.returncode == 0, audited.stdout + audited.stderr
