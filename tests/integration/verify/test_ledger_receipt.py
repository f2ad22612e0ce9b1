"""The verifier's own proof and checkpoint code against receipts made by the real ledger (SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine

from tests._fixtures.ledger import MemorySigner, seal_signed_body
from verifier import BindingFacts, Evidence, LedgerReceipt
from verifier._evidence import check_evidence, entry_payload

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def receipts(sqlite_url: str):  # type: ignore[no-untyped-def]
    from core.db import migrate
    from ledger import EntryFields, EntryKind, Ledger

    migrate(sqlite_url)
    engine = create_engine(sqlite_url)
    signer = MemorySigner("yizhang.test/ledger")
    led = Ledger(engine, signer)
    from sqlalchemy.orm import Session

    with Session(engine) as s, s.begin():
        for n in range(5):
            fields = EntryFields(
                kind=EntryKind.SEAL_SIGNED,
                at=datetime(2026, 3, 1, 9, n, tzinfo=UTC),
                body=seal_signed_body(n),
            )
            led.append(s, fields, idempotency_key=f"idem-{n}")
    led.checkpoint()
    yield signer, [led.receipt(i).to_text() for i in range(5)], (engine, led)
    engine.dispose()


def test_every_ledger_receipt_verifies_here(receipts) -> None:  # type: ignore[no-untyped-def]
    signer, texts, _ = receipts
    for i, text in enumerate(texts):
        rec = LedgerReceipt.parse(text.encode())
        assert rec.index == i
        payload = entry_payload(rec.entry)
        assert payload is not None and payload["body"]["document_number"] == f"兴审批〔2026〕{i + 1}号"  # type: ignore[index]
        binding = BindingFacts(document_number=f"兴审批〔2026〕{i + 1}号")
        ev = Evidence(receipt=rec, log_public_key=signer.public_key, log_key_name=signer.name)
        reasons, facts = check_evidence(ev, binding, None, None, NOW)
        assert reasons == [] and facts["ledger_verified"] is True


def test_receipt_for_another_document_is_caught(receipts) -> None:  # type: ignore[no-untyped-def]
    signer, texts, _ = receipts
    rec = LedgerReceipt.parse(texts[2].encode())
    ev = Evidence(receipt=rec, log_public_key=signer.public_key, log_key_name=signer.name)
    reasons, _ = check_evidence(ev, BindingFacts(document_number="兴审批〔2026〕1号"), None, None, NOW)
    assert [r.code for r in reasons] == ["LEDGER_ENTRY_MISMATCH"]


def test_receipt_checked_against_the_wrong_log_key(receipts) -> None:  # type: ignore[no-untyped-def]
    _signer, texts, _ = receipts
    other = MemorySigner("yizhang.test/ledger")
    ev = Evidence(receipt=LedgerReceipt.parse(texts[0].encode()), log_public_key=other.public_key)
    reasons, _ = check_evidence(ev, None, None, None, NOW)
    assert [r.code for r in reasons] == ["CHECKPOINT_INVALID"]


def test_cli_verify_with_bundle_log_key_and_receipt(receipts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import json

    from sqlalchemy.orm import Session
    from typer.testing import CliRunner

    from api.cli import app
    from ledger import EntryFields, EntryKind, vkey_for
    from tests.unit.verify._factory import CountyCA, blank_pdf, sign_pdf
    from tests.unit.verify.conftest import SIGNED_AT
    from verifier import TrustList

    signer, texts, (engine, led) = receipts
    ca = CountyCA()
    crl = ca.crl_der(datetime(2026, 2, 28, tzinfo=UTC))
    pdf = sign_pdf(blank_pdf(), ca, ca.issue_seal(), timestamp_at=SIGNED_AT, crls=[crl])
    doc = tmp_path / "permit.pdf"
    doc.write_bytes(pdf)
    body = seal_signed_body(5, document_sha256=hashlib.sha256(pdf).hexdigest())
    with Session(engine) as s, s.begin():
        entry = led.append(s, EntryFields(kind=EntryKind.SEAL_SIGNED, at=SIGNED_AT, body=body), "idem-doc")
    led.checkpoint()
    bundle = {"format": "yizhang-verify-bundle/1", **TrustList(roots=(ca.root.der,)).to_bundle()}
    bundle["log_vkey"] = vkey_for(signer.name, signer.public_key)
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    (tmp_path / "receipt.txt").write_text(led.receipt(entry.index).to_text())
    args = ["verify", str(doc), "--bundle", str(tmp_path / "bundle.json"), "--json"]
    r = CliRunner().invoke(app, [*args, "--receipt", str(tmp_path / "receipt.txt")])
    assert r.exit_code == 0, r.output
    facts = json.loads(r.output)["facts"]
    assert facts["ledger_index"] == entry.index and facts["ledger_verified"] is True
    # a receipt for another document (its logged digest is not this file's)
    (tmp_path / "other.txt").write_text(texts[3])
    other = CliRunner().invoke(app, [*args, "--receipt", str(tmp_path / "other.txt")])
    assert other.exit_code == 1 and "LEDGER_ENTRY_MISMATCH" in other.output
    # a receipt whose index was edited
    (tmp_path / "bad.txt").write_text(
        led.receipt(entry.index).to_text().replace(f"index {entry.index}", "index 2")
    )
    bad = CliRunner().invoke(app, [*args, "--receipt", str(tmp_path / "bad.txt")])
    assert bad.exit_code == 1 and "LEDGER_PROOF_INVALID" in bad.output
