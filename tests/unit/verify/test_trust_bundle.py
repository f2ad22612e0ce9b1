"""The signed trust bundle, its pin, where it may be fetched from, and whose evidence judges a seal (issue 19,
item 3). No I/O: a software root stands in for a county's token-held root."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.errors import BadInput
from verifier import Evidence, SealFacts
from verifier._counties import EvidenceRouter, ForeignCounty
from verifier._trust import (
    BUNDLE_SIGNATURE_ALG,
    TrustList,
    bundle_signed_bytes,
    check_bundle_signature,
    key_id_of,
    normalise_fingerprint,
    root_fingerprint,
    trust_url_allowed,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _root(name: str) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.DER)


def _signed(key: ec.EllipticCurvePrivateKey, root_der: bytes, **extra: Any) -> dict[str, Any]:
    bundle: dict[str, Any] = {"format": "yizhang-verify-bundle/1", "created_at": NOW.isoformat(), **extra}
    bundle.update(TrustList(roots=(root_der,)).to_bundle())
    value = key.sign(bundle_signed_bytes(bundle), ec.ECDSA(hashes.SHA256()))
    bundle["signature"] = {
        "alg": BUNDLE_SIGNATURE_ALG,
        "root_sha256": root_fingerprint(root_der),
        "value": base64.b64encode(value).decode(),
    }
    return bundle


def _code(exc: pytest.ExceptionInfo[BadInput]) -> str:
    return exc.value.code


def test_a_bundle_verifies_under_its_pinned_root_only() -> None:
    key, root = _root("甲县")
    bundle = _signed(key, root, county={"name": "甲县"})
    assert check_bundle_signature(bundle, root_fingerprint(root)) == root
    # another pin: the county re-made its root, or someone else's bundle came back
    _, other = _root("乙县")
    with pytest.raises(BadInput) as exc:
        check_bundle_signature(bundle, root_fingerprint(other))
    assert _code(exc) == "TRUST_ROOT_CHANGED"


def test_an_altered_or_foreign_signed_bundle_is_refused() -> None:
    key, root = _root("甲县")
    pin = root_fingerprint(root)
    altered = dict(_signed(key, root), next_update=(NOW + timedelta(days=400)).isoformat())
    with pytest.raises(BadInput) as exc:
        check_bundle_signature(altered, pin)
    assert _code(exc) == "TRUST_BUNDLE_SIGNATURE_INVALID"
    # signed by another key, naming this root
    forged = _signed(ec.generate_private_key(ec.SECP256R1()), root)
    with pytest.raises(BadInput) as exc:
        check_bundle_signature(forged, pin)
    assert _code(exc) == "TRUST_BUNDLE_SIGNATURE_INVALID"
    unsigned = {k: v for k, v in _signed(key, root).items() if k != "signature"}
    with pytest.raises(BadInput) as exc:
        check_bundle_signature(unsigned, pin)
    assert _code(exc) == "TRUST_BUNDLE_UNSIGNED"


def test_the_signed_bytes_do_not_depend_on_key_order_or_the_signature() -> None:
    a = {"b": [1, "乙"], "a": None, "signature": {"value": "x"}}
    b = {"a": None, "b": [1, "乙"]}
    assert bundle_signed_bytes(a) == bundle_signed_bytes(b) == '{"a":null,"b":[1,"乙"]}'.encode()


def test_fingerprints_as_people_copy_them() -> None:
    fp = "ab" * 32
    assert normalise_fingerprint(":".join(["AB"] * 32)) == fp
    assert normalise_fingerprint(f"sha256:{fp.upper()} ") == fp
    for bad in ("ab" * 31, "zz" * 32, ""):
        with pytest.raises(BadInput) as exc:
            normalise_fingerprint(bad)
        assert _code(exc) == "TRUST_FINGERPRINT_INVALID"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://seal.xingguo.gov.cn/pki/trust-bundle.json", True),
        ("https://10.0.0.8/pki/trust-bundle.json", True),  # https: the bundle is signed, TLS hides it
        ("http://127.0.0.1:8000/pki/trust-bundle.json", True),
        ("http://127.8.9.10/x", True),
        ("http://[::1]:8080/x", True),
        ("http://localhost:8000/x", True),
        ("http://seal.xingguo.gov.cn/pki/trust-bundle.json", False),
        ("http://10.0.0.8/x", False),
        ("http://127.0.0.1.example.net/x", False),  # the old prefix check let this through
        ("http://localhost.example.net/x", False),
        ("http://127.0.0.1@example.net/x", False),
        ("http://user:pw@127.0.0.1/x", False),
        ("http://[::ffff:10.0.0.1]/x", False),
        ("http://127.0.0.1:99999/x", False),
        ("ftp://127.0.0.1/x", False),
        ("file:///etc/passwd", False),
        ("127.0.0.1/x", False),
    ],
)
def test_which_urls_trust_may_be_fetched_from(url: str, allowed: bool) -> None:
    assert trust_url_allowed(url) is allowed


def _county(name: str, root: bytes, *, next_update: datetime | None, evidence: Evidence) -> ForeignCounty:
    return ForeignCounty(
        name=name,
        trust=TrustList(roots=(root,)),
        evidence=evidence,
        next_update=next_update,
        source=f"https://{name}.example/pki/trust-bundle.json",
    )


def _seal(issuer_key_id: str | None, issuer: str = "O=甲县") -> SealFacts:
    return SealFacts(subject="CN=seal", issuer=issuer, cert_serial_hex="1", issuer_key_id=issuer_key_id)


def test_each_seal_is_judged_by_the_evidence_of_the_county_that_issued_it() -> None:
    _, root_a = _root("甲县")
    _, root_b = _root("甲县")  # the same name: only the key tells them apart
    home, ev_a, ev_b = Evidence(log_key_name="home"), Evidence(log_key_name="a"), Evidence(log_key_name="b")
    router = EvidenceRouter(
        home=home,
        counties=(
            _county("a", root_a, next_update=NOW + timedelta(days=1), evidence=ev_a),
            _county("b", root_b, next_update=NOW + timedelta(days=1), evidence=ev_b),
        ),
    )
    assert router.for_seal(_seal(key_id_of(root_a)), NOW) == (ev_a, [])
    assert router.for_seal(_seal(key_id_of(root_b)), NOW) == (ev_b, [])
    assert router.for_seal(_seal("00" * 20), NOW) == (home, [])  # this county's own, or unknown
    assert router.for_seal(None, NOW) == (home, [])
    # a certificate without an authority key identifier: by name, only when one county has it
    assert router.for_seal(_seal(None), NOW) == (home, [])
    assert router.trust_list(TrustList.empty()).roots == (root_a, root_b)


def test_a_bundle_past_its_next_update_says_how_late_and_where_to_refresh() -> None:
    _, root = _root("甲县")
    county = _county("a", root, next_update=NOW, evidence=Evidence())
    router = EvidenceRouter(home=Evidence(), counties=(county,))
    _, none = router.for_seal(_seal(key_id_of(root)), NOW)
    assert none == []
    _, (stale,) = router.for_seal(_seal(key_id_of(root)), NOW + timedelta(days=2, hours=5, minutes=3))
    assert stale.code == "TRUST_BUNDLE_STALE" and stale.severity.value == "indeterminate"
    assert stale.detail is not None
    assert "2 d 5 h past its nextUpdate" in stale.detail
    assert "yizhang trust refresh a" in stale.detail and county.source in stale.detail
