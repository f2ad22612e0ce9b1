"""Ledger presence is a verdict (issue 18): when a ledger is at hand, a document it has no entry for fails.

Real SoftHSM token, county PKI and TSA, the sealing service and its ledger. The forgeries are made the way an
insider with the token would: the seal's own key through the keystore, the county's own timestamp, a binding
written like the service's, but not through the service, so no ledger entry. Without a ledger they verify
TOTAL_PASSED (the attack); with the deployment's ledger (in process, ``yizhang verify --home``,
``POST /v1/verify``) they are TOTAL_FAILED ``LEDGER_ENTRY_MISSING``. An entry newer than the latest checkpoint
the verifier holds is INDETERMINATE ``LEDGER_ENTRY_PENDING`` (TRY_LATER), never a pass and never a failure.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests._fixtures.signer import PERMIT_DATA, seal_acceptance_notice
from tests._fixtures.signer import county_trust as _trust
from verifier import Evidence, Indication, LedgerReceipt, SubIndication, VerifyLimits, verify_document

pytestmark = pytest.mark.softhsm
FAST = VerifyLimits(sandbox=False)


def _seal(sealer: Any, seal: Any, clerk: Any, key: str) -> Any:
    return seal_acceptance_notice(sealer, seal, clerk, key=key, level="B-T")


def _forge(
    seal: Any, registry: Any, keystore: Any, county_tsa: Any, binding: dict[str, Any], number: str
) -> bytes:
    """The seal's key through the keystore, the county TSA, the service's own sealing code: everything but
    the service (no policy decision, no document number, no ledger entry)."""
    from signer._seal import SealingKey, SealJob, SignatureLevel, seal_pdf
    from signer._templates import render_template
    from signer._tsa import CountyTimeStamper

    key = SealingKey(
        key_label=seal.key_label,
        algorithm=seal.key_algorithm.value,
        chain_der=tuple(registry.chain_der(seal)),
        seal_name=seal.name,
        seal_number=seal.number,
    )
    pdf = render_template("public_place_hygiene_permit", {**PERMIT_DATA, "document_number": number})
    job = SealJob(key=key, binding=binding, level=SignatureLevel.B_T)
    return seal_pdf(pdf, job, keystore, CountyTimeStamper(county_tsa), max_bytes=10**8)


def _binding(seal: Any, number: str, key: str) -> dict[str, Any]:
    return {
        "matter": "SX-002",
        "stage": "ACCEPT",
        "document_kind": "ACCEPTANCE_NOTICE",
        "document_number": number,
        "idempotency_key": key,
        "seal_id": seal.seal_id,
    }


def _vkey(settings: Any, ledger_signer: Any) -> Path:
    """Publish the log's verifier key in the home, as ``county init`` does."""
    from ledger import vkey_for, vkey_path

    path = vkey_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(vkey_for(ledger_signer.name, ledger_signer.public_key) + "\n")
    return path


def _codes(report: Any) -> set[str]:
    return set(report.codes)


def _cli(settings: Any, *args: str) -> Any:
    from api.cli import app

    env = {"YIZHANG_DATABASE_URL": settings.effective_database_url}
    return CliRunner().invoke(app, list(args), env=env)


def test_document_sealed_outside_the_service_fails_where_the_ledger_is_at_hand(
    sealer: Any,
    xingjiang_seal: Any,
    xingjiang_clerk: Any,
    seal_registry: Any,
    keystore: Any,
    county_tsa: Any,
    county_pki: Any,
    ledger: Any,
    ledger_signer: Any,
    engine: Any,
    ks_settings: Any,
    tmp_path: Path,
) -> None:
    from api._local_evidence import local_evidence

    genuine = _seal(sealer, xingjiang_seal, xingjiang_clerk, "ledger-genuine")
    ledger.checkpoint()
    forged = {
        # a number the county never drew, a key the service never saw
        "unknown": _forge(
            xingjiang_seal,
            seal_registry,
            keystore,
            county_tsa,
            _binding(xingjiang_seal, "兴江审批〔2026〕99号", "forged-99"),
            "兴江审批〔2026〕99号",
        ),
        # no binding at all: the entry is looked for by the file's digest too
        "unbound": _forge(xingjiang_seal, seal_registry, keystore, county_tsa, {}, "兴江审批〔2026〕98号"),
        # the binding of a real document: its entry is found, and logs another file
        "copied": _forge(
            xingjiang_seal,
            seal_registry,
            keystore,
            county_tsa,
            _binding(xingjiang_seal, genuine.document_number, "ledger-genuine"),
            genuine.document_number,
        ),
    }
    county_pki.publish_crl()
    now = datetime.now(UTC) + timedelta(minutes=5)
    trust = _trust(county_pki)
    evidence = local_evidence(engine, _vkey(ks_settings, ledger_signer))

    for name, pdf in forged.items():
        # the attack: without a ledger the forgery is a valid seal of this county
        plain = verify_document(pdf, trust, now=now, limits=FAST)
        assert plain.indication is Indication.TOTAL_PASSED, (name, plain.codes)
        r = verify_document(pdf, trust, now=now, limits=FAST, evidence=evidence)
        expected = "LEDGER_ENTRY_MISMATCH" if name == "copied" else "LEDGER_ENTRY_MISSING"
        assert r.indication is Indication.TOTAL_FAILED, (name, r.codes)
        assert r.sub_indication is SubIndication.SIG_CONSTRAINTS_FAILURE, (name, r.sub_indication)
        assert expected in _codes(r) and "LEDGER_NOT_CHECKED" not in _codes(r), (name, r.codes)
        assert r.facts.ledger_verified is False

    # (c) the genuine document, same ledger: passes, its entry proven
    r = verify_document(genuine.pdf, trust, now=now, limits=FAST, evidence=evidence)
    assert r.indication is Indication.TOTAL_PASSED, r.codes
    assert r.facts.ledger_index == genuine.ledger_index and r.facts.ledger_verified is True

    # yizhang verify --home: the deployment's own database and published log key
    doc = tmp_path / "forged.pdf"
    doc.write_bytes(forged["unknown"])
    out = _cli(ks_settings, "verify", str(doc), "--home", str(ks_settings.home_dir), "--json")
    assert out.exit_code == 1, out.output
    report = json.loads(out.output)
    assert report["indication"] == "TOTAL_FAILED"
    assert "LEDGER_ENTRY_MISSING" in {x["code"] for x in report["reasons"]}, out.output
    doc.write_bytes(genuine.pdf)
    out = _cli(ks_settings, "verify", str(doc), "--home", str(ks_settings.home_dir), "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["facts"]["ledger_verified"] is True


def test_deleted_entry_is_missing(
    sealer: Any,
    xingjiang_seal: Any,
    xingjiang_clerk: Any,
    county_pki: Any,
    ledger: Any,
    ledger_signer: Any,
    engine: Any,
    ks_settings: Any,
) -> None:
    """The entry and the sealed-document row removed from the database by an insider who first disabled the
    append-only guard (hiding a sealing): the ledger at hand no longer holds the document, so it fails (it
    passed with only a note before)."""
    from sqlalchemy import text

    from api._local_evidence import local_evidence

    doc = _seal(sealer, xingjiang_seal, xingjiang_clerk, "ledger-deleted")
    ledger.checkpoint()
    county_pki.publish_crl()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only"))
        else:
            conn.execute(text("DROP TRIGGER ledger_entries_no_delete"))
        conn.execute(text("DELETE FROM ledger_personal WHERE entry_idx = :i"), {"i": doc.ledger_index})
        conn.execute(text("DELETE FROM ledger_entries WHERE idx = :i"), {"i": doc.ledger_index})
        conn.execute(text("DELETE FROM sig_documents WHERE idempotency_key = 'ledger-deleted'"))
    now = datetime.now(UTC) + timedelta(minutes=5)
    evidence = local_evidence(engine, _vkey(ks_settings, ledger_signer))
    r = verify_document(doc.pdf, _trust(county_pki), now=now, limits=FAST, evidence=evidence)
    assert r.indication is Indication.TOTAL_FAILED and "LEDGER_ENTRY_MISSING" in _codes(r), r.codes


def test_post_v1_verify_judges_ledger_presence(
    sealer: Any,
    xingjiang_seal: Any,
    xingjiang_clerk: Any,
    seal_registry: Any,
    keystore: Any,
    county_tsa: Any,
    county_pki: Any,
    ks_settings: Any,
    tmp_path: Path,
) -> None:
    """The service's own verifier: a forgery fails; a document sealed a moment ago, whose entry no signed
    checkpoint covers yet, gets one from the service that owns the log and passes with its entry proven."""
    from starlette.testclient import TestClient

    from api.app import create_app

    genuine = _seal(sealer, xingjiang_seal, xingjiang_clerk, "ledger-api")
    forged = _forge(
        xingjiang_seal,
        seal_registry,
        keystore,
        county_tsa,
        _binding(xingjiang_seal, "兴江审批〔2026〕97号", "forged-97"),
        "兴江审批〔2026〕97号",
    )
    county_pki.publish_crl()
    settings = ks_settings.model_copy(
        update={"checkpoint_interval_s": 0, "log_key_source": f"file:{tmp_path / 'log.key'}"}
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:

        def verdict(pdf: bytes) -> tuple[str, set[str], dict[str, Any]]:
            r = c.post("/v1/verify", files={"file": ("d.pdf", pdf, "application/pdf")})
            assert r.status_code == 200, r.text
            body = r.json()
            return body["indication"], {x["code"] for x in body["reasons"]}, body

        assert c.get("/v1/public/checkpoint").status_code == 404  # no checkpoint yet
        # (a) the forgery
        indication, codes, body = verdict(forged)
        assert indication == "TOTAL_FAILED" and "LEDGER_ENTRY_MISSING" in codes, body
        # (b)+(c) pending at first, covered by the service, then proven
        indication, codes, body = verdict(genuine.pdf)
        assert indication == "TOTAL_PASSED", body
        assert body["facts"]["ledger_index"] == genuine.ledger_index
        assert body["facts"]["ledger_verified"] is True and "LEDGER_NOT_CHECKED" not in codes
        size = int(c.get("/v1/public/checkpoint").text.splitlines()[1])
        assert size > genuine.ledger_index


def test_entry_newer_than_the_checkpoint_at_hand_is_pending(
    sealer: Any,
    xingjiang_seal: Any,
    xingjiang_clerk: Any,
    county_pki: Any,
    ledger: Any,
    ledger_signer: Any,
    engine: Any,
    ks_settings: Any,
    tmp_path: Path,
) -> None:
    from api._local_evidence import local_evidence

    home = str(ks_settings.home_dir)
    _seal(sealer, xingjiang_seal, xingjiang_clerk, "ledger-before")
    ledger.checkpoint()
    county_pki.publish_crl()
    _vkey(ks_settings, ledger_signer)
    bundle = tmp_path / "bundle.json"
    made = _cli(ks_settings, "verify-bundle", "--out", str(bundle), "--home", home, "--json")
    assert made.exit_code == 0 and json.loads(made.output)["checkpoint"] is True, made.output
    assert json.loads(bundle.read_text())["checkpoint_at"]
    time.sleep(1.1)  # a timestamp's genTime is whole seconds: be sealed after the checkpoint's second
    doc = _seal(sealer, xingjiang_seal, xingjiang_clerk, "ledger-after")
    county_pki.publish_crl()
    now = datetime.now(UTC) + timedelta(minutes=5)

    # beside the service: the entry is there, the latest signed checkpoint is older
    evidence = local_evidence(engine, ks_settings.home_dir / "ledger" / "log.vkey")
    r = verify_document(doc.pdf, _trust(county_pki), now=now, limits=FAST, evidence=evidence)
    assert r.indication is Indication.INDETERMINATE and r.sub_indication is SubIndication.TRY_LATER, r.codes
    assert "LEDGER_ENTRY_PENDING" in _codes(r) and r.facts.ledger_index == doc.ledger_index

    # offline, with the bundle made before the document was sealed
    path = tmp_path / "permit.pdf"
    path.write_bytes(doc.pdf)
    out = _cli(ks_settings, "verify", str(path), "--bundle", str(bundle), "--json")
    assert out.exit_code == 1, out.output
    report = json.loads(out.output)
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "TRY_LATER"), out.output
    assert "LEDGER_ENTRY_PENDING" in {x["code"] for x in report["reasons"]}
    # the document's receipt (a newer checkpoint, signed by the log key) settles it
    receipt = tmp_path / "receipt.txt"
    receipt.write_text(ledger.receipt(doc.ledger_index).to_text())
    out = _cli(ks_settings, "verify", str(path), "--bundle", str(bundle), "--receipt", str(receipt), "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["facts"]["ledger_verified"] is True
    # and beside the service once the serve loop has signed a checkpoint covering it
    r = verify_document(doc.pdf, _trust(county_pki), now=now, limits=FAST, evidence=evidence)
    assert r.indication is Indication.TOTAL_PASSED and r.facts.ledger_verified is True, r.codes


def test_no_ledger_at_all_is_a_note(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, county_pki: Any, ledger: Any, ledger_signer: Any
) -> None:
    """(d) Nothing supplied: the verifier says it did not look, and the verdict does not change."""
    doc = _seal(sealer, xingjiang_seal, xingjiang_clerk, "ledger-none")
    county_pki.publish_crl()
    now = datetime.now(UTC) + timedelta(minutes=5)
    for evidence in (None, Evidence()):
        r = verify_document(doc.pdf, _trust(county_pki), now=now, limits=FAST, evidence=evidence)
        assert r.indication is Indication.TOTAL_PASSED, r.codes
        [note] = [x for x in r.reasons if x.code.startswith("LEDGER_") or x.code == "CHECKPOINT_INVALID"]
        assert note.code == "LEDGER_NOT_CHECKED" and note.severity.value == "info"
    # a receipt is still checked as before when it is all there is
    receipt = LedgerReceipt.parse(ledger.receipt(doc.ledger_index).to_text().encode())
    ev = Evidence(receipt=receipt, log_public_key=ledger_signer.public_key, log_key_name=ledger_signer.name)
    r = verify_document(doc.pdf, _trust(county_pki), now=now, limits=FAST, evidence=ev)
    assert r.indication is Indication.TOTAL_PASSED and r.facts.ledger_verified is True, r.codes
