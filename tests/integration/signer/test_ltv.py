"""Long-term validation (issue 19, item 4) with an injected clock: TSA rotation, archive timestamp renewal
of stored documents, the verifier's proofs of existence, and the health report. Real token, both databases.

A B-LTA permit is sealed now (T). Its seal and TSA certificates end at T+3 years. Before: verified at
T+1500 d it was INDETERMINATE (the document timestamp's TSA certificate expired, nothing after it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests._fixtures.signer import seal_acceptance_notice

pytestmark = pytest.mark.softhsm

DAY = timedelta(days=1)


def _seal(sealer: Any, seal: Any, clerk: Any, key: str = "ltv-1") -> Any:
    return seal_acceptance_notice(sealer, seal, clerk, key=key)


def _verify_at(pdf: bytes, county_pki: Any, at: datetime) -> Any:
    """As a verifier in the county at ``at``: the county root and issuing CA, CRLs published then."""
    from cryptography.hazmat.primitives import serialization

    from verifier import TrustList, VerifyLimits, verify_document

    der = serialization.Encoding.DER
    trust = TrustList(
        roots=(county_pki.root_certificate.public_bytes(der),),
        intermediates=(county_pki.issuing_certificate.public_bytes(der),),
        crls=(county_pki.crl_der("issuing", now=at), county_pki.crl_der("root", now=at)),
    )
    return verify_document(pdf, trust, now=at, limits=VerifyLimits(sandbox=False))


def _codes(report: Any) -> set[str]:
    return {r.code for r in report.reasons} | {r.code for s in report.signatures for r in s.reasons}


def _renewer(sealer: Any, keystore: Any, county_pki: Any, engine: Any, at: datetime, **policy: Any) -> Any:
    from signer._ltv import LtvPolicy, LtvRenewer

    return LtvRenewer(engine, keystore, county_pki, LtvPolicy(**policy), clock=lambda: at, sealer=sealer)


def test_renewal_keeps_a_permit_verifiable_after_its_certificates_expired(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, keystore: Any, county_pki: Any, engine: Any
) -> None:
    from signer._ltv import tsa_identity_row

    done = _seal(sealer, xingjiang_seal, xingjiang_clerk)
    t = datetime.now(UTC)
    old_tsa = tsa_identity_row(engine)
    assert old_tsa is not None

    # T+400 d: nothing is due; the stored copy stays the document as sealed
    early = _renewer(sealer, keystore, county_pki, engine, t + 400 * DAY).run_round()
    assert early.rotated_to is None and early.renewed == [] and early.learned == 1
    assert sealer.sealed_pdf("ltv-1") == done.pdf
    assert _verify_at(done.pdf, county_pki, t + 400 * DAY).indication.name == "TOTAL_PASSED"

    # T+1000 d: the TSA certificate has < 365 days left -> rotated; the permit is due -> renewed
    at = t + 1000 * DAY
    result = _renewer(sealer, keystore, county_pki, engine, at).run_round()
    assert result.rotated_to is not None and result.renewed == [done.document_number]
    new_tsa = tsa_identity_row(engine)
    assert new_tsa is not None and new_tsa[0] == result.rotated_to and new_tsa[1] != old_tsa[1]
    assert sealer.county_tsa().identity.cert_der == new_tsa[1]  # the running sealer took the new TSA
    extended = sealer.sealed_pdf("ltv-1")
    assert extended is not None and extended.startswith(done.pdf) and len(extended) > len(done.pdf)
    # a second round in the same moment finds nothing to do
    again = _renewer(sealer, keystore, county_pki, engine, at).run_round()
    assert again.rotated_to is None and again.renewed == []

    # T+1500 d: seal and first TSA certificates expired; the extended copy passes, the original does not
    later = t + 1500 * DAY
    report = _verify_at(extended, county_pki, later)
    assert report.indication.name == "TOTAL_PASSED", _codes(report)
    assert "ARCHIVE_TIMESTAMP_POE" in _codes(report)
    original = _verify_at(done.pdf, county_pki, later)
    assert original.indication.name == "INDETERMINATE"
    assert "TIMESTAMP_EXPIRED_NO_POE" in _codes(original)


def test_health_reports_a_renewal_that_cannot_run_long_before_expiry(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, keystore: Any, county_pki: Any, engine: Any
) -> None:
    from signer._ltv import LtvPolicy, ltv_health

    _seal(sealer, xingjiang_seal, xingjiang_clerk)
    t = datetime.now(UTC)
    policy = LtvPolicy()
    assert ltv_health(engine, t + 10 * DAY, policy).problems == ()
    # T+800 d (the TSA certificate ends at T+1095 d), no round ran, the token is away
    health = ltv_health(engine, t + 800 * DAY, policy, token_ok=False)
    assert [p.code for p in health.problems] == ["LTV_TOKEN_UNAVAILABLE", "LTV_TSA_EXPIRING"]
    assert health.problems[1].details["days_left"] < 365

    # a round that may not rotate (window 30 d) while the permit is due: no successor TSA, at once
    at = t + 1000 * DAY
    result = _renewer(
        sealer, keystore, county_pki, engine, at, rotate_before=30 * DAY, renew_before=300 * DAY
    ).run_round()
    assert result.rotated_to is None and result.renewed == [] and result.skipped_no_successor == 1
    codes = [p.code for p in ltv_health(engine, at, policy).problems]
    assert codes == ["LTV_TSA_EXPIRING", "LTV_NO_SUCCESSOR_TSA"]
