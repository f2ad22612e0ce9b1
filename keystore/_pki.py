"""The county PKI: an offline-style root CA and an issuing CA, both keys in the token.

Certificates and CRLs are built with ``cryptography``'s builders and signed *by the token*: the builders
are handed a small private-key adapter whose ``sign()`` calls the keystore. No private key exists outside
the token, not even for a moment.

Seal certificates carry a private extension (``SEAL_INFO_OID``) so that a verifier in another county can read
the seal's kind and number without parsing names::

    SealInfo ::= SEQUENCE {
        version      INTEGER (1),
        kind         UTF8String,           -- "TOWNSHIP_APPROVAL" | "DEPARTMENT_NO2"
        number       [0] EXPLICIT INTEGER OPTIONAL,   -- 11..35 for No. 2 seals
        county       UTF8String,
        township     UTF8String,
        townshipCode UTF8String,
        department   [1] EXPLICIT UTF8String OPTIONAL,
        sealId       UTF8String }

The OID sits under ``2.25`` (ITU-T X.667 / RFC 4122: an arc derived from a UUID, needing no registration):
``2.25.312911024263882044097954148807347452500`` is the Yizhang arc, ``.1.1`` the SealInfo extension.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Self

from asn1crypto import core as asn1
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from core.db import transaction
from core.errors import BadInput, Conflict, KeystoreError, NotFound
from core.identity import (
    DeploymentIdentity,
    deployment_identity,
    identity_from_settings,
    origin_from,
    read_identity,
    store_identity,
)
from core.settings import Settings
from keystore._model import KeyAlgorithm, RevocationReason, SealKind
from keystore._storage import CaRow, CertificateRow
from keystore._token import Keystore, TokenPublicKey

if TYPE_CHECKING:  # names only annotations use (some are newer than the oldest cryptography allowed)
    from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding
    from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
    from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed
    from cryptography.utils import Buffer

YIZHANG_ARC = "2.25.312911024263882044097954148807347452500"
SEAL_INFO_OID = x509.ObjectIdentifier(f"{YIZHANG_ARC}.1.1")

ROOT = "root"
ISSUING = "issuing"
ROOT_VALIDITY = timedelta(days=20 * 365)
ISSUING_VALIDITY = timedelta(days=10 * 365)
DEFAULT_SEAL_VALIDITY_DAYS = 3 * 365
CRL_VALIDITY = timedelta(days=7)  # the default of settings.crl_validity_days
ROOT_CRL_VALIDITY = timedelta(days=90)
#: Nothing makes CRLs more often than this on its own schedule (a lifecycle change publishes at once).
MIN_REPUBLISH = timedelta(seconds=60)

log = logging.getLogger(__name__)
_BACKDATE = timedelta(minutes=5)  # tolerate clock skew at verifiers

_REASON_FLAGS = {
    RevocationReason.UNSPECIFIED: x509.ReasonFlags.unspecified,
    RevocationReason.KEY_COMPROMISE: x509.ReasonFlags.key_compromise,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.CESSATION_OF_OPERATION: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.CERTIFICATE_HOLD: x509.ReasonFlags.certificate_hold,
}


# -- the SealInfo extension ------------------------------------------------------------------------
class _SealInfoAsn1(asn1.Sequence):  # type: ignore[misc]  # asn1crypto ships no type hints
    _fields = [
        ("version", asn1.Integer),
        ("kind", asn1.UTF8String),
        ("number", asn1.Integer, {"explicit": 0, "optional": True}),
        ("county", asn1.UTF8String),
        ("township", asn1.UTF8String),
        ("township_code", asn1.UTF8String),
        ("department", asn1.UTF8String, {"explicit": 1, "optional": True}),
        ("seal_id", asn1.UTF8String),
    ]


@dataclass(frozen=True)
class SealInfo:
    kind: SealKind
    number: int | None
    county: str
    township: str
    township_code: str
    department: str | None
    seal_id: str

    def to_der(self) -> bytes:
        fields: dict[str, int | str] = {
            "version": 1,
            "kind": self.kind.value,
            "county": self.county,
            "township": self.township,
            "township_code": self.township_code,
            "seal_id": self.seal_id,
        }
        if self.number is not None:
            fields["number"] = self.number
        if self.department is not None:
            fields["department"] = self.department
        return bytes(_SealInfoAsn1(fields).dump(force=True))

    @classmethod
    def from_der(cls, der: bytes) -> SealInfo:
        parsed = _SealInfoAsn1.load(der, strict=True)
        native = parsed.native
        if native["version"] != 1:
            raise BadInput("SEAL_INFO_VERSION", f"unknown SealInfo version {native['version']}")
        return cls(
            kind=SealKind(native["kind"]),
            number=native["number"],
            county=native["county"],
            township=native["township"],
            township_code=native["township_code"],
            department=native["department"],
            seal_id=native["seal_id"],
        )

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> SealInfo | None:
        """The seal facts of a seal certificate, or None for a certificate without the extension."""
        try:
            ext = cert.extensions.get_extension_for_oid(SEAL_INFO_OID)
        except x509.ExtensionNotFound:
            return None
        value = ext.value
        assert isinstance(value, x509.UnrecognizedExtension)
        return cls.from_der(value.value)


# -- private-key adapters over the token ----------------------------------------------------------
def _hash_name(algorithm: object) -> str:
    if isinstance(algorithm, hashes.SHA256):
        return "sha256"
    if isinstance(algorithm, hashes.SHA384):
        return "sha384"
    if isinstance(algorithm, hashes.SHA512):
        return "sha512"
    raise BadInput("HASH_ALGORITHM_INVALID", f"unsupported hash {algorithm!r}")


def _only_signs() -> KeystoreError:
    return KeystoreError("KEY_OPERATION_REFUSED", "token keys only sign")


class _TokenKey:
    """What the token key adapters share: the token and the key's label, and the refusals. The key never
    leaves the token (its numbers and bytes are refused) and a copy of it is the same key."""

    def __init__(self, keystore: Keystore, label: str) -> None:
        self._ks = keystore
        self._label = label

    def private_numbers(self) -> NoReturn:
        raise KeystoreError("KEY_NOT_EXTRACTABLE", "token keys never leave the token")

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,  # noqa: A002
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> NoReturn:
        raise KeystoreError("KEY_NOT_EXTRACTABLE", "token keys never leave the token")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class TokenEcPrivateKey(_TokenKey, ec.EllipticCurvePrivateKey):
    """A P-256 key in the token, shaped as ``cryptography`` expects; only ``sign`` and ``public_key`` work."""

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise BadInput("SIGNATURE_ALGORITHM_INVALID", "only ECDSA is supported")
        return self._ks.sign(
            self._label, bytes(data), KeyAlgorithm.EC_P256, _hash_name(signature_algorithm.algorithm)
        )

    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = self._ks.public_key(self._label)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return key

    @property
    def curve(self) -> ec.EllipticCurve:
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        return 256

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise _only_signs()


class TokenRsaPrivateKey(_TokenKey, rsa.RSAPrivateKey):
    """An RSA key in the token (PKCS#1 v1.5 signatures only)."""

    def sign(
        self,
        data: Buffer,
        padding_: AsymmetricPadding,
        algorithm: hashes.HashAlgorithm | Prehashed | NoDigestInfo,
    ) -> bytes:
        if not isinstance(padding_, padding.PKCS1v15):
            raise BadInput("SIGNATURE_ALGORITHM_INVALID", "only PKCS#1 v1.5 is supported")
        return self._ks.sign(self._label, bytes(data), KeyAlgorithm.RSA_3072, _hash_name(algorithm))

    def public_key(self) -> rsa.RSAPublicKey:
        key = self._ks.public_key(self._label)
        assert isinstance(key, rsa.RSAPublicKey)
        return key

    @property
    def key_size(self) -> int:
        return self.public_key().key_size

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        raise _only_signs()


def token_private_key(
    keystore: Keystore, label: str, algorithm: KeyAlgorithm
) -> TokenEcPrivateKey | TokenRsaPrivateKey:
    """A ``cryptography`` private-key object whose signatures are made by the token."""
    if algorithm is KeyAlgorithm.EC_P256:
        return TokenEcPrivateKey(keystore, label)
    if algorithm is KeyAlgorithm.RSA_3072:
        return TokenRsaPrivateKey(keystore, label)
    raise BadInput("KEY_ALGORITHM_INVALID", f"{algorithm.value} keys do not sign certificates")


# -- the PKI ---------------------------------------------------------------------------------------
def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _now(now: datetime | None) -> datetime:
    return utc(now) if now is not None else datetime.now(UTC)


def _ca_public_key(cert: x509.Certificate) -> TokenPublicKey:
    """A county CA's public key: its private half is in the token (``cryptography`` types a certificate's key
    more widely, X25519 and ML-KEM included, which cannot issue)."""
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey)
    return key


def _ski(public_key: CertificatePublicKeyTypes) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


@dataclass(frozen=True)
class PublishedCrls:
    issuing_crl: Path
    root_crl: Path
    root_cert: Path
    issuing_cert: Path
    issuing_crl_number: int


class CountyPKI:
    """Root and issuing CA of one county; issues seal and TSA certificates, revokes them, makes CRLs."""

    def __init__(self, engine: Engine, keystore: Keystore, settings: Settings) -> None:
        self._engine = engine
        self._ks = keystore
        self._settings = settings
        self._cache: dict[str, x509.Certificate] = {}
        self._labels: dict[str, str] = {}
        # Read now, outside any transaction (SQLite ones do not nest); fixed once stored, so cached.
        self._identity: DeploymentIdentity | None = deployment_identity(settings, engine)

    # -- set-up ------------------------------------------------------------------------------------
    def initialize(self, county_code: str, county_name: str, now: datetime | None = None) -> bool:
        """Create the deployment row and both CAs unless present. Returns True when something was made."""
        now = _now(now)
        if not county_code or not county_name:
            raise BadInput("COUNTY_INVALID", "county code and name are required", "须提供县代码和县名称")
        # What certificates made from now on will name (before the transaction: SQLite does not nest them).
        wanted = self._identity_of_existing_ca() or identity_from_settings(self._settings)
        with transaction(self._engine) as session:
            row = session.execute(
                text("SELECT county_code, county_name FROM deployment WHERE id = 1")
            ).first()
            if row is None:
                session.execute(
                    text(
                        "INSERT INTO deployment (id, county_code, county_name, created_at) "
                        "VALUES (1, :c, :n, :t)"
                    ),
                    {"c": county_code, "n": county_name, "t": now},
                )
            elif (row[0], row[1]) != (county_code, county_name):
                raise Conflict(
                    "COUNTY_MISMATCH",
                    f"this home belongs to {row[1]} ({row[0]})",
                    f"此部署属于{row[1]}（{row[0]}）",
                    details={"county_code": row[0], "county_name": row[1]},
                )
            have = {r.name for r in session.scalars(select(CaRow))}
            self._identity = store_identity(session, wanted)
        made = False
        if ROOT not in have:
            self._make_ca(ROOT, county_name, now)
            made = True
        if ISSUING not in have:
            self._make_ca(ISSUING, county_name, now)
            made = True
        self._cache.clear()
        self._labels.clear()
        return made

    def _make_ca(self, name: str, county_name: str, now: datetime) -> None:
        # A fresh label per CA: two deployments may share one token, and a retry never reuses a leftover key.
        label = f"ca:{name}:{secrets.token_hex(6)}"
        ref = self._ks.generate_key(label, KeyAlgorithm.EC_P256)
        try:
            public = self._ks.public_key(label)
            subject = x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, county_name),
                    x509.NameAttribute(
                        NameOID.COMMON_NAME,
                        f"{county_name}电子印章根CA" if name == ROOT else f"{county_name}电子印章签发CA",
                    ),
                ]
            )
            serial = x509.random_serial_number()
            if name == ROOT:
                issuer_name, issuer_key, issuer_pub = (
                    subject,
                    token_private_key(self._ks, label, ref.algorithm),
                    public,
                )
                validity, pathlen, issuer_ca = ROOT_VALIDITY, 1, ROOT
            else:
                root = self.ca_certificate(ROOT)
                issuer_name, issuer_key, issuer_pub = (
                    root.subject,
                    self._ca_signer(ROOT),
                    _ca_public_key(root),
                )
                validity, pathlen, issuer_ca = ISSUING_VALIDITY, 0, ROOT
            builder = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(issuer_name)
                .public_key(public)
                .serial_number(serial)
                .not_valid_before(now - _BACKDATE)
                .not_valid_after(now + validity)
                .add_extension(x509.BasicConstraints(ca=True, path_length=pathlen), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=False,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(_ski(public), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub), critical=False)
            )
            if name != ROOT:
                builder = builder.add_extension(self._crl_dp(ROOT), critical=False)
            cert = builder.sign(issuer_key, hashes.SHA256())
            der = cert.public_bytes(serialization.Encoding.DER)
            with transaction(self._engine) as session:
                session.add(
                    CertificateRow(
                        serial=str(serial),
                        issuer=issuer_ca,
                        subject_kind="ca",
                        seal_id=None,
                        key_label=label,
                        cert_der=der,
                        not_before=cert.not_valid_before_utc,
                        not_after=cert.not_valid_after_utc,
                        revoked_at=None,
                        revocation_reason=None,
                        created_at=now,
                    )
                )
                session.flush()
                session.add(
                    CaRow(
                        name=name,
                        key_label=label,
                        key_algorithm=ref.algorithm.value,
                        cert_serial=str(serial),
                        cert_der=der,
                        crl_number=0,
                        created_at=now,
                    )
                )
        except BaseException:
            self._ks.destroy_key(label)
            raise
        self._cache[name] = cert

    @property
    def identity(self) -> DeploymentIdentity:
        """The names fixed at ``county init`` (CRL URLs, verification links, log origin): never
        ``public_base_url`` as it is now, once the county is set up (issue 19)."""
        if self._identity is None:
            self._identity = deployment_identity(self._settings, self._engine)
        return self._identity

    def _identity_of_existing_ca(self) -> DeploymentIdentity | None:
        """For a county set up before the names were stored: the base its issuing CA already names."""
        found = read_identity(self._engine)
        if found is not None:
            return found
        with transaction(self._engine) as session:
            row = session.get(CaRow, ISSUING)
            der = row.cert_der if row is not None else None
        if der is None:
            return None
        try:
            dps = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
                x509.CRLDistributionPoints
            )
        except (ValueError, x509.ExtensionNotFound):
            return None
        for dp in dps.value:
            for name in dp.full_name or ():
                url = str(name.value)
                if url.endswith(f"/pki/crl/{ROOT}.crl"):
                    base = url.removesuffix(f"/pki/crl/{ROOT}.crl")
                    return DeploymentIdentity(base_url=base, log_origin=origin_from(base))
        return None

    def _crl_dp(self, issuer: str) -> x509.CRLDistributionPoints:
        url = self.identity.crl_url(issuer)
        return x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    full_name=[x509.UniformResourceIdentifier(url)],
                    relative_name=None,
                    reasons=None,
                    crl_issuer=None,
                )
            ]
        )

    # -- CA certificates ---------------------------------------------------------------------------
    def ca_certificate(self, name: str) -> x509.Certificate:
        cert = self._cache.get(name)
        if cert is None:
            with transaction(self._engine) as session:
                row = session.get(CaRow, name)
                if row is None:
                    raise NotFound(
                        "PKI_NOT_INITIALIZED",
                        "the county PKI is not set up (run `yizhang county init`)",
                        "县级证书体系未初始化（请先运行 yizhang county init）",
                    )
                cert = x509.load_der_x509_certificate(row.cert_der)
            self._cache[name] = cert
        return cert

    def _ca_signer(self, name: str) -> TokenEcPrivateKey:
        label = self._labels.get(name)
        if label is None:
            with transaction(self._engine) as session:
                row = session.get(CaRow, name)
                if row is None:
                    raise NotFound(
                        "PKI_NOT_INITIALIZED",
                        "the county PKI is not set up (run `yizhang county init`)",
                        "县级证书体系未初始化（请先运行 yizhang county init）",
                    )
                label = row.key_label
            self._labels[name] = label
        return TokenEcPrivateKey(self._ks, label)  # token_private_key of an EC_P256 key

    @property
    def root_certificate(self) -> x509.Certificate:
        return self.ca_certificate(ROOT)

    @property
    def issuing_certificate(self) -> x509.Certificate:
        return self.ca_certificate(ISSUING)

    @property
    def county_name(self) -> str:
        with transaction(self._engine) as session:
            row = session.execute(text("SELECT county_name FROM deployment WHERE id = 1")).first()
        if row is None:
            raise NotFound(
                "PKI_NOT_INITIALIZED",
                "the county is not set up (run `yizhang county init`)",
                "县未初始化（请先运行 yizhang county init）",
            )
        return str(row[0])

    def chain_der(self, cert_der: bytes) -> list[bytes]:
        """The certificate, the issuing CA and the root, DER, leaf first."""
        return [
            cert_der,
            self.issuing_certificate.public_bytes(serialization.Encoding.DER),
            self.root_certificate.public_bytes(serialization.Encoding.DER),
        ]

    # -- end-entity certificates -------------------------------------------------------------------
    def build_seal_certificate(
        self,
        *,
        info: SealInfo,
        name: str,
        public_key: CertificatePublicKeyTypes,
        now: datetime,
        validity_days: int = DEFAULT_SEAL_VALIDITY_DAYS,
    ) -> x509.Certificate:
        """A seal certificate signed by the issuing CA (in the token). The caller stores it."""
        if validity_days < 1:
            raise BadInput("VALIDITY_INVALID", "validity must be at least one day", "有效期至少一天")
        issuing = self.issuing_certificate
        try:
            attrs = [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, info.county),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, info.township),
            ]
            if info.department:
                attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, info.department))
            attrs += [
                x509.NameAttribute(NameOID.COMMON_NAME, name),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, info.seal_id),
            ]
        except ValueError as exc:  # an attribute over RFC 5280's 64 (UTF-8 bytes, as cryptography counts)
            raise BadInput(
                "CERT_NAME_TOO_LONG",
                f"a name does not fit the certificate (at most 64 bytes in UTF-8): {exc}",
                "名称超出证书可容纳的长度（最多 64 字节，约 21 个汉字）",
                details={"limit_bytes": 64},
            ) from exc
        not_after = min(now + timedelta(days=validity_days), issuing.not_valid_after_utc)
        builder = (
            self._end_entity_builder(x509.Name(attrs), public_key, now, not_after)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.UnrecognizedExtension(SEAL_INFO_OID, info.to_der()), critical=False)
        )
        return builder.sign(self._ca_signer(ISSUING), hashes.SHA256())

    def _end_entity_builder(
        self, subject: x509.Name, public_key: CertificatePublicKeyTypes, now: datetime, not_after: datetime
    ) -> x509.CertificateBuilder:
        issuing = self.issuing_certificate
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuing.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_ski(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(_ca_public_key(issuing)),
                critical=False,
            )
            .add_extension(self._crl_dp(ISSUING), critical=False)
        )

    def record_certificate(
        self,
        session: Session,
        cert: x509.Certificate,
        *,
        subject_kind: str,
        seal_id: str | None,
        key_label: str,
        now: datetime,
    ) -> CertificateRow:
        row = CertificateRow(
            serial=str(cert.serial_number),
            issuer=ISSUING,
            subject_kind=subject_kind,
            seal_id=seal_id,
            key_label=key_label,
            cert_der=cert.public_bytes(serialization.Encoding.DER),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            revoked_at=None,
            revocation_reason=None,
            created_at=now,
        )
        session.add(row)
        session.flush()
        return row

    def revoke(self, session: Session, serial: int, reason: RevocationReason, now: datetime) -> None:
        """Mark a certificate revoked (inside the caller's transaction); the next CRL lists it."""
        row = session.get(CertificateRow, str(serial))
        if row is None:
            raise NotFound(
                "CERTIFICATE_NOT_FOUND",
                f"no certificate with serial {serial}",
                "无此证书",
                details={"serial": str(serial)},
            )
        if row.revoked_at is None:
            row.revoked_at = now
            row.revocation_reason = reason.value
        elif row.revocation_reason == RevocationReason.CERTIFICATE_HOLD.value and (
            reason is not RevocationReason.CERTIFICATE_HOLD
        ):
            # A hold made permanent (RFC 5280 5.3.1): the certificate has been unusable since the hold began,
            # so the revocation keeps the hold's date; only the reason changes.
            row.revocation_reason = reason.value

    def release_hold(self, session: Session, serial: int) -> bool:
        """Lift a certificateHold (inside the caller's transaction): the next CRL no longer lists the
        certificate. RFC 5280's removeFromCRL reason belongs to delta CRLs; this county publishes full CRLs
        only, where leaving the entry out is how a hold ends. A permanent revocation is never lifted."""
        row = session.get(CertificateRow, str(serial))
        if row is None or row.revocation_reason != RevocationReason.CERTIFICATE_HOLD.value:
            return False
        row.revoked_at = None
        row.revocation_reason = None
        return True

    def issue_tsa_cert(
        self, label: str, now: datetime | None = None, validity_days: int = DEFAULT_SEAL_VALIDITY_DAYS
    ) -> x509.Certificate:
        """A time-stamping certificate (EKU timeStamping, critical) for a key ``tsa:<label>`` in the token."""
        now = _now(now)
        key_label = f"tsa:{label}"
        created = False
        if not self._ks.has_key(key_label):
            self._ks.generate_key(key_label, KeyAlgorithm.EC_P256)
            created = True
        try:
            public = self._ks.public_key(key_label)
            subject = x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.county_name),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"{self.county_name}时间戳服务 ({label})"),
                ]
            )
            not_after = min(now + timedelta(days=validity_days), self.issuing_certificate.not_valid_after_utc)
            cert = (
                self._end_entity_builder(subject, public, now, not_after)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=False,
                        crl_sign=False,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
                .sign(self._ca_signer(ISSUING), hashes.SHA256())
            )
            with transaction(self._engine) as session:
                self.record_certificate(
                    session, cert, subject_kind="tsa", seal_id=None, key_label=key_label, now=now
                )
        except BaseException:
            if created:
                self._ks.destroy_key(key_label)
            raise
        return cert

    # -- CRLs --------------------------------------------------------------------------------------
    def crl_der(self, issuer: str = ISSUING, now: datetime | None = None) -> bytes:
        """A fresh CRL of ``issuer`` (RFC 5280: reasons, nextUpdate, CRL number), signed in the token."""
        now = _now(now)
        if issuer not in (ROOT, ISSUING):
            raise BadInput("CA_UNKNOWN", f"no CA named {issuer}")
        ca_cert = self.ca_certificate(issuer)
        signer = self._ca_signer(issuer)  # resolved first: SQLite transactions do not nest
        with transaction(self._engine) as session:
            ca = session.get(CaRow, issuer)
            assert ca is not None
            ca.crl_number += 1
            number = ca.crl_number
            revoked = session.scalars(
                select(CertificateRow)
                .where(CertificateRow.issuer == issuer, CertificateRow.revoked_at.is_not(None))
                .order_by(CertificateRow.revoked_at)
            ).all()
            builder = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(ca_cert.subject)
                .last_update(now)
                .next_update(now + (self.crl_validity if issuer == ISSUING else ROOT_CRL_VALIDITY))
                .add_extension(x509.CRLNumber(number), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(_ca_public_key(ca_cert)),
                    critical=False,
                )
            )
            for row in revoked:
                assert row.revoked_at is not None
                entry = (
                    x509.RevokedCertificateBuilder()
                    .serial_number(int(row.serial))
                    .revocation_date(utc(row.revoked_at))
                )
                if row.revocation_reason:
                    entry = entry.add_extension(
                        x509.CRLReason(_REASON_FLAGS[RevocationReason(row.revocation_reason)]), critical=False
                    )
                builder = builder.add_revoked_certificate(entry.build())
            # Signed inside the transaction: the CRL number is spent only if the CRL was made.
            crl = builder.sign(signer, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    def published(self) -> PublishedCrls | None:
        """What ``publish_crl`` last wrote, if all of it is there."""
        pki_dir = self._settings.home_dir / "pki"
        files = [
            pki_dir / "crl" / "issuing.crl",
            pki_dir / "crl" / "root.crl",
            pki_dir / "root.crt",
            pki_dir / "issuing.crt",
        ]
        if not all(f.is_file() for f in files):
            return None
        crl = x509.load_der_x509_crl(files[0].read_bytes())
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        return PublishedCrls(
            issuing_crl=files[0],
            root_crl=files[1],
            root_cert=files[2],
            issuing_cert=files[3],
            issuing_crl_number=number,
        )

    # -- the county's trust bundle ---------------------------------------------------------------------
    def sign_with_root(self, payload: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 signature (DER) of the county root over ``payload``: the county's trust
        bundle, which other counties check against the root fingerprint they pinned (docs/verification.md,
        "Trust store"). The root already signs the root CRL, from the same token, on the same schedule."""
        return bytes(self._ca_signer(ROOT).sign(payload, ec.ECDSA(hashes.SHA256())))

    # -- publishing: at start, on a schedule well inside nextUpdate, at once after a lifecycle change -----
    @property
    def crl_validity(self) -> timedelta:
        return timedelta(days=self._settings.crl_validity_days)

    @property
    def republish_every(self) -> timedelta:
        """How old the published CRLs may get before they are made again: ``crl_republish_s``, but never
        more than half the validity, so a verifier always finds one with days of nextUpdate left."""
        wanted = timedelta(seconds=self._settings.crl_republish_s)
        return max(MIN_REPUBLISH, min(wanted, self.crl_validity / 2))

    @property
    def _crl_dir(self) -> Path:
        return self._settings.home_dir / "pki" / "crl"

    def crl_due(self, now: datetime | None = None) -> str | None:
        """Why the published CRLs must be made again now (``missing``, ``changed``: a lifecycle change
        whose publication failed, ``age``: older than :attr:`republish_every` or past its nextUpdate), or
        None while they are current."""
        now = _now(now)
        crl_dir = self._crl_dir
        if (crl_dir / STALE_MARKER).exists():
            return "changed"
        for name in (ISSUING, ROOT):
            try:
                crl = x509.load_der_x509_crl((crl_dir / f"{name}.crl").read_bytes())
            except (OSError, ValueError):
                return "missing"
            next_update = crl.next_update_utc
            if now >= crl.last_update_utc + self.republish_every:
                return "age"
            if next_update is None or now >= next_update - self.republish_every:
                return "age"
        return None

    def ensure_current_crls(self, now: datetime | None = None) -> PublishedCrls | None:
        """Publish fresh CRLs if :meth:`crl_due`; returns what was published, None when nothing was due.

        Every serve worker calls it (at start, on its schedule, before serving a CRL); the publishing lock
        makes one of them do the work and the others find it done."""
        if self.crl_due(now) is None:
            return None
        with self._publishing():
            why = self.crl_due(now)
            if why is None:
                return None
            published = self._publish_locked(now)
        log.info(
            "published CRLs (%s): issuing CRL number %d",
            why,
            published.issuing_crl_number,
            extra={"code": "CRL_PUBLISHED"},
        )
        return published

    def publish_crl(self, now: datetime | None = None) -> PublishedCrls:
        """Write both CRLs and the CA certificates under ``home/pki`` (served at /pki/crl/*.crl)."""
        with self._publishing():
            return self._publish_locked(now)

    def publish_after_change(self, now: datetime | None = None) -> PublishedCrls | None:
        """Publish at once after a suspension, resumption, cancellation or re-key (already committed).

        A failure does not undo the change: it is logged, and a marker makes the next scheduled round (every
        serve worker checks often) or the next request for a CRL publish it."""
        try:
            return self.publish_crl(now)
        except Exception as exc:  # noqa: BLE001 - see above; the change itself stands
            code = str(getattr(exc, "code", type(exc).__name__))
            log.error(
                "CRLs not published after a seal change: %s; retried by serve", code, extra={"code": code}
            )
            try:
                self._crl_dir.mkdir(parents=True, exist_ok=True)
                (self._crl_dir / STALE_MARKER).write_text(code + "\n", encoding="utf-8")
            except OSError:
                log.exception("could not mark the CRLs stale")
            return None

    @contextmanager
    def _publishing(self) -> Iterator[None]:
        """One publisher at a time per home (several serve workers, a cron job, the CLI): an exclusive
        ``flock`` on HOME/pki/crl/.publish.lock, so CRL files are written in the order their numbers
        were drawn."""
        crl_dir = self._crl_dir
        crl_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(crl_dir / PUBLISH_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _publish_locked(self, now: datetime | None) -> PublishedCrls:
        now = _now(now)
        pki_dir = self._settings.home_dir / "pki"
        crl_dir = pki_dir / "crl"
        crl_dir.mkdir(parents=True, exist_ok=True)
        out: dict[str, Path] = {}
        for name in (ROOT, ISSUING):
            crl = self.crl_der(name, now)
            out[f"{name}_crl"] = _write_crl_if_newer(crl_dir / f"{name}.crl", crl)
            cert = self.ca_certificate(name)
            out[f"{name}_cert"] = _atomic_write(
                pki_dir / f"{name}.crt", cert.public_bytes(serialization.Encoding.DER)
            )
            _atomic_write(pki_dir / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
        (crl_dir / STALE_MARKER).unlink(missing_ok=True)
        return PublishedCrls(
            issuing_crl=out["issuing_crl"],
            root_crl=out["root_crl"],
            root_cert=out["root_cert"],
            issuing_cert=out["issuing_cert"],
            issuing_crl_number=_crl_number(out["issuing_crl"].read_bytes()),
        )


STALE_MARKER = ".stale"
PUBLISH_LOCK = ".publish.lock"


def _crl_number(der: bytes) -> int:
    crl = x509.load_der_x509_crl(der)
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def _write_crl_if_newer(path: Path, der: bytes) -> Path:
    """Replace the published CRL unless it already carries a higher number (a publisher on another host
    sharing the database, or a clock set back): what is served never goes back."""
    try:
        if _crl_number(path.read_bytes()) >= _crl_number(der):
            return path
    except (OSError, ValueError, x509.ExtensionNotFound):
        pass
    return _atomic_write(path, der)


def _atomic_write(path: Path, data: bytes) -> Path:
    tmp = path.with_suffix(path.suffix + f".{hashlib.sha256(data).hexdigest()[:8]}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path
