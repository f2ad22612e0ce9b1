"""A demo county on its own PostgreSQL database, and the invariants every crash or restore must keep.

Everything here talks to the service only through subprocesses (``yizhang ...``) and to the database
through psycopg: the pytest process never loads a SoftHSM configuration of its own (one per process).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[2]
YIZHANG = str(ROOT / ".venv" / "bin" / "yizhang")
DRIVER = str(Path(__file__).with_name("_sign_driver.py"))
PYTHON = sys.executable

ACCEPTANCE = {
    "applicant": "刘某某",
    "submitted_date": "2026年3月1日",
    "date": "2026年3月5日",
    "matter_name": "临时救助",
}


@dataclass
class DemoHome:
    home: Path
    url: str  # plain postgresql:// (psycopg) or sqlite:///...
    env: dict[str, str]
    seals: dict[str, dict[str, Any]]  # township name -> seal json of the demo
    demo: dict[str, Any]
    log: str = ""  # the demo's stdout and stderr

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [YIZHANG, *args, "--home", str(self.home)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"yizhang {args[:2]} exit {proc.returncode}: {proc.stdout}\n{proc.stderr}")
        return proc

    def audit(self) -> dict[str, Any]:
        proc = self.run("ledger", "audit", "--json", check=False)
        report = json.loads(proc.stdout)
        assert proc.returncode == 0 and report["ok"], report
        return report

    def sign_args(self, township: str, key: str, out: Path, data: Path) -> list[str]:
        seal = self.seals[township]
        return [
            "sign", "--seal", seal["seal_id"], "--matter", "SX-002", "--stage", "受理",
            "--kind", "受理通知书", "--template", "acceptance_notice", "--data", str(data),
            "--operator", "reliability.clerk", "--idempotency-key", key, "--out", str(out),
            "--json", "--home", str(self.home),
        ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for a started ``yizhang serve`` to answer ``/readyz`` 200 (a bound against hangs, not a timing
    assertion: up to ~5 minutes on a busy machine)."""
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("serve never became ready: " + log.read_text(errors="replace")[-3000:])


def new_pg_database(admin_url: str) -> str:
    name = f"yz_rel_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def drop_pg_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_demo(home: Path, url: str, extra_env: dict[str, str] | None = None) -> DemoHome:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YIZHANG_", "SOFTHSM2_CONF"))}
    env.update({"YIZHANG_HOME": str(home), **(extra_env or {})})
    if url:  # else the home's own SQLite database (``HOME/yizhang.db``)
        env["YIZHANG_DATABASE_URL"] = url
    proc = subprocess.run(
        [YIZHANG, "demo", "--home", str(home), "--json"], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    demo = json.loads(proc.stdout)
    seals = {s["township"]: s for s in demo["seals"] if s["kind"] == "TOWNSHIP_APPROVAL"}
    data = home / "acceptance.json"
    for township in seals:
        path = home / f"data-{township}.json"
        path.write_text(json.dumps({**ACCEPTANCE, "issuer": f"兴国县{township}人民政府"}, ensure_ascii=False))
    data.write_text(json.dumps(ACCEPTANCE, ensure_ascii=False))
    return DemoHome(
        home=home,
        url=url or f"sqlite:///{home / 'yizhang.db'}",
        env=env,
        seals=seals,
        demo=demo,
        log=proc.stdout + proc.stderr,
    )


# ---- invariants, read straight from the tables --------------------------------------------------------


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite:///"):
        import sqlite3

        lite = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return list(lite.execute(sql).fetchall())
        finally:
            lite.close()
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())


def ledger_bodies(url: str) -> list[tuple[int, str, str, dict[str, Any]]]:
    """(index, kind, ledger idempotency key, body) of every entry, decoded from its stored bytes.

    People and free text are salted commitments in the entry (issue 21): a clear value from
    ``ledger_personal`` is put back into the body only when it opens the entry's commitment, so a
    rewritten clear value is not trusted."""
    from ledger import commit_personal

    opened: dict[tuple[int, str], tuple[bytes, str]] = {
        (int(i), f): (bytes(salt), v)
        for i, f, salt, v in _rows(url, "SELECT entry_idx, field, salt, value FROM ledger_personal")
    }
    out = []
    for idx, kind, key, encoded in _rows(
        url, "SELECT idx, kind, idempotency_key, encoded FROM ledger_entries ORDER BY idx"
    ):
        payload = json.loads(bytes(encoded)[41:].decode("utf-8"))
        body = dict(payload["body"])
        for field, commitment in payload["personal"].items():
            clear = opened.get((int(idx), field))
            if clear is not None and commit_personal(clear[0], clear[1]) == commitment:
                body.setdefault(field, clear[1])
        out.append((idx, kind, key, body))
    return out


def check_invariants(url: str, open_keys: frozenset[str] = frozenset()) -> dict[str, int]:
    """No gap, no duplicate, no half-written row; returns counts (used, void, documents, entries).

    Every number is ``USED`` or ``VOID``, except numbers still ``RESERVED`` for one of ``open_keys`` (a
    signing killed before it settled, whose retry has not run yet): those have no ledger entry and no
    stored document.
    """
    entries = ledger_bodies(url)
    (head_size,) = _rows(url, "SELECT size FROM ledger_head")[0]
    assert head_size == len(entries), f"ledger_head.size {head_size} != {len(entries)} entries"
    assert [e[0] for e in entries] == list(range(len(entries))), "ledger indexes not contiguous"
    signed: dict[str, list[dict[str, Any]]] = {}
    voided: dict[str, int] = {}
    for _, kind, _, body in entries:
        if kind == "SEAL_SIGNED":
            signed.setdefault(body["document_number"], []).append(body)
        elif kind == "DOCUMENT_NUMBER_VOIDED":
            voided[body["document_number"]] = voided.get(body["document_number"], 0) + 1
    docs = {
        number: (key, sha, ledger_index)
        for key, number, sha, ledger_index in _rows(
            url, "SELECT idempotency_key, document_number, sha256, ledger_index FROM sig_documents"
        )
    }
    counters = dict(
        ((seq, year), last)
        for seq, year, last in _rows(url, "SELECT sequence, year, last_seq FROM sig_number_counters")
    )
    numbers = _rows(
        url, "SELECT sequence, year, seq, number, status, idempotency_key FROM sig_document_numbers"
    )
    by_seq: dict[tuple[str, int], list[int]] = {}
    used = void = 0
    for sequence, year, seq, number, status, _key in numbers:
        by_seq.setdefault((sequence, year), []).append(seq)
        if status == "USED":
            used += 1
            assert len(signed.get(number, [])) == 1, (
                f"{number} USED with {len(signed.get(number, []))} SEAL_SIGNED"
            )
            assert number in docs, f"{number} USED but no stored sealed document"
            assert signed[number][0]["document_sha256"] == docs[number][1], (
                f"{number}: ledger and store disagree"
            )
            assert number not in voided, f"{number} both USED and voided"
        elif status == "VOID":
            void += 1
            assert voided.get(number) == 1, (
                f"{number} VOID with {voided.get(number, 0)} DOCUMENT_NUMBER_VOIDED"
            )
            assert number not in signed, f"{number} VOID but signed"
        elif status == "RESERVED" and _key in open_keys:
            assert number not in signed and number not in voided, f"{number} RESERVED but logged"
            assert number not in docs, f"{number} RESERVED but stored"
        else:
            raise AssertionError(f"{number}: status {status} (key {_key})")
    assert set(by_seq) == set(counters), f"sequences {set(by_seq)} vs counters {set(counters)}"
    for key, seqs in by_seq.items():
        assert sorted(seqs) == list(range(1, counters[key] + 1)), f"{key}: gap or duplicate in {sorted(seqs)}"
    for number in signed:
        assert number in docs, f"SEAL_SIGNED {number} without a stored document"
    for number, (_key, _sha, ledger_index) in docs.items():
        if number is not None:
            assert number in signed, f"stored document {number} without SEAL_SIGNED"
            assert entries[ledger_index][3].get("document_number") == number, f"{number}: ledger_index wrong"
    return {"used": used, "void": void, "documents": len(docs), "entries": len(entries)}


def stored_sha(url: str, key: str) -> str | None:
    rows = _rows(url, f"SELECT sha256 FROM sig_documents WHERE idempotency_key = '{key}'")
    return rows[0][0] if rows else None


def signed_entries_for(url: str, key: str) -> int:
    rows = _rows(url, f"SELECT count(*) FROM ledger_entries WHERE idempotency_key = 'seal:{key}'")
    return int(rows[0][0])


VERIFY_DRIVER = str(Path(__file__).with_name("_verify_driver.py"))


def verify_stored(demo: DemoHome, numbers: set[str], out_dir: Path, timeout: float) -> dict[str, Any]:
    """Write the stored sealed PDFs of ``numbers`` into ``out_dir`` and verify them all in one subprocess
    (``_verify_driver.py``, the demo home's trust); returns its ``{checked, passed, ...}``."""
    out_dir.mkdir()
    for number, blob in _rows(demo.url, "SELECT document_number, sealed FROM sig_documents"):
        if number in numbers:
            (out_dir / f"{hashlib.sha256(number.encode()).hexdigest()[:16]}.pdf").write_bytes(bytes(blob))
    verified = subprocess.run(
        [PYTHON, VERIFY_DRIVER, str(demo.home), str(out_dir)],
        env=demo.env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr[-3000:]
    result: dict[str, Any] = json.loads(verified.stdout)
    return result


def stop_server(server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM a ``yizhang serve`` and wait; SIGKILL it if it has not exited after ``timeout``."""
    server.terminate()
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)
