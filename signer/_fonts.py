"""The CJK font: face 0 of the installed WenQuanYi Zen Hei collection, embedded as a subset.

pyHanko's :class:`GlyphAccumulator` reads one OpenType/TrueType face, not a collection, and re-reads the
whole font for every document. A 16 MB CJK face costs ~1 s to parse and subset, so we extract face 0 to a
cache file once, and for each text set (a seal's name, a template's strings) build a small TrueType subset
with only the glyphs needed. pyHanko then subsets that small font again and embeds it (CIDFontType2, with
a ToUnicode map, so the text stays searchable and copyable).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from fontTools import subset as ft_subset
from fontTools.ttLib import TTCollection, TTFont
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.opentype import CIDFontType2, GlyphAccumulator
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import BasePdfFileWriter

from core.errors import SigningError

CJK_COLLECTION = Path(os.environ.get("YIZHANG_CJK_FONT", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"))
_lock = threading.RLock()
# fontTools warns about bitmap tables it drops from the subset; that is expected here.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "yizhang" / "fonts"


def cjk_font_path() -> Path:
    """Path of a single-face TrueType file of the CJK font (extracted from the collection once)."""
    src = CJK_COLLECTION
    if not src.exists():
        raise SigningError(
            "CJK_FONT_MISSING",
            f"CJK font {src} not found (install fonts-wqy-zenhei)",
            f"未找到中文字体 {src}（请安装 fonts-wqy-zenhei）",
        )
    if src.suffix.lower() in {".ttf", ".otf"}:
        return src
    target = _cache_dir() / f"{src.stem}-0.ttf"
    with _lock:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            TTCollection(str(src)).fonts[0].save(str(tmp))
            os.replace(tmp, target)
    return target


@lru_cache(maxsize=1)
def _code_points() -> frozenset[int]:
    """Every code point the font maps, read once. (A shared TTFont must not be used instead: fontTools
    decompiles tables on first touch, and two request threads touching one at once failed with
    "illegal use of getGlyphOrder()" under load.)"""
    with _lock:
        return frozenset(TTFont(str(cjk_font_path())).getBestCmap())


@lru_cache(maxsize=256)
def _subset_bytes(chars: str) -> bytes:
    with _lock:
        font = TTFont(str(cjk_font_path()))
        options = ft_subset.Options()
        options.layout_features = ["*"]
        options.name_IDs = ["*"]
        options.notdef_outline = True
        sub = ft_subset.Subsetter(options=options)
        sub.populate(text=chars)
        sub.subset(font)
        out = BytesIO()
        font.save(out)
        return out.getvalue()


def subset_font(text: str) -> bytes:
    """A small TrueType font with the glyphs for ``text`` (plus ASCII digits and punctuation)."""
    chars = "".join(sorted(set(text) | set("0123456789()（）〔〕-:/. ")))
    return _subset_bytes(chars)


def missing_glyphs(text: str) -> str:
    """Characters of ``text`` the CJK font has no glyph for (they would print as boxes)."""
    mapped = _code_points()
    return "".join(sorted({c for c in text if not c.isspace() and ord(c) not in mapped}))


class PresubsetGlyphAccumulator(GlyphAccumulator):
    """pyHanko's glyph accumulator over a font that already is the subset for this text (:func:`subset_font`).

    pyHanko would subset it a second time and serialise it again with fontTools for every document (about
    20 ms of CPU for a page of Chinese text: the largest single cost of rendering a template under load).
    Here the font file embedded is the subset's own bytes, unchanged: the same glyphs and glyph ids
    (``/CIDToGIDMap /Identity``), a few glyphs more than a page may use (the text set's digits and
    punctuation). Only TrueType-flavoured fonts take this path; anything else is pyHanko's own.
    """

    def __init__(self, writer: BasePdfFileWriter, font_bytes: bytes, **kwargs: object) -> None:
        super().__init__(writer, BytesIO(font_bytes), **kwargs)
        self._presubset = font_bytes if isinstance(self.cidfont_obj, CIDFontType2) else None
        if self._presubset is not None:
            self.cidfont_obj.set_font_file = self._embed_presubset  # type: ignore[method-assign]

    def _extract_subset(self, options: ft_subset.Options | None = None) -> None:
        if self._presubset is None:
            super()._extract_subset(options)

    def _embed_presubset(self, writer: BasePdfFileWriter) -> generic.IndirectObject:
        assert self._presubset is not None
        stream = generic.StreamObject(stream_data=self._presubset)
        stream.compress()
        ref = writer.add_object(stream)
        self.cidfont_obj._font_descriptor[pdf_name("/FontFile2")] = ref
        return ref


def font_engine(writer: BasePdfFileWriter, text: str, font_size: float = 10) -> GlyphAccumulator:
    """A glyph accumulator for ``text`` that embeds only the glyphs of its text set in ``writer``."""
    data = subset_font(text)
    return PresubsetGlyphAccumulator(writer, data, font_size=font_size, bcp47_lang_code="zh-CN")


def text_fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
