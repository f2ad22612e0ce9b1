"""The parsed seal drawing is shared between signings: each import writes what a fresh parse writes."""

from __future__ import annotations

import re
from io import BytesIO

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from signer import SealFace, SealStampStyle
from signer._stamp import _seal_drawing, seal_drawing_pdf


def _base() -> bytes:
    w = PdfFileWriter()
    contents = w.add_object(generic.StreamObject(stream_data=b""))
    w.insert_page(PageObject(contents=contents, media_box=(0, 0, 595, 842)))
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def _import(base: bytes, reader: PdfFileReader) -> bytes:
    w = IncrementalPdfFileWriter(BytesIO(base))
    w.root[generic.pdf_name("/X")] = w.import_page_as_xobject(reader, page_ix=0)
    w.update_root()
    out = BytesIO()
    w.write(out)
    data = re.sub(rb"/ID \[[^\]]*\]", b"", out.getvalue())  # the file identifier is fresh each time
    return re.sub(rb"/ModDate \([^)]*\)", b"", data)  # and the time: two imports may straddle a second


def test_shared_reader_imports_like_a_fresh_parse() -> None:
    style = SealStampStyle(face=SealFace.from_name("兴国县兴江乡人民政府行政审批服务专用章", None))
    base = _base()
    fresh = _import(base, PdfFileReader(BytesIO(seal_drawing_pdf(style, 119.0))))
    reader = _seal_drawing(style, 119.0).reader
    assert [_import(base, reader) for _ in range(3)] == [fresh] * 3
    assert _seal_drawing(style, 119.0).reader is reader
