"""Checks on a PDF brought to be sealed, before anything is drawn or signed.

Codes: ``PDF_TOO_LARGE`` (over ``settings.max_pdf_bytes``), ``PDF_NOT_PDF`` (no ``%PDF-`` header),
``PDF_ENCRYPTED`` (an encrypted document cannot be sealed: the seal would sign ciphertext the reader
decrypts differently), ``PDF_TOO_COMPLEX`` (over :data:`SEAL_BUDGET`, counted on the raw bytes before any
parser runs), ``PDF_MALFORMED`` (pyHanko cannot read the structure or its pages).
Documents that already carry signatures are accepted: the seal goes into an incremental update.

"Seal the document as it is shown" (:func:`refuse_unsealable`, after opening, before a number is drawn):
``PDF_ACTIVE_CONTENT`` (scripts or actions in any object, direct or indirect), ``PDF_OPTIONAL_CONTENT``
(layers shown differently on screen, in print, on export or when toggled), ``PDF_EMPTY_SIGNATURE_FIELD``
(a visible unsigned signature field: it could be filled after the seal), ``PDF_NEEDS_APPEARANCES`` (the
viewer would redraw the form fields its own way), ``PDF_TOO_COMPLEX`` (more objects than the walk's
budget), ``PDF_STRUCTURE_INVALID`` (``qpdf --check`` complains: the verifier would refuse the sealed copy
with STRUCTURE_INVALID, so it is refused before anything is spent on it). And for a document that already
carries signatures (:func:`refuse_failing_signatures`): ``PDF_SIGNATURE_INVALID`` when the verifier, trusting
nobody, already rates it TOTAL_FAILED (an earlier signature that is not DER, empty, altered): the sealed copy
would fail the same way, under an official number.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from datetime import datetime
from io import BytesIO

from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

from core.errors import BadInput, Unavailable
from verifier import (
    DEFAULT_MAX_NODES,
    GraphBudgetExceeded,
    Indication,
    QpdfJob,
    TrustList,
    VerifyLimits,
    check_budget,
    scan_graph,
    verify_document,
)

Box = tuple[float, float, float, float]

#: What reading a broken document raises inside pyHanko, asn1crypto and the stdlib parsers under them: the
#: client's bad input (``PDF_MALFORMED``), never an internal error. zlib.error: a corrupt Flate stream (an
#: xref stream is decoded while the reader opens); ValueError also covers asn1crypto's parse errors;
#: AssertionError: pyHanko asserts on what it reads (``startxref`` at an object that is not ``/XRef``);
#: NotImplementedError: a feature pyHanko does not read (an unsupported filter).
MALFORMED_ERRORS: tuple[type[BaseException], ...] = (
    PdfError,
    AssertionError,
    NotImplementedError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    RecursionError,
    OverflowError,
    zlib.error,
    struct.error,
)


_VERIFIER = VerifyLimits()
#: The verifier's pre-parse budget (``verifier.check_budget``, ``VERIFY_BUDGET_EXCEEDED``) less room for what
#: sealing and years of archive-timestamp renewals add (a few revisions, hundreds of objects, a few MB of
#: certificates, CRLs and timestamps): a document inside it stays inside the verifier's after sealing. Checked
#: on the raw bytes before pyHanko reads anything, so a 200 000-object file or a 0.3 MB xref-stream bomb
#: costs milliseconds instead of seconds and hundreds of MB in the sealing worker (issue 21, finding 6).
SEAL_BUDGET = replace(
    _VERIFIER,
    max_objects=_VERIFIER.max_objects - 5_000,
    max_xref_entries=_VERIFIER.max_xref_entries - 5_000,
    max_revisions=_VERIFIER.max_revisions - 24,
    max_structure_bytes=_VERIFIER.max_structure_bytes - 8 * 1024 * 1024,
    max_expanded_bytes=_VERIFIER.max_expanded_bytes - 16 * 1024 * 1024,
)


def refuse_over_budget(unverified_pdf: bytes) -> None:
    """``PDF_TOO_COMPLEX`` if the raw bytes claim or inflate to more than :data:`SEAL_BUDGET`."""
    problem = check_budget(unverified_pdf, SEAL_BUDGET)
    if problem is not None:
        raise BadInput(
            "PDF_TOO_COMPLEX",
            f"the PDF is over what the verifier accepts, its sealed copy could not be verified: {problem}",
            "PDF 文件过于复杂（对象、修订或解压后数据超出验证上限），盖章后无法验证",
            details={"problem": problem},
        )


class OpenedPdf:
    """A PDF that passed the checks; page boxes are read on demand (walking every page of a long document
    would cost more than signing it)."""

    def __init__(
        self, page_count: int, reader: PdfFileReader | None = None, boxes: dict[int, Box] | None = None
    ):
        self.page_count = page_count
        self._reader = reader
        self._boxes: dict[int, Box] = dict(boxes or {})

    @property
    def reader(self) -> PdfFileReader:
        if self._reader is None:
            raise BadInput("PDF_MALFORMED", "no document behind this page table", "无文档")
        return self._reader

    def page_box(self, index: int) -> Box:
        if index not in self._boxes:
            if self._reader is None:
                raise BadInput("STAMP_PAGE_INVALID", f"no page {index}", "页码无效")
            try:
                page = self._reader.find_page_for_modification(index)[0].get_object()
                box = (
                    page.get("/MediaBox") or self._reader.root["/Pages"].get("/MediaBox") or [0, 0, 595, 842]
                )
                x0, y0, x1, y1 = (float(v) for v in box)
            except MALFORMED_ERRORS as exc:
                raise BadInput(
                    "PDF_MALFORMED", f"page {index} cannot be read: {exc}", "PDF 页面无法读取"
                ) from exc
            self._boxes[index] = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        return self._boxes[index]


def open_untrusted_pdf(unverified_pdf: bytes, *, max_bytes: int) -> OpenedPdf:
    if len(unverified_pdf) > max_bytes:
        raise BadInput(
            "PDF_TOO_LARGE",
            f"the PDF has {len(unverified_pdf)} bytes, over the limit of {max_bytes}",
            f"PDF 文件过大（{len(unverified_pdf)} 字节，上限 {max_bytes}）",
            details={"size": len(unverified_pdf), "limit": max_bytes},
        )
    if b"%PDF-" not in unverified_pdf[:1024]:
        raise BadInput("PDF_NOT_PDF", "the input is not a PDF document", "输入的不是 PDF 文件")
    refuse_over_budget(unverified_pdf)  # before any parser: what it claims, not what it is, costs
    try:
        reader = PdfFileReader(BytesIO(unverified_pdf), strict=False)
        if reader.encrypted:
            raise BadInput("PDF_ENCRYPTED", "encrypted PDFs cannot be sealed", "加密的 PDF 无法盖章")
        count = int(reader.root["/Pages"]["/Count"])
        opened = OpenedPdf(count, reader)
        if count >= 1:
            opened.page_box(count - 1)  # the default stamp page must be readable
    except BadInput:
        raise
    except MALFORMED_ERRORS as exc:
        raise BadInput("PDF_MALFORMED", f"the PDF cannot be read: {exc}", "PDF 文件已损坏，无法读取") from exc
    if count < 1:
        raise BadInput("PDF_MALFORMED", "the PDF has no pages", "PDF 文件没有页面")
    return opened


def refuse_unsealable(
    opened: OpenedPdf,
    unverified_pdf: bytes,
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
    check_structure: bool = True,
    qpdf_timeout_s: float = 10.0,
) -> None:
    """Refuse what a viewer could show otherwise than it is sealed (codes in the module docstring).

    One pass over every object of every revision (``verifier.scan_graph``, ~1.6 ms CPU for a template
    permit), while ``qpdf --check`` runs in a child process: the same check, with the same tolerance,
    as the verifier's STRUCTURE_INVALID. A child process, not libqpdf in this process: the input is
    hostile and a crash or hang must cost a child, not the sealing worker. The child is a long-lived
    checker (``verifier._qpdf.Checker``, ~0.5 ms here and ~1 ms in the child per document); starting the
    ``qpdf`` binary for each document cost ~1.2 ms here and ~5-7 ms in the child, mostly its start.
    """
    job = None
    if check_structure:
        # the verifier's own check: the same tolerance for warnings; in a child process, it runs while the
        # graph is walked
        job = QpdfJob(unverified_pdf, qpdf_timeout_s)
    try:
        _refuse_graph(opened, max_nodes)
        if job is not None:
            if job.error is not None:  # no qpdf on this machine: the service's fault, not the client's
                raise Unavailable("STRUCTURE_CHECK_UNAVAILABLE", job.error, "PDF 结构检查不可用")
            problem = job.result()
            if problem is not None:
                raise BadInput(
                    "PDF_STRUCTURE_INVALID",
                    f"the PDF's structure needs repair, the sealed copy would not verify: {problem}"[:500],
                    "PDF 文件结构有误（需修复），盖章后无法通过验证",
                )
    finally:
        if job is not None:
            job.close()


def _refuse_graph(opened: OpenedPdf, max_nodes: int) -> None:
    try:
        found = scan_graph(opened.reader, max_nodes=max_nodes)
    except GraphBudgetExceeded as exc:
        raise BadInput(
            "PDF_TOO_COMPLEX", f"the PDF has too many objects to be checked: {exc}", "PDF 对象过多，无法检查"
        ) from exc
    except MALFORMED_ERRORS as exc:
        raise BadInput("PDF_MALFORMED", f"the PDF cannot be read: {exc}", "PDF 文件已损坏，无法读取") from exc
    if found.unreadable:
        raise BadInput(
            "PDF_MALFORMED",
            f"{len(found.unreadable)} objects cannot be read, first: {found.unreadable[0]}"[:500],
            "PDF 文件中有无法读取的对象",
        )
    if found.active_content is not None:
        raise BadInput(
            "PDF_ACTIVE_CONTENT",
            f"the PDF carries scripts or actions that can change what a viewer shows: {found.active_content}",
            "PDF 含有脚本或动作，可改变阅读器显示的内容，不能盖章",
            details={"where": found.active_content},
        )
    if found.optional_content is not None:
        raise BadInput(
            "PDF_OPTIONAL_CONTENT",
            "the PDF has layers that show differently on screen, in print, on export or when switched: "
            + found.optional_content,
            "PDF 含有图层，屏幕显示、打印或切换图层时内容可能不同，不能盖章",
            details={"where": found.optional_content},
        )
    if found.sneaky_fields:
        raise BadInput(
            "PDF_EMPTY_SIGNATURE_FIELD",
            "the PDF has visible empty signature fields that could be filled after the seal: "
            + ", ".join(found.sneaky_fields[:5]),
            "PDF 含有可见的空白签名域，盖章后可能被填入其他内容，不能盖章",
            details={"fields": list(found.sneaky_fields[:20])},
        )
    if found.needs_appearances:
        raise BadInput(
            "PDF_NEEDS_APPEARANCES",
            "the PDF's form asks the viewer to redraw its fields (/NeedAppearances): they would not show "
            "as sealed",
            "PDF 表单要求阅读器重绘字段（NeedAppearances），显示内容可能与盖章时不同，不能盖章",
        )


def refuse_failing_signatures(opened: OpenedPdf, unverified_pdf: bytes, now: datetime) -> None:
    """``PDF_SIGNATURE_INVALID`` if the document's own signatures already fail verification.

    The verifier itself, in its sandbox, with an empty trust list: an intact earlier signature from
    elsewhere is INDETERMINATE (untrusted), which sealing accepts; a broken one is TOTAL_FAILED, and so would
    be every sealed copy of it. Unsigned documents (nearly all) skip this.
    """
    if not has_signatures(opened):
        return
    report = verify_document(unverified_pdf, TrustList.empty(), now=now)
    if report.indication is Indication.TOTAL_FAILED:
        codes = sorted(set(report.codes))
        raise BadInput(
            "PDF_SIGNATURE_INVALID",
            "the PDF's own signatures already fail verification, its sealed copy would too: "
            + ", ".join(codes[:8]),
            "PDF 原有签名验证不通过，盖章后的文件同样无法通过验证",
            details={"codes": codes[:20]},
        )


def has_signatures(opened: OpenedPdf) -> bool:
    from pyhanko.sign import fields

    return any(True for _ in fields.enumerate_sig_fields(opened.reader, filled_status=True))
