"""`yizhang ledger ...` end to end on a SQLite home, and the auditor's SELECT-only PostgreSQL role."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import app
from core.db import make_engine, migrate, transaction
from core.settings import load_settings

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_fields: Any) -> Path:
    from ledger import Ledger, key_file_signer

    monkeypatch.setenv("YIZHANG_LOG_KEY_SOURCE", "file:")
    monkeypatch.delenv("YIZHANG_DATABASE_URL", raising=False)
    h = tmp_path / "home"
    settings = load_settings(h)
    migrate(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    lg = Ledger(engine, key_file_signer(settings))
    with transaction(engine) as s:
        lg.append_many(s, [(make_fields(i, applicant_name="张三"), f"k{i}") for i in range(25)])
    lg.close()
    engine.dispose()
    return h


def _run(*args: str) -> Any:
    return runner.invoke(app, ["ledger", *args])


def test_cli_round_trip(home: Path, tmp_path: Path) -> None:
    h = str(home)
    r = _run("checkpoint", "--home", h, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["size"] == 25
    assert (home / "secrets" / "log.key").stat().st_mode & 0o777 == 0o600
    vkey = (home / "ledger" / "log.vkey").read_text().strip()

    r = _run("vkey", "--home", h)
    assert r.exit_code == 0 and r.output.strip() == vkey
    r = _run("audit", "--home", h, "--json", "--deep")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert (report["ok"], report["size"], report["first_bad_index"], report["problems"]) == (
        True,
        25,
        None,
        [],
    )

    proof = tmp_path / "p.tlog-proof"
    assert _run("proof", "--index", "11", "--home", h, "--out", str(proof)).exit_code == 0
    r = _run("verify-proof", str(proof), "--vkey", vkey, "--json")  # offline: no home, no database
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["ok"] and out["index"] == 11 and out["entry"]["document_number"] == "兴审批〔2026〕12号"

    proof.write_text(proof.read_text().replace("index 11", "index 12"))
    r = _run("verify-proof", str(proof), "--vkey", vkey, "--json")
    assert (
        r.exit_code == 1 and json.loads(r.stdout.splitlines()[0])["error"]["code"] == "LEDGER_PROOF_INVALID"
    )

    r = _run("proof", "--index", "25", "--home", h, "--json")
    assert r.exit_code == 2 and "LEDGER_INDEX_OUT_OF_RANGE" in r.output

    export = tmp_path / "export"
    assert _run("export", "--out", str(export), "--home", h).exit_code == 0
    # the directory as an argument, as before --out (issue 23), still works; neither is a clear refusal
    assert _run("export", str(tmp_path / "export-old"), "--home", h).exit_code == 0
    assert (tmp_path / "export-old" / "entries.jsonl").read_text() == (export / "entries.jsonl").read_text()
    r = _run("export", "--home", h, "--json")
    assert r.exit_code == 2 and "ARGUMENTS_MISSING" in r.output
    assert len((export / "entries.jsonl").read_text().splitlines()) == 25
    assert "张三" not in (export / "entries.jsonl").read_text()
    r = _run("verify-export", str(export), "--vkey", vkey, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["ok"]
    lines = (export / "entries.jsonl").read_text().splitlines()
    del lines[3]
    (export / "entries.jsonl").write_text("\n".join(lines) + "\n")
    r = _run("verify-export", str(export), "--vkey", vkey, "--json")
    assert r.exit_code == 1 and json.loads(r.output)["first_bad_index"] == 3

    r = _run("usage", "--seal", "seal-360732-001", "--month", "2026-03", "--home", h, "--json")
    assert r.exit_code == 0 and len(json.loads(r.output)) == 25
    r = _run("usage", "--seal", "seal-360732-001", "--month", "2026-13", "--home", h)
    assert r.exit_code == 2


def test_cli_audit_on_a_read_only_sqlite_file(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    assert _run("checkpoint", "--home", str(home)).exit_code == 0
    copy = tmp_path / "ro" / "copy.db"
    copy.parent.mkdir()
    shutil.copy(home / "yizhang.db", copy)
    copy.chmod(0o444)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///file:{copy}?mode=ro&uri=true"
    r = _run("audit", "--home", str(home), "--database-url", url, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["size"] == 25
    r = _run("checkpoint", "--home", str(home), "--database-url", url, "--json")
    assert (
        r.exit_code == 1 and "LEDGER_DATABASE_UNAVAILABLE" in r.output
    )  # no writing through a read-only URL


def test_cli_audit_fails_on_a_foreign_key_and_without_a_key(home: Path, tmp_path: Path) -> None:
    from ledger import vkey_for

    h = str(home)
    assert _run("checkpoint", "--home", h).exit_code == 0
    stranger = vkey_for("127.0.0.1:8000/ledger", b"\x01" * 32)
    r = _run("audit", "--home", h, "--json", "--vkey", stranger)
    assert r.exit_code == 1
    assert json.loads(r.output)["problems"][0]["code"] == "LEDGER_CHECKPOINT_UNKNOWN_KEY"
    (home / "ledger" / "log.vkey").unlink()
    r = _run("audit", "--home", h, "--json")
    assert r.exit_code == 2 and "LEDGER_VKEY_MISSING" in r.output


@pytest.mark.postgres
def test_auditor_reads_with_a_select_only_role(
    pg_url: str, ledger_signer: Any, make_fields: Any, tmp_path: Path
) -> None:
    import psycopg

    from ledger import Ledger, export_ledger

    migrate(pg_url)
    engine = make_engine(pg_url)
    lg = Ledger(engine, ledger_signer)
    with transaction(engine) as s:
        lg.append_many(s, [(make_fields(i), f"k{i}") for i in range(12)])
    lg.checkpoint()

    role = f"yz_auditor_{uuid.uuid4().hex[:8]}"
    dbname = pg_url.rsplit("/", 1)[1]
    admin = "postgresql://" + pg_url.split("://", 1)[1]
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"CREATE ROLE {role} LOGIN")
        c.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO {role}')
        c.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        c.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    auditor_url = pg_url.replace("postgres@", f"{role}@", 1)
    ro = make_engine(auditor_url)
    try:
        reader = Ledger(ro, None, origin=lg.origin, verifiers=lg.verifiers)
        assert reader.audit().ok
        assert len(reader.usage("seal-360732-001", "2026-03")) == 12
        assert export_ledger(reader, tmp_path / "export")["size"] == 12
        with pytest.raises(Exception) as exc, transaction(ro) as s:
            lg_ro = Ledger(ro, ledger_signer)
            lg_ro.append(s, make_fields(99), "nope")
        assert "permission denied" in str(exc.value)
    finally:
        ro.dispose()
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
            c.execute(f"REVOKE ALL ON SCHEMA public FROM {role}")
            c.execute(f'REVOKE ALL ON DATABASE "{dbname}" FROM {role}')
            c.execute(f"DROP OWNED BY {role}")
            c.execute(f"DROP ROLE {role}")


def test_evidence_record_of_an_entry(home: Path, tmp_path: Path) -> None:
    """`ledger receipt --evidence` (issue 19 item 4b): none until a stamped checkpoint holds the entry; then
    the record names the stamp and the entry's proof against that checkpoint. The ledger stores tokens as
    opaque bytes (the TSA is the signer's business) but checks what they claim to cover."""
    from datetime import UTC, datetime, timedelta

    from core.errors import Conflict, LedgerIntegrityError
    from ledger import Ledger, origin_for, renewal_imprint, stamp_imprint, verify_receipt

    h = str(home)
    assert _run("checkpoint", "--home", h).exit_code == 0
    r = _run("receipt", "--index", "11", "--evidence", "--home", h, "--json")
    assert r.exit_code == 2 and "LEDGER_EVIDENCE_PENDING" in r.output, r.output

    settings = load_settings(home)
    engine = make_engine(settings.effective_database_url)
    lg = Ledger(engine, None, origin=origin_for(settings))
    cp = lg.latest_checkpoint()
    assert cp is not None
    now = datetime.now(UTC)
    facts = {"gen_time": now, "tsa_not_after": now + timedelta(days=1095)}
    with pytest.raises(LedgerIntegrityError) as bad:
        lg.add_stamp(cp.size, b"token-0", stamp_imprint(cp.note + "x"), **facts)
    assert bad.value.code == "LEDGER_STAMP_IMPRINT_MISMATCH"
    stamp = lg.add_stamp(cp.size, b"token-0", stamp_imprint(cp.note), **facts)
    with pytest.raises(Conflict) as twice:
        lg.add_stamp(cp.size, b"token-0", stamp_imprint(cp.note), **facts)
    assert twice.value.code == "LEDGER_STAMP_CONFLICT"
    renewal = lg.add_stamp(cp.size, b"token-1", renewal_imprint(b"token-0", cp.note), prev=stamp, **facts)
    assert [s.id for s in lg.evidence_chain(stamp)] == [stamp.id, renewal.id]
    assert [s.id for s in lg.chain_ends()] == [renewal.id]
    lg.close()
    engine.dispose()

    out = tmp_path / "evidence.json"
    r = _run("receipt", "--index", "11", "--evidence", "--home", h, "--out", str(out))
    assert r.exit_code == 0, r.output
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["format"] == "yizhang-evidence-record/1" and record["index"] == 11
    assert [(link["kind"], link["token"]) for link in record["chain"]] == [
        ("STAMP", "dG9rZW4tMA=="),
        ("RENEWAL", "dG9rZW4tMQ=="),
    ]
    assert record["chain"][0]["checkpoint"] == cp.note
    vkey = (home / "ledger" / "log.vkey").read_text().strip()
    from ledger import NoteVerifier

    assert verify_receipt(record["proof"], [NoteVerifier.from_vkey(vkey)]).checkpoint.size == cp.size
