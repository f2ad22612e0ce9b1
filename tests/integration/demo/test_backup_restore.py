"""``yizhang backup`` and ``yizhang restore`` on a demo home (issue 20: backups are a tested command).

A demo county is backed up; *after* the backup the original seals one more document. The backup is restored
into a new path: the restored home audits clean at the size the backup noted (the later document is not in
it), verifies a document sealed before the backup, and seals again with its own token, while the original
keeps its token configuration and still seals. Neither command overwrites anything, and a backup whose files
differ from its manifest is refused before anything is written. Run on SQLite (online backup API) and on
PostgreSQL (pg_dump / pg_restore).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]

YIZHANG = str(Path(sys.executable).parent / "yizhang")
TOWNSHIP = "兴江乡"
ACCEPTANCE = {
    "applicant": "刘某某",
    "submitted_date": "2026年3月1日",
    "date": "2026年3月5日",
    "matter_name": "临时救助",
    "issuer": f"兴国县{TOWNSHIP}人民政府",
}


def _yz(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([YIZHANG, *args], capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert done.returncode == 0, f"yizhang {args[:2]}: {done.stdout}\n{done.stderr}"
    return done


def _sign(env: dict[str, str], home: Path, seal_id: str, key: str, out: Path, data: Path) -> dict[str, Any]:
    done = _yz(
        env, "sign", "--seal", seal_id, "--matter", "SX-002", "--stage", "受理", "--kind", "受理通知书",
        "--template", "acceptance_notice", "--data", str(data), "--operator", "backup.test",
        "--idempotency-key", key, "--out", str(out), "--json", "--home", str(home),
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _audit(env: dict[str, str], home: Path) -> dict[str, Any]:
    done = _yz(env, "ledger", "audit", "--json", "--home", str(home), check=False)
    report: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"], report
    return report


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> tuple[str, str | None, str | None]:
    """(kind, the original's database URL, an empty one to restore into); None: the home's SQLite."""
    if request.param == "sqlite":
        return "sqlite", None, None
    original = request.getfixturevalue("pg_url")
    target = request.getfixturevalue("pg_url_2")
    return "postgresql", original, target


@pytest.fixture
def pg_url_2(pg_admin_url: str) -> Any:
    import uuid

    import psycopg

    name = f"yz_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{pg_admin_url.split('://', 1)[1].rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_restore_into_a_new_home(tmp_path: Path, database: tuple[str, str | None, str | None]) -> None:
    kind, original_url, target_url = database
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("YIZHANG_", "SOFTHSM2_CONF"))}
    env = dict(base_env)
    if original_url:
        env["YIZHANG_DATABASE_URL"] = original_url
    original = tmp_path / "original"
    demo = json.loads(_yz(env, "demo", "--home", str(original), "--json").stdout)
    seal_id = next(s["seal_id"] for s in demo["seals"] if s.get("township") == TOWNSHIP)
    earlier = next(Path(d["file"]) for d in demo["sealed"] if d["template"] == "acceptance_notice")
    data = tmp_path / "data.json"
    data.write_text(json.dumps(ACCEPTANCE, ensure_ascii=False), encoding="utf-8")
    conf_before = (original / "softhsm2.conf").read_bytes()

    backup = tmp_path / "backup"
    made = json.loads(_yz(env, "backup", str(backup), "--home", str(original), "--json").stdout)
    assert made["database"] == kind and made["token"] == "softhsm-files"
    size_at_backup = made["ledger"]["size"]
    assert size_at_backup == _audit(env, original)["size"]
    manifest = json.loads((backup / "manifest.json").read_text(encoding="utf-8"))
    assert any(f.startswith("home/softhsm/tokens/") for f in manifest["files"])
    assert "home/secrets/token.pin" in manifest["files"]
    assert not any(f.endswith((".lock", "-wal", "-shm")) for f in manifest["files"])

    # never overwrites a backup, never writes one into the home, never backs up what is not a home
    again = _yz(env, "backup", str(backup), "--home", str(original), "--json", check=False)
    assert again.returncode == 1 and json.loads(again.stdout)["error"]["code"] == "BACKUP_DESTINATION_EXISTS"
    inside = _yz(env, "backup", str(original / "b"), "--home", str(original), "--json", check=False)
    assert inside.returncode == 2 and json.loads(inside.stdout)["error"]["code"] == "BACKUP_INSIDE_HOME"
    (tmp_path / "not-a-home").mkdir()
    bare = _yz(
        env, "backup", str(tmp_path / "b2"), "--home", str(tmp_path / "not-a-home"), "--json", check=False
    )
    assert bare.returncode == 2 and json.loads(bare.stdout)["error"]["code"] == "HOME_NOT_INITIALISED"
    assert not (original / "b").exists() and not (tmp_path / "b2").exists()

    # the original goes on after the backup
    after = _sign(env, original, seal_id, "after-backup", tmp_path / "after-backup.pdf", data)
    assert after["replayed"] is False
    assert _audit(env, original)["size"] > size_at_backup

    # a tampered backup is refused before anything is written
    bad = tmp_path / "bad-backup"
    subprocess.run(["cp", "-a", str(backup), str(bad)], check=True)
    token_file = next(p for p in sorted((bad / "home" / "softhsm" / "tokens").rglob("*")) if p.is_file())
    token_file.write_bytes(token_file.read_bytes() + b"\0")
    refused = _yz(base_env, "restore", str(bad), "--into", str(tmp_path / "never"), "--json", check=False)
    assert refused.returncode == 2 and json.loads(refused.stdout)["error"]["code"] == "BACKUP_CORRUPT"
    assert not (tmp_path / "never").exists()

    restored = tmp_path / "restored"
    restore_args = ["restore", str(backup), "--into", str(restored), "--json"]
    if kind == "postgresql":  # a PostgreSQL backup needs an empty database of its own
        assert original_url is not None
        for extra, code in (([], "RESTORE_DATABASE_REQUIRED"), (["--database-url", original_url], None)):
            refused = _yz(base_env, *restore_args, *extra, check=False)
            error = json.loads(refused.stdout)["error"]["code"]
            assert error == (code or "RESTORE_DATABASE_NOT_EMPTY") and not restored.exists(), refused.stdout
    if target_url:
        restore_args += ["--database-url", target_url]
    out = json.loads(_yz(base_env, *restore_args).stdout)
    assert out["home"] == str(restored) and out["database"] == kind
    # never overwrites a home
    twice = _yz(base_env, *restore_args, check=False)
    assert twice.returncode == 1 and json.loads(twice.stdout)["error"]["code"] == "RESTORE_TARGET_EXISTS"

    env_restored = dict(base_env)
    if target_url:
        env_restored["YIZHANG_DATABASE_URL"] = target_url
    conf = (restored / "softhsm2.conf").read_text(encoding="utf-8")
    assert f"directories.tokendir = {restored / 'softhsm' / 'tokens'}" in conf
    assert str(original) not in conf
    assert (
        _audit(env_restored, restored)["size"] == size_at_backup
    )  # the backup's state, not the original's now

    verified = _yz(env_restored, "verify", str(earlier), "--home", str(restored), "--json", check=False)
    report = json.loads(verified.stdout)
    assert verified.returncode == 0 and report["indication"] == "TOTAL_PASSED", report

    signed = _sign(env_restored, restored, seal_id, "after-restore", tmp_path / "after-restore.pdf", data)
    assert signed["replayed"] is False
    _yz(env_restored, "ledger", "checkpoint", "--json", "--home", str(restored))
    assert _audit(env_restored, restored)["size"] > size_at_backup  # every checkpoint, old and new, checks
    again_verified = _yz(env_restored, "verify", str(tmp_path / "after-restore.pdf"), "--home", str(restored))
    assert again_verified.returncode == 0

    # the original keeps its own token and still seals
    assert (original / "softhsm2.conf").read_bytes() == conf_before
    still = _sign(env, original, seal_id, "original-after-restore", tmp_path / "original-2.pdf", data)
    assert still["replayed"] is False
    _audit(env, original)
