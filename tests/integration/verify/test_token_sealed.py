"""The verifier on documents sealed by the sealing side: real SoftHSM token, county PKI, ledger, policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests._fixtures.signer import county_trust, seal_acceptance_notice
from tests.unit.verify import _factory as f
from verifier import Evidence, Indication, LedgerReceipt, VerifyLimits, verify_document

pytestmark = pytest.mark.softhsm


def _seal(sealer: Any, seal: Any, clerk: Any, level: str, key: str = "verify-0001") -> Any:
    return seal_acceptance_notice(sealer, seal, clerk, key=key, level=level)


_trust = county_trust


@pytest.mark.parametrize("level", ["B-T", "B-LTA"])
def test_token_sealed_document_passes_with_its_facts(
    sealer: Any,
    xingjiang_seal: Any,
    xingjiang_clerk: Any,
    county_pki: Any,
    ledger: Any,
    ledger_signer: Any,
    level: str,
) -> None:
    doc = _seal(sealer, xingjiang_seal, xingjiang_clerk, level)
    now = datetime.now(UTC) + timedelta(minutes=5)
    r = verify_document(doc.pdf, _trust(county_pki), now=now, limits=VerifyLimits())
    assert r.indication is Indication.TOTAL_PASSED, [
        (x.code, x.detail) for s in r.signatures for x in s.reasons
    ]
    facts = r.facts
    assert facts.township == "兴江乡" and facts.seal_id == xingjiang_seal.seal_id
    assert facts.kind == "TOWNSHIP_APPROVAL"
    assert facts.matter == "SX-002" and facts.stage == "ACCEPT" and facts.document_kind == "ACCEPTANCE_NOTICE"
    assert facts.document_number == doc.document_number
    assert r.signatures[0].cross_check == "agree"
    if level == "B-LTA":
        assert r.signatures[-1].kind == "doc_timestamp"

    # the ledger entry logged with the document, proven against a signed checkpoint
    receipt = LedgerReceipt.parse(ledger.receipt(doc.ledger_index).to_text().encode())
    ev = Evidence(receipt=receipt, log_public_key=ledger_signer.public_key, log_key_name=ledger_signer.name)
    r2 = verify_document(doc.pdf, _trust(county_pki), now=now, limits=VerifyLimits(), evidence=ev)
    assert r2.indication is Indication.TOTAL_PASSED, r2.codes
    assert r2.facts.ledger_index == doc.ledger_index and r2.facts.ledger_verified is True


def test_attacks_on_a_token_sealed_document(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, county_pki: Any
) -> None:
    doc = _seal(sealer, xingjiang_seal, xingjiang_clerk, "B-LTA", key="verify-attacks")
    now = datetime.now(UTC) + timedelta(minutes=5)
    trust = _trust(county_pki)
    fast = VerifyLimits(sandbox=False)
    for attack, codes in (
        (f.append_annotation, {"MODIFIED_AFTER_SIGNING"}),
        (f.append_font_swap, {"MODIFIED_AFTER_SIGNING"}),
        (f.append_orphan_update_with_broken_xref, {"XREF_INVALID", "STRUCTURE_INVALID"}),
        (lambda b: b + b"%junk\n", {"TRAILING_DATA"}),
    ):
        r = verify_document(attack(doc.pdf), trust, now=now, limits=fast)
        assert r.indication is Indication.TOTAL_FAILED, (attack, r.codes)
        assert codes & set(r.codes), (attack, r.codes)
    rogue = f.CountyCA(county="假县")
    twice = f.sign_pdf(
        doc.pdf, rogue, rogue.issue_seal(seal_id="ROGUE"), field_name="Rogue", timestamp_at=now
    )
    r = verify_document(twice, trust, now=now, limits=fast)
    assert r.indication is Indication.TOTAL_FAILED and "LATER_SIGNATURE_UNAUTHORISED" in r.codes


def test_seal_cancelled_after_sealing_keeps_the_document_valid(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, county_pki: Any, seal_registry: Any
) -> None:
    doc = _seal(sealer, xingjiang_seal, xingjiang_clerk, "B-T", key="verify-cancel")
    later = datetime.now(UTC) + timedelta(minutes=1)
    seal_registry.cancel(
        xingjiang_seal.seal_id, actor="县行政审批局-张三", approved_by="王乡长", reason="印章注销", now=later
    )
    trust = _trust(county_pki, crl_at=later + timedelta(minutes=2))  # the CRL published after cancelling
    r = verify_document(doc.pdf, trust, now=later + timedelta(minutes=5), limits=VerifyLimits(sandbox=False))
    assert r.indication is Indication.TOTAL_PASSED, r.codes
    assert "CERT_REVOKED_AFTER_SIGNING" in r.codes


def test_local_ledger_evidence_finds_the_entry_by_idempotency_key(
    sealer: Any,
    xingjiang_seal: Any,
    xingjiang_clerk: Any,
    county_pki: Any,
    ledger: Any,
    ledger_signer: Any,
    engine: Any,
    tmp_path: Any,
) -> None:
    from api._local_evidence import local_evidence
    from ledger import vkey_for

    doc = _seal(sealer, xingjiang_seal, xingjiang_clerk, "B-T", key="verify-local")
    ledger.checkpoint()
    vkey = tmp_path / "log.vkey"
    vkey.write_text(vkey_for(ledger_signer.name, ledger_signer.public_key))
    now = datetime.now(UTC) + timedelta(minutes=5)
    r = verify_document(
        doc.pdf, _trust(county_pki), now=now, limits=VerifyLimits(), evidence=local_evidence(engine, vkey)
    )
    assert r.indication is Indication.TOTAL_PASSED, r.codes
    assert r.facts.ledger_index == doc.ledger_index and r.facts.ledger_verified is True
    assert "LEDGER_NOT_CHECKED" not in r.codes


def test_county_attestation_passes_and_is_reported(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, seal_registry: Any, county_pki: Any
) -> None:
    from keystore import SealKind
    from policies import Actor, Role
    from signer import AttestRequest
    from tests._fixtures.keystore import FIXED_NOW

    sealed = _seal(sealer, xingjiang_seal, xingjiang_clerk, "B-T", key="verify-attest")
    event = seal_registry.issue_seal(
        name="兴国县行政审批局行政审批专用章（20）",
        kind=SealKind.DEPARTMENT_NO2,
        number=20,
        township="兴国县行政审批局",
        township_code="360732-20",
        department="兴国县行政审批局",
        department_code="县行政审批局",
        custodian="局保管员",
        requested_by="兴国县行政审批局",
        approved_by="局长",
        actor="县行政审批局-张三",
        now=FIXED_NOW,
    )
    seal_registry.activate(event.seal_id, actor="县行政审批局-张三", approved_by="局长", now=FIXED_NOW)
    officer = Actor(user_id="bureau-zhao", role=Role.DEPARTMENT_OFFICER, org_code="县行政审批局")
    attested = sealer.attest(
        AttestRequest(seal_id=event.seal_id, sealed_pdf=sealed.pdf, idempotency_key="att-v", operator=officer)
    )
    now = datetime.now(UTC) + timedelta(minutes=5)
    r = verify_document(attested.pdf, _trust(county_pki), now=now, limits=VerifyLimits())
    assert r.indication is Indication.TOTAL_PASSED, [
        (x.code, x.detail) for s in r.signatures for x in s.reasons
    ]
    assert r.facts.seal_id == xingjiang_seal.seal_id  # the township's seal stays the primary one
    assert r.facts.attested_by == ("兴国县行政审批局行政审批专用章（20）",)
    assert r.signatures[1].seal is not None and r.signatures[1].seal.number == 20


def test_delegation_at_signing_time_from_the_policy_store(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, county_pki: Any, policy_store: Any
) -> None:
    from dataclasses import replace

    from api._local_evidence import policy_delegation_lookup

    doc = _seal(sealer, xingjiang_seal, xingjiang_clerk, "B-T", key="verify-delegation")
    now = datetime.now(UTC) + timedelta(minutes=5)
    lookup = policy_delegation_lookup(policy_store)
    r = verify_document(
        doc.pdf,
        _trust(county_pki),
        now=now,
        limits=VerifyLimits(),
        evidence=Evidence(delegation_lookup=lookup),
    )
    assert r.indication is Indication.TOTAL_PASSED, r.codes
    first = r.signatures[0]
    assert first.seal is not None and first.binding is not None and first.signing_time is not None
    assert lookup(first.seal, first.binding, first.signing_time) is True
    # 兴江乡 may accept and review SX-002, not decide it; and nothing was delegated before the policies
    assert lookup(first.seal, replace(first.binding, stage="APPROVE"), first.signing_time) is False
    assert lookup(first.seal, replace(first.binding, matter="NO-SUCH"), first.signing_time) is False
    assert lookup(first.seal, first.binding, datetime(2000, 1, 1, tzinfo=UTC)) is False
