"""Backup and restore of a demo home (SQLite database, SoftHSM token, secrets), as docs/reliability.md says.

Back up while idle: the database with SQLite's online backup API, the token directory, ``secrets/``,
``pki/`` and ``ledger/``. Then the original home is deleted (the machine is lost), the backup restored into a
new directory (``softhsm2.conf`` points at the new token directory), and: the restored ledger audits ok, its
latest checkpoint is the one taken before the backup, a new sealing continues the same number sequence, and
the next checkpoint is consistent with the old one (the audit checks every stored checkpoint against the
tree; the old one is still the root of the first N entries: no fork).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from ._home import ACCEPTANCE, DemoHome, _rows, check_invariants, make_demo

pytestmark = [pytest.mark.softhsm]

COPIED = ("softhsm", "secrets", "pki", "ledger", "trust")


def backup(home: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    src = sqlite3.connect(home / "yizhang.db")
    dst = sqlite3.connect(dest / "yizhang.db")
    try:
        src.backup(dst)  # a consistent copy even if a reader is active
    finally:
        dst.close()
        src.close()
    for name in COPIED:
        if (home / name).exists():
            shutil.copytree(home / name, dest / name, symlinks=False)
    shutil.copy2(home / "softhsm2.conf", dest / "softhsm2.conf")


def restore(backup_dir: Path, home: Path) -> None:
    shutil.copytree(backup_dir, home)
    (home / "secrets").chmod(0o700)
    conf = home / "softhsm2.conf"
    lines = [
        f"directories.tokendir = {home / 'softhsm' / 'tokens'}"
        if line.startswith("directories.tokendir")
        else line
        for line in conf.read_text().splitlines()
    ]
    conf.write_text("\n".join(lines) + "\n")


def _latest_checkpoint(url: str) -> tuple[int, bytes, str]:
    size, root, note = _rows(
        url, "SELECT size, root, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"
    )[0]
    return int(size), bytes(root), str(note)


def _numbers(url: str, sequence: str) -> list[int]:
    return [
        int(r[0]) for r in _rows(url, f"SELECT seq FROM sig_document_numbers WHERE sequence = '{sequence}'")
    ]


def test_backup_restore_continues_the_log_without_fork(tmp_path: Path) -> None:
    original = make_demo(tmp_path / "original", "")
    original.run("ledger", "checkpoint", "--json")
    before = _latest_checkpoint(original.url)
    report_before = original.audit()
    numbers_before = {
        seq: sorted(_numbers(original.url, seq))
        for (seq,) in _rows(original.url, "SELECT DISTINCT sequence FROM sig_document_numbers")
    }

    backup(original.home, tmp_path / "backup")
    shutil.rmtree(original.home)  # the machine is gone

    home = tmp_path / "restored"
    restore(tmp_path / "backup", home)
    restored = DemoHome(
        home=home,
        url=f"sqlite:///{home / 'yizhang.db'}",
        env={**original.env, "YIZHANG_HOME": str(home)},
        seals=original.seals,
        demo=original.demo,
    )
    report = restored.audit()
    assert report["size"] == report_before["size"] and report["root"] == report_before["root"]
    assert _latest_checkpoint(restored.url) == before

    township = "兴江乡"
    out = tmp_path / "after.pdf"
    data = tmp_path / "data.json"  # request data, not part of the backup
    data.write_text(json.dumps({**ACCEPTANCE, "issuer": f"兴国县{township}人民政府"}, ensure_ascii=False))
    result = json.loads(restored.run(*restored.sign_args(township, "after-restore-1", out, data)[:-2]).stdout)
    assert result["replayed"] is False
    (sequence,) = _rows(
        restored.url, "SELECT sequence FROM sig_document_numbers WHERE idempotency_key = 'after-restore-1'"
    )[0]
    assert sorted(_numbers(restored.url, sequence)) == [
        *numbers_before[sequence],
        len(numbers_before[sequence]) + 1,
    ]
    check_invariants(restored.url)

    restored.run("ledger", "checkpoint", "--json")
    after = _latest_checkpoint(restored.url)
    assert after[0] > before[0]
    report_after = restored.audit()  # checks every checkpoint, the old one included, against one tree
    assert report_after["checkpoints_checked"] >= 2
    # The old checkpoint is still there, unchanged, under the same log key.
    assert (
        _rows(restored.url, f"SELECT note FROM ledger_checkpoints WHERE size = {before[0]}")[0][0]
        == before[2]
    )
    assert before[2].splitlines()[0] == after[2].splitlines()[0]  # same origin line
