"""Trust: the county roots a verifier accepts, seal facts in a certificate, revocation at signing time."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from core.errors import BadInput
from verifier._model import SealFacts

# The keystore's private seal extension (parsed defensively: any UTF8String / JSON / raw bytes).
YIZHANG_SEAL_EXT_PREFIX = "1.3.6.1.4.1."
MAX_TRUST_BYTES = 4 * 1024 * 1024


def _split_pem_or_der(data: bytes, marker: bytes) -> list[bytes]:
    """DER blobs from PEM text (every ``marker`` block) or a single DER blob."""
    if b"-----BEGIN" not in data:
        return [data]
    import base64
    import re

    out = []
    pat = rb"-----BEGIN " + marker + rb"-----(.+?)-----END " + marker + rb"-----"
    for m in re.finditer(pat, data, re.S):
        out.append(base64.b64decode(b"".join(m.group(1).split())))
    return out


@dataclass(frozen=True)
class TrustList:
    """County roots this verifier trusts, plus intermediates and CRLs known out of band (a bundle).

    Certificates and CRLs are DER. Building one parses every item, so a bad file fails here with a clear
    code rather than deep inside a verification.
    """

    roots: tuple[bytes, ...] = ()
    intermediates: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        for der in self.roots + self.intermediates:
            try:
                x509.load_der_x509_certificate(der)
            except ValueError as exc:
                raise BadInput(
                    "TRUST_CERT_INVALID",
                    "a trust-list certificate is not a valid DER certificate",
                    "信任列表中的证书不是有效的DER证书",
                ) from exc
        for der in self.crls:
            try:
                x509.load_der_x509_crl(der)
            except ValueError as exc:
                raise BadInput(
                    "TRUST_CRL_INVALID", "a trust-list CRL is not a valid DER CRL", "信任列表中的CRL无效"
                ) from exc

    @classmethod
    def empty(cls) -> TrustList:
        return cls()

    @classmethod
    def for_home(cls, home: Path) -> TrustList:
        """This county's trust: the keystore's published root, issuing CA and CRLs under HOME/pki."""
        pki = Path(home) / "pki"
        roots = (pki / "root.crt").read_bytes() if (pki / "root.crt").is_file() else None
        if roots is None:
            raise BadInput(
                "TRUST_ROOT_MISSING",
                f"no county root at {pki / 'root.crt'}; pass --trust",
                f"未找到本县根证书 {pki / 'root.crt'}，请使用 --trust",
            )
        inter = (pki / "issuing.crt").read_bytes() if (pki / "issuing.crt").is_file() else None
        crls = (
            tuple(p.read_bytes() for p in sorted((pki / "crl").glob("*.crl")))
            if (pki / "crl").is_dir()
            else ()
        )
        return cls(roots=(roots,), intermediates=(inter,) if inter else (), crls=crls)

    @classmethod
    def from_bytes(cls, data: bytes) -> TrustList:
        """Roots and CRLs from PEM (any number of CERTIFICATE and X509 CRL blocks) or one DER item."""
        if b"-----BEGIN" in data:
            roots = _split_pem_or_der(data, b"CERTIFICATE")
            crls = _split_pem_or_der(data, b"X509 CRL")
        else:
            try:
                x509.load_der_x509_certificate(data)
                roots, crls = [data], []
            except ValueError:
                roots, crls = [], [data]  # validated as a CRL below
        if not roots and not crls:
            raise BadInput(
                "TRUST_EMPTY", "no certificate or CRL found in the trust file", "信任文件中没有证书或CRL"
            )
        return cls(roots=tuple(roots), crls=tuple(crls))

    @classmethod
    def from_files(cls, paths: Iterable[Path | str]) -> TrustList:
        out = cls.empty()
        for p in paths:
            path = Path(p)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise BadInput(
                    "TRUST_FILE_UNREADABLE", f"cannot read trust file {path}", f"无法读取信任文件 {path}"
                ) from exc
            if path.suffix == ".json":
                out = out.merged(cls.from_bundle(json.loads(data)))
            else:
                out = out.merged(cls.from_bytes(data))
        return out

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 10.0) -> TrustList:
        """Fetch another county's root (PEM/DER) or bundle (JSON) over HTTPS, bounded in time and size."""
        data = fetch_trust(url, timeout_s=timeout_s)
        if data.lstrip().startswith(b"{"):
            return cls.from_bundle(json.loads(data))
        return cls.from_bytes(data)

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, object]) -> TrustList:
        """The ``roots`` / ``intermediates`` / ``crls`` of a verify bundle (PEM strings)."""

        def _pems(key: str, marker: bytes) -> tuple[bytes, ...]:
            items = bundle.get(key) or []
            if not isinstance(items, list):
                raise BadInput(
                    "BUNDLE_INVALID", f"bundle field {key} must be a list", f"包字段 {key} 须为列表"
                )
            out: list[bytes] = []
            for item in items:
                out.extend(_split_pem_or_der(str(item).encode(), marker))
            return tuple(out)

        return cls(
            roots=_pems("roots", b"CERTIFICATE"),
            intermediates=_pems("intermediates", b"CERTIFICATE"),
            crls=_pems("crls", b"X509 CRL"),
        )

    def key_ids(self) -> frozenset[str]:
        """The key identifiers (hex) of every root and intermediate: what a seal certificate's authority
        key identifier names when one of these CAs issued it."""
        return frozenset(key_id_of(der) for der in self.roots + self.intermediates)

    def merged(self, other: TrustList) -> TrustList:
        def _u(a: tuple[bytes, ...], b: tuple[bytes, ...]) -> tuple[bytes, ...]:
            return tuple(dict.fromkeys(a + b))

        # Both sides were parsed when they were built: parsing them again made merging the trust store's
        # counties into one list quadratic (every merge re-read every certificate and CRL so far; 1.1 ms
        # per verification with 10 counties, bench/bench_lookups.py).
        out = object.__new__(TrustList)
        object.__setattr__(out, "roots", _u(self.roots, other.roots))
        object.__setattr__(out, "intermediates", _u(self.intermediates, other.intermediates))
        object.__setattr__(out, "crls", _u(self.crls, other.crls))
        return out

    def to_bundle(self) -> dict[str, list[str]]:
        def _pem(der: bytes, marker: str) -> str:
            import base64
            import textwrap

            b64 = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
            return f"-----BEGIN {marker}-----\n{b64}\n-----END {marker}-----\n"

        return {
            "roots": [_pem(d, "CERTIFICATE") for d in self.roots],
            "intermediates": [_pem(d, "CERTIFICATE") for d in self.intermediates],
            "crls": [_pem(d, "X509 CRL") for d in self.crls],
        }


def key_id_of(cert_der: bytes) -> str:
    """A CA certificate's key identifier (hex): its subjectKeyIdentifier, else the RFC 5280 4.2.1.2 method 1
    value computed from its public key."""
    cert = x509.load_der_x509_certificate(cert_der)
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    except (x509.ExtensionNotFound, ValueError):
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest.hex()


def _authority_key_id(cert: x509.Certificate) -> str | None:
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    return aki.key_identifier.hex() if aki.key_identifier else None


def root_fingerprint(cert_der: bytes) -> str:
    """SHA-256 of a certificate (DER), lower-case hex: what ``yizhang trust add`` shows and pins."""
    import hashlib

    return hashlib.sha256(cert_der).hexdigest()


def normalise_fingerprint(text: str) -> str:
    """A fingerprint as people copy it (``AB:CD:...``, spaces, upper case, ``sha256:`` prefix) -> hex."""
    out = text.strip().lower().removeprefix("sha256:").replace(":", "").replace(" ", "")
    if len(out) != 64 or any(c not in "0123456789abcdef" for c in out):
        raise BadInput(
            "TRUST_FINGERPRINT_INVALID",
            "a fingerprint is 64 hex digits (SHA-256 of the root certificate)",
            "指纹须为64位十六进制（根证书的SHA-256）",
        )
    return out


# -- the signed trust bundle (docs/verification.md, "Trust store") ------------------------------------------
BUNDLE_SIGNATURE_ALG = "ecdsa-p256-sha256"


def bundle_signed_bytes(bundle: Mapping[str, object]) -> bytes:
    """What the county root signs: the bundle without its ``signature``, as canonical JSON (keys sorted, no
    spaces, UTF-8)."""
    body = {k: v for k, v in bundle.items() if k != "signature"}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def bundle_signing_root(bundle: Mapping[str, object]) -> bytes:
    """The root certificate (DER) the bundle says signed it: the one of its ``roots`` whose SHA-256 is
    ``signature.root_sha256``. Raises ``TRUST_BUNDLE_UNSIGNED`` / ``BUNDLE_INVALID``."""
    sig = bundle.get("signature")
    if not isinstance(sig, Mapping) or not sig.get("value") or not sig.get("root_sha256"):
        raise BadInput(
            "TRUST_BUNDLE_UNSIGNED",
            "the bundle is not signed by its county root (made by an older yizhang, or without the token)",
            "验证包未经该县根证书签名",
        )
    wanted = str(sig["root_sha256"]).lower()
    for der in TrustList.from_bundle(bundle).roots:
        if root_fingerprint(der) == wanted:
            return der
    raise BadInput(
        "BUNDLE_INVALID",
        "the bundle's signing root is not among its roots",
        "验证包的签名根证书不在其根证书中",
    )


def check_bundle_signature(bundle: Mapping[str, object], pinned: str) -> bytes:
    """Check a trust bundle against the pinned root (SHA-256 hex); returns that root (DER).

    1. the bundle names its signing root, which must be the pinned one (``TRUST_ROOT_CHANGED`` otherwise: a
       county that re-made its root is added again on purpose, never silently followed);
    2. the signature over :func:`bundle_signed_bytes` verifies under that root's public key (ECDSA P-256,
       SHA-256), else ``TRUST_BUNDLE_SIGNATURE_INVALID``.
    """
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    root_der = bundle_signing_root(bundle)  # 1.
    if root_fingerprint(root_der) != pinned:
        raise BadInput(
            "TRUST_ROOT_CHANGED",
            "the bundle is signed by another root than the one pinned for this county",
            "验证包的签名根证书与已固定的该县根证书不同",
            details={"pinned": pinned, "offered": root_fingerprint(root_der)},
        )
    sig = bundle["signature"]
    assert isinstance(sig, Mapping)
    try:  # 2.
        if sig.get("alg") != BUNDLE_SIGNATURE_ALG:
            raise ValueError(f"algorithm {sig.get('alg')!r}")
        key = x509.load_der_x509_certificate(root_der).public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("the root key is not an EC key")
        value = base64.b64decode(str(sig["value"]))
        key.verify(value, bundle_signed_bytes(bundle), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise BadInput(
            "TRUST_BUNDLE_SIGNATURE_INVALID",
            "the bundle's signature does not verify under the pinned county root",
            "验证包签名无法用已固定的县级根证书验证",
            details={"error": str(exc)[:200]},
        ) from exc
    return root_der


# -- fetching other counties' trust: https, or http to this machine only ------------------------------------
def trust_url_allowed(url: str) -> bool:
    """``https://`` anywhere, ``http://`` only to a loopback address (127.0.0.0/8, ::1, ``localhost``): a
    county's trust travels signed, but what is fetched in the clear from another machine could be replaced
    by anyone on the path, and a verifier must not be made to probe its own network."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    if not host or parts.username is not None or parts.password is not None:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch_trust(url: str, *, timeout_s: float = 10.0, max_bytes: int = MAX_TRUST_BYTES) -> bytes:
    """GET a trust document: :func:`trust_url_allowed` URLs only, no redirects, ``timeout_s`` per step and
    ``max_bytes`` at most (read as it streams, never buffered beyond the limit)."""
    import httpx

    if not trust_url_allowed(url):
        raise BadInput(
            "TRUST_URL_INSECURE",
            "trust URLs must use https (plain http only to this machine)",
            "信任地址必须使用https（http仅限本机地址）",
        )
    try:
        with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=False) as resp:
            resp.raise_for_status()
            buf = bytearray()
            for chunk in resp.iter_bytes():
                buf.extend(chunk)
                if len(buf) > max_bytes:
                    raise BadInput("TRUST_TOO_LARGE", "trust document too large", "信任文件过大")
    except httpx.HTTPError as exc:
        raise BadInput(
            "TRUST_URL_UNREACHABLE", f"cannot fetch {url}", f"无法获取 {url}", details={"error": str(exc)}
        ) from exc
    return bytes(buf)


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    try:
        vals = name.get_attributes_for_oid(oid)
    except ValueError:
        return None
    if not vals:
        return None
    v = vals[0].value
    return v if isinstance(v, str) else None


def seal_facts(cert_der: bytes) -> SealFacts:
    """Seal name, county, township, id, kind/number from the certificate; never raises on odd content."""
    cert = x509.load_der_x509_certificate(cert_der)
    subject = cert.subject
    try:
        subject_s = subject.rfc4514_string()
        issuer_s = cert.issuer.rfc4514_string()
    except ValueError:
        subject_s, issuer_s = "?", "?"
    ext: dict[str, str] = {}
    kind: str | None = None
    number: int | None = None
    township_code: str | None = None
    try:
        extensions = list(cert.extensions)
    except ValueError:  # a malformed extension: facts from the name only
        extensions = []
    ext.update(_keystore_seal_info(cert))
    for e in extensions[:32]:
        oid = e.oid.dotted_string
        if not oid.startswith(YIZHANG_SEAL_EXT_PREFIX) or not isinstance(e.value, x509.UnrecognizedExtension):
            continue
        raw = e.value.value[:4096]
        parsed = _decode_private_ext(raw)
        for k, v in list(parsed.items())[:32]:
            ext.setdefault(str(k)[:64], str(v)[:256])
    kind = ext.get("kind") or ext.get("seal_kind")
    num = ext.get("number")
    if num is not None and num.isdigit() and len(num) < 6:
        number = int(num)
    township_code = ext.get("township_code")
    seal_name = _attr(subject, NameOID.COMMON_NAME)
    if number is None and seal_name:
        import re

        m = re.search(r"[（(](\d{1,3})[）)]\s*$", seal_name)
        if m:
            number = int(m.group(1))
    return SealFacts(
        subject=subject_s[:1024],
        issuer=issuer_s[:1024],
        cert_serial_hex=format(cert.serial_number, "x"),
        seal_name=seal_name,
        county=_attr(subject, NameOID.ORGANIZATION_NAME),
        township=_attr(subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
        seal_id=_attr(subject, NameOID.SERIAL_NUMBER),
        kind=kind,
        number=number,
        township_code=township_code,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        extension=ext,
        issuer_key_id=_authority_key_id(cert),
    )


def _keystore_seal_info(cert: x509.Certificate) -> dict[str, str]:
    """The keystore's SealInfo extension (kind, number, county, township, township_code, department,
    seal_id), through the keystore's own strict DER parser; empty when absent or malformed."""
    try:
        from keystore import SealInfo
    except ImportError:  # the keystore package is not installed beside this verifier
        return {}
    try:
        info = SealInfo.from_certificate(cert)
    except Exception:  # noqa: BLE001 - a malformed extension yields no facts, the name still does
        return {}
    if info is None:
        return {}
    out = {
        "kind": info.kind.value,
        "county": info.county,
        "township": info.township,
        "township_code": info.township_code,
        "seal_id": info.seal_id,
    }
    if info.number is not None:
        out["number"] = str(info.number)
    if info.department:
        out["department"] = info.department
    return out


def _decode_private_ext(raw: bytes) -> dict[str, object]:
    """The private extension: DER UTF8String/OCTET STRING holding JSON, or bare JSON; else its hex."""
    from asn1crypto import core

    candidates = [raw]
    try:
        val = core.load(raw)
        if isinstance(val, core.UTF8String | core.PrintableString | core.IA5String):
            candidates.insert(0, val.native.encode())
        elif isinstance(val, core.OctetString):
            candidates.insert(0, val.native)
        elif isinstance(val, core.Sequence):
            native = val.native
            if isinstance(native, dict):
                return {str(k): v for k, v in native.items()}
    except (ValueError, TypeError):
        pass
    for c in candidates:
        try:
            obj = json.loads(c)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(obj, dict):
            return obj
    return {"raw_hex": raw[:64].hex()}


@dataclass(frozen=True)
class RevocationVerdict:
    # "good" | "revoked_before" | "revoked_after" | "revoked_no_poe" | "held_before" | "held_after"
    # | "held_no_poe" | "unknown"
    status: str
    revoked_at: datetime | None = None
    detail: str | None = None


@dataclass(frozen=True)
class _Seen:
    """What one CRL of the issuer, signature checked, says about the certificate."""

    this_update: datetime
    next_update: datetime | None
    revoked_at: datetime | None  # None: not listed
    hold: bool  # listed with reason certificateHold


def _listing(crl: x509.CertificateRevocationList, serial: int) -> tuple[datetime | None, bool]:
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    if entry is None or entry.revocation_date_utc > crl.last_update_utc:
        return None, False
    try:
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except (x509.ExtensionNotFound, ValueError):
        reason = None
    return entry.revocation_date_utc, reason is x509.ReasonFlags.certificate_hold


def check_revocation(
    leaf_der: bytes,
    issuer_der: bytes,
    crls_der: Iterable[bytes],
    at: datetime,
    *,
    time_proven: bool,
) -> RevocationVerdict:
    """Was the seal certificate revoked, or on hold (suspended), at ``at``, according to the CRLs signed by
    its issuer?

    A CRL counts when its signature verifies under the issuer key and it speaks for ``at``: issued at or
    after ``at`` (a later CRL still lists earlier revocations), or current at ``at``
    (thisUpdate ≤ at ≤ nextUpdate). A revocation dated after ``at`` leaves earlier documents valid.

    A hold (reason certificateHold, RFC 5280 5.3.1; the county's suspension) is temporary: it ends when a
    later CRL no longer lists the certificate (full CRLs leave it out; removeFromCRL is for delta CRLs), and
    a hold made permanent keeps its date. Plan:

    1. keep the CRLs of this issuer whose signature verifies; note what each says about the serial;
    2. a permanent revocation (any reason but certificateHold) in any of them decides as before;
    3. a hold decides by the first CRL issued at or after ``at``: on hold since before ``at`` ->
       ``held_before`` (signed during the suspension: not valid); not on hold there while the last CRL
       issued before ``at`` had it on hold -> ``unknown`` (lifted, but before or after ``at``?); a hold
       that begins after ``at`` -> ``held_after`` (signed before the suspension: valid);
    4. with no CRL issued after ``at``, the last one before decides: a hold it lists is taken to last
       (``held_before``) while that CRL is current at ``at``, else ``unknown``; without a proven signing
       time ``held_before`` is ``held_no_poe``.
    """
    leaf = x509.load_der_x509_certificate(leaf_der)
    issuer = x509.load_der_x509_certificate(issuer_der)
    seen: list[_Seen] = []
    for der in crls_der:  # 1.
        try:
            crl = x509.load_der_x509_crl(der)
        except ValueError:
            continue
        if crl.issuer != issuer.subject:
            continue
        try:
            if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                continue
        except (TypeError, ValueError):
            continue
        when, hold = _listing(crl, leaf.serial_number)
        seen.append(_Seen(crl.last_update_utc, crl.next_update_utc, when, hold))
    seen.sort(key=lambda c: c.this_update)

    held = _hold_at(seen, at)  # 3. and 4.
    permanent = [c.revoked_at for c in seen if c.revoked_at is not None and not c.hold]  # 2.
    if permanent:
        revoked_at = min(permanent)
        if not time_proven:
            return RevocationVerdict("revoked_no_poe", revoked_at)
        if revoked_at <= at:
            return RevocationVerdict("revoked_before", revoked_at)
        if held is not None and held.status in ("held_before", "unknown"):
            return held
        return RevocationVerdict("revoked_after", revoked_at)
    if held is not None:
        if not time_proven and held.status == "held_before":
            return RevocationVerdict("held_no_poe", held.revoked_at)
        return held
    usable = any(
        c.this_update >= at or (c.next_update is not None and c.this_update <= at <= c.next_update)
        for c in seen
    )
    return RevocationVerdict("good" if usable else "unknown")


def _hold_at(seen: list[_Seen], at: datetime) -> RevocationVerdict | None:
    """Steps 3 and 4 of :func:`check_revocation` (``seen`` sorted by thisUpdate): None when no CRL at hand
    has the certificate on hold, or none of its holds bears on ``at``."""
    holds = [c.revoked_at for c in seen if c.hold and c.revoked_at is not None]
    if not holds:
        return None
    later = [c for c in seen if c.this_update >= at]
    before = [c for c in seen if c.this_update <= at]
    prev = before[-1] if before else None
    prev_hold = prev.revoked_at if prev is not None and prev.hold else None
    if later:
        first = later[0]
        if first.hold and first.revoked_at is not None and first.revoked_at <= at:
            return RevocationVerdict("held_before", first.revoked_at)
        if prev_hold is not None and prev is not first:
            assert prev is not None
            return RevocationVerdict(
                "unknown",
                prev_hold,
                detail=f"on hold at {prev.this_update.isoformat()} but not at "
                f"{first.this_update.isoformat()}: whether the hold still lasted at the signing time is "
                "not known",
            )
    elif prev is not None and prev_hold is not None:
        if prev.next_update is None or at <= prev.next_update:
            return RevocationVerdict("held_before", prev_hold)
        return RevocationVerdict(
            "unknown", prev_hold, detail="on hold in a CRL that is stale at the signing time"
        )
    after = [h for h in holds if h > at]
    return RevocationVerdict("held_after", min(after)) if after else None


def cert_pem(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()
