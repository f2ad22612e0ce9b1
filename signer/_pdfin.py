"""Checks on a PDF brought to be sealed, before anything is drawn or signed.

Codes: ``PDF_TOO_LARGE`` (over ``settings.max_pdf_bytes``), ``PDF_NOT_PDF`` (no ``%PDF-`` header),
``PDF_ENCRYPTED`` (an encrypted document cannot be sealed: the seal would sign ciphertext the reader
decrypts differently), ``PDF_MALFORMED`` (pyHanko cannot read the structure or its pages).
Documents that already carry signatures are accepted: the seal goes into an incremental update.
"""

from __future__ import annotations

import struct
import zlib
from io import BytesIO

from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

from core.errors import BadInput

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


def has_signatures(opened: OpenedPdf) -> bool:
    from pyhanko.sign import fields

    return any(True for _ in fields.enumerate_sig_fields(opened.reader, filled_status=True))
