"""KeystoreSigner encodes the CMS signed attributes once and parses them back (asn1crypto re-encodes a
built value on every dump): the bytes signed and embedded must be exactly pyHanko's own."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import x509 as asn1_x509
from asn1crypto.algos import SignedDigestAlgorithm
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko.sign.signers.pdf_signer import PdfCMSSignedAttributes
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signer._seal import KeystoreSigner, SealingKey
from tests.unit.verify.test_patches import _python_calls


def _cert(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey
) -> bytes:
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(issuer_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def chain() -> tuple[bytes, bytes]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    seal_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("兴国县电子印章CA", ca_key, "兴国县电子印章CA", ca_key)
    seal = _cert("兴国县兴江乡人民政府行政审批服务专用章", seal_key, "兴国县电子印章CA", ca_key)
    return seal, ca


def _plain(chain: tuple[bytes, bytes]) -> Signer:
    certs = [asn1_x509.Certificate.load(d) for d in chain]
    return Signer(
        signing_cert=certs[0],
        cert_registry=SimpleCertificateStore.from_certs(certs[1:]),
        signature_mechanism=SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
        embed_roots=True,
    )


def _ours(chain: tuple[bytes, bytes]) -> KeystoreSigner:
    key = SealingKey(key_label="k", algorithm="EC_P256", chain_der=chain, seal_name="章")
    return KeystoreSigner(keystore=None, key=key)


@pytest.mark.parametrize("use_pades", [True, False])
def test_signed_attributes_are_pyhankos_bytes(chain: tuple[bytes, bytes], use_pades: bool) -> None:
    ours, plain = _ours(chain), _plain(chain)
    settings = PdfCMSSignedAttributes(signing_time=datetime(2026, 3, 5, 8, 0, tzinfo=UTC))
    for n in range(3):  # the second and later signings take the ESS attribute from the signer's cache
        digest = hashlib.sha256(f"document {n}".encode()).digest()
        mine = asyncio.run(ours.signed_attrs(digest, "sha256", attr_settings=settings, use_pades=use_pades))
        theirs = asyncio.run(
            plain.signed_attrs(digest, "sha256", attr_settings=settings, use_pades=use_pades)
        )
        assert mine.dump() == theirs.dump()
        types = {a["type"].native for a in mine}
        assert {"content_type", "message_digest", "signing_certificate_v2"} <= types
        # the same attributes and values (built SET OF: insertion order; parsed: DER order)
        assert {a["type"].native: a["values"].native for a in mine} == {
            a["type"].native: a["values"].native for a in theirs
        }

        info_mine = ours.signer_info("sha256", mine, b"\x30\x06\x02\x01\x01\x02\x01\x01")
        info_theirs = plain.signer_info("sha256", theirs, b"\x30\x06\x02\x01\x01\x02\x01\x01")
        assert info_mine.dump() == info_theirs.dump()


def test_a_cached_attribute_belongs_to_its_signer(chain: tuple[bytes, bytes]) -> None:
    """Two seals, two signers: neither signs with the other's ESS certificate id."""
    other_key = ec.generate_private_key(ec.SECP256R1())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    other_chain = (
        _cert("梅窖镇人民政府行政审批服务专用章", other_key, "CA2", ca_key),
        _cert("CA2", ca_key, "CA2", ca_key),
    )
    digest = hashlib.sha256(b"x").digest()
    a, b = _ours(chain), _ours(other_chain)
    for _ in range(2):
        ess_a = {x["type"].native: x for x in asyncio.run(a.signed_attrs(digest, "sha256", use_pades=True))}
        ess_b = {x["type"].native: x for x in asyncio.run(b.signed_attrs(digest, "sha256", use_pades=True))}
        assert ess_a["signing_certificate_v2"].dump() != ess_b["signing_certificate_v2"].dump()
        cert_hash_a = ess_a["signing_certificate_v2"]["values"][0]["certs"][0]["cert_hash"].native
        assert cert_hash_a == hashlib.sha256(chain[0]).digest()


# --- the override's two dependencies on upstream (verifier/patches.py lists it) ---


def test_pyhanko_still_builds_signed_attributes_through_the_overridden_providers(
    chain: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``KeystoreSigner._signed_attr_providers`` overrides a private pyHanko method. If pyHanko stops
    calling it (renamed, inlined), the override is dead code and every signing re-encodes again: this
    fails then (the bytes test above would still pass)."""
    from signer import _seal

    assert "_signed_attr_providers" in vars(Signer), "pyHanko's Signer no longer has _signed_attr_providers"
    seen: list[str] = []
    original = _seal._FrozenAttribute.get_attribute

    async def counting(self, dry_run: bool = False):  # type: ignore[no-untyped-def]
        seen.append(str(getattr(self._inner, "attribute_type", "?")))
        return await original(self, dry_run=dry_run)

    monkeypatch.setattr(_seal._FrozenAttribute, "get_attribute", counting)
    asyncio.run(_ours(chain).signed_attrs(hashlib.sha256(b"x").digest(), "sha256", use_pades=True))
    assert "signing_certificate_v2" in seen, seen


def test_asn1crypto_still_reencodes_a_built_value_on_every_dump(chain: tuple[bytes, bytes]) -> None:
    """Why the override exists (wbond/asn1crypto#256: dumping a built SignedData re-encodes it every time):
    a value built from Python objects is encoded again on each ``dump()``; one parsed from bytes returns
    them. When asn1crypto caches the encoding of built values too, this fails: the override can go."""
    from asn1crypto import cms

    built = cms.CMSAttribute(
        {"type": "signing_time", "values": [cms.Time({"utc_time": datetime(2026, 3, 5, 8, 0, tzinfo=UTC)})]}
    )
    der = built.dump()
    parsed = cms.CMSAttribute.load(der)
    parsed.dump()
    assert parsed.dump() == der
    again_built = _python_calls(built.dump)
    again_parsed = _python_calls(parsed.dump)
    assert again_built >= 10 * max(again_parsed, 1), (again_built, again_parsed)
