"""The install runbook cannot go stale (issue 20): docs/install.md's first day is run for real by a script.

``scripts/install-check.sh`` holds the runbook's commands between its ``>>> runbook`` and ``<<< runbook``
marks and runs them against a fresh home on loopback (here on a fresh PostgreSQL database and the embedded
SoftHSM token), then serves, logs the first administrator in and audits the ledger. The first test checks
that the block docs/install.md shows is exactly that one (less the script's own ``# check`` lines, with
``<seal_id>`` for ``"$SEAL_ID"``); the second runs the script.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "install-check.sh"
INSTALL_MD = REPO / "docs" / "install.md"


def _script_block() -> list[str]:
    text = SCRIPT.read_text(encoding="utf-8")
    block = text.split("# >>> runbook\n", 1)[1].split("# <<< runbook\n", 1)[0]
    return [
        line.replace('"$SEAL_ID"', "<seal_id>")
        for line in block.splitlines()
        if not line.rstrip().endswith("# check")
    ]


def _docs_block() -> list[str]:
    text = INSTALL_MD.read_text(encoding="utf-8")
    section = text.split("## 7. The first day", 1)[1]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found, "docs/install.md section 7 has no sh block"
    return found.group(1).splitlines()


def test_the_docs_show_the_script_runbook() -> None:
    script, docs = _script_block(), _docs_block()
    commands = [line for line in script if line.startswith("yizhang ")]
    assert len(commands) >= 10 and any("county init" in c for c in commands)
    assert docs == script


@pytest.mark.postgres
@pytest.mark.softhsm
@pytest.mark.slow
def test_the_install_check_script_runs_the_first_day(tmp_path: Path, pg_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SOFTHSM2_CONF", "YIZHANG_HOME", "VIRTUAL_ENV")}
    env["YIZHANG_DATABASE_URL"] = pg_url
    env["YIZHANG_VENV"] = str(Path(sys.executable).parent.parent)
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "check")],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=1200,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "install-check: admin logged in" in out and "install-check: ok" in out
    assert re.search(r"^ok: True", out, re.M), out[-2000:]
    assert (tmp_path / "check" / "home" / "softhsm2.conf").is_file()
    assert not (tmp_path / "check" / "home" / "yizhang.db").exists()  # the PostgreSQL database was used


def test_the_install_check_script_refuses_a_used_folder(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "something").write_text("x")
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "used")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "is not empty" in done.stderr
