"""A copied home acts on its own token only (issue 20).

``softhsm2.conf`` in a home used to name the token directory by absolute path, so ``cp -a home copy`` and
``yizhang seal cancel ... --home copy`` destroyed the seal's key in the *original*, which still listed the
seal ACTIVE and then failed every signing with KEY_NOT_FOUND (a backup restored to a staging path would do
the same to production). Now the token directory is derived from the home at every open.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ._home import ACCEPTANCE, DemoHome, make_demo

pytestmark = [pytest.mark.softhsm]

TOWNSHIP = "兴江乡"


def _tokendir(home: Path) -> str:
    lines = (home / "softhsm2.conf").read_text(encoding="utf-8").splitlines()
    (line,) = [line for line in lines if line.startswith("directories.tokendir")]
    return line.split("=", 1)[1].strip()


def test_cancel_in_a_copy_leaves_the_original_signing(tmp_path: Path) -> None:
    original = make_demo(tmp_path / "original", "")  # the home's own SQLite database, as `run.sh` makes it
    seal_id = original.seals[TOWNSHIP]["seal_id"]
    conf_before = (original.home / "softhsm2.conf").read_bytes()

    subprocess.run(["cp", "-a", str(original.home), str(tmp_path / "copy")], check=True)
    copy = DemoHome(
        home=tmp_path / "copy",
        url=f"sqlite:///{tmp_path / 'copy' / 'yizhang.db'}",
        env={**original.env, "YIZHANG_HOME": str(tmp_path / "copy")},
        seals=original.seals,
        demo=original.demo,
    )
    cancel = ("seal", "cancel", seal_id, "--actor", "bureau", "--approved-by", "兴江乡人民政府")
    cancel += ("--reason", "test of a copy", "--json")
    cancelled = json.loads(copy.run(*cancel).stdout)
    assert cancelled["status"] == "CANCELLED"
    assert _tokendir(copy.home) == str(copy.home / "softhsm" / "tokens")

    data = tmp_path / "data.json"
    data.write_text(json.dumps({**ACCEPTANCE, "issuer": f"兴国县{TOWNSHIP}人民政府"}, ensure_ascii=False))
    # The copy's seal is cancelled: it never signs again ...
    args = copy.sign_args(TOWNSHIP, "copy-after-cancel", tmp_path / "c.pdf", data)[:-2]
    refused = copy.run(*args, check=False)
    assert refused.returncode != 0
    # ... and the original, untouched, still signs with that seal (before the fix: KEY_NOT_FOUND).
    out = tmp_path / "original-after.pdf"
    signed = original.run(*original.sign_args(TOWNSHIP, "original-after-copy", out, data)[:-2])
    assert json.loads(signed.stdout)["replayed"] is False and out.stat().st_size > 0
    listed = json.loads(original.run("seal", "show", seal_id, "--json").stdout)
    assert listed["status"] == "ACTIVE"
    assert (original.home / "softhsm2.conf").read_bytes() == conf_before
    assert _tokendir(original.home) == str(original.home / "softhsm" / "tokens")
    original.audit()
    copy.audit()
