"""PAdES sealing with the seal's key in the token: stamp, sign, timestamp, long-term validation data.

The policy binding (matter, stage, document kind, document number, idempotency key) goes into the
signature dictionary as ``/YizhangBinding``, a text string holding canonical JSON. Why the signature
dictionary and not a private signed CMS attribute: every entry of the signature dictionary except
``/Contents`` lies inside the ``/ByteRange``, so it is covered by the signature exactly as a signed
attribute would be; but any PDF tool (``qpdf --show-object``, pdf.js, the verifier here) can read it back
without a CMS parser, and it stays next to ``/Reason`` and ``/M`` where PDF people look for what was signed.

Levels (ETSI EN 319 142-1): ``B-T`` signature + signature timestamp; ``B-LT`` adds the county CRLs and the
chain in the DSS; ``B-LTA`` adds a document timestamp over everything (the county default).
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import TYPE_CHECKING, Any, Protocol

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from asn1crypto.algos import SignedDigestAlgorithm
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko.sign.signers.pdf_signer import PdfCMSSignedAttributes
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from core.errors import BadInput, SealServiceError, SigningError, Unavailable

from ._loops import call_blocking, run_off_loop

if TYPE_CHECKING:
    from keystore import KeyAlgorithm
from ._pdfin import MALFORMED_ERRORS, OpenedPdf, open_untrusted_pdf
from ._stamp import DEFAULT_DIAMETER_PT, SealFace, SealStampStyle

BINDING_KEY = "/YizhangBinding"


class _NoFetchNotice(logging.Filter):
    """We never let pyHanko fetch revocation data (the county's CRLs are given): its warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_NoFetchNotice())


class SignatureLevel(enum.StrEnum):
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"

    @classmethod
    def parse(cls, value: str | SignatureLevel) -> SignatureLevel:
        try:
            return cls(str(value).upper())
        except ValueError as exc:
            raise BadInput(
                "SIGNATURE_LEVEL_INVALID",
                f"unknown PAdES level {value!r} (B-T, B-LT, B-LTA)",
                "未知的签章级别",
            ) from exc


Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class Placement:
    """Where the stamp goes: a 0-based page (negative counts from the end) and a box in PDF points.

    ``protected`` rectangles (page, box) mark text the stamp must not cover.
    """

    page: int = -1
    box: Rect | None = None
    protected: tuple[tuple[int, Rect], ...] = ()


@dataclass(frozen=True)
class SealingKey:
    """The seal's key in the token and its certificate chain (leaf first, then issuing CA, root)."""

    key_label: str
    algorithm: str  # keystore.KeyAlgorithm value
    chain_der: tuple[bytes, ...]
    seal_name: str
    seal_number: int | None = None


@dataclass(frozen=True)
class RevocationMaterial:
    """Trust anchor and CRLs used for B-LT/B-LTA (DSS) and for checking the chain before signing."""

    root_der: bytes
    intermediates_der: tuple[bytes, ...] = ()
    crls_der: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class SealJob:
    key: SealingKey
    binding: dict[str, Any]
    level: SignatureLevel = SignatureLevel.B_T
    placement: Placement = field(default_factory=Placement)
    reason: str | None = None
    location: str | None = None
    revocation: RevocationMaterial | None = None
    verify_url: str | None = None  # draw the verification QR code and line (first seal only)
    # the placement already resolved on the ``opened`` PDF given with the job: not resolved again
    at: tuple[int, Rect] | None = None


class _FrozenAttribute:
    """A signed attribute as parsed back from its one encoding (see ``KeystoreSigner``). The signing
    certificate's ESS attribute depends on the certificate alone: it is encoded once per signer."""

    _CONSTANT = frozenset({"signing_certificate_v2"})

    def __init__(self, inner: Any, constants: dict[str, bytes]) -> None:
        self._inner = inner
        self._constants = constants

    async def get_attribute(self, dry_run: bool = False) -> cms.CMSAttribute | None:
        kind = getattr(self._inner, "attribute_type", None)
        der = self._constants.get(kind) if kind in self._CONSTANT else None
        if der is None:
            attr = await self._inner.get_attribute(dry_run=dry_run)
            if attr is None:
                return None
            der = attr.dump()
            if kind in self._CONSTANT:
                self._constants[kind] = der
        return cms.CMSAttribute.load(der)  # a value of its own each time: parsing is lazy, not thread-safe


class TokenKeys(Protocol):
    """What sealing needs of the keystore (``keystore.Keystore``): a signature by a key that never leaves
    the token."""

    def sign(self, label: str, data: bytes, algorithm: KeyAlgorithm = ..., hash_alg: str = ...) -> bytes: ...


class KeystoreSigner(Signer):
    """pyHanko signer whose private key operation happens in the PKCS#11 token via the keystore.

    pyHanko hashes the signed attributes here; the keystore hashes again on its side and signs the digest
    with raw ``CKM_ECDSA`` / ``CKM_RSA_PKCS`` (SoftHSM has no ``CKM_ECDSA_SHA256``). The key never leaves.
    """

    def __init__(self, keystore: TokenKeys, key: SealingKey) -> None:
        from keystore import KeyAlgorithm

        self._ks = keystore
        self._label = key.key_label
        self._alg = KeyAlgorithm(key.algorithm)
        certs = [asn1_x509.Certificate.load(d) for d in key.chain_der]
        mech = "sha256_ecdsa" if self._alg is KeyAlgorithm.EC_P256 else "sha256_rsa"
        super().__init__(
            signing_cert=certs[0],
            cert_registry=SimpleCertificateStore.from_certs(certs[1:]),
            signature_mechanism=SignedDigestAlgorithm({"algorithm": mech}),
            embed_roots=True,
        )
        self._dummy_len = 72 if self._alg is KeyAlgorithm.EC_P256 else 384
        self._constant_attrs: dict[str, bytes] = {}

    # asn1crypto re-encodes a value built from Python objects every time it is dumped (its "mutated" flag
    # is never cleared), and SET OF sorts by encoding each member again: the signed attributes were encoded
    # dozens of times per signature, their ESS certificate ids and default algorithm parameters with them.
    # Parsing the one encoding back gives values whose dump is the cached bytes; what is signed and what is
    # embedded are the same bytes either way.
    def _signed_attr_providers(self, *args: Any, **kwargs: Any) -> list[_FrozenAttribute]:
        providers = super()._signed_attr_providers(*args, **kwargs)
        return [_FrozenAttribute(p, self._constant_attrs) for p in providers]

    async def signed_attrs(self, *args: Any, **kwargs: Any) -> cms.CMSAttributes:
        attrs = await super().signed_attrs(*args, **kwargs)
        return cms.CMSAttributes.load(attrs.dump())

    def signer_info(self, *args: Any, **kwargs: Any) -> cms.SignerInfo:
        return cms.SignerInfo.load(super().signer_info(*args, **kwargs).dump())

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            return bytes(self._dummy_len)
        return await call_blocking(self._ks.sign, self._label, data, self._alg, digest_algorithm)


_SIGNERS: weakref.WeakKeyDictionary[TokenKeys, dict[SealingKey, KeystoreSigner]] = weakref.WeakKeyDictionary()
_SIGNERS_LOCK = threading.Lock()
_SIGNERS_MAX = 256


def signer_for(keystore: TokenKeys, key: SealingKey) -> KeystoreSigner:
    """The pyHanko signer for ``key`` in ``keystore``, made once per keystore and key.

    A pyHanko ``Signer`` keeps only what its constructor is given (certificate, chain, mechanism), so one
    instance serves any number of signings, from any thread; making it parses the chain each time.
    """
    try:
        with _SIGNERS_LOCK:
            per_key = _SIGNERS.setdefault(keystore, {})
            signer = per_key.get(key)
            if signer is None:
                if len(per_key) >= _SIGNERS_MAX:
                    per_key.clear()
                signer = per_key[key] = KeystoreSigner(keystore, key)
            return signer
    except TypeError:  # a keystore that cannot be weakly referenced: no cache
        return KeystoreSigner(keystore, key)


def binding_json(binding: dict[str, Any]) -> str:
    """Canonical JSON of the binding (sorted keys, ASCII escapes: byte-stable and easy to read back)."""
    return json.dumps(
        {k: v for k, v in binding.items() if v is not None}, sort_keys=True, separators=(",", ":")
    )


def _overlaps(a: Rect, b: Rect) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def resolve_placement(opened: OpenedPdf, placement: Placement) -> tuple[int, Rect]:
    """The page index and box of the stamp; refuses a box over a protected rectangle or off the page."""
    n = opened.page_count
    page = placement.page if placement.page >= 0 else n + placement.page
    if not 0 <= page < n:
        raise BadInput(
            "STAMP_PAGE_INVALID", f"page {placement.page} not in a {n}-page document", "盖章页码超出文档范围"
        )
    mx0, my0, mx1, my1 = opened.page_box(page)
    if placement.box is None:
        d = DEFAULT_DIAMETER_PT
        # lower right, over where the issuing organ's name and date are printed (templates put them there)
        x1 = mx1 - 72
        y0 = my0 + 110
        box: Rect = (x1 - d, y0, x1, y0 + d)
    else:
        box = tuple(float(v) for v in placement.box)  # type: ignore[assignment]
        if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
            raise BadInput(
                "STAMP_BOX_INVALID", "a stamp box is x1 y1 x2 y2 with x2>x1, y2>y1", "盖章区域无效"
            )
        if box[0] < mx0 or box[1] < my0 or box[2] > mx1 or box[3] > my1:
            raise BadInput("STAMP_BOX_INVALID", "the stamp box leaves the page", "盖章区域超出页面")
    for ppage, rect in placement.protected:
        pp = ppage if ppage >= 0 else n + ppage
        if pp == page and _overlaps(box, rect):
            raise BadInput(
                "STAMP_OVERLAPS_PROTECTED",
                "the stamp would cover text marked as protected",
                "印章位置会遮盖受保护的文字",
                details={"page": page, "box": list(box), "protected": list(rect)},
            )
    return page, box


def _reserve(job: SealJob, tsa_certs_len: int) -> int:
    """Bytes for /Contents: the CMS with its chain, the timestamp token with its chain, slack."""
    chain = sum(len(c) for c in job.key.chain_der)
    return 2 * (chain + tsa_certs_len) + 6144


def _validation_context(rev: RevocationMaterial) -> ValidationContext:
    root = asn1_x509.Certificate.load(rev.root_der)
    return ValidationContext(
        trust_roots=[root],
        other_certs=[asn1_x509.Certificate.load(d) for d in rev.intermediates_der],
        crls=list(rev.crls_der),
        allow_fetching=False,
        revocation_mode="hard-fail",
    )


async def async_seal_pdf(
    unverified_pdf: bytes,
    job: SealJob,
    keystore: TokenKeys,
    timestamper: TimeStamper,
    *,
    max_bytes: int,
    tsa_certs_len: int = 2400,
    opened: OpenedPdf | None = None,
) -> bytes:
    """Seal ``unverified_pdf`` as an incremental update; earlier signatures stay valid.

    ``opened`` is the result of :func:`open_untrusted_pdf` on the same bytes, if the caller has it: one
    parse serves the checks, the placement and the writer (its object cache makes the last page cheap).

    The document is untrusted: pyHanko reads its objects lazily, so a structure that passed the opening
    checks can still break while the writer, the stamp or the pre-signing validation walks it (a page tree
    without ``/Count``, an xref pointing at the wrong object, an earlier signature that is not DER). Those
    are the client's bad input, ``PDF_MALFORMED`` (400), never an internal error.
    """
    try:
        return await _seal_untrusted(
            unverified_pdf,
            job,
            keystore,
            timestamper,
            max_bytes=max_bytes,
            tsa_certs_len=tsa_certs_len,
            opened=opened,
        )
    except SealServiceError:
        raise
    except MALFORMED_ERRORS as exc:
        raise BadInput(
            "PDF_MALFORMED",
            f"the PDF cannot be sealed: {type(exc).__name__}: {exc}"[:500],
            "PDF 文件结构已损坏，无法盖章",
        ) from exc


async def _seal_untrusted(
    unverified_pdf: bytes,
    job: SealJob,
    keystore: TokenKeys,
    timestamper: TimeStamper,
    *,
    max_bytes: int,
    tsa_certs_len: int,
    opened: OpenedPdf | None,
) -> bytes:
    if opened is None:
        opened = open_untrusted_pdf(unverified_pdf, max_bytes=max_bytes)
        page, box = resolve_placement(opened, job.placement)
    else:
        page, box = job.at if job.at is not None else resolve_placement(opened, job.placement)
    writer = IncrementalPdfFileWriter.from_reader(opened.reader)
    make_annotations_indirect(writer)
    existing = [name for name, _, _ in fields.enumerate_sig_fields(writer.prev)]
    if job.verify_url is not None:
        from ._qr import draw_verification_qr, qr_box

        if any(True for _ in fields.enumerate_sig_fields(writer.prev, filled_status=True)):
            raise BadInput(
                "QR_ON_SIGNED_PDF",
                "a verification QR code would change a page under existing signatures",
                "文件已有签名，添加验证二维码会使原签名失效",
            )
        qbox = qr_box(opened.page_box(page))
        for ppage, rect in job.placement.protected:
            if (ppage if ppage >= 0 else opened.page_count + ppage) == page and _overlaps(qbox, rect):
                raise BadInput(
                    "STAMP_OVERLAPS_PROTECTED",
                    "the QR code would cover protected text",
                    "二维码会遮盖受保护文字",
                )
        draw_verification_qr(writer, page, qbox, job.verify_url)
    field_name = f"Seal{len(existing) + 1}"
    while field_name in existing:
        field_name += "x"
    lt = job.level in (SignatureLevel.B_LT, SignatureLevel.B_LTA)
    vc = None
    if lt:
        if job.revocation is None:
            raise SigningError("LTV_MATERIAL_MISSING", "B-LT needs the county CRLs", "长期验证缺少吊销信息")
        vc = _validation_context(job.revocation)
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=job.reason,
        location=job.location,
        name=job.key.seal_name,
        embed_validation_info=lt,
        use_pades_lta=job.level is SignatureLevel.B_LTA,
        validation_context=vc,
    )
    style = SealStampStyle(face=SealFace.from_name(job.key.seal_name, job.key.seal_number))
    pdf_signer = signers.PdfSigner(
        meta,
        signer=signer_for(keystore, job.key),
        timestamper=timestamper,
        stamp_style=style,
        new_field_spec=fields.SigFieldSpec(
            sig_field_name=field_name,
            on_page=page,
            box=(round(box[0]), round(box[1]), round(box[2]), round(box[3])),
        ),
    )
    try:
        # pyHanko's own async_sign_pdf, unrolled only to put the binding into the signature dictionary
        # after pyHanko built it and before the byte range is digested.
        session = pdf_signer.init_signing_session(writer)
        validation_info = await session.perform_presign_validation(writer)
        tbs = session.prepare_tbs_document(
            validation_info=validation_info, bytes_reserved=_reserve(job, tsa_certs_len)
        )
        _bind(writer, field_name, job.binding)
        prepared, output = tbs.digest_tbs_document(output=BytesIO())
        post = await tbs.perform_signature(
            document_digest=prepared.document_digest,
            pdf_cms_signed_attrs=PdfCMSSignedAttributes(
                signing_time=session.system_time,
                adobe_revinfo_attr=None if validation_info is None else validation_info.adobe_revinfo_attr,
            ),
        )
        await post.post_signature_processing(output)
    except SealServiceError:
        raise
    except (PyHankoSigningError, OSError) as exc:
        raise _translate(exc) from exc
    output.seek(0)
    return bytes(output.read())


def make_annotations_indirect(writer: IncrementalPdfFileWriter, *, max_pages: int = 100_000) -> int:
    """Write every annotation that sits as a direct dictionary in a page's ``/Annots`` as an object of its
    own, in the seal's revision (which the seal signs). Returns how many were moved.

    Why: a page may legally hold an annotation inline, but pyHanko's difference analysis
    (``SigFieldCreationRule`` walking every page's ``/Annots`` through ``_arr_to_refs``) refuses any
    ``/Annots`` array with a direct entry, on every page, as soon as a later revision adds a signature field
    — and the B-LTA document timestamp right after the seal is such a revision. The seal then verified
    MODIFIED_AFTER_SIGNING ("Array contains direct objects"). The annotation's content is unchanged; only
    where it is stored moves.
    """
    moved = 0
    stack: list[Any] = [writer.root.raw_get("/Pages")]
    seen: set[generic.Reference] = set()
    while stack:
        node_ref = stack.pop()
        if not isinstance(node_ref, generic.IndirectObject) or node_ref.reference in seen:
            continue
        seen.add(node_ref.reference)
        if len(seen) > max_pages:
            raise BadInput("PDF_TOO_COMPLEX", "the page tree is too large", "PDF 页面树过大")
        node = node_ref.get_object()
        if not isinstance(node, generic.DictionaryObject):
            continue
        kids = node.get("/Kids")
        if isinstance(kids, generic.ArrayObject) and node.get("/Type") != "/Page":
            stack.extend(reversed(list(kids)))  # raw: references stay references
            continue
        raw = node.raw_get("/Annots") if "/Annots" in node else None
        if raw is None:
            continue
        annots = raw.get_object()
        if not isinstance(annots, generic.ArrayObject):
            continue
        direct = [i for i, a in enumerate(annots) if isinstance(a, generic.DictionaryObject)]
        if not direct:
            continue
        for i in direct:
            annots[i] = writer.add_object(annots[i])
        # the array itself if it is an object of its own, else the page that holds it inline
        writer.mark_update(raw.reference if isinstance(raw, generic.IndirectObject) else node_ref.reference)
        moved += len(direct)
    return moved


def _translate(exc: BaseException) -> SealServiceError:
    text = str(exc)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, SealServiceError):
            return cause
        cause = cause.__cause__ or cause.__context__
    if "timestamp" in text.lower() or "tsa" in text.lower():
        return Unavailable("TSA_UNAVAILABLE", f"timestamping failed: {text}", "时间戳服务不可用")
    return SigningError("SIGNING_FAILED", f"signing failed: {text}", "签章失败")


def _bind(writer: IncrementalPdfFileWriter, field_name: str, binding: dict[str, Any]) -> None:
    for name, value, _ref in fields.enumerate_sig_fields(writer, with_name=field_name):
        if name == field_name and value is not None:
            sig_obj = value.get_object() if hasattr(value, "get_object") else value
            sig_obj[pdf_name(BINDING_KEY)] = generic.TextStringObject(binding_json(binding))
            return
    raise SigningError("SIGNING_FAILED", "the new signature field was not found", "未找到新签名域")


def seal_pdf(
    unverified_pdf: bytes,
    job: SealJob,
    keystore: TokenKeys,
    timestamper: TimeStamper,
    *,
    max_bytes: int,
) -> bytes:
    """Synchronous form for sync callers (CLI, worker threads); never call it on a running event loop."""
    return run_off_loop(async_seal_pdf(unverified_pdf, job, keystore, timestamper, max_bytes=max_bytes))


def read_binding(pdf: bytes) -> list[dict[str, Any]]:
    """The bindings of every signature in ``pdf``, oldest first (for tests and tools)."""
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    out: list[dict[str, Any]] = []
    for _name, value, _ref in fields.enumerate_sig_fields(reader, filled_status=True):
        obj = value.get_object()
        if BINDING_KEY in obj:
            out.append(json.loads(str(obj[BINDING_KEY])))
    return out


__all__: Sequence[str] = (
    "BINDING_KEY",
    "KeystoreSigner",
    "Placement",
    "RevocationMaterial",
    "SealJob",
    "SealingKey",
    "SignatureLevel",
    "async_seal_pdf",
    "binding_json",
    "make_annotations_indirect",
    "read_binding",
    "resolve_placement",
    "seal_pdf",
)
