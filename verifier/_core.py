"""The strict document checks and trust evaluation; runs inside the sandbox (see ``_verify_sandbox``).

Plan (numbered, as the house style asks; ``verify_document`` adds steps 8–9 in the parent):

1. Preflight: size bound, ``%PDF-`` header, ``%%EOF`` near the end. Otherwise PDF_UNREADABLE.
2. Structure: ``qpdf --check`` (in the sandbox: in-process through libqpdf's job API, ``verifier._qpdf``;
   elsewhere its own subprocess with a timeout); pyHanko's
   *strict* reader must parse every revision's cross-reference section; each revision's ``startxref``
   must point at an ``xref`` table or an xref stream object, and nothing but one end-of-line may follow
   the last ``%%EOF``.
3. Per signature (pyHanko's ``EmbeddedPdfSignature``, one field at a time so one broken CMS does not hide
   the others): the ``/ByteRange`` is ``[0 a b c]`` with ``0 < a < b``, ``b + c`` inside the file, the gap
   is exactly ``<hex>`` and that hex is the parsed ``/Contents`` (no room for wrapped content), gaps of
   successive signatures do not overlap earlier signed ranges.
4. Integrity and crypto via pyHanko (digest, signature value), with a STRICT difference policy: after a
   signature, later revisions may only add validation data (DSS/VRI, document timestamps, metadata) or new
   signature fields and their values; form filling, annotations, page/content/font/image changes fail.
5. Endesive recomputes digest and signature for every byte range on its own (independent implementation);
   a disagreement with pyHanko fails the document.
6. Trust: a path to a root in the ``TrustList`` at the signing time proven by a valid signature timestamp;
   revocation from CRLs in the CMS, the DSS and the trust list, judged at that time (revoked after → still
   valid; before → REVOKED; unproven time and revoked → REVOKED_NO_POE); seal facts from the certificate;
   the policy binding from the signature dictionary (``/YizhangBinding``, signed: inside the byte range).
   6b. Expired TSA certificates: proofs of existence from later archive timestamps (``_verify_ltv``).
7. Document rules: no active content (scripts, automatic or launch actions, XFA) anywhere in the file;
   the last signature or document timestamp reaches the last revision; a signature after a
   trusted seal must itself be trusted (an unauthorised second seal fails); no empty signature fields added
   after sealing. The verdict is the worst reason (FAIL > INDETERMINATE > INFO).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from verifier import _qpdf
from verifier._model import (
    BindingFacts,
    DocumentFacts,
    Indication,
    Reason,
    SealFacts,
    Severity,
    SignatureReport,
    SubIndication,
    VerificationReport,
    VerifyLimits,
)
from verifier._reasons import reason
from verifier._trust import TrustList, check_revocation, seal_facts

logger = logging.getLogger(__name__)

# Where the sealing side binds the policy evidence (read back here; see docs/verification.md).
BINDING_SIG_DICT_KEYS = ("/YizhangBinding", "/Yizhang")
BINDING_JSON_FIELDS = {
    "matter": "matter",
    "matter_id": "matter",
    "stage": "stage",
    "document_kind": "document_kind",
    "doc_kind": "document_kind",
    "document_number": "document_number",
    "doc_number": "document_number",
    "number": "document_number",
    "idempotency_key": "idempotency_key",
    "decision_id": "decision_id",
    "ledger_index": "ledger_index",
}

_NOISY_LOGGERS = ("pyhanko", "pyhanko_certvalidator", "endesive")
_EOL_OK = (b"", b"\n", b"\r\n", b"\r")
_HEX = re.compile(rb"\A[0-9A-Fa-f]*\Z")
_XREF_STREAM_HEAD = re.compile(rb"\A\d+\s+\d+\s+obj\b")


@dataclass
class _SigWork:
    """Mutable scratch for one signature while checks run; frozen into a SignatureReport at the end."""

    name: str
    kind: str = "signature"
    reasons: list[Reason] = field(default_factory=list)
    byte_range: tuple[int, ...] | None = None
    signed_revision: int | None = None
    covers_whole_file: bool = False
    intact: bool | None = None
    crypto_valid: bool | None = None
    trusted: bool | None = None
    cross_check: str | None = None
    signing_time: datetime | None = None
    claimed_signing_time: datetime | None = None
    modification_level: str | None = None
    md_algorithm: str | None = None
    seal: SealFacts | None = None
    binding: BindingFacts | None = None
    cert_der: bytes | None = None
    field_ref: Any = None

    def add(self, code: str, **kw: Any) -> None:
        self.reasons.append(reason(code, signature=self.name, **kw))


def _worst(reasons: list[Reason] | tuple[Reason, ...]) -> tuple[Indication, SubIndication | None]:
    for sev, ind in (
        (Severity.FAIL, Indication.TOTAL_FAILED),
        (Severity.INDETERMINATE, Indication.INDETERMINATE),
    ):
        hits = [r for r in reasons if r.severity is sev]
        if hits:
            return ind, hits[0].sub_indication
    return Indication.TOTAL_PASSED, None


def unreadable_report(
    data_len: int, now: datetime, code: str, detail: str | None, sha: str | None
) -> VerificationReport:
    r = reason(code, detail=detail)
    return VerificationReport(
        indication=Indication.TOTAL_FAILED,
        sub_indication=r.sub_indication,
        reasons=(r,),
        signatures=(),
        facts=DocumentFacts(),
        unreadable=True,
        file_sha256=sha,
        file_size=data_len,
        revisions=None,
        verified_at=now,
        checks=("preflight",),
    )


# ---------------------------------------------------------------------------------------------------------
# 1–2. preflight and structure


#: Set in the verification sandbox's children (verifier._sandbox): a wall timeout bounds them.
IN_SANDBOX = False


class QpdfJob:
    """``qpdf --check`` running beside the Python checks (it is a separate process: the latency overlaps).

    Output goes to a file, not a pipe, so a chatty qpdf can never block on a full pipe buffer. ``result``
    is ``None`` when qpdf is satisfied, else its complaint. Warnings count: a file qpdf must repair is
    not the file that was signed.
    """

    def __init__(self, data: bytes, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.error: str | None = None
        qpdf = shutil.which("qpdf")
        tmpdir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - private mkstemp files
        self.pdf = tempfile.NamedTemporaryFile(suffix=".pdf", dir=tmpdir)  # noqa: SIM115 - closed in close()
        self.out = tempfile.TemporaryFile(dir=tmpdir)  # noqa: SIM115
        self.pdf.write(data)
        self.pdf.flush()
        # In the sandbox (a worker the parent kills on its wall timeout) the same check runs in this process
        # through libqpdf's job API: no fork/exec per document (verifier._qpdf). Elsewhere: the binary.
        self.in_process = IN_SANDBOX and _qpdf.available()
        self.checker: _qpdf.Checker | None = None
        if self.in_process:
            return
        if _qpdf.available():  # a long-lived checker child: no process start per document (verifier._qpdf)
            self.checker = _qpdf.acquire_checker()
            self.checker.start(self.pdf.name)
            return
        if qpdf is None:
            self.error = "qpdf not installed"
            return
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [qpdf, "--check", self.pdf.name],
            stdout=self.out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def result(self) -> str | None:
        if self.in_process:
            code, text = _qpdf.check_file(self.pdf.name)
            return None if code == 0 else self._complaint(code, text)
        if self.checker is not None:
            checker, self.checker = self.checker, None
            answer = checker.finish(self.timeout_s)
            _qpdf.release_checker(checker)
            if answer is None:
                return "qpdf timed out"
            return None if answer[0] == 0 else self._complaint(*answer)
        if self.error or self.proc is None:
            return self.error
        try:
            code = self.proc.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "qpdf timed out"
        if code == 0:
            return None
        self.out.seek(0)
        return self._complaint(code, self.out.read(65536).decode("utf-8", "replace"))

    def _complaint(self, code: int, text: str) -> str | None:
        text = text.replace(self.pdf.name, "<file>")
        warnings = [ln for ln in text.splitlines() if ln.startswith("WARNING") or "ERROR" in ln]
        if code == 3 and warnings and all(_benign_qpdf_warning(w) for w in warnings):
            return None
        return (f"qpdf exit {code}: " + " | ".join(warnings[:5] or text.splitlines()[-2:]))[:500]

    def close(self) -> None:
        if self.checker is not None:  # its answer was never read: the child is not reusable
            self.checker.kill()
            self.checker = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.pdf.close()
        self.out.close()


def _collect_qpdf(job: QpdfJob | None, doc_reasons: list[Reason], checks: list[str]) -> None:
    if job is None:
        return
    problem = job.result()
    checks.insert(1, "qpdf")
    if problem:
        doc_reasons.insert(0, reason("STRUCTURE_INVALID", detail=problem))


_QPDF_SIZE = re.compile(
    r"reported number of objects \((\d+)\) is not one plus the highest object number \((\d+)\)"
)


def _benign_qpdf_warning(line: str) -> bool:
    """A trailer /Size larger than needed changes nothing a reader shows; a smaller one hides objects."""
    m = _QPDF_SIZE.search(line)
    if m is None:
        return False
    return int(m.group(1)) > int(m.group(2)) + 1


def _revision_ends(data: bytes, reader: Any, doc_reasons: list[Reason]) -> list[int]:
    """Byte offset where each revision ends (after its ``%%EOF``); adds XREF_INVALID / TRAILING_DATA."""
    xrefs = reader.xrefs
    ends: list[int] = []
    for rev in range(xrefs.total_revisions):
        meta = xrefs.get_xref_container_info(rev)
        at = meta.declared_startxref
        head = data[at : at + 32]
        if not (head.startswith(b"xref") or _XREF_STREAM_HEAD.match(head)):
            doc_reasons.append(
                reason(
                    "XREF_INVALID", detail=f"revision {rev}: startxref {at} does not point at an xref section"
                )
            )
        eof = data.find(b"%%EOF", meta.end_location)
        if eof < 0:
            doc_reasons.append(reason("XREF_INVALID", detail=f"revision {rev} has no %%EOF"))
            ends.append(len(data))
            continue
        end = eof + 5
        for eol in (b"\r\n", b"\n", b"\r"):
            if data.startswith(eol, end):
                end += len(eol)
                break
        ends.append(end)
    if ends and ends[-1] != len(data):
        # qpdf and most readers ignore bytes after %%EOF; a signature must not leave any unexplained.
        tail = data[ends[-1] :]
        if tail not in _EOL_OK:
            doc_reasons.append(reason("TRAILING_DATA", detail=f"{len(tail)} bytes after the last %%EOF"))
    return ends


def _document_content(reader: Any, doc_reasons: list[Reason], checks: list[str]) -> None:
    """Step 7b: what a viewer could show other than what was sealed, in any object form, direct or indirect
    (``verifier._pdfgraph``, the same walk the sealer's gate uses): scripts and actions (``ACTIVE_CONTENT``),
    optional content that differs on screen, on paper or when toggled (``OPTIONAL_CONTENT_VARIES``), and
    ``/NeedAppearances`` (the viewer redraws the fields: ``ACTIVE_CONTENT``). Current objects only: an old
    version brought back by a later revision is a change the after-seal rule sees."""
    from verifier import _pdfgraph

    try:
        found = _pdfgraph.scan_graph(reader, history=False)
    except _pdfgraph.GraphBudgetExceeded as exc:
        doc_reasons.append(reason("VERIFY_BUDGET_EXCEEDED", detail=str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - a failed scan is not a pass
        doc_reasons.append(reason("ACTIVE_CONTENT", detail=f"scan failed: {type(exc).__name__}"))
        return
    checks.append("active-content")
    if found.active_content:
        doc_reasons.append(reason("ACTIVE_CONTENT", detail=found.active_content))
    if found.needs_appearances:
        doc_reasons.append(reason("ACTIVE_CONTENT", detail="/NeedAppearances: the viewer redraws the fields"))
    if found.optional_content:
        doc_reasons.append(reason("OPTIONAL_CONTENT_VARIES", detail=found.optional_content))


# ---------------------------------------------------------------------------------------------------------
# 3. byte ranges


def _check_byte_range(w: _SigWork, raw_range: Any, contents: bytes, data: bytes, prev_end: int) -> None:
    try:
        br = tuple(int(x) for x in raw_range)
    except (TypeError, ValueError):
        w.add("BYTE_RANGE_INVALID", detail="ByteRange is not a list of integers")
        return
    w.byte_range = br
    if len(br) != 4:
        w.add("BYTE_RANGE_INVALID", detail=f"ByteRange has {len(br)} entries")
        return
    o1, l1, o2, l2 = br
    if o1 != 0 or l1 <= 0 or l2 < 0 or o2 <= l1:
        w.add("BYTE_RANGE_INVALID", detail=f"ByteRange {list(br)} is not [0 a b c] with 0 < a < b")
        return
    if o2 + l2 > len(data):
        w.add("BYTE_RANGE_INVALID", detail=f"ByteRange ends at {o2 + l2}, beyond the file ({len(data)})")
        return
    if l1 < prev_end:
        w.add(
            "BYTE_RANGE_INVALID", detail=f"gap at {l1} overlaps an earlier signed range ending at {prev_end}"
        )
    gap = data[l1:o2]
    if len(gap) < 2 or gap[:1] != b"<" or gap[-1:] != b">" or not _HEX.match(gap[1:-1]):
        w.add("CONTENTS_GAP_MISMATCH", detail=f"gap [{l1}, {o2}) is not a single hex string")
        return
    if len(gap) % 2 or bytes.fromhex(gap[1:-1].decode()) != contents:
        w.add("CONTENTS_GAP_MISMATCH", detail="gap hex differs from the parsed /Contents")
    w.covers_whole_file = o2 + l2 == len(data)


# ---------------------------------------------------------------------------------------------------------
# 4. pyHanko with a strict difference policy


def strict_diff_policy() -> Any:
    """pyHanko's standard rules minus form filling: only LTV data, metadata and signature fields."""
    from pyhanko.sign.diff_analysis import (
        CatalogModificationRule,
        DocInfoRule,
        DSSCompareRule,
        FormUpdatingRule,
        MetadataUpdateRule,
        ModificationLevel,
        ObjectStreamRule,
        SigFieldCreationRule,
        SigFieldModificationRule,
        StandardDiffPolicy,
        XrefStreamRule,
    )

    lta = ModificationLevel.LTA_UPDATES
    return StandardDiffPolicy(
        global_rules=[
            CatalogModificationRule(),
            DocInfoRule().as_qualified(lta),
            XrefStreamRule().as_qualified(lta),
            ObjectStreamRule().as_qualified(lta),
            DSSCompareRule().as_qualified(lta),
            MetadataUpdateRule().as_qualified(lta),
        ],
        # No GenericFieldModificationRule: filling a text field, ticking a box, changing a choice is
        # "modification" for a seal, unlike pyHanko's default that accepts it as FORM_FILLING.
        form_rule=FormUpdatingRule(field_rules=[SigFieldCreationRule(), SigFieldModificationRule()]),
        reject_object_freeing=True,
        ignore_orphaned_objects=False,
        ignore_identical_objects=True,
    )


def _tst_time(signer_info: Any) -> datetime | None:
    """genTime of the signature timestamp token, unverified (used to pick the validation moment)."""
    try:
        attrs = signer_info["unsigned_attrs"]
        if not attrs:
            return None
        for attr in attrs:
            if attr["type"].native == "signature_time_stamp_token":
                tst = attr["values"][0]["content"]["encap_content_info"]["content"].parsed
                t = tst["gen_time"].native
                return t if isinstance(t, datetime) else None
    except (KeyError, ValueError, TypeError, IndexError, AttributeError):
        return None
    return None


def _embedded_revinfo(emb: Any, reader: Any) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(certs, crls, ocsps) found in the CMS, its adbe-revocationInfoArchival attribute and the DSS."""
    certs: list[bytes] = []
    crls: list[bytes] = []
    ocsps: list[bytes] = []
    try:
        sd = emb.signed_data
        for c in sd["certificates"] or []:
            if c.name == "certificate":
                certs.append(c.chosen.dump())
        for c in sd["crls"] or []:
            if c.name == "crl":
                crls.append(c.chosen.dump())
        for attr in emb.signer_info["signed_attrs"] or []:
            if attr["type"].native == "adobe_revocation_info_archival":
                for val in attr["values"]:
                    for c in val["crl"] or []:
                        crls.append(c.dump())
                    for o in val["ocsp"] or []:
                        ocsps.append(o.dump())
    except (KeyError, ValueError, TypeError):
        pass
    try:
        from pyhanko.sign.validation.dss import DocumentSecurityStore

        dss = DocumentSecurityStore.read_dss(reader)
        certs.extend(_der_of(c) for c in dss.certs.values())
        crls.extend(_der_of(c) for c in dss.crls)
        ocsps.extend(_der_of(o) for o in dss.ocsps)
    except Exception as exc:  # noqa: BLE001 - no DSS or an unreadable one: nothing to add
        logger.debug("no usable DSS: %s", exc)
    return certs, crls, ocsps


def _der_of(item: Any) -> bytes:
    """DSS entries are asn1crypto values or PDF stream references, depending on the collection."""
    if hasattr(item, "dump"):
        return bytes(item.dump())
    return bytes(item.get_object().data)


#: Certificates and CRLs parsed for validation contexts, by DER, per thread (bounded). Every document of a
#: county carries the same CA, TSA and seal certificates and the same CRL, and the trust list is the same
#: for every document: parsing them, and computing what path building asks of them (subject and key
#: hashes, issuer and serial, key identifiers; asn1crypto computes those lazily and keeps them on the
#: object), was a large part of building a context. The parse is a pure function of the bytes, and the
#: objects are only read; they are per thread because asn1crypto's lazy parsing is not thread-safe.
#: Bounded by the encodings' total size (the table lives as long as the worker, whose memory limit is for
#: the document at hand): a hostile document's many or large certificates only empty it.
_PARSED_ITEM_MAX_BYTES = 256 << 10
_PARSED_TOTAL_MAX_BYTES = 4 << 20
_parsed = threading.local()


def _parsed_asn1(kind: str, der: bytes) -> Any:
    """The asn1crypto object for ``der`` (``kind``: "cert" or "crl"), forced to parse its top level;
    raises ``ValueError``/``TypeError`` on bytes asn1crypto cannot read, as a fresh parse would."""
    table: dict[tuple[str, bytes], Any] | None = getattr(_parsed, "table", None)
    if table is None:
        table = _parsed.table = {}
        _parsed.size = 0
    hit = table.get((kind, der))
    if hit is not None:
        return hit
    from asn1crypto import crl as a_crl
    from asn1crypto import x509 as a_x509

    if kind == "cert":
        obj: Any = a_x509.Certificate.load(der)
        _ = obj.subject  # force a parse now; absurd content is caught here, not in path building
    else:
        obj = a_crl.CertificateList.load(der)
        _ = obj.issuer
    if len(der) <= _PARSED_ITEM_MAX_BYTES:
        if _parsed.size + len(der) > _PARSED_TOTAL_MAX_BYTES:
            table.clear()
            _parsed.size = 0
        table[(kind, der)] = obj
        _parsed.size += len(der)
    return obj


def _validation_context(trust: TrustList, certs: list[bytes], crls: list[bytes], moment: datetime) -> Any:
    from pyhanko_certvalidator import ValidationContext

    def _all(kind: str, ders: list[bytes] | tuple[bytes, ...]) -> list[Any]:
        out = []
        for d in ders:
            try:
                out.append(_parsed_asn1(kind, d))
            except (ValueError, TypeError):
                continue
        return out

    return ValidationContext(
        trust_roots=_all("cert", trust.roots),
        other_certs=_all("cert", list(trust.intermediates) + certs),
        crls=_all("crl", crls),
        allow_fetching=False,
        moment=moment,
        retroactive_revinfo=True,
        # Revocation is judged by check_revocation (time-aware, CRL-by-CRL); pyHanko builds the path.
        revocation_mode="soft-fail",
    )


def _read_binding(emb: Any) -> tuple[BindingFacts | None, str | None]:
    """Policy evidence bound by the sealing side. Returns (facts, error)."""
    sig = emb.sig_object
    raw: str | None = None
    source = None
    for key in BINDING_SIG_DICT_KEYS:
        if key in sig:
            try:
                val = sig[key]
            except Exception as exc:  # noqa: BLE001 - hostile object graph
                return None, f"{key}: {exc}"
            if hasattr(val, "items"):
                raw = json.dumps({str(k).lstrip("/"): str(v) for k, v in val.items()})
            else:
                raw = str(val)
            source = f"signature dictionary {key}"
            break
    if raw is None:
        return None, None
    try:
        obj = json.loads(raw[:65536])
    except ValueError as exc:
        return None, f"{source}: not JSON ({exc})"
    if not isinstance(obj, dict):
        return None, f"{source}: not a JSON object"
    vals: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for k, v in obj.items():
        target = BINDING_JSON_FIELDS.get(str(k))
        if target and target not in vals:
            vals[target] = v
        else:
            extra[str(k)[:64]] = str(v)[:256]
    idx = vals.pop("ledger_index", None)
    ledger_index = int(idx) if isinstance(idx, int | str) and str(idx).isdigit() else None
    return (
        BindingFacts(
            **{k: (str(v)[:256] if v is not None else None) for k, v in vals.items()},
            ledger_index=ledger_index,
            source=source,
            extra=extra,
        ),
        None,
    )


def _issuer_of(leaf_der: bytes, candidates: list[bytes]) -> bytes | None:
    from cryptography import x509

    leaf = x509.load_der_x509_certificate(leaf_der)
    for der in candidates:
        try:
            c = x509.load_der_x509_certificate(der)
            if c.subject != leaf.issuer:
                continue
            leaf.verify_directly_issued_by(c)
        except Exception as exc:  # noqa: BLE001 - a candidate that does not fit (bad DER, wrong key type)
            logger.debug("issuer candidate rejected: %s", exc)
            continue
        return der
    return None


def _check_signature(
    w: _SigWork,
    emb: Any,
    reader: Any,
    trust: TrustList,
    now: datetime,
) -> None:
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    w.md_algorithm = emb.md_algorithm
    w.kind = "doc_timestamp" if emb.sig_object_type == "/DocTimeStamp" else "signature"
    try:
        w.claimed_signing_time = emb.self_reported_timestamp
    except Exception:  # noqa: BLE001 - a malformed signing-time attribute is only a missing claim
        w.claimed_signing_time = None
    cert_certs, crls, _ocsps = _embedded_revinfo(emb, reader)
    crls = list(trust.crls) + crls
    tst_time = _tst_time(emb.signer_info) if w.kind == "signature" else None
    moment = tst_time or now
    # One context for the seal and its timestamp: the TSA certificate is judged at the same moment (the
    # timestamp's own time), and building a context is a large share of the cost of a verification.
    vc = _validation_context(trust, cert_certs, crls, moment)
    ts_vc = vc if w.kind == "signature" else _validation_context(trust, cert_certs, crls, now)
    policy = strict_diff_policy()
    try:
        if w.kind == "doc_timestamp":
            status: Any = validate_pdf_timestamp(emb, validation_context=ts_vc, diff_policy=policy)
        else:
            status = validate_pdf_signature(
                emb, signer_validation_context=vc, ts_validation_context=ts_vc, diff_policy=policy
            )
    except (SignatureValidationError, ValueError, TypeError, KeyError, AssertionError) as exc:
        w.add("CMS_MALFORMED", detail=f"{type(exc).__name__}: {exc}")
        return
    w.intact = bool(status.intact)
    w.crypto_valid = bool(status.valid)
    if not status.intact:
        w.add("HASH_MISMATCH")
    elif not status.valid:
        w.add("SIGNATURE_INVALID")
    cov = status.coverage
    if cov not in (SignatureCoverageLevel.ENTIRE_FILE, SignatureCoverageLevel.ENTIRE_REVISION):
        w.add("COVERAGE_UNCLEAR", detail=str(cov))
    level = status.modification_level
    w.modification_level = level.name if level is not None else None
    allowed = (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES, ModificationLevel.FORM_FILLING)
    if level is not None and level not in allowed:
        diff = getattr(emb, "diff_result", None)
        w.add("MODIFIED_AFTER_SIGNING", detail=str(diff) if diff is not None else level.name)
    if getattr(status, "docmdp_ok", True) is False and not any(
        r.code == "MODIFIED_AFTER_SIGNING" for r in w.reasons
    ):
        w.add("MODIFIED_AFTER_SIGNING", detail="changes exceed the certification (DocMDP) permissions")
    w.trusted = bool(status.trusted)
    try:
        cert_der = emb.signer_cert.dump()
        w.cert_der = cert_der
        w.seal = seal_facts(cert_der)
    except Exception as exc:  # noqa: BLE001 - absurd certificate content: report, keep going
        w.add("CHAIN_INVALID", detail=f"signer certificate unreadable: {exc}")
        cert_der = None

    # 6. signature timestamp → proven signing time
    time_proven = False
    if w.kind == "doc_timestamp":
        w.signing_time = getattr(status, "timestamp", None)
        time_proven = bool(status.intact and status.valid and status.trusted)
        if not status.trusted:
            w.add("TIMESTAMP_UNTRUSTED", detail=str(status.trust_problem_indic))
        return  # a document timestamp has no seal, revocation of its TSA is pyHanko's path check
    else:
        ts = status.timestamp_validity
        if ts is None:
            w.add("SIGNING_TIME_UNPROVEN")
        elif not (ts.intact and ts.valid):
            w.add("TIMESTAMP_INVALID")
        elif not ts.trusted:
            w.add("TIMESTAMP_UNTRUSTED", detail=str(ts.trust_problem_indic))
            w.signing_time = None
        else:
            w.signing_time = ts.timestamp
            time_proven = True

    # pyHanko reports a revoked certificate as "not trusted"; whether the revocation predates the signing
    # time is judged below, so a revoked-but-chained seal goes on to the revocation check.
    revoked_hint = getattr(status, "revocation_details", None) is not None or "REVOKED" in str(
        status.trust_problem_indic
    )
    indic = str(status.trust_problem_indic)
    at = w.signing_time if time_proven and w.signing_time else now
    seal = w.seal
    outside = seal is not None and (
        (seal.not_before is not None and at < seal.not_before)
        or (seal.not_after is not None and at > seal.not_after)
    )
    if not status.trusted and not revoked_hint:
        bounds = outside or any(k in indic for k in ("OUT_OF_BOUNDS", "EXPIRED", "NOT_YET_VALID"))
        if "NO_CERTIFICATE_CHAIN_FOUND" in indic or not bounds:
            w.add("SIGNER_UNTRUSTED", detail=indic)
        else:
            _out_of_validity(w, indic, at, time_proven)
        return
    if cert_der is None:
        if not status.trusted:
            w.add("SIGNER_UNTRUSTED", detail=str(status.trust_problem_indic))
        return
    if outside:
        _out_of_validity(w, indic, at, time_proven)
    issuer = _issuer_of(cert_der, list(trust.intermediates) + cert_certs + list(trust.roots))
    if issuer is None:
        w.add("CHAIN_INVALID", detail="issuer certificate not found")
        return
    verdict = check_revocation(cert_der, issuer, crls, at, time_proven=time_proven)
    outcome = _REVOCATION_REASONS.get(verdict.status)  # "good": nothing to say
    if outcome is not None:
        code, since = outcome
        w.add(code, detail=verdict.detail if since is None else f"{since} {verdict.revoked_at}")
    if not status.trusted and verdict.status not in _UNTRUSTED_FOR_REVOCATION:
        w.add("SIGNER_UNTRUSTED", detail=str(status.trust_problem_indic))


#: A revocation outcome (``RevocationVerdict.status``) -> its reason code and how its detail names the
#: revocation time (``None``: the verdict's own detail). "good" has none.
_REVOCATION_REASONS: dict[str, tuple[str, str | None]] = {
    "revoked_before": ("CERT_REVOKED", "revoked"),
    "revoked_no_poe": ("CERT_REVOKED_NO_POE", "revoked"),
    "revoked_after": ("CERT_REVOKED_AFTER_SIGNING", "revoked"),
    "held_before": ("CERT_ON_HOLD", "on hold since"),
    "held_no_poe": ("CERT_ON_HOLD_NO_POE", "on hold since"),
    "held_after": ("CERT_ON_HOLD_AFTER_SIGNING", "on hold since"),
    "unknown": ("REVOCATION_UNKNOWN", None),
}
#: Outcomes that are themselves why pyHanko does not trust the signer: no SIGNER_UNTRUSTED besides.
_UNTRUSTED_FOR_REVOCATION = frozenset({"revoked_before", "revoked_no_poe", "held_before", "held_no_poe"})


def _out_of_validity(w: _SigWork, indic: str, at: datetime, time_proven: bool) -> None:
    if time_proven:
        w.add("CERT_OUT_OF_VALIDITY", detail=f"{indic}; signing time {at.isoformat()}")
    else:  # ETSI: without proof of existence inside the validity period the answer is OUT_OF_BOUNDS_NO_POE
        w.add(
            "CERT_OUT_OF_VALIDITY",
            detail=f"{indic}; signing time unproven (checked at {at.isoformat()})",
            severity=Severity.INDETERMINATE,
            sub_indication=SubIndication.OUT_OF_BOUNDS_NO_POE,
        )


# ---------------------------------------------------------------------------------------------------------
# 5. endesive cross-check


def _cross_check(works: list[_SigWork], data: bytes, reasons: list[Reason]) -> bool:
    from verifier import _endesive

    results = _endesive.integrity(data, [w.byte_range for w in works])
    if isinstance(results, str):
        reasons.append(reason("CROSS_CHECK_UNAVAILABLE", detail=results))
        return False
    for w, res in zip(works, results, strict=True):
        ours = bool(w.intact and w.crypto_valid)
        if res is None:
            w.cross_check = "unavailable"
            continue
        theirs, why = res
        if w.intact is None:  # pyHanko could not evaluate it; the failure is already recorded
            w.cross_check = f"endesive alone: {'intact' if theirs else 'broken'} ({why})"
            continue
        if theirs == ours:
            w.cross_check = "agree"
        else:
            w.cross_check = f"disagree: endesive says {'intact' if theirs else 'broken'} ({why})"
            w.add("CROSS_CHECK_DISAGREE", detail=w.cross_check)
    return True


# ---------------------------------------------------------------------------------------------------------
# the whole run


def run_checks(
    unverified_pdf: bytes,
    trust: TrustList,
    now: datetime,
    limits: VerifyLimits,
) -> VerificationReport:
    data = unverified_pdf
    for name in _NOISY_LOGGERS:  # hostile input makes them log stack traces on every expected failure
        logging.getLogger(name).setLevel(logging.CRITICAL)
    sha = hashlib.sha256(data).hexdigest()
    if len(data) > limits.max_bytes:
        return unreadable_report(len(data), now, "PDF_TOO_LARGE", f"{len(data)} > {limits.max_bytes}", sha)
    if b"%PDF-" not in data[:1024] or b"%%EOF" not in data[-1024:]:
        return unreadable_report(len(data), now, "PDF_UNREADABLE", "no %PDF- header or %%EOF trailer", sha)
    # 1b. budget: bounds on objects, xref entries and inflated bytes, counted before anything is parsed
    if limits.budget:
        from verifier._budget import check_budget

        over = check_budget(data, limits)
        if over is not None:
            return unreadable_report(len(data), now, "VERIFY_BUDGET_EXCEEDED", over, sha)
    # 2. structure: qpdf runs beside everything below; its verdict is collected before the report is made
    job = QpdfJob(data, limits.qpdf_timeout_s) if limits.qpdf else None
    try:
        return _run_checks(data, sha, trust, now, limits, job)
    finally:
        if job is not None:
            job.close()


def _run_checks(
    data: bytes, sha: str, trust: TrustList, now: datetime, limits: VerifyLimits, job: QpdfJob | None
) -> VerificationReport:
    checks = ["preflight"]
    doc_reasons: list[Reason] = []
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=True)
        revisions = reader.xrefs.total_revisions
    except MemoryError:
        raise  # the sandbox answers VERIFY_RESOURCE_LIMIT; never "unreadable" for what ran out of memory
    except Exception as exc:  # noqa: BLE001 - any parser failure on hostile bytes is "unreadable"
        try:  # is it a PDF at all? A lenient parse tells "broken xref" from "not a PDF"
            lenient = PdfFileReader(io.BytesIO(data), strict=False)
            _ = lenient.xrefs.total_revisions
        except MemoryError:
            raise
        except Exception as exc2:  # noqa: BLE001
            return unreadable_report(len(data), now, "PDF_UNREADABLE", f"{type(exc2).__name__}: {exc2}", sha)
        doc_reasons.append(reason("XREF_INVALID", detail=f"strict reader: {type(exc).__name__}: {exc}"))
        reader = lenient
        revisions = lenient.xrefs.total_revisions
    checks.append("strict-xref")
    if revisions > limits.max_revisions:
        doc_reasons.append(reason("TOO_MANY_REVISIONS", detail=str(revisions)))
        _collect_qpdf(job, doc_reasons, checks)
        return _finish(data, sha, now, doc_reasons, [], revisions, checks)
    ends: list[int] = []
    try:
        ends = _revision_ends(data, reader, doc_reasons)
    except Exception as exc:  # noqa: BLE001
        doc_reasons.append(reason("XREF_INVALID", detail=f"{type(exc).__name__}: {exc}"))
    _document_content(reader, doc_reasons, checks)
    # The ledger logs the SHA-256 of the document as sealed; later LTV updates append revisions, so the
    # logged digest is matched against every revision prefix (see _verify_evidence).
    revision_sha256 = tuple(hashlib.sha256(data[:end]).hexdigest() for end in ends)

    # 3. signatures, one field at a time
    from pyhanko.sign.fields import enumerate_sig_fields
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

    works: list[tuple[_SigWork, Any]] = []
    unsigned_fields: list[tuple[str, Any]] = []
    try:
        for fq_name, value, field_ref in enumerate_sig_fields(reader, filled_status=None):
            if len(works) >= limits.max_signatures:
                doc_reasons.append(reason("TOO_MANY_SIGNATURES"))
                break
            if value is None:
                unsigned_fields.append((fq_name, field_ref))
                continue
            w = _SigWork(name=str(fq_name)[:200])
            try:
                emb = EmbeddedPdfSignature(reader, field_ref.get_object(), fq_name)
            except Exception as exc:  # noqa: BLE001 - not DER, wrong structure, missing keys
                w.add("CMS_MALFORMED", detail=f"{type(exc).__name__}: {exc}")
                try:
                    w.byte_range = tuple(int(x) for x in value.get_object().raw_get("/ByteRange"))
                except Exception:  # noqa: BLE001
                    w.byte_range = None
                works.append((w, None))
                continue
            w.signed_revision = emb.signed_revision
            w.field_ref = field_ref
            works.append((w, emb))
    except Exception as exc:  # noqa: BLE001 - a form tree too broken to walk
        doc_reasons.append(reason("PDF_UNREADABLE", detail=f"signature fields: {type(exc).__name__}: {exc}"))
    if not works:
        if not any(r.code == "PDF_UNREADABLE" for r in doc_reasons):
            doc_reasons.append(reason("NO_SIGNATURE"))
        _collect_qpdf(job, doc_reasons, checks)
        return _finish(data, sha, now, doc_reasons, [], revisions, checks)

    works.sort(key=lambda t: t[0].signed_revision if t[0].signed_revision is not None else -1)
    prev_end = 0
    for w, emb in works:
        if emb is None:
            continue
        _check_byte_range(w, emb.byte_range, emb.pkcs7_content, data, prev_end)
        if w.byte_range and len(w.byte_range) == 4:
            prev_end = max(prev_end, w.byte_range[2] + w.byte_range[3])
        try:
            _check_signature(w, emb, reader, trust, now)
        except Exception as exc:  # noqa: BLE001 - pyHanko on hostile input: a failure, not a crash
            w.add("CMS_MALFORMED", detail=f"{type(exc).__name__}: {exc}")
        try:
            w.binding, err = _read_binding(emb)
            if err:
                w.add("BINDING_MALFORMED", detail=err)
        except Exception as exc:  # noqa: BLE001
            w.add("BINDING_MALFORMED", detail=str(exc))
        bound_seal = w.binding.extra.get("seal_id") if w.binding else None
        if bound_seal and w.seal and w.seal.seal_id and bound_seal != w.seal.seal_id:
            w.add("BINDING_MISMATCH", detail=f"binding names seal {bound_seal}, certificate {w.seal.seal_id}")
    checks += ["byte-ranges", "pyhanko", "strict-diff", "trust", "revocation"]
    # 6b. proofs of existence from later archive timestamps, once certificates expired (verifier._ltv)
    from verifier._ltv import prove_existence

    prove_existence(works, reader, trust, now)

    # 5. independent integrity check
    if limits.cross_check:
        if _cross_check([w for w, _ in works], data, doc_reasons):
            checks.append("endesive")

    # 7. document rules
    sig_works = [w for w, _ in works]
    last = sig_works[-1]
    if last.byte_range and len(last.byte_range) == 4 and not last.covers_whole_file:
        # Bytes after the last signature are acceptable only as whole LTV revisions, which the strict
        # diff policy of that signature has already judged (LTA_UPDATES); anything else was flagged.
        if last.modification_level not in ("NONE", "LTA_UPDATES") and not any(
            r.code in ("MODIFIED_AFTER_SIGNING", "BYTE_RANGE_INVALID", "CMS_MALFORMED") for r in last.reasons
        ):
            last.add("TRAILING_DATA", detail="revisions after the last signature are not LTV-only")
    # After the first trusted seal, only trusted signatures (county attestation) may follow.
    first_seal = next((w for w in sig_works if w.kind == "signature" and w.trusted), None)
    if first_seal is not None:
        for w in sig_works[sig_works.index(first_seal) + 1 :]:
            if w.kind == "signature" and not w.trusted:
                w.add("LATER_SIGNATURE_UNAUTHORISED", detail=w.seal.subject if w.seal else None)
    anchor = _anchor(sig_works)
    _after_the_seal(reader, data, ends, sig_works, anchor, doc_reasons, checks)
    _number_on_the_page(data, ends, anchor, checks)
    first_rev = min((w.signed_revision for w in sig_works if w.signed_revision is not None), default=None)
    if first_rev is not None:
        for fq_name, field_ref in unsigned_fields:
            try:
                intro = reader.xrefs.get_introducing_revision(field_ref.reference)
            except Exception:  # noqa: BLE001
                intro = None
            if intro is None or intro > first_rev:
                doc_reasons.append(reason("UNSIGNED_FIELD_ADDED", detail=str(fq_name)[:200]))
    _collect_qpdf(job, doc_reasons, checks)
    return _finish(data, sha, now, doc_reasons, sig_works, revisions, checks, revision_sha256)


def _anchor(sig_works: list[_SigWork]) -> _SigWork | None:
    """The seal everything later is judged against: the first trusted seal, else the first signature."""
    seals = [w for w in sig_works if w.kind == "signature" and w.signed_revision is not None]
    return next((w for w in seals if w.trusted), seals[0] if seals else None)


def _after_the_seal(
    reader: Any,
    data: bytes,
    ends: list[int],
    sig_works: list[_SigWork],
    anchor: _SigWork | None,
    doc_reasons: list[Reason],
    checks: list[str],
) -> None:
    """Step 7a: after the seal nothing a person sees may change (``verifier._after_seal``).

    Every signature or document timestamp signed after the seal must be invisible, except a trusted
    signature on a field created after the seal (a county attestation). Every object written after the seal
    must be validation data or signature bookkeeping; anything else is ``MODIFIED_AFTER_SIGNING``. When the
    later revisions are more than that (an attestation, or anything the rules above already refused), the
    pages as sealed and as they are now are rendered and compared (``VISIBLE_CHANGE``) outside the
    attestation seals' own widgets.
    """
    from verifier import _after_seal as after

    if anchor is None or anchor.signed_revision is None:
        return
    seal_rev = anchor.signed_revision
    pages = after.page_indices(reader)
    allowed: dict[int, list[after.Rect]] = {}
    attested = False
    for w in sig_works:
        if w is anchor or w.signed_revision is None or w.signed_revision <= seal_rev or w.field_ref is None:
            continue
        try:
            widgets = after.widgets_of(w.field_ref.get_object(), pages)
            introduced = reader.xrefs.get_introducing_revision(w.field_ref.reference)
        except Exception as exc:  # noqa: BLE001 - a field too broken to judge is not invisible
            w.add("VISIBLE_WIDGET_AFTER_SEAL", detail=f"field unreadable: {type(exc).__name__}")
            continue
        visible = [x for x in widgets if x.visible]
        if not visible:
            continue
        attestation = w.kind == "signature" and bool(w.trusted) and introduced > seal_rev
        if not attestation:
            where = ", ".join(f"page {x.page + 1 if x.page is not None else '?'} {x.rect}" for x in visible)
            what = "document timestamp" if w.kind == "doc_timestamp" else "signature"
            pre = " on a field that existed before the seal" if introduced <= seal_rev else ""
            w.add("VISIBLE_WIDGET_AFTER_SEAL", detail=f"{what} {w.name}{pre}: {where}")
            continue
        attested = True
        for x in visible:
            if x.page is not None and x.rect is not None:
                allowed.setdefault(x.page, []).append(x.rect)
    try:
        problems = after.later_revision_problems(reader, seal_rev)
    except Exception as exc:  # noqa: BLE001 - a later revision too broken to judge is not LTV-only
        problems = [f"later revisions unreadable: {type(exc).__name__}"]
    checks.append("after-seal")
    if problems and not any(r.code == "MODIFIED_AFTER_SIGNING" for r in anchor.reasons):
        anchor.add("MODIFIED_AFTER_SIGNING", detail="; ".join(problems))
    if (problems or attested) and seal_rev < len(ends):
        # an attestation alone: only its pages can differ (everything else was judged object by object)
        touched = None if problems else set(allowed)
        _compare_rendered(data, ends[seal_rev], allowed, doc_reasons, checks, touched)


def _number_on_the_page(data: bytes, ends: list[int], anchor: _SigWork | None, checks: list[str]) -> None:
    """Step 7c: the page as sealed shows the document number bound to the seal and no other of its series.

    A number of the bound number's series (or a bare 〔2026〕2号) other than the bound one is
    ``BINDING_TEXT_MISMATCH``; so is a page from one of our own templates (the binding names it) that does
    not show the bound number at all. Citations of other organs' numbers are not this series'.
    """
    if anchor is None or anchor.binding is None or not anchor.binding.document_number:
        return
    from verifier import _visual as visual

    bound = anchor.binding.document_number
    head = visual.series_head(bound)
    if head is None or anchor.signed_revision is None:
        return  # a number format without 〔year〕: nothing to recognise it by
    end = ends[anchor.signed_revision] if anchor.signed_revision < len(ends) else len(data)
    try:
        texts = visual.page_texts(data[:end])
    except ValueError as exc:
        anchor.add("BINDING_TEXT_MISMATCH", detail=f"the pages as sealed cannot be read: {exc}")
        return
    checks.append("number-on-page")
    for page, number in visual.conflicting_numbers(texts, head, bound)[:3]:
        anchor.add(
            "BINDING_TEXT_MISMATCH", detail=f"page {page} shows {number}; the seal is bound to {bound}"
        )
    template = anchor.binding.extra.get("template")
    if template and template != "None":
        shown = any(
            visual.same_document_number(n, bound) for t in texts for n in visual.document_numbers_in(t)
        )
        if not shown:
            anchor.add("BINDING_TEXT_MISMATCH", detail=f"the {template} page does not show {bound}")


def _compare_rendered(
    data: bytes,
    sealed_end: int,
    allowed: dict[int, list[tuple[float, float, float, float]]],
    doc_reasons: list[Reason],
    checks: list[str],
    pages: set[int] | None,
) -> None:
    """Defence in depth: the pages as sealed and as they are now, rendered and compared in view and print
    mode (``verifier._visual``); ``pages`` None: every page (within the renderer's budget)."""
    from verifier import _visual

    diffs = _visual.visible_changes(data[:sealed_end], data, allowed=allowed, pages=pages)
    checks.append("render-compare")
    for d in diffs[:5]:
        # an incomplete comparison is no pass either; unrenderable or a vanished form fails closed
        code = "VERIFY_BUDGET_EXCEEDED" if d.kind is _visual.DiffKind.BUDGET else "VISIBLE_CHANGE"
        doc_reasons.append(reason(code, detail=str(d)))


def _finish(
    data: bytes,
    sha: str,
    now: datetime,
    doc_reasons: list[Reason],
    works: list[_SigWork],
    revisions: int | None,
    checks: list[str],
    revision_sha256: tuple[str, ...] = (),
) -> VerificationReport:
    sig_reports = []
    for w in works:
        ind, sub = _worst(w.reasons)
        sig_reports.append(
            SignatureReport(
                field_name=w.name,
                kind=w.kind,
                indication=ind,
                sub_indication=sub,
                reasons=tuple(w.reasons),
                byte_range=w.byte_range,
                signed_revision=w.signed_revision,
                covers_whole_file=w.covers_whole_file,
                intact=w.intact,
                crypto_valid=w.crypto_valid,
                trusted=w.trusted,
                cross_check=w.cross_check,
                signing_time=w.signing_time,
                claimed_signing_time=w.claimed_signing_time,
                modification_level=w.modification_level,
                md_algorithm=w.md_algorithm,
                seal=w.seal,
                binding=w.binding,
            )
        )
    all_reasons = list(doc_reasons) + [r for s in sig_reports for r in s.reasons]
    ind, sub = _worst(all_reasons)
    return VerificationReport(
        indication=ind,
        sub_indication=sub,
        reasons=tuple(doc_reasons),
        signatures=tuple(sig_reports),
        facts=document_facts(sig_reports),
        unreadable=False,
        file_sha256=sha,
        file_size=len(data),
        revisions=revisions,
        verified_at=now,
        checks=tuple(checks),
        revision_sha256=revision_sha256,
    )


def primary_seal(sigs: list[SignatureReport] | tuple[SignatureReport, ...]) -> SignatureReport | None:
    """The seal the document is about: the first trusted seal, else the first signature."""
    seals = [s for s in sigs if s.kind == "signature"]
    return next((s for s in seals if s.trusted), seals[0] if seals else None)


def document_facts(sigs: list[SignatureReport] | tuple[SignatureReport, ...]) -> DocumentFacts:
    first = primary_seal(sigs)
    if first is None:
        return DocumentFacts()
    seals = [s for s in sigs if s.kind == "signature"]
    seal = first.seal
    binding = first.binding
    attested = tuple(
        (s.seal.seal_name or s.seal.subject)
        for s in seals[seals.index(first) + 1 :]
        if s.seal is not None and s.trusted
    )
    return DocumentFacts(
        seal_name=seal.seal_name if seal else None,
        county=seal.county if seal else None,
        township=seal.township if seal else None,
        seal_id=seal.seal_id if seal else None,
        kind=seal.kind if seal else None,
        number=seal.number if seal else None,
        matter=binding.matter if binding else None,
        stage=binding.stage if binding else None,
        document_kind=binding.document_kind if binding else None,
        document_number=binding.document_number if binding else None,
        signing_time=first.signing_time or first.claimed_signing_time,
        signing_time_proven=first.signing_time is not None,
        attested_by=attested,
        ledger_index=binding.ledger_index if binding else None,
    )


def with_reasons(report: VerificationReport, extra: list[Reason], **facts: Any) -> VerificationReport:
    """A new report with document-level reasons and facts added, verdict recomputed."""
    reasons = tuple(report.reasons) + tuple(extra)
    all_reasons = list(reasons) + [r for s in report.signatures for r in s.reasons]
    ind, sub = _worst(all_reasons)
    return replace(
        report, reasons=reasons, indication=ind, sub_indication=sub, facts=replace(report.facts, **facts)
    )


def preload() -> None:
    """Import what the checks use, once, in the parent: a forked child then starts warm (milliseconds).

    Also every text codec of the standard library: a sandbox child runs as an unprivileged user
    (``_verify_sandbox._confine``) and may not be able to read the interpreter's files (a Python under
    /root), so nothing it needs may be imported lazily — a PDF string in UTF-16BE would otherwise fail
    with ``LookupError: unknown encoding`` in the child only."""
    import encodings
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(encodings.__path__):
        try:
            importlib.import_module(f"encodings.{mod.name}")
        except Exception:  # noqa: BLE001, S112 - a platform codec (mbcs, oem) that does not load here
            continue
    # Imported lazily by pyHanko/cryptography on the way (found by diffing sys.modules around a
    # verification in a process that imported only the verifier; `import signer` used to load them first):
    # XMP metadata checks of the difference analysis (lxml, gzip), stream filters, the OpenSSL backend.
    import gzip  # noqa: F401

    import cryptography.hazmat.backends.openssl.backend  # noqa: F401
    import lxml.etree  # noqa: F401
    import pyhanko.pdf_utils.filters  # noqa: F401
    import pyhanko.sign.diff_analysis  # noqa: F401
    import pyhanko.sign.fields  # noqa: F401
    import pyhanko.sign.validation  # noqa: F401
    import pyhanko.sign.validation.dss  # noqa: F401
    import pyhanko.sign.validation.pdf_embedded  # noqa: F401
    import pyhanko_certvalidator  # noqa: F401
    from pyhanko.pdf_utils.reader import PdfFileReader  # noqa: F401

    import verifier._after_seal  # noqa: F401
    import verifier._budget  # noqa: F401
    import verifier._ltv  # noqa: F401
    import verifier._pdfgraph  # noqa: F401
    import verifier._visual  # noqa: F401 - PDFium: ~77 ms to load

    try:
        import keystore  # noqa: F401 - seal facts parser (keystore.SealInfo)
    except ImportError:
        pass
    from verifier import _endesive

    _endesive.prepare()


def utcnow() -> datetime:
    return datetime.now(UTC)


__all__ = ["QpdfJob", "preload", "run_checks", "strict_diff_policy", "unreadable_report", "with_reasons"]
