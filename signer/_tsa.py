"""The county's RFC 3161 time-stamping authority, and the time stampers the signer uses.

The TSA key lives in the token (label ``tsa:<name>``); its certificate comes from the county issuing CA with
the critical extended key usage ``timeStamping`` (RFC 3161 §2.3). :meth:`CountyTsa.respond` turns a DER
``TimeStampReq`` into a DER ``TimeStampResp``; the API serves it over HTTP as
``application/timestamp-reply`` and the signer calls it in-process through :class:`CountyTimeStamper`.
An external TSA is used instead when ``settings.tsa_url`` is set (:class:`HttpTimeStamper`).

Tokens carry ESS signing-certificate-v2 (RFC 5816), a nonce echo, a 1-second accuracy and a random 128-bit
serial number (unique without any shared counter).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.timestamps.api import TimeStamper
from sqlalchemy import Engine, select

from core.db import transaction
from core.errors import BadInput, SealServiceError, Unavailable

from ._loops import call_blocking
from ._storage import TsaCertRow

if TYPE_CHECKING:
    from keystore import CountyPKI, Keystore

# Yizhang's private arc (keystore.YIZHANG_ARC is 1.3.6.1.4.1.<pen>); the TSA policy sits under it.
DEFAULT_POLICY_OID = "1.3.6.1.4.1.59999.7.1"
_DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


class TsaRejected(BadInput):
    default_code = "TSA_REQUEST_INVALID"


@dataclass(frozen=True)
class TsaIdentity:
    key_label: str
    cert_der: bytes
    chain_der: tuple[bytes, ...]  # issuing CA, root


def ensure_county_tsa(
    engine: Engine, keystore: Keystore, pki: CountyPKI, name: str = "county"
) -> TsaIdentity:
    """The county TSA's identity: a certificate stored in ``sig_tsa_certs``, issued on first use."""
    with transaction(engine) as session:
        row = session.execute(select(TsaCertRow).where(TsaCertRow.name == name)).scalar_one_or_none()
        cert_der = row.cert_der if row is not None else None
        # after a rotation (signer._ltv.rotate_county_tsa) the row names the current key
        key_label = row.key_label if row is not None else f"tsa:{name}"
    if cert_der is None or not keystore.has_key(key_label):
        key_label = f"tsa:{name}"
        cert = pki.issue_tsa_cert(name)
        cert_der = cert.public_bytes(serialization.Encoding.DER)
        with transaction(engine) as session:
            existing = session.get(TsaCertRow, name)
            if existing is None:
                session.add(
                    TsaCertRow(name=name, key_label=key_label, cert_der=cert_der, created_at=_utcnow())
                )
            else:
                existing.cert_der = cert_der
                existing.key_label = key_label
    chain = tuple(
        c.public_bytes(serialization.Encoding.DER) for c in (pki.issuing_certificate, pki.root_certificate)
    )
    return TsaIdentity(key_label=key_label, cert_der=cert_der, chain_der=chain)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _failure(status_code: str, failure: str, text: str) -> bytes:
    info = tsp.PKIStatusInfo(
        {
            "status": tsp.PKIStatus(status_code),
            "status_string": [text],
            "fail_info": tsp.PKIFailureInfo({failure}),
        }
    )
    return _TimeStampResp({"status": info}).dump()


class _TimeStampResp(core.Sequence):
    """RFC 3161 TimeStampResp; asn1crypto's own makes the token mandatory, but a rejection carries none."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]


class CountyTsa:
    """Answers RFC 3161 requests with tokens signed in the token (ECDSA P-256 with SHA-256)."""

    def __init__(
        self,
        keystore: Keystore,
        identity: TsaIdentity,
        policy_oid: str = DEFAULT_POLICY_OID,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._ks = keystore
        self.identity = identity
        self.policy_oid = policy_oid
        self._clock = clock
        self.cert = asn1_x509.Certificate.load(identity.cert_der)
        self.chain = [asn1_x509.Certificate.load(d) for d in identity.chain_der]
        # Encoded once: asn1crypto re-encodes a constructed value on every dump, and copying the three
        # certificates into each token's SignedData cost more than everything else in a response. Values
        # loaded from DER are dumped from their stored bytes; the token is byte-for-byte the same.
        self._ess_der = self._signing_certificate_v2().dump()
        self._certs_der = cms.CertificateSet([self.cert, *self.chain]).dump()
        # The same for the parts every token repeats, and each per-token part is parsed back from its one
        # encoding before it goes into the next (a SET OF re-encodes its members to sort them).
        self._tsa_name_der = asn1_x509.GeneralName({"directory_name": self.cert.subject}).dump()
        self._sid_der = cms.SignerIdentifier(
            {
                "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                    {"issuer": self.cert.issuer, "serial_number": self.cert.serial_number}
                )
            }
        ).dump()
        self._digest_alg_der = algos.DigestAlgorithm({"algorithm": "sha256"}).dump()
        self._sig_alg_der = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}).dump()

    def _signing_certificate_v2(self) -> tsp.SigningCertificateV2:
        return tsp.SigningCertificateV2(
            {
                "certs": [
                    tsp.ESSCertIDv2(
                        {
                            "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                            "cert_hash": hashlib.sha256(self.identity.cert_der).digest(),
                            "issuer_serial": tsp.IssuerSerial(
                                {
                                    "issuer": [asn1_x509.GeneralName({"directory_name": self.cert.issuer})],
                                    "serial_number": self.cert.serial_number,
                                }
                            ),
                        }
                    )
                ]
            }
        )

    def respond(self, request_der: bytes) -> bytes:
        """DER ``TimeStampReq`` in, DER ``TimeStampResp`` out; a rejection is a response too (§2.4.2)."""
        try:
            req = tsp.TimeStampReq.load(request_der, strict=True)
            version = req["version"].native
            imprint = req["message_imprint"]
            md = imprint["hash_algorithm"]["algorithm"].native
            hashed = imprint["hashed_message"].native
            req_policy = req["req_policy"].native
            nonce = req["nonce"].native
            cert_req = bool(req["cert_req"].native)
        except (ValueError, TypeError, KeyError) as exc:
            return _failure("rejection", "bad_data_format", f"malformed TimeStampReq: {exc}")
        if version not in (1, "v1"):
            return _failure("rejection", "bad_request", "unsupported TimeStampReq version")
        if md not in _DIGEST_SIZES:
            return _failure("rejection", "bad_alg", f"unsupported hash algorithm {md}")
        if not isinstance(hashed, bytes) or len(hashed) != _DIGEST_SIZES[md]:
            return _failure("rejection", "bad_data_format", "hashed message has the wrong length")
        if req_policy is not None and req_policy != self.policy_oid:
            return _failure("rejection", "unaccepted_policy", f"policy {req_policy} not offered")
        try:
            token = self._token(imprint, nonce, cert_req)
        except SealServiceError:
            return _failure("waiting", "system_failure", "the time-stamping key is not available")
        status = tsp.PKIStatusInfo({"status": tsp.PKIStatus("granted")})
        return tsp.TimeStampResp({"status": status, "time_stamp_token": token}).dump()

    def _token(self, imprint: tsp.MessageImprint, nonce: int | None, cert_req: bool) -> cms.ContentInfo:
        now = self._clock().astimezone(UTC).replace(microsecond=0)
        info: dict[str, Any] = {
            "version": "v1",
            "policy": self.policy_oid,
            "message_imprint": imprint,
            "serial_number": int.from_bytes(secrets.token_bytes(16), "big") >> 1,
            "gen_time": now,
            "accuracy": {"seconds": 1},
            "ordering": False,
            "tsa": asn1_x509.GeneralName.load(self._tsa_name_der),
        }
        if nonce is not None:
            info["nonce"] = nonce
        tst_der = tsp.TSTInfo(info).dump()
        ess = tsp.SigningCertificateV2.load(self._ess_der)
        signed_attrs_der = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": now})]}),
                cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]}),
                cms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]}),
            ]
        ).dump()
        signature = self._ks.sign(self.identity.key_label, signed_attrs_der)
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier.load(self._sid_der),
                "digest_algorithm": algos.DigestAlgorithm.load(self._digest_alg_der),
                "signed_attrs": cms.CMSAttributes.load(signed_attrs_der),
                "signature_algorithm": algos.SignedDigestAlgorithm.load(self._sig_alg_der),
                "signature": signature,
            }
        )
        signer_info = cms.SignerInfo.load(signer_info.dump())
        signed_data: dict[str, Any] = {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm.load(self._digest_alg_der)],
            "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(tst_der)},
            "signer_infos": [signer_info],
        }
        if cert_req:
            signed_data["certificates"] = cms.CertificateSet.load(self._certs_der)
        return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})


def _load_response(der: bytes) -> tsp.TimeStampResp:
    resp = _TimeStampResp.load(der)
    _check_response(resp)
    return tsp.TimeStampResp.load(der)


def _check_response(resp: Any) -> None:
    status = resp["status"]["status"].native
    if status not in ("granted", "granted_with_mods"):
        text = resp["status"]["status_string"].native
        raise Unavailable(
            "TSA_UNAVAILABLE",
            f"the time-stamping authority refused: {status} {text or ''}".strip(),
            "时间戳服务拒绝了请求",
            details={"status": status},
        )


class CountyTimeStamper(TimeStamper):
    """pyHanko time stamper answering in-process from the county TSA (on a private sealing loop the token
    call is made directly, elsewhere in a thread: :func:`signer._loops.call_blocking`)."""

    def __init__(self, tsa: CountyTsa) -> None:
        super().__init__(include_nonce=True)
        self.tsa = tsa

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        der = await call_blocking(self.tsa.respond, req.dump())
        return _load_response(der)


class HttpTimeStamper(TimeStamper):
    """RFC 3161 over HTTP (RFC 3161 §3.4) to an external TSA, with a bounded wait."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        super().__init__(include_nonce=True)
        self.url = url
        self.timeout_s = timeout_s

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                r = await client.post(
                    self.url, content=req.dump(), headers={"Content-Type": "application/timestamp-query"}
                )
        except httpx.HTTPError as exc:
            raise Unavailable(
                "TSA_UNAVAILABLE",
                f"time-stamping authority {self.url} unreachable: {exc}",
                "时间戳服务不可达",
            ) from exc
        if r.status_code != 200 or not r.headers.get("content-type", "").startswith(
            "application/timestamp-reply"
        ):
            raise Unavailable(
                "TSA_UNAVAILABLE",
                f"time-stamping authority {self.url} answered HTTP {r.status_code}",
                "时间戳服务应答异常",
            )
        try:
            return _load_response(r.content)
        except ValueError as exc:
            raise Unavailable(
                "TSA_UNAVAILABLE", f"garbled answer from {self.url}", "时间戳服务应答无法解析"
            ) from exc


def tsa_certificate(identity: TsaIdentity) -> x509.Certificate:
    return x509.load_der_x509_certificate(identity.cert_der)
