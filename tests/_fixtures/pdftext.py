"""Word boxes of a PDF as poppler reads them (``pdftotext -bbox``): the report layout tests use them."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

Word = tuple[str, float, float, float, float]  # text, xMin, yMin, xMax, yMax (y grows downward)


def word_boxes(pdf: bytes, tmp: Path) -> tuple[list[tuple[float, float]], list[Word]]:
    """Each page's (width, height) and every word's box, in PDF points."""
    src = tmp / "boxes.pdf"
    src.write_bytes(pdf)
    out = tmp / "boxes.html"
    subprocess.run(["pdftotext", "-bbox", str(src), str(out)], check=True, timeout=60)
    ns = {"x": "http://www.w3.org/1999/xhtml"}
    root = ET.parse(out).getroot()
    pages: list[tuple[float, float]] = []
    words: list[Word] = []
    for page in root.iterfind(".//x:page", ns):
        pages.append((float(page.get("width", 0)), float(page.get("height", 0))))
        for w in page.iterfind("x:word", ns):
            box = [float(w.get(k, 0)) for k in ("xMin", "yMin", "xMax", "yMax")]
            words.append((w.text or "", box[0], box[1], box[2], box[3]))
    return pages, words


def assert_inside(pdf: bytes, tmp: Path, margin: float = 50.0) -> list[Word]:
    """Every word lies inside its page's media box, ``margin`` points in from the sides (20 top/bottom)."""
    pages, words = word_boxes(pdf, tmp)
    assert pages and words
    width, height = pages[0]
    for text, x0, y0, x1, y1 in words:
        assert margin <= x0 and x1 <= width - margin and 20 <= y0 and y1 <= height - 20, (
            text,
            x0,
            y0,
            x1,
            y1,
        )
    return words
