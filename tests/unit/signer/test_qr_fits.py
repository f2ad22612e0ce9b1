"""The verification QR code goes on an upload only where the page shows nothing (signer.qr_fits): the check
renders only the code's box and its 4 pt margin, so ink just inside the margin counts and ink outside does
not."""

from __future__ import annotations

from io import BytesIO

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from signer import qr_fits
from signer._qr import qr_box

A4 = (0.0, 0.0, 595.0, 842.0)


def _page_with(ops: bytes, media_box: tuple[float, float, float, float] = A4) -> bytes:
    w = PdfFileWriter()
    contents = w.add_object(generic.StreamObject(stream_data=ops))
    w.insert_page(PageObject(contents=contents, media_box=media_box, resources=generic.DictionaryObject()))
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def _dot(x: float, y: float, grey: float = 0.0) -> bytes:
    return b"%.3f g %.2f %.2f 1.5 1.5 re f" % (grey, x, y)


X0, Y0, X1, Y1 = qr_box(A4)


CASES = [
    (b"", True),
    (_dot((X0 + X1) / 2, (Y0 + Y1) / 2), False),  # in the middle of the box
    (_dot(X1 + 1.5, Y1 + 1.5), False),  # in the margin, upper right
    (_dot(X0 - 3.5, Y0 - 3.5), False),  # in the margin, lower left
    (_dot(X1 + 12, (Y0 + Y1) / 2), True),  # beside the box, beyond the margin
    (_dot(X0, Y1 + 12), True),  # above it
    (_dot((X0 + X1) / 2, (Y0 + Y1) / 2, grey=0.97), True),  # too faint to be seen under the code
    (_dot(300, 700) + _dot(500, 60), True),  # the rest of the page is not its business
]


@pytest.mark.parametrize(("ops", "fits"), CASES)
def test_qr_fits_only_where_nothing_is_drawn(ops: bytes, fits: bool) -> None:
    assert qr_fits(_page_with(ops), max_bytes=10_000_000) is fits


def test_a_box_off_the_page_does_not_fit() -> None:
    # a page narrower than the code's place (72 pt in, 56 pt wide): the code would print off the page
    assert qr_fits(_page_with(b"", (0.0, 0.0, 100.0, 842.0)), max_bytes=10_000_000) is False


@pytest.mark.parametrize(("ops", "fits"), CASES)
def test_the_signings_one_pdfium_document_gives_the_same_answer(ops: bytes, fits: bool) -> None:
    # issue 24: the sealer opens an upload with PDFium once, for this check and the pages' text
    from signer._pdfin import open_untrusted_pdf
    from signer._preview import qr_fits_opened
    from verifier import PDFIUM_LOCK, page_texts, pdfium_document

    pdf = _page_with(ops)
    opened = open_untrusted_pdf(pdf, max_bytes=10_000_000)
    with pdfium_document(pdf) as doc:
        assert qr_fits_opened(doc, opened, 0) is fits  # the lock is the block's: not taken again
        assert page_texts(doc) == [""]  # the document is still open for the next reader
        assert qr_fits_opened(doc, opened, 0) is fits
    assert not PDFIUM_LOCK.locked()
    assert qr_fits_opened(pdf, opened, 0) is fits
