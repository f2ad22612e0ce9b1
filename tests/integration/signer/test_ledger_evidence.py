"""The untouched original over time (issue 19 item 4b), with an injected clock: the ledger's checkpoints are
timestamped by the county TSA and re-anchored before that TSA's certificate expires; the evidence record of
a permit's entry then proves the file as sealed existed while its certificates were valid. Real token, real
TSA, both databases.

A B-LTA permit is sealed now (T). Its seal and TSA certificates end at T+3 years. Without the record, the
untouched original verified at T+1500 d is INDETERMINATE (TIMESTAMP_EXPIRED_NO_POE).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests._fixtures.signer import county_trust, seal_acceptance_notice

pytestmark = pytest.mark.softhsm

DAY = timedelta(days=1)


def _codes(report: Any) -> set[str]:
    return {r.code for r in report.reasons} | {r.code for s in report.signatures for r in s.reasons}


def _anchor(ledger: Any, keystore: Any, county_pki: Any, at: datetime, home: Any = None) -> Any:
    from signer._ledger_anchor import AnchorPolicy, LedgerAnchor

    return LedgerAnchor(ledger, keystore, county_pki, AnchorPolicy(), home=home, clock=lambda: at)


@dataclass
class Aged:
    t: datetime
    pdf: bytes
    index: int
    record: dict[str, Any]  # the evidence record fetched at T+1500 d
    other_pdf: bytes  # another permit, sealed the same day


@pytest.fixture
def aged(
    sealer: Any,
    xingjiang_seal: Any,
    xingjiang_clerk: Any,
    keystore: Any,
    county_pki: Any,
    engine: Any,
    ledger: Any,
) -> Aged:
    """T: two permits sealed. T+1 d: the daily stamp. T+1000 d: the TSA rotated (long-term validation
    round), the stamp renewed by the new TSA. The record is read at T+1500 d."""
    from signer._ledger_anchor import evidence_record
    from signer._ltv import LtvPolicy, LtvRenewer

    done = seal_acceptance_notice(sealer, xingjiang_seal, xingjiang_clerk, key="evidence-1")
    other = seal_acceptance_notice(sealer, xingjiang_seal, xingjiang_clerk, key="evidence-2")
    t = datetime.now(UTC)
    first = _anchor(ledger, keystore, county_pki, t + DAY).run_round()
    assert first.stamped is not None and first.renewed == []
    # the same day again: nothing to do
    assert _anchor(ledger, keystore, county_pki, t + DAY).run_round().stamped is None

    at = t + 1000 * DAY
    LtvRenewer(engine, keystore, county_pki, LtvPolicy(), clock=lambda: at, sealer=sealer).run_round()
    renewal = _anchor(ledger, keystore, county_pki, at).run_round()
    assert len(renewal.renewed) == 1, renewal.to_dict()
    # renewed once: a second round finds the chain's newest link far from expiry
    assert _anchor(ledger, keystore, county_pki, at + DAY).run_round().renewed == []

    index = done.ledger_index
    return Aged(t, done.pdf, index, evidence_record(ledger, index), other.pdf)


def _verify(pdf: bytes, record: dict[str, Any] | None, ledger: Any, pki: Any, at: datetime, **ev: Any) -> Any:
    """Out of the county at ``at``: the county's roots and CRLs of that day, its log key, the record."""
    from verifier import Evidence, EvidenceRecord, VerifyLimits, verify_document

    archive = EvidenceRecord.parse(json.dumps(record).encode()) if record is not None else None
    evidence = Evidence(
        receipt=archive.receipt if archive is not None else None,
        archive=archive,
        log_public_key=ledger.signer.public_key,
        log_key_name=ledger.signer.name,
        **ev,
    )
    return verify_document(
        pdf, county_trust(pki, crl_at=at), now=at, limits=VerifyLimits(sandbox=False), evidence=evidence
    )


def test_the_untouched_original_verifies_through_the_ledger_at_1500_days(
    aged: Aged, ledger: Any, county_pki: Any
) -> None:
    later = aged.t + 1500 * DAY
    chain = aged.record["chain"]
    assert aged.record["format"] == "yizhang-evidence-record/1"
    assert [link["kind"] for link in chain] == ["STAMP", "RENEWAL"]
    assert all(link["crls"] and link["certs"] for link in chain)

    report = _verify(aged.pdf, aged.record, ledger, county_pki, later)
    assert report.indication.name == "TOTAL_PASSED", _codes(report)
    (poe,) = [r for r in report.reasons if r.code == "EVIDENCE_RECORD_POE"]
    assert (aged.t + DAY).date().isoformat() in (poe.detail or "")
    assert report.facts.ledger_verified is True

    # without the record: what the original was before (nothing proves it existed in time)
    bare = _verify(aged.pdf, None, ledger, county_pki, later)
    assert bare.indication.name == "INDETERMINATE"
    assert "TIMESTAMP_EXPIRED_NO_POE" in _codes(bare)


def test_in_the_county_the_record_is_read_from_the_database(
    aged: Aged, ledger: Any, county_pki: Any, engine: Any, tmp_path: Any
) -> None:
    from api._local_evidence import local_evidence
    from ledger import vkey_for
    from verifier import VerifyLimits, verify_document

    vkey = tmp_path / "log.vkey"
    vkey.write_text(vkey_for(ledger.signer.name, ledger.signer.public_key) + "\n", encoding="utf-8")
    later = aged.t + 1500 * DAY
    report = verify_document(
        aged.pdf,
        county_trust(county_pki, crl_at=later),
        now=later,
        limits=VerifyLimits(sandbox=False),
        evidence=local_evidence(engine, vkey),
    )
    assert report.indication.name == "TOTAL_PASSED", _codes(report)
    assert "EVIDENCE_RECORD_POE" in _codes(report)


def _swap_token(record: dict[str, Any], link: int, token: str) -> dict[str, Any]:
    forged = json.loads(json.dumps(record))
    forged["chain"][link]["token"] = token
    return forged


def test_attacks_on_the_record_each_have_their_code(
    aged: Aged,
    ledger: Any,
    county_pki: Any,
    keystore: Any,
    engine: Any,
    make_fields: Any,
) -> None:
    from core.db import transaction
    from core.errors import SealServiceError
    from signer._ledger_anchor import evidence_record

    later = aged.t + 1500 * DAY
    # an entry logged after the last stamp has no record yet
    with transaction(engine) as session:
        late = ledger.append(session, make_fields(1), "evidence-late").index
    with pytest.raises(SealServiceError) as info:
        evidence_record(ledger, late)
    assert info.value.code == "LEDGER_EVIDENCE_PENDING"
    # the next day's round stamps the grown tree: a genuine stamp, over another checkpoint
    assert _anchor(ledger, keystore, county_pki, aged.t + 1001 * DAY).run_round().stamped == late + 1
    assert evidence_record(ledger, late)["chain"][0]["kind"] == "STAMP"
    newer = [s for s in ledger.stamps() if s.kind == "STAMP" and s.gen_time > aged.t + 2 * DAY]
    other_stamp = base64.b64encode(newer[0].tst_der).decode()
    cases = {
        "EVIDENCE_CHECKPOINT_MISMATCH": _swap_token(aged.record, 0, other_stamp),
        # a renewal that covers something else than the link before it
        "EVIDENCE_CHAIN_BROKEN": _swap_token(aged.record, 1, other_stamp),
        # no renewal: the stamp's TSA certificate expired at T+1095 d, judged now
        "EVIDENCE_LINK_EXPIRED": {**aged.record, "chain": aged.record["chain"][:1]},
    }
    for code, forged in cases.items():
        report = _verify(aged.pdf, forged, ledger, county_pki, later)
        assert report.indication.name != "TOTAL_PASSED", code
        assert code in _codes(report), (code, _codes(report))
        assert "EVIDENCE_RECORD_POE" not in _codes(report), code

    # another document with this record: its digest is not the entry's
    report = _verify(aged.other_pdf, aged.record, ledger, county_pki, later)
    assert report.indication.name == "TOTAL_FAILED", _codes(report)
    assert "LEDGER_ENTRY_MISMATCH" in _codes(report) and "EVIDENCE_RECORD_POE" not in _codes(report)

    # a revoked decision is still refused, the seal itself authentic
    report = _verify(aged.pdf, aged.record, ledger, county_pki, later, status_lookup=lambda _b: "revoked")
    assert report.indication.name == "TOTAL_FAILED" and "DECISION_REVOKED" in _codes(report)
    assert "EVIDENCE_RECORD_POE" in _codes(report)
    assert all(s.indication.name == "TOTAL_PASSED" for s in report.signatures)


def test_chain_links_are_judged_at_the_next_links_time(aged: Aged, ledger: Any, county_pki: Any) -> None:
    """verify_record with an injected clock: the stamp alone holds while its TSA certificate does; with the
    renewal it holds after; the renewal's own certificate ends in turn."""
    from verifier import EvidenceRecord, verify_record

    key, name = ledger.signer.public_key, ledger.signer.name
    full = EvidenceRecord.parse(json.dumps(aged.record).encode())
    stamp_only = EvidenceRecord.parse(json.dumps({**aged.record, "chain": aged.record["chain"][:1]}).encode())
    for record, at, poe in (
        (stamp_only, aged.t + 500 * DAY, True),
        (stamp_only, aged.t + 1200 * DAY, False),
        (full, aged.t + 1200 * DAY, True),
        (full, aged.t + 2000 * DAY, True),
        (full, aged.t + 5000 * DAY, False),  # the renewing TSA's certificate (3 years from T+1000 d) ended
    ):
        verdict = verify_record(record, county_trust(county_pki, crl_at=at), key, name, at)
        assert (verdict.poe is not None) is poe, (at - aged.t, [r.code for r in verdict.reasons])
        if poe:
            assert verdict.poe is not None and aged.t < verdict.poe <= aged.t + 2 * DAY
        else:
            assert [r.code for r in verdict.reasons] == ["EVIDENCE_LINK_EXPIRED"]


def test_health_says_when_stamping_stops_or_a_renewal_is_overdue(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, keystore: Any, county_pki: Any, ledger: Any
) -> None:
    from signer._ledger_anchor import evidence_health

    seal_acceptance_notice(sealer, xingjiang_seal, xingjiang_clerk, key="evidence-health")
    ledger.checkpoint()
    t = datetime.now(UTC)
    renew = 300 * DAY
    assert evidence_health(ledger.engine, t, renew, None).problems == ()
    # three days on, nothing stamped the checkpoint
    codes = [p.code for p in evidence_health(ledger.engine, t + 3 * DAY, renew, None).problems]
    assert codes == ["LTV_EVIDENCE_UNSTAMPED"]
    _anchor(ledger, keystore, county_pki, t + 3 * DAY).run_round()
    assert evidence_health(ledger.engine, t + 3 * DAY, renew, None).problems == ()
    # T+1000 d without a renewal round: the stamp's TSA certificate ends within half the window
    h = evidence_health(ledger.engine, t + 1000 * DAY, renew, None)
    assert [p.code for p in h.problems] == ["LTV_EVIDENCE_RENEWAL_OVERDUE"]
    assert h.chains_due == 1
