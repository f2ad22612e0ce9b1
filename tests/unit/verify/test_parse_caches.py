"""The verifier's per-worker parse caches (certificates and CRLs by DER in ``_verify_core``, certificates'
native form for endesive in ``_verify_endesive``) change how often bytes are parsed, never a verdict.

Each test runs documents that share certificates back to back in one thread, so the second verification
finds the first one's parsed objects: a verdict that leaked through a cache would show here."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from tests.unit.verify import _factory as f
from tests.unit.verify.conftest import FAST, NOW, SIGNED_AT
from verifier import Indication, TrustList, verify_document
from verifier import _core as core
from verifier import _endesive as endesive


def _verify(pdf: bytes, trust: TrustList):  # type: ignore[no-untyped-def]
    return verify_document(pdf, trust, now=NOW, limits=FAST)


def test_revocation_is_judged_afresh_with_warm_caches(county: f.CountyCA, trust: TrustList) -> None:
    seal = county.issue_seal(seal_id="SEAL-CACHE-REV")
    crl_then = county.crl_der(datetime(2026, 2, 28, tzinfo=UTC))
    doc = f.sign_pdf(f.blank_pdf(), county, seal, timestamp_at=SIGNED_AT, crls=[crl_then])
    assert _verify(doc, trust).indication is Indication.TOTAL_PASSED
    county.revoke(seal, datetime(2026, 2, 1, tzinfo=UTC))  # before the signing time
    crl_revoked = county.crl_der(datetime(2026, 5, 30, tzinfo=UTC))
    try:
        r = _verify(doc, TrustList(roots=trust.roots, crls=(crl_revoked,)))
        assert r.indication is Indication.TOTAL_FAILED, r.codes
        assert "CERT_REVOKED" in r.codes
    finally:
        county.revoked.pop(seal.cert.serial_number, None)
    # the same certificate objects again, without the revoking CRL: passes as before
    assert _verify(doc, trust).indication is Indication.TOTAL_PASSED


def test_a_broken_signature_fails_after_a_good_one_with_the_same_certificates(
    sealed: bytes, trust: TrustList
) -> None:
    import re

    assert _verify(sealed, trust).indication is Indication.TOTAL_PASSED
    m = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", sealed)
    assert m is not None
    o1, l1, o2, l2 = (int(g) for g in m.groups())
    flipped = bytearray(sealed)
    flipped[o2 + 20] ^= 0x01  # inside the signed range, after the signature container
    r = _verify(bytes(flipped), trust)
    assert r.indication is Indication.TOTAL_FAILED, r.codes
    # endesive, with the certificates' native form already cached, still sees the broken digest
    out = endesive.integrity(bytes(flipped), [(o1, l1, o2, l2)])
    assert isinstance(out, list) and out[0] is not None
    assert out[0][0] is False, out
    good = endesive.integrity(sealed, [(o1, l1, o2, l2)])
    assert isinstance(good, list) and good[0] is not None and good[0][0] is True, good


def test_cached_certificate_is_the_fresh_parse(county: f.CountyCA) -> None:
    from asn1crypto import x509

    der = county.issuing.der
    cached = core._parsed_asn1("cert", der)
    assert core._parsed_asn1("cert", der) is cached  # reused within a thread
    fresh = x509.Certificate.load(der)
    assert cached.native == fresh.native
    assert cached.issuer_serial == fresh.issuer_serial
    seen: list[object] = []
    t = threading.Thread(target=lambda: seen.append(core._parsed_asn1("cert", der)))
    t.start()
    t.join()
    assert seen and seen[0] is not cached  # another thread parses its own (asn1crypto is not thread-safe)


def test_concurrent_in_process_verifications_agree(sealed: bytes, trust: TrustList) -> None:
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda _: _verify(sealed, trust).indication, range(12)))
    assert results == [Indication.TOTAL_PASSED] * 12


def test_the_parse_table_is_bounded_by_bytes(county: f.CountyCA, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ders = [county.root.der, county.issuing.der, county.tsa.der]
    monkeypatch.setattr(core, "_PARSED_TOTAL_MAX_BYTES", max(len(d) for d in ders) + 1)
    monkeypatch.setattr(core, "_parsed", threading.local())
    for der in ders * 3:
        core._parsed_asn1("cert", der)
        assert core._parsed.size <= core._PARSED_TOTAL_MAX_BYTES
        assert len(core._parsed.table) == 1  # each newcomer emptied the table: never over the bound
