"""A test county PKI and signed PDFs, made with real crypto (cryptography + pyHanko), file keys only.

The verifier's own tests need documents it did not make with the token: a root, an issuing CA, seal
certificates laid out like the keystore's (CN = seal name, O = county, OU = township, serialNumber = seal
id), a TSA, CRLs, and one-page PDFs signed by pyHanko's SimpleSigner.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _name(cn: str, o: str = "兴国县", ou: str | None = None, serial: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    if serial:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def asn1(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.der)

    @property
    def asn1_key(self) -> asn1_keys.PrivateKeyInfo:
        return asn1_keys.PrivateKeyInfo.load(
            self.key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )


def _issue(
    subject: x509.Name,
    issuer: Issued | None,
    *,
    ca: bool,
    not_before: datetime = T0,
    days: int = 3650,
    eku: list[x509.ObjectIdentifier] | None = None,
    extra: list[x509.ExtensionType] | None = None,
    rsa_key: bool = False,
) -> Issued:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    )
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else subject
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        b = b.add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    for ext in extra or []:
        b = b.add_extension(ext, critical=False)
    cert = b.sign(signer_key, hashes.SHA256())
    return Issued(cert, key)


@dataclass
class CountyCA:
    """Root → issuing CA → seals; a TSA under the root."""

    county: str = "兴国县"
    root: Issued = field(init=False)
    issuing: Issued = field(init=False)
    tsa: Issued = field(init=False)
    revoked: dict[int, datetime] = field(default_factory=dict)
    reasons: dict[int, x509.ReasonFlags] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = _issue(_name(f"{self.county}电子印章根CA", self.county), None, ca=True, days=7300)
        self.issuing = _issue(_name(f"{self.county}电子印章签发CA", self.county), self.root, ca=True)
        self.tsa = _issue(
            _name(f"{self.county}时间戳服务", self.county),
            self.root,
            ca=False,
            eku=[ExtendedKeyUsageOID.TIME_STAMPING],
            rsa_key=True,  # pyHanko's DummyTimeStamper is RSA-only
        )

    def issue_seal(
        self,
        name: str = "兴国县兴江乡人民政府行政审批服务专用章",
        township: str = "兴江乡",
        seal_id: str = "SEAL-0001",
        *,
        not_before: datetime = T0,
        days: int = 1825,
        extra: list[x509.ExtensionType] | None = None,
    ) -> Issued:
        crl_dp = x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    [x509.UniformResourceIdentifier("http://127.0.0.1/crl/issuing.crl")], None, None, None
                )
            ]
        )
        return _issue(
            _name(name, self.county, township, seal_id),
            self.issuing,
            ca=False,
            not_before=not_before,
            days=days,
            extra=[crl_dp, *(extra or [])],
        )

    def revoke(self, seal: Issued, at: datetime, reason: x509.ReasonFlags | None = None) -> None:
        self.revoked[seal.cert.serial_number] = at
        if reason is not None:
            self.reasons[seal.cert.serial_number] = reason

    def hold(self, seal: Issued, at: datetime) -> None:
        """Suspend: the seal goes on the CRL with reason certificateHold."""
        self.revoke(seal, at, x509.ReasonFlags.certificate_hold)

    def release(self, seal: Issued) -> None:
        """Resume: the next CRL leaves the held seal out (full CRLs; removeFromCRL is for delta CRLs)."""
        self.revoked.pop(seal.cert.serial_number, None)
        self.reasons.pop(seal.cert.serial_number, None)

    def crl_der(self, this_update: datetime) -> bytes:
        b = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.issuing.cert.subject)
            .last_update(this_update)
            .next_update(this_update + timedelta(days=7))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.issuing.key.public_key()), False
            )
            .add_extension(x509.CRLNumber(int(this_update.timestamp())), False)
        )
        for serial, at in self.revoked.items():
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at)
            if serial in self.reasons:
                entry = entry.add_extension(x509.CRLReason(self.reasons[serial]), critical=False)
            b = b.add_revoked_certificate(entry.build())
        return b.sign(self.issuing.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def root_crl_der(self, this_update: datetime) -> bytes:
        b = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.root.cert.subject)
            .last_update(this_update)
            .next_update(this_update + timedelta(days=30))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root.key.public_key()), False
            )
            .add_extension(x509.CRLNumber(1), False)
        )
        return b.sign(self.root.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def blank_pdf(text: str = "Permit 2026-001", *, with_form_field: bool = False) -> bytes:
    """A one-page PDF (optionally with a text form field), written by pyHanko's writer."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.content import RawContent
    from pyhanko.pdf_utils.writer import PdfFileWriter

    w = PdfFileWriter()
    font = w.add_object(
        generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Font"),
                generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
                generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica"),
            }
        )
    )
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    content = RawContent(stream)
    from pyhanko.pdf_utils.layout import BoxConstraints

    content.box = BoxConstraints(612, 792)
    page = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Page"),
            generic.NameObject("/MediaBox"): generic.ArrayObject(map(generic.NumberObject, (0, 0, 612, 792))),
            generic.NameObject("/Resources"): generic.DictionaryObject(
                {generic.NameObject("/Font"): generic.DictionaryObject({generic.NameObject("/F1"): font})}
            ),
            generic.NameObject("/Contents"): w.add_object(generic.StreamObject(stream_data=stream)),
        }
    )
    w.insert_page(page)
    if with_form_field:
        page_ref = w.root["/Pages"]["/Kids"][0]
        tf = generic.DictionaryObject(
            {
                generic.NameObject("/FT"): generic.NameObject("/Tx"),
                generic.NameObject("/T"): generic.TextStringObject("remark"),
                generic.NameObject("/V"): generic.TextStringObject(""),
                generic.NameObject("/Type"): generic.NameObject("/Annot"),
                generic.NameObject("/Subtype"): generic.NameObject("/Widget"),
                generic.NameObject("/Rect"): generic.ArrayObject(
                    map(generic.NumberObject, (72, 600, 300, 630))
                ),
                generic.NameObject("/P"): page_ref,
            }
        )
        tf_ref = w.add_object(tf)
        page_ref.get_object()[generic.NameObject("/Annots")] = generic.ArrayObject([tf_ref])
        w.root[generic.NameObject("/AcroForm")] = generic.DictionaryObject(
            {generic.NameObject("/Fields"): generic.ArrayObject([tf_ref])}
        )
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def sign_pdf(
    pdf: bytes,
    ca: CountyCA,
    seal: Issued,
    *,
    field_name: str = "Seal1",
    timestamp_at: datetime | None = None,
    crls: list[bytes] | None = None,
    metadata: dict[str, str] | None = None,
    incremental: bool = True,
) -> bytes:
    """Sign with pyHanko (PAdES, signature timestamp from a DummyTimeStamper, CRLs embedded in the DSS)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    store = SimpleCertificateStore.from_certs([ca.issuing.asn1, ca.root.asn1])
    signer = signers.SimpleSigner(signing_cert=seal.asn1, signing_key=seal.asn1_key, cert_registry=store)
    tsa = DummyTimeStamper(
        tsa_cert=ca.tsa.asn1,
        tsa_key=ca.tsa.asn1_key,
        certs_to_embed=SimpleCertificateStore.from_certs([ca.root.asn1]),
        fixed_dt=timestamp_at or datetime.now(UTC),
    )
    from asn1crypto import crl as asn1_crl

    vc = None
    if crls is not None:
        vc = ValidationContext(
            trust_roots=[ca.root.asn1],
            other_certs=[ca.issuing.asn1],
            crls=[asn1_crl.CertificateList.load(c) for c in crls],
            allow_fetching=False,
            moment=timestamp_at,
            retroactive_revinfo=True,
            revocation_mode="soft-fail",
        )
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        embed_validation_info=crls is not None,
        validation_context=vc,
    )
    w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    if metadata:
        from pyhanko.pdf_utils import generic

        info = w.trailer["/Info"].get_object() if "/Info" in w.trailer else None
        del info
        _ = generic  # metadata is bound by the sealing side; tests add it via the sig dict (see below)
    out = io.BytesIO()
    signers.PdfSigner(meta, signer=signer, timestamper=tsa).sign_pdf(w, output=out)
    return out.getvalue()


# ----------------------------------------------------------------------------------------------------------
# attacks: incremental updates appended after sealing


def _incremental(pdf: bytes, mutate) -> bytes:  # type: ignore[no-untyped-def]
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    mutate(w)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def _page(w):  # type: ignore[no-untyped-def]
    kids = w.root["/Pages"]["/Kids"]
    return kids.raw_get(0), kids[0]


def append_page_content_change(pdf: bytes, text: str = "REVOKED - void") -> bytes:
    from pyhanko.pdf_utils import generic

    def mutate(w):  # type: ignore[no-untyped-def]
        ref, page = _page(w)
        page[generic.NameObject("/Contents")] = w.add_object(
            generic.StreamObject(stream_data=f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode())
        )
        w.update_container(page)
        w.mark_update(ref)

    return _incremental(pdf, mutate)


def append_annotation(pdf: bytes) -> bytes:
    from pyhanko.pdf_utils import generic

    def mutate(w):  # type: ignore[no-untyped-def]
        ref, page = _page(w)
        annot = w.add_object(
            generic.DictionaryObject(
                {
                    generic.NameObject("/Type"): generic.NameObject("/Annot"),
                    generic.NameObject("/Subtype"): generic.NameObject("/FreeText"),
                    generic.NameObject("/Rect"): generic.ArrayObject(
                        map(generic.NumberObject, (50, 700, 500, 760))
                    ),
                    generic.NameObject("/Contents"): generic.TextStringObject("amount: 1,000,000"),
                    generic.NameObject("/DA"): generic.TextStringObject("/Helv 12 Tf 0 g"),
                }
            )
        )
        page[generic.NameObject("/Annots")] = generic.ArrayObject([annot])
        w.mark_update(ref)

    return _incremental(pdf, mutate)


def append_form_fill(pdf: bytes, value: str = "approved without conditions") -> bytes:
    from pyhanko.pdf_utils import generic

    def mutate(w):  # type: ignore[no-untyped-def]
        fields = w.root["/AcroForm"]["/Fields"]
        for i in range(len(fields)):
            f = fields[i]
            if f.get("/FT") == "/Tx":
                f[generic.NameObject("/V")] = generic.TextStringObject(value)
                w.mark_update(fields.raw_get(i))

    return _incremental(pdf, mutate)


def append_font_swap(pdf: bytes) -> bytes:
    from pyhanko.pdf_utils import generic

    def mutate(w):  # type: ignore[no-untyped-def]
        _ref, page = _page(w)
        fonts = page["/Resources"]["/Font"]
        font_ref = fonts.raw_get("/F1")
        font = font_ref.get_object()
        font[generic.NameObject("/BaseFont")] = generic.NameObject("/Courier")
        w.mark_update(font_ref)

    return _incremental(pdf, mutate)


def append_image_xobject(pdf: bytes) -> bytes:
    """A new image drawn over the page (an image swap, as far as the viewer is concerned)."""
    from pyhanko.pdf_utils import generic

    def mutate(w):  # type: ignore[no-untyped-def]
        ref, page = _page(w)
        img = w.add_object(
            generic.StreamObject(
                {
                    generic.NameObject("/Type"): generic.NameObject("/XObject"),
                    generic.NameObject("/Subtype"): generic.NameObject("/Image"),
                    generic.NameObject("/Width"): generic.NumberObject(1),
                    generic.NameObject("/Height"): generic.NumberObject(1),
                    generic.NameObject("/ColorSpace"): generic.NameObject("/DeviceGray"),
                    generic.NameObject("/BitsPerComponent"): generic.NumberObject(8),
                },
                stream_data=b"\xff",
            )
        )
        res = page["/Resources"]
        res[generic.NameObject("/XObject")] = generic.DictionaryObject({generic.NameObject("/Im1"): img})
        extra = w.add_object(generic.StreamObject(stream_data=b"q 612 0 0 792 0 0 cm /Im1 Do Q"))
        page[generic.NameObject("/Contents")] = generic.ArrayObject([page.raw_get("/Contents"), extra])
        w.mark_update(ref)

    return _incremental(pdf, mutate)


def append_raw_update_with_broken_xref(pdf: bytes) -> bytes:
    """An appended update that redefines the page's content stream, with a wrong offset in its xref.

    A reader that repairs the xref (by scanning for ``N 0 obj``) finds the forged object and shows it; a
    reader that trusts the broken table does not: the same file renders two ways.
    """
    import re

    m = list(re.finditer(rb"startxref\s+(\d+)", pdf))[-1]
    prev = int(m.group(1))
    size = int(re.findall(rb"/Size (\d+)", pdf)[-1])
    root = int(re.findall(rb"/Root (\d+) 0 R", pdf)[-1])
    found = re.search(rb"(\d+) 0 obj\s*<<\s*/Length \d+\s*>>\s*stream\s*BT", pdf)
    assert found is not None
    content_obj = int(found.group(1))
    body_at = len(pdf)
    stream = "BT /F1 24 Tf 72 720 Td (FORGED) Tj ET"
    obj = f"{content_obj} 0 obj\n<< /Length {len(stream)} >>\nstream\n{stream}\nendstream\nendobj\n"
    xref_at = body_at + len(obj)
    bogus = body_at + 7  # wrong on purpose
    xref = (
        f"xref\n{content_obj} 1\n{bogus:010d} 00000 n \n"
        f"trailer\n<< /Size {size} /Prev {prev} /Root {root} 0 R >>\n"
    )
    tail = f"startxref\n{xref_at}\n%%EOF\n"
    return pdf + (obj + xref + tail).encode()


def replace_last_xref(pdf: bytes) -> bytes:
    """Append a revision whose xref re-points an existing object (the page's contents) at new bytes."""
    import re

    m = list(re.finditer(rb"startxref\s+(\d+)", pdf))[-1]
    prev = int(m.group(1))
    size_m = re.findall(rb"/Size (\d+)", pdf)
    size = int(size_m[-1]) if size_m else 100
    root_m = re.findall(rb"/Root (\d+) 0 R", pdf)
    root = int(root_m[-1])
    # Find the page content stream object number from the blank PDF layout: the first "stream" object.
    found = re.search(rb"(\d+) 0 obj\s*<<\s*/Length \d+\s*>>\s*stream\s*BT", pdf)
    assert found is not None
    content_obj = int(found.group(1))
    at = len(pdf)
    stream = "BT /F1 24 Tf 72 720 Td (VOID!!) Tj ET"
    body = f"{content_obj} 0 obj\n<< /Length {len(stream)} >>\nstream\n{stream}\nendstream\nendobj\n"
    xref_at = at + len(body)
    xref = (
        f"xref\n{content_obj} 1\n{at:010d} 00000 n \n"
        f"trailer\n<< /Size {size} /Prev {prev} /Root {root} 0 R >>\n"
        f"startxref\n{xref_at}\n%%EOF\n"
    )
    return pdf + (body + xref).encode()


def append_orphan_update_with_broken_xref(pdf: bytes) -> bytes:
    """An appended update adding one (unreferenced) object, its xref offset wrong. pyHanko's lenient
    reader shrugs it off as an LTA-level change; a strict structure check refuses the file."""
    import re

    m = list(re.finditer(rb"startxref\s+(\d+)", pdf))[-1]
    prev = int(m.group(1))
    size = int(re.findall(rb"/Size (\d+)", pdf)[-1])
    root = int(re.findall(rb"/Root (\d+) 0 R", pdf)[-1])
    body_at = len(pdf)
    stream = "BT /F1 24 Tf 72 600 Td (FORGED) Tj ET"
    obj = f"{size} 0 obj\n<< /Length {len(stream)} >>\nstream\n{stream}\nendstream\nendobj\n"
    xref_at = body_at + len(obj)
    xref = (
        f"xref\n{size} 1\n{body_at + 7:010d} 00000 n \n"
        f"trailer\n<< /Size {size + 1} /Prev {prev} /Root {root} 0 R >>\n"
    )
    return pdf + (obj + xref + f"startxref\n{xref_at}\n%%EOF\n").encode()


def add_document_timestamp(pdf: bytes, ca: CountyCA, at: datetime) -> bytes:
    """B-LTA shape: a document timestamp (ETSI.RFC3161) appended by pyHanko's PdfTimeStamper."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import timestamps
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    tsa = DummyTimeStamper(
        tsa_cert=ca.tsa.asn1,
        tsa_key=ca.tsa.asn1_key,
        certs_to_embed=SimpleCertificateStore.from_certs([ca.root.asn1]),
        fixed_dt=at,
    )
    _ = timestamps
    out = io.BytesIO()
    PdfTimeStamper(tsa).timestamp_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False), "sha256", output=out
    )
    return out.getvalue()


# ----------------------------------------------------------------------------------------------------------
# overlays after the seal: visible document timestamps, sneaky fields, form and catalog state


def _overlay_stream(w, width: float, height: float, text: str):  # type: ignore[no-untyped-def]
    """A form XObject that whites out its box and writes ``text``: what an overlay attack draws."""
    from pyhanko.pdf_utils import generic

    n = generic.NameObject
    font = generic.DictionaryObject(
        {n("/Type"): n("/Font"), n("/Subtype"): n("/Type1"), n("/BaseFont"): n("/Helvetica")}
    )
    return w.add_object(
        generic.StreamObject(
            {
                n("/Type"): n("/XObject"),
                n("/Subtype"): n("/Form"),
                n("/BBox"): generic.ArrayObject(map(generic.FloatObject, (0, 0, width, height))),
                n("/Resources"): generic.DictionaryObject(
                    {n("/Font"): generic.DictionaryObject({n("/F1"): font})}
                ),
            },
            stream_data=(
                f"1 1 1 rg 0 0 {width} {height} re f 0 0 0 rg BT /F1 24 Tf 10 12 Td ({text}) Tj ET"
            ).encode(),
        )
    )


def add_signature_field(
    w, name: str, rect: tuple[float, float, float, float], *, appearance: str | None = None
):  # type: ignore[no-untyped-def]
    """Append an empty signature field merged with its widget on page 1 (optionally with an appearance)."""
    from pyhanko.pdf_utils import generic

    n = generic.NameObject
    page_ref, page = _page(w)
    widget = generic.DictionaryObject(
        {
            n("/FT"): n("/Sig"),
            n("/T"): generic.TextStringObject(name),
            n("/Type"): n("/Annot"),
            n("/Subtype"): n("/Widget"),
            n("/F"): generic.NumberObject(4),
            n("/Rect"): generic.ArrayObject(map(generic.FloatObject, rect)),
            n("/P"): page_ref,
        }
    )
    if appearance is not None:
        width, height = abs(rect[2] - rect[0]) or 1, abs(rect[3] - rect[1]) or 1
        widget[n("/AP")] = generic.DictionaryObject({n("/N"): _overlay_stream(w, width, height, appearance)})
    ref = w.add_object(widget)
    annots = page.get("/Annots")
    if annots is None:
        page[n("/Annots")] = generic.ArrayObject([ref])
    else:
        annots.append(ref)
    w.update_container(page)
    w.mark_update(page_ref)
    root = w.root
    if "/AcroForm" not in root:
        root[n("/AcroForm")] = generic.DictionaryObject({n("/Fields"): generic.ArrayObject()})
    form = root["/AcroForm"]
    form["/Fields"].append(ref)
    form_ref = root.raw_get("/AcroForm")
    if isinstance(form_ref, generic.IndirectObject):
        w.mark_update(form_ref)
    w.update_root()
    return ref


def add_visible_document_timestamp(
    pdf: bytes,
    ca: CountyCA,
    at: datetime,
    *,
    rect: tuple[float, float, float, float] = (60, 700, 420, 750),
    text: str = "Permit 2036-999",
    field_name: str = "TS-overlay",
    existing_field: bool = False,
) -> bytes:
    """A document timestamp whose widget is an overlay (white box + new text) over the permit's line.

    ``existing_field``: fill a signature field that is already in the document (the Sneaky Signature
    Attack); the appearance is replaced by the forgery while it is filled.
    """
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    if existing_field:
        for name, _value, ref in fields.enumerate_sig_fields(w, filled_status=False):
            if name == field_name:
                fld = ref.get_object()
                x1, y1, x2, y2 = (float(v) for v in fld["/Rect"])
                fld[generic.NameObject("/AP")] = generic.DictionaryObject(
                    {generic.NameObject("/N"): _overlay_stream(w, abs(x2 - x1), abs(y2 - y1), text)}
                )
                w.mark_update(ref)
                break
        else:
            raise ValueError(f"no empty signature field {field_name}")
    else:
        add_signature_field(w, field_name, rect, appearance=text)
    tsa = DummyTimeStamper(
        tsa_cert=ca.tsa.asn1,
        tsa_key=ca.tsa.asn1_key,
        certs_to_embed=SimpleCertificateStore.from_certs([ca.root.asn1]),
        fixed_dt=at,
    )
    out = io.BytesIO()
    PdfTimeStamper(tsa, field_name=field_name).timestamp_pdf(w, "sha256", output=out)
    return out.getvalue()


def with_empty_signature_field(pdf: bytes, name: str, rect: tuple[float, float, float, float]) -> bytes:
    """The source document with an empty signature field (before sealing: the sneaky field)."""
    return _incremental(pdf, lambda w: add_signature_field(w, name, rect))


def append_acroform_entry(pdf: bytes, key: str, value) -> bytes:  # type: ignore[no-untyped-def]
    """Set an AcroForm entry (``/NeedAppearances``, ``/DA`` …) in an update after sealing."""
    from pyhanko.pdf_utils import generic

    def mutate(w):  # type: ignore[no-untyped-def]
        form_ref = w.root.raw_get("/AcroForm")
        form = form_ref.get_object()
        form[generic.NameObject(key)] = value
        if isinstance(form_ref, generic.IndirectObject):
            w.mark_update(form_ref)
        w.update_root()

    return _incremental(pdf, mutate)


def append_catalog_entry(pdf: bytes, key: str, make) -> bytes:  # type: ignore[no-untyped-def]
    """Set a catalog entry (``/OCProperties``, ``/PageLabels`` …) built by ``make(writer)`` after sealing."""
    from pyhanko.pdf_utils import generic

    def mutate(w):  # type: ignore[no-untyped-def]
        w.root[generic.NameObject(key)] = make(w)
        w.update_root()

    return _incremental(pdf, mutate)
