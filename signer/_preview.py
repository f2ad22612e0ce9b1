"""What a seal will be put on, before it is: the document as it will be sealed, and its pages as pictures.

The approver of a request sees these (issue 23): the PDF the signer would stamp (a template is rendered
exactly as ``Sealer.apply_seal`` renders it, with the number still to be drawn shown as a placeholder),
where the stamp and the verification QR code go, and the pages rendered with PDFium at 100 dpi.

:func:`qr_fits` is the rule for an uploaded PDF's QR code: it is printed only on an unsigned document whose
QR area (lower left of the stamp page) is blank, so it never covers the document's own text; the same
bytes always give the same answer, so a retried sealing agrees with the first attempt.

PDFium is driven under the signer's one PDFium lock (``verifier.PDFIUM_LOCK``), with a page limit and a
wall deadline per page (progressive rendering).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.errors import BadInput, SealServiceError

from ._pdfin import (
    OpenedPdf,
    has_signatures,
    open_untrusted_pdf,
    refuse_failing_signatures,
    refuse_unsealable,
)
from ._qr import qr_box
from ._seal import Placement, resolve_placement

if TYPE_CHECKING:
    from pypdfium2 import PdfDocument

    from ._service import Sealer

PREVIEW_DPI = 100.0
MAX_PREVIEW_PAGES = 12
PAGE_DEADLINE_S = 2.0
#: Printed where the number goes, in the preview only: the number is drawn when the seal is applied.
NUMBER_PLACEHOLDER = "（文号于用印时编定）"
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PagePicture:
    index: int  # 0-based
    png: bytes
    width_pt: float
    height_pt: float


@dataclass(frozen=True)
class SealPreview:
    """The document as it will be sealed: its bytes, the stamp's page and box, the QR box (None: no QR
    code will be printed) and, when it cannot be sealed as it is, the refusal sealing would give."""

    pdf: bytes | None
    page: int
    stamp_box: Box | None
    qr_box: Box | None
    problem: SealServiceError | None = None


def qr_fits(unverified_pdf: bytes, *, max_bytes: int, placement: Placement | None = None) -> bool:
    """May the verification QR code be printed on this uploaded PDF? Not on a signed one (it would break
    those signatures), not where the page already shows anything (it would cover it)."""
    try:
        opened = open_untrusted_pdf(unverified_pdf, max_bytes=max_bytes)
        if has_signatures(opened):
            return False
        page, _ = resolve_placement(opened, placement or Placement())
    except SealServiceError:
        return False
    return qr_fits_opened(unverified_pdf, opened, page)


def qr_fits_opened(unverified_pdf: bytes | PdfDocument, opened: OpenedPdf, page: int) -> bool:
    """:func:`qr_fits` on a PDF already opened, with the stamp's page already resolved (the signer's one
    parse and one placement of a signing). ``unverified_pdf`` is its bytes, or the document the signing
    opened with PDFium inside its ``verifier.pdfium_document`` block (see :func:`_blank`)."""
    try:
        if has_signatures(opened):
            return False
        box = qr_box(opened.page_box(page))
        return _blank(unverified_pdf, page, box, opened.page_box(page))
    except SealServiceError:
        return False


def preview_seal(
    sealer: Sealer,
    *,
    seal_id: str,
    template: str | None,
    template_data: dict[str, Any] | None,
    unverified_pdf: bytes | None,
    verify_qr: bool,
    now: datetime,
) -> SealPreview:
    """The document ``sealer.seal`` would stamp for these inputs (nothing drawn, nothing written)."""
    from ._service import rendered_template

    placement = Placement()
    try:
        if template is not None:
            seal = sealer.registry.get(seal_id)
            pdf = rendered_template(template, template_data or {}, seal, NUMBER_PLACEHOLDER, now)
            opened = open_untrusted_pdf(pdf, max_bytes=sealer.settings.max_pdf_bytes)
        elif unverified_pdf is not None:
            pdf = unverified_pdf
            opened = open_untrusted_pdf(pdf, max_bytes=sealer.settings.max_pdf_bytes)
            refuse_unsealable(opened, pdf)
            refuse_failing_signatures(opened, pdf, now)
        else:
            raise BadInput("DOCUMENT_REQUIRED", "no document", "没有文书")
        page, box = resolve_placement(opened, placement)
        qbox = qr_box(opened.page_box(page)) if verify_qr else None
        return SealPreview(pdf, page, box, qbox)
    except SealServiceError as exc:
        return SealPreview(unverified_pdf, -1, None, None, problem=exc)


def render_pages(
    pdf: bytes, *, dpi: float = PREVIEW_DPI, max_pages: int = MAX_PREVIEW_PAGES
) -> list[PagePicture]:
    """The first ``max_pages`` pages as PNG (white background, annotations and form widgets drawn).
    A page PDFium cannot load or finish within the deadline is left out."""
    import pypdfium2 as pdfium
    from PIL import Image

    from verifier import PDFIUM_LOCK, render_page

    flags = 0x01  # FPDF_ANNOT
    out: list[PagePicture] = []
    with PDFIUM_LOCK:
        try:
            doc = pdfium.PdfDocument(pdf)
        except pdfium.PdfiumError:
            return []
        try:
            doc.init_forms()  # form widgets drawn as a reader shows them
            for i in range(min(len(doc), max_pages)):
                try:
                    page = doc[i]
                except (pdfium.PdfiumError, IndexError):
                    continue
                try:
                    w_pt, h_pt = page.get_size()
                    w, h = max(1, round(w_pt * dpi / 72)), max(1, round(h_pt * dpi / 72))
                    if w * h > 4_000_000:
                        continue
                    raw = render_page(page, w, h, flags, time.monotonic() + PAGE_DEADLINE_S)
                finally:
                    page.close()
                if raw is None:
                    continue
                image = Image.frombytes("RGB", (w, h), raw, "raw", "BGR")
                buf = io.BytesIO()
                image.save(buf, format="PNG", optimize=False)
                out.append(PagePicture(i, buf.getvalue(), w_pt, h_pt))
        finally:
            doc.close()
    return out


_PAD_PX = 32  # rendered around the pixels looked at: PDFium's clipping at the bitmap's edge stays out of them


def _margin_pixels(box: Box, page_box: Box, w: int, h: int) -> tuple[int, int, int, int] | None:
    """``box`` (PDF points) and its 4 pt margin as device pixels (x0, y0, x1, y1; rows from the top) of the
    page rendered at 72 dpi as ``w`` x ``h``; None when nothing of it is on the page."""
    x0 = max(0, int(box[0] - page_box[0] - 4))
    x1 = min(w, int(box[2] - page_box[0] + 4) + 1)
    y0 = max(0, int(page_box[3] - box[3] - 4))
    y1 = min(h, int(page_box[3] - box[1] + 4) + 1)
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def _blank(pdf: bytes | PdfDocument, page_index: int, box: Box, page_box: Box, pad: int = _PAD_PX) -> bool:
    """Nothing drawn inside ``box`` (PDF points) on the page, with a 4 pt margin, at 72 dpi; False when the
    box is not wholly on the page (the code would be printed cut).

    ``pdf`` is the file (opened here, under ``verifier.PDFIUM_LOCK``; False when PDFium cannot open it) or
    a document already open in the caller's ``verifier.pdfium_document`` block (the lock is held there, so
    it is not taken here): the same pixels either way.

    Only the box, its margin and ``pad`` pixels around them are rendered (a whole page at 72 dpi cost ~3 ms
    of CPU per signing). The pad keeps PDFium's clipping at the bitmap's edge out of the pixels looked at:
    over 200,451 code boxes of the test PDFs (``bench/check_qr_blank.py --step 6``) every answer equals the
    whole-page render's with 32 px; with 8 px, 4 boxes with ink read as blank, with none 4."""
    if box[0] < page_box[0] or box[1] < page_box[1] or box[2] > page_box[2] or box[3] > page_box[3]:
        return False
    import pypdfium2 as pdfium

    if not isinstance(pdf, pdfium.PdfDocument):
        from contextlib import ExitStack

        from verifier import pdfium_document

        with ExitStack() as held:
            try:
                doc = held.enter_context(pdfium_document(pdf))
            except ValueError:
                return False
            rendered = _rendered(doc, page_index, box, page_box, pad)
    else:
        rendered = _rendered(pdf, page_index, box, page_box, pad)
    if rendered is None:
        return False
    region, (x0, y0, x1, y1), (rx0, ry0, rx1) = rendered
    row = (rx1 - rx0) * 3
    return all(
        min(region[(y - ry0) * row + (x0 - rx0) * 3 : (y - ry0) * row + (x1 - rx0) * 3], default=255) >= 235
        for y in range(y0, y1)
    )


def _rendered(
    doc: PdfDocument, page_index: int, box: Box, page_box: Box, pad: int
) -> tuple[bytes, tuple[int, int, int, int], tuple[int, int, int]] | None:
    """For :func:`_blank`, with the caller holding ``verifier.PDFIUM_LOCK``: the rendered region (packed
    BGR), the pixels to look at (x0, y0, x1, y1) and the region's left, top and right edges; None when the
    page cannot be loaded or rendered (in time), is too large, or the box's pixels are off it."""
    import pypdfium2 as pdfium

    from verifier import render_page

    try:
        page = doc[page_index]
        try:
            w_pt, h_pt = page.get_size()
            w, h = max(1, round(w_pt)), max(1, round(h_pt))
            if w * h > 4_000_000:
                return None
            looked_at = _margin_pixels(box, page_box, w, h)
            if looked_at is None:
                return None
            x0, y0, x1, y1 = looked_at
            rx0, ry0, rx1, ry1 = max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)
            region = render_page(page, w, h, 0x01, time.monotonic() + PAGE_DEADLINE_S, (rx0, ry0, rx1, ry1))
        finally:
            page.close()
    except (pdfium.PdfiumError, IndexError):
        return None
    return None if region is None else (region, looked_at, (rx0, ry0, rx1))
