"""TrustList parsing, seal facts from keystore-shaped certificates, revocation at a point in time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.errors import BadInput
from tests.unit.verify import _factory as f
from verifier import TrustList
from verifier._trust import check_revocation, seal_facts


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def test_from_bytes_pem_many_der_and_crl(county: f.CountyCA, crl: bytes) -> None:
    other = f.CountyCA(county="于都县")
    crl_pem = x509.load_der_x509_crl(crl).public_bytes(serialization.Encoding.PEM)
    t = TrustList.from_bytes(_pem(county.root.der) + _pem(other.root.der) + crl_pem)
    assert t.roots == (county.root.der, other.root.der) and t.crls == (crl,)
    assert TrustList.from_bytes(county.root.der).roots == (county.root.der,)
    assert TrustList.from_bytes(crl).crls == (crl,)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"-----BEGIN NOTHING-----\n-----END NOTHING-----\n", "TRUST_EMPTY"),
        (b"\x30\x03\x02\x01\x00", "TRUST_CRL_INVALID"),
    ],
)
def test_from_bytes_rejects_junk(data: bytes, code: str) -> None:
    with pytest.raises(BadInput) as exc:
        TrustList.from_bytes(data)
    assert exc.value.code == code


def test_bundle_round_trip_and_merge(county: f.CountyCA, crl: bytes) -> None:
    t = TrustList(roots=(county.root.der,), intermediates=(county.issuing.der,), crls=(crl,))
    again = TrustList.from_bundle(t.to_bundle())
    assert again == t
    assert t.merged(again) == t


def test_from_url_requires_https() -> None:
    with pytest.raises(BadInput) as exc:
        TrustList.from_url("http://example.com/root.pem")
    assert exc.value.code == "TRUST_URL_INSECURE"


def test_seal_facts_from_keystore_seal_info(county: f.CountyCA) -> None:
    from keystore._model import SealKind
    from keystore._pki import SEAL_INFO_OID, SealInfo

    info = SealInfo(
        kind=SealKind.DEPARTMENT_NO2,
        number=17,
        county="兴国县",
        township="兴江乡",
        township_code="360732101",
        department="兴国县民政局",
        seal_id="S-17",
    )
    seal = county.issue_seal(
        name="兴国县民政局行政审批专用章（17）",
        township="兴江乡",
        seal_id="S-17",
        extra=[x509.UnrecognizedExtension(SEAL_INFO_OID, info.to_der())],
    )
    facts = seal_facts(seal.der)
    assert facts.kind == "DEPARTMENT_NO2" and facts.number == 17 and facts.township_code == "360732101"
    assert facts.extension["department"] == "兴国县民政局" and facts.seal_id == "S-17"


def test_seal_facts_survive_a_garbage_private_extension(county: f.CountyCA) -> None:
    from keystore._pki import SEAL_INFO_OID

    seal = county.issue_seal(
        seal_id="S-X", extra=[x509.UnrecognizedExtension(SEAL_INFO_OID, b"\x30\x80garbage")]
    )
    facts = seal_facts(seal.der)
    assert facts.seal_id == "S-X" and facts.kind is None


def test_revocation_at_a_point_in_time(county: f.CountyCA) -> None:
    seal = county.issue_seal(seal_id="S-R")
    stale = county.crl_der(datetime(2026, 1, 1, tzinfo=UTC))
    county.revoke(seal, datetime(2026, 4, 1, tzinfo=UTC))
    later = county.crl_der(datetime(2026, 5, 1, tzinfo=UTC))
    early = datetime(2026, 3, 1, tzinfo=UTC)
    late = datetime(2026, 4, 15, tzinfo=UTC)
    assert (
        check_revocation(seal.der, county.issuing.der, [later], early, time_proven=True).status
        == "revoked_after"
    )
    assert (
        check_revocation(seal.der, county.issuing.der, [later], late, time_proven=True).status
        == "revoked_before"
    )
    assert (
        check_revocation(seal.der, county.issuing.der, [later], late, time_proven=False).status
        == "revoked_no_poe"
    )
    # a CRL signed by someone else does not count
    rogue = f.CountyCA()
    assert check_revocation(
        seal.der, county.issuing.der, [rogue.crl_der(early)], early, time_proven=True
    ).status == ("unknown")
    # a CRL that was stale at the signing time does not speak for it
    stale = county.crl_der(datetime(2026, 1, 1, tzinfo=UTC))
    assert (
        check_revocation(seal.der, county.issuing.der, [stale], early, time_proven=True).status == "unknown"
    )


# -- suspension: certificateHold (issue 19) -------------------------------------------------------------
D = datetime(2026, 3, 1, tzinfo=UTC)


def _day(n: int) -> datetime:
    from datetime import timedelta

    return D + timedelta(days=n)


def _status(seal: f.Issued, county: f.CountyCA, crls: list[bytes], at: datetime, proven: bool = True) -> str:
    return check_revocation(seal.der, county.issuing.der, crls, at, time_proven=proven).status


def test_hold_leaves_earlier_signatures_valid_and_refuses_those_made_during_it(county: f.CountyCA) -> None:
    seal = county.issue_seal(seal_id="S-H")
    county.hold(seal, _day(10))
    during = county.crl_der(_day(12))
    # signed before the suspension: valid (told as information)
    assert _status(seal, county, [during], _day(5)) == "held_after"
    # signed while suspended: not valid, by the CRL issued after the signing time ...
    assert _status(seal, county, [during], _day(11)) == "held_before"
    # ... and by the CRL current at the signing time (the hold is taken to last while it is current)
    assert _status(seal, county, [during], _day(13)) == "held_before"
    # without a proven signing time a suspended seal proves nothing
    assert _status(seal, county, [during], _day(13), proven=False) == "held_no_poe"


def test_lifted_hold_no_longer_counts_after_it_ended(county: f.CountyCA) -> None:
    seal = county.issue_seal(seal_id="S-L")
    county.hold(seal, _day(10))
    during = county.crl_der(_day(12))
    county.release(seal)
    after = county.crl_der(_day(20))
    # signed after the hold was lifted: good, although an older CRL at hand still lists the hold
    assert _status(seal, county, [during, after], _day(21)) == "good"
    assert _status(seal, county, [after], _day(21)) == "good"
    # signed during the hold, shown the CRL issued during it: not valid
    assert _status(seal, county, [during, after], _day(11)) == "held_before"
    # signed between the last CRL with the hold and the first without: nobody can tell
    verdict = check_revocation(seal.der, county.issuing.der, [during, after], _day(15), time_proven=True)
    assert verdict.status == "unknown" and verdict.detail and "hold" in verdict.detail
    # before the hold: valid whichever CRLs are at hand
    assert _status(seal, county, [during, after], _day(5)) in {"held_after", "good"}


def test_hold_made_permanent_keeps_the_hold_date(county: f.CountyCA) -> None:
    from cryptography import x509

    seal = county.issue_seal(seal_id="S-P")
    county.hold(seal, _day(10))
    during = county.crl_der(_day(12))
    county.revoke(seal, _day(10), x509.ReasonFlags.cessation_of_operation)  # cancelled while suspended
    later = county.crl_der(_day(30))
    assert _status(seal, county, [during, later], _day(5)) == "revoked_after"
    assert _status(seal, county, [during, later], _day(11)) == "revoked_before"
    assert _status(seal, county, [later], _day(20)) == "revoked_before"


def test_hold_in_a_crl_signed_by_someone_else_does_not_count(county: f.CountyCA) -> None:
    seal = county.issue_seal(seal_id="S-R2")
    rogue = f.CountyCA()
    rogue.hold(seal, _day(10))
    assert _status(seal, county, [rogue.crl_der(_day(12)), county.crl_der(_day(12))], _day(11)) == "good"
