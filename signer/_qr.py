"""The verification QR code and line ("扫码验证 / verify at …"), drawn into the page before sealing.

The QR code leads to the public verification page by document number and the SHA-256 of the document as
it was brought for sealing (the sealed file's own hash cannot be printed inside it); both are also bound
in the signature (``document_number``, ``source_sha256``), so the page can match them. It goes into the
same incremental update as the seal, so the seal covers it. Drawing on a page changes page content, which
would break signatures already in the document: a PDF that is already signed gets no QR code.
"""

from __future__ import annotations

from urllib.parse import urlencode

import qrcode
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from ._fonts import font_engine

QR_SIZE_PT = 56.0


def verification_url(base_url: str, document_number: str, source_sha256: str) -> str:
    return f"{base_url.rstrip('/')}/verify?" + urlencode({"no": document_number, "h": source_sha256})


def qr_box(page_box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Lower left of the page, inside a 1-inch margin: out of the way of the seal at the lower right."""
    x0, y0 = page_box[0] + 72, page_box[1] + 40
    return (x0, y0, x0 + QR_SIZE_PT, y0 + QR_SIZE_PT)


def draw_verification_qr(
    writer: IncrementalPdfFileWriter, page: int, box: tuple[float, ...], url: str
) -> None:
    qr = qrcode.QRCode(border=0, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(url)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    n = len(matrix)
    module = (box[2] - box[0]) / n
    ops = [b"q 0 0 0 rg"]
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                ops.append(
                    b"%.3f %.3f %.3f %.3f re"
                    % (box[0] + c * module, box[3] - (r + 1) * module, module, module)
                )
    ops.append(b"f Q")
    label = "扫码验证 / verify at"
    host = url.split("?", 1)[0]
    engine = font_engine(writer, label + host)
    engine.font_size = 7  # type: ignore[assignment]
    line1 = engine.shape(label).graphics_ops
    line2 = engine.shape(host).graphics_ops
    x = box[2] + 6
    ops.append(b"BT 0 0 0 rg /YzQrF 7 Tf 1 0 0 1 %.2f %.2f Tm %s ET" % (x, box[1] + 30, line1))
    ops.append(b"BT 0 0 0 rg /YzQrF 7 Tf 1 0 0 1 %.2f %.2f Tm %s ET" % (x, box[1] + 20, line2))
    resources = generic.DictionaryObject(
        {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/YzQrF"): engine.as_resource()})}
    )
    # isolate the page's existing graphics state from ours, as pyHanko's stamps do
    writer.add_stream_to_page(page, writer.add_object(generic.StreamObject(stream_data=b"q\n")), prepend=True)
    writer.add_stream_to_page(page, writer.add_object(generic.StreamObject(stream_data=b"\nQ\n")))
    writer.add_stream_to_page(
        page, writer.add_object(generic.StreamObject(stream_data=b"\n".join(ops))), resources=resources
    )
