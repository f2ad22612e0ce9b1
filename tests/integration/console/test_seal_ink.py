"""The seal is ink, not paint (issue 23): the red seal lies over the issuer's name and the date, and the black
text under it stays black, as with a real stamp. Checked on pixels in both renderers people use (PDFium, as
in Chromium; poppler), on a document sealed by the served demo county.

The same document with its blend mode turned back to Normal must lose text under the red: that proves the
seal does cover text here, so the first check can fail."""

from __future__ import annotations

import re
import subprocess
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.integration.console.conftest import County

pytestmark = pytest.mark.softhsm

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
DPI = 150


def _sealed_notice(county: County) -> bytes:
    with httpx.Client(base_url=county.base, timeout=120, follow_redirects=False) as c:
        r = c.post("/ui/login", data={"username": "mj.clerk", "password": county.passwords["mj.clerk"]})
        csrf = CSRF.search(c.get(r.headers["location"]).text).group(1)  # type: ignore[union-attr]
        r = c.post(
            "/ui/clerk/submit",
            data={
                "csrf_token": csrf,
                "seal_id": county.seals["mj"],
                "matter_code": "SX-002",
                "stage": "受理",
                "document_kind": "受理通知书",
                "reason": "印油测试受理",
                "template": "acceptance_notice",
                "f_issuer": "兴国县梅窖镇人民政府",
                "f_applicant": "冯某某",
                "f_matter_name": "临时救助",
                "f_submitted_date": "2026年11月20日",
                "f_date": "2026年11月22日",
            },
        )
        request_id = r.headers["location"].split("/")[3].split("?")[0]
        pdf = c.get(f"/ui/requests/{request_id}/sealed.pdf")
        assert pdf.status_code == 200
        return pdf.content


def _seal_box(pdf: bytes) -> tuple[float, float, float, float, float]:
    """The signature widget's rectangle (PDF points) and the page height."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(BytesIO(pdf))
    page = reader.root["/Pages"]["/Kids"][0].get_object()
    for ref in page.get("/Annots", []):
        annot = ref.get_object()
        if annot.get("/FT") == "/Sig" or annot.get("/Parent", {}).get("/FT") == "/Sig":
            x0, y0, x1, y1 = (float(v) for v in annot["/Rect"])
            return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), float(page["/MediaBox"][3])
    raise AssertionError("no signature widget on page 1")


def _pdfium(pdf: bytes, annots: bool) -> Image.Image:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    if annots:
        doc.init_forms()  # PDFium draws widget appearances only with the form environment
    return doc[0].render(scale=DPI / 72, draw_annots=annots, may_draw_forms=annots).to_pil().convert("RGB")


def _poppler(pdf: bytes, tmp: Path, annots: bool) -> Image.Image:
    src = tmp / "doc.pdf"
    src.write_bytes(pdf)
    out = tmp / ("with" if annots else "without")
    args = ["pdftoppm", "-r", str(DPI), "-png", "-singlefile"] + ([] if annots else ["-hide-annotations"])
    subprocess.run([*args, str(src), str(out)], check=True, timeout=60)
    return Image.open(f"{out}.png").convert("RGB")


def _text_under_seal(plain: Image.Image, stamped: Image.Image, box: tuple[float, ...]) -> tuple[int, int]:
    """(text pixels inside the seal's box, of them how many turned red under the seal)."""
    x0, y0, x1, y1, height = box
    s = DPI / 72
    left, top, right, bottom = int(x0 * s), int((height - y1) * s), int(x1 * s), int((height - y0) * s)
    text = red = 0
    for y in range(top, bottom):
        for x in range(left, right):
            if max(plain.getpixel((x, y))) < 90:  # black text of the page
                text += 1
                r, g, b = stamped.getpixel((x, y))
                if r > 150 and g < 110 and b < 110:
                    red += 1
    return text, red


def test_text_under_the_seal_stays_dark(county: County, tmp_path: Path) -> None:
    pdf = _sealed_notice(county)
    box = _seal_box(pdf)
    assert pdf.count(b"/BM /Multiply") == 1
    for name, render in (
        ("pdfium", lambda doc, annots: _pdfium(doc, annots)),
        ("poppler", lambda doc, annots: _poppler(doc, tmp_path, annots)),
    ):
        plain, stamped = render(pdf, False), render(pdf, True)
        text, red = _text_under_seal(plain, stamped, box)
        assert text > 500, (name, text)  # the issuer's name and the date lie under the seal
        # the seal is there: red pixels in its box
        x0, y0, x1, y1, height = (v * DPI / 72 for v in box)
        area = stamped.crop((int(x0), int(height - y1), int(x1), int(height - y0)))
        raw = area.tobytes()
        pixels = zip(raw[0::3], raw[1::3], raw[2::3], strict=True)
        assert sum(1 for r, g, b in pixels if r > 150 and g < 110 and b < 110) > 2000, name
        assert red <= text * 0.01, (name, text, red)
        # painted instead of inked (blend mode Normal, same byte length): the red covers the text
        painted = pdf.replace(b"/BM /Multiply", b"/BM /Normal  ")
        _text, covered = _text_under_seal(plain, render(painted, True), box)
        assert covered > text * 0.05, (name, text, covered)
