"""The county PKI on a real token: chains, seal certificates, CRLs checked by cryptography and OpenSSL."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keystore import SEAL_INFO_OID, KeyAlgorithm, SealInfo, SealKind
from tests._fixtures.keystore import COUNTY_NAME, FIXED_NOW, issue_township_seal

ATTIME = str(int((FIXED_NOW + timedelta(hours=1)).timestamp()))


def _pem(path: Path, certs: list[x509.Certificate]) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def _openssl_verify(
    tmp_path: Path, root: Any, issuing: Any, leaf: Any, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "openssl",
            "verify",
            "-attime",
            ATTIME,
            "-CAfile",
            str(_pem(tmp_path / "root.pem", [root])),
            "-untrusted",
            str(_pem(tmp_path / "issuing.pem", [issuing])),
            *extra,
            str(_pem(tmp_path / "leaf.pem", [leaf])),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_ca_hierarchy_is_well_formed(county_pki: Any) -> None:
    root, issuing = county_pki.root_certificate, county_pki.issuing_certificate
    root.verify_directly_issued_by(root)
    issuing.verify_directly_issued_by(root)
    bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 1
    assert issuing.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    ku = issuing.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == COUNTY_NAME


def test_initialize_is_idempotent_and_refuses_another_county(county_pki: Any) -> None:
    from core.errors import Conflict
    from tests._fixtures.keystore import COUNTY_CODE

    before = county_pki.root_certificate.serial_number
    assert county_pki.initialize(COUNTY_CODE, COUNTY_NAME, now=FIXED_NOW) is False
    assert county_pki.root_certificate.serial_number == before
    with pytest.raises(Conflict) as err:
        county_pki.initialize("360700", "赣州市", now=FIXED_NOW)
    assert err.value.code == "COUNTY_MISMATCH"


def test_seal_certificate_carries_what_a_verifier_needs(seal_registry: Any, ks_settings: Any) -> None:
    seal = issue_township_seal(seal_registry)
    cert = x509.load_der_x509_certificate(seal.cert_der)
    subject = cert.subject
    assert (
        subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        == "兴国县兴江乡人民政府行政审批服务专用章"
    )
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == COUNTY_NAME
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)] == ["兴江乡"]
    assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == seal.seal_id
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_cert_sign
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp[0].full_name[0].value == f"{ks_settings.public_base_url}/pki/crl/issuing.crl"
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuing = seal_registry.pki.issuing_certificate
    assert (
        aki.key_identifier
        == issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    )
    ext = cert.extensions.get_extension_for_oid(SEAL_INFO_OID)
    assert not ext.critical
    info = SealInfo.from_certificate(cert)
    assert info == SealInfo(
        SealKind.TOWNSHIP_APPROVAL, None, COUNTY_NAME, "兴江乡", "360732100", None, seal.seal_id
    )
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= timedelta(days=3 * 365)


def test_no2_seal_certificate_names_department_and_number(seal_registry: Any) -> None:
    seal = issue_township_seal(
        seal_registry,
        name="兴国县民政局行政审批专用章（11）",
        kind=SealKind.DEPARTMENT_NO2,
        number=11,
        department="兴国县民政局",
        department_code="MZJ",
    )
    cert = x509.load_der_x509_certificate(seal.cert_der)
    ous = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert ous == ["兴江乡", "兴国县民政局"]
    info = SealInfo.from_certificate(cert)
    assert info is not None and info.kind is SealKind.DEPARTMENT_NO2 and info.number == 11
    assert info.department == "兴国县民政局"
    assert seal.department_code == "MZJ"
    # OpenSSL reads the private extension as an opaque DER SEQUENCE.
    text = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-text"],
        input=seal.cert_der,
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert SEAL_INFO_OID.dotted_string in text


def test_signature_through_keystore_verifies_against_certificate_p256(
    seal_registry: Any, keystore: Any
) -> None:
    seal = issue_township_seal(seal_registry)
    cert = x509.load_der_x509_certificate(seal.cert_der)
    data = b"%PDF-1.7 byte range"
    sig = keystore.sign(seal.key_label, data, seal.key_algorithm)
    pub = cert.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(sig, data, ec.ECDSA(hashes.SHA256()))


def test_rsa3072_seal_signature_verifies_and_chains(
    seal_registry: Any, keystore: Any, tmp_path: Path
) -> None:
    seal = issue_township_seal(seal_registry, algorithm=KeyAlgorithm.RSA_3072)
    cert = x509.load_der_x509_certificate(seal.cert_der)
    sig = keystore.sign(seal.key_label, b"decision", KeyAlgorithm.RSA_3072)
    cert.public_key().verify(sig, b"decision", padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg]
    pki = seal_registry.pki
    res = _openssl_verify(tmp_path, pki.root_certificate, pki.issuing_certificate, cert)
    assert res.returncode == 0, res.stdout + res.stderr


def test_seal_certificate_chains_to_the_county_root(seal_registry: Any, tmp_path: Path) -> None:
    seal = issue_township_seal(seal_registry)
    chain = [x509.load_der_x509_certificate(d) for d in seal_registry.chain_der(seal)]
    leaf, issuing, root = chain
    leaf.verify_directly_issued_by(issuing)
    issuing.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    res = _openssl_verify(tmp_path, root, issuing, leaf)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK" in res.stdout


def test_cancelled_seal_appears_in_the_next_crl(seal_registry: Any, ks_settings: Any, tmp_path: Path) -> None:
    pki = seal_registry.pki
    first = pki.publish_crl(now=FIXED_NOW)
    seal = issue_township_seal(seal_registry)
    keep = issue_township_seal(seal_registry, township="古龙岗镇", code="360732101")
    seal_registry.cancel(seal.seal_id, actor="张三", approved_by="王乡长", reason="乡镇撤并", now=FIXED_NOW)
    # the cancellation published the next CRL at once (issue 19), nobody had to run `crl publish`
    published = pki.published()
    assert published is not None
    assert published.issuing_crl == ks_settings.home_dir / "pki" / "crl" / "issuing.crl"
    assert published.issuing_crl_number == first.issuing_crl_number + 1
    crl = x509.load_der_x509_crl(published.issuing_crl.read_bytes())
    assert crl.is_signature_valid(pki.issuing_certificate.public_key())
    assert crl.next_update_utc is not None and crl.next_update_utc > crl.last_update_utc
    entry = crl.get_revoked_certificate_by_serial_number(seal.cert_serial)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        is x509.ReasonFlags.cessation_of_operation
    )
    assert crl.get_revoked_certificate_by_serial_number(keep.cert_serial) is None
    # OpenSSL agrees: the CRL verifies against the issuing CA and lists the serial ...
    out = subprocess.run(
        [
            "openssl",
            "crl",
            "-inform",
            "DER",
            "-in",
            str(published.issuing_crl),
            "-noout",
            "-text",
            "-CAfile",
            str(_pem(tmp_path / "issuing-only.pem", [pki.issuing_certificate])),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "verify OK" in out.stderr + out.stdout
    assert format(seal.cert_serial, "X") in out.stdout.replace(" ", "").upper()
    assert "Cessation Of Operation" in out.stdout
    # ... and path validation with CRL checking refuses the cancelled seal, accepts the other.
    crl_pem = tmp_path / "issuing.crl.pem"
    crl_pem.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    root_crl = x509.load_der_x509_crl(published.root_crl.read_bytes())
    assert root_crl.is_signature_valid(pki.root_certificate.public_key())
    root_crl_pem = tmp_path / "root.crl.pem"
    root_crl_pem.write_bytes(root_crl.public_bytes(serialization.Encoding.PEM))
    check = ("-crl_check_all", "-CRLfile", str(crl_pem), "-CRLfile", str(root_crl_pem))
    bad = _openssl_verify(
        tmp_path,
        pki.root_certificate,
        pki.issuing_certificate,
        x509.load_der_x509_certificate(seal.cert_der),
        *check,
    )
    assert bad.returncode != 0 and "revoked" in (bad.stdout + bad.stderr)
    good = _openssl_verify(
        tmp_path,
        pki.root_certificate,
        pki.issuing_certificate,
        x509.load_der_x509_certificate(keep.cert_der),
        *check,
    )
    assert good.returncode == 0, good.stdout + good.stderr


def test_tsa_certificate(county_pki: Any, keystore: Any) -> None:
    import uuid

    label = f"county-{uuid.uuid4().hex[:8]}"
    cert = county_pki.issue_tsa_cert(label, now=FIXED_NOW)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    cert.verify_directly_issued_by(county_pki.issuing_certificate)
    attrs = keystore.key_attributes(f"tsa:{label}")
    assert attrs["sensitive"] and not attrs["extractable"]
    sig = keystore.sign(f"tsa:{label}", b"tst")
    cert.public_key().verify(sig, b"tst", ec.ECDSA(hashes.SHA256()))
