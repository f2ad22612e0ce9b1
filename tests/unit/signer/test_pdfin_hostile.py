"""open_untrusted_pdf on broken cross-reference streams: bad input (PDF_MALFORMED), not a crash.

Found by the upload fuzz (tests/reliability/test_upload_fuzz.py), each escaping as a 500 before: a flipped
byte inside a compressed xref stream (pyHanko's reader raised ``zlib.error`` while opening), and a flipped
byte in the xref stream's ``/Type /XRef`` (the reader's own ``assert`` raised ``AssertionError``).
"""

from __future__ import annotations

import pytest


def _pdf_with_xref_stream(kind: bytes, body: bytes, flate: bool) -> bytes:
    head = b"%PDF-1.7\n"
    obj = (
        b"1 0 obj\n<< /Type /"
        + kind
        + b" /Size 2 /W [1 1 1] /Root 2 0 R "
        + (b"/Filter /FlateDecode " if flate else b"")
        + b"/Length "
        + str(len(body)).encode()
        + b" >>\nstream\n"
        + body
        + b"\nendstream\nendobj\n"
    )
    return head + obj + b"startxref\n" + str(len(head)).encode() + b"\n%%EOF\n"


@pytest.mark.parametrize(
    ("pdf", "cause"),
    [
        # a zlib header, then no valid deflate block
        (_pdf_with_xref_stream(b"XRef", b"x\x9c" + b"\xff" * 40, flate=True), "error"),
        # startxref points at a stream that is not an xref stream
        (_pdf_with_xref_stream(b"XReg", b"\x01\x00\x00", flate=False), "AssertionError"),
    ],
    ids=["corrupt-flate", "not-an-xref-stream"],
)
def test_broken_xref_stream_is_pdf_malformed(pdf: bytes, cause: str) -> None:
    from core.errors import BadInput
    from signer._pdfin import open_untrusted_pdf

    with pytest.raises(BadInput) as err:
        open_untrusted_pdf(pdf, max_bytes=1024 * 1024)
    assert err.value.code == "PDF_MALFORMED"
    assert type(err.value.__cause__).__name__ == cause
