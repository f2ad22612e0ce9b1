"""The seal's appearance: the red round seal, drawn as PDF vector graphics with the CJK font embedded.

Layout follows the physical seals of the reform (GA 241 style round official seals):

* a red circle (line width ~1/40 of the diameter);
* a five-pointed star in the centre;
* the issuing organisation along the upper arc, each character rotated so that its top points outwards
  (upright for a reader turning with the arc), spread evenly over ~240 degrees;
* the seal's purpose as a straight line under the star: ``行政审批服务专用章`` for a township approval seal,
  ``行政审批专用章`` for a department's seal;
* for a No. 2 seal its number ``（11）`` … ``（35）`` in a smaller line at the bottom.

The stamp is a pyHanko stamp style, so the same drawing becomes the signature widget's appearance stream.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from io import BytesIO

from pyhanko.pdf_utils import content, generic, layout
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.stamp import BaseStamp, BaseStampStyle

from core.errors import BadInput

from ._fonts import font_engine, missing_glyphs

SEAL_RED = (0.84, 0.07, 0.09)
# Purpose lines a seal's full name ends with, longest first: they go under the star, the rest on the arc.
# 融安's names (001 四（二）) put 行政审批（服务）专用章 or 政务服务专用章 there whole, as the paper
# seal does: never 行政审批（服务） on the arc and 专用章 alone under the star (issue 22).
_PURPOSE_SUFFIXES = (
    "行政审批（服务）专用章",
    "行政审批(服务)专用章",
    "行政审批服务专用章",
    "政务服务专用章",
    "行政审批专用章",
    "审批专用章",
    "专用章",
    "公章",
)
_MM = 72 / 25.4
DEFAULT_DIAMETER_PT = 42 * _MM  # 42 mm, the usual size of a township's round seal


@dataclass(frozen=True)
class SealFace:
    """What the seal says: arc text, the line under the star, the number line (No. 2 seals)."""

    arc: str
    line: str = ""
    number: str = ""

    @classmethod
    def from_name(cls, full_name: str, number: int | None = None) -> SealFace:
        """Split a seal's full name (``兴国县卫生健康委员会行政审批专用章（13）``) into its parts."""
        name = full_name.strip()
        num_text = ""
        for open_p, close_p in (("（", "）"), ("(", ")")):
            if name.endswith(close_p) and open_p in name:
                idx = name.rindex(open_p)
                inner = name[idx + 1 : -1]
                if inner.isdigit():
                    num_text = f"（{inner}）"
                    name = name[:idx]
                break
        if number is not None:
            num_text = f"（{number}）"
        if not name:
            raise BadInput("STAMP_NAME_EMPTY", "a seal needs a name to draw", "印章名称为空，无法绘制")
        for suffix in _PURPOSE_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                return cls(arc=name[: -len(suffix)], line=suffix, number=num_text)
        return cls(arc=name, line="", number=num_text)

    @property
    def all_text(self) -> str:
        return self.arc + self.line + self.number


def _circle(cx: float, cy: float, r: float) -> bytes:
    k = 0.5522847498 * r
    return (
        b"%.3f %.3f m " % (cx + r, cy)
        + b"%.3f %.3f %.3f %.3f %.3f %.3f c " % (cx + r, cy + k, cx + k, cy + r, cx, cy + r)
        + b"%.3f %.3f %.3f %.3f %.3f %.3f c " % (cx - k, cy + r, cx - r, cy + k, cx - r, cy)
        + b"%.3f %.3f %.3f %.3f %.3f %.3f c " % (cx - r, cy - k, cx - k, cy - r, cx, cy - r)
        + b"%.3f %.3f %.3f %.3f %.3f %.3f c h" % (cx + k, cy - r, cx + r, cy - k, cx + r, cy)
    )


def _star(cx: float, cy: float, r: float) -> bytes:
    inner = r * 0.381966  # the regular pentagram's inner/outer radius ratio
    pts = []
    for i in range(10):
        rad = r if i % 2 == 0 else inner
        ang = math.radians(90 + i * 36)
        pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
    ops = [b"%.3f %.3f m" % pts[0]] + [b"%.3f %.3f l" % p for p in pts[1:]] + [b"h f"]
    return b" ".join(ops)


@dataclass(frozen=True)
class SealStampStyle(BaseStampStyle):
    """pyHanko stamp style drawing the round red seal of ``face`` inside the widget box."""

    face: SealFace = field(default_factory=lambda: SealFace(arc="印章"))
    border_width: int = 0
    color: tuple[float, float, float] = SEAL_RED
    arc_span_deg: float = 240.0

    def create_stamp(
        self, writer: BasePdfFileWriter, box: layout.BoxConstraints, text_params: dict
    ) -> BaseStamp:
        return CachedSealStamp(writer=writer, style=self, box=box)


@lru_cache(maxsize=128)
def seal_drawing_pdf(style: SealStampStyle, diameter: float) -> bytes:
    """The seal drawn once on a ``diameter``-square page, font subset embedded (cached per seal and size).

    Subsetting and re-encoding the CJK font is the costliest part of drawing a seal; a seal's drawing never
    changes, so each signing imports this small page as a form XObject instead of drawing it again.
    """
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    w = PdfFileWriter()
    drawing = SealStamp(w, style, layout.BoxConstraints(width=diameter, height=diameter)).register()
    resources = generic.DictionaryObject(
        {pdf_name("/XObject"): generic.DictionaryObject({pdf_name("/S"): drawing})}
    )
    contents = w.add_object(generic.StreamObject(stream_data=b"q /S Do Q"))
    w.insert_page(PageObject(contents=contents, media_box=(0, 0, diameter, diameter), resources=resources))
    out = BytesIO()
    w.write(out)
    return out.getvalue()


class CachedPage:
    """A one-page drawing, parsed once, imported into any signing's writer as a form XObject.

    Importing copies its objects into the writer and leaves the reader as it was, so one reader serves
    every signing; parsing it again each time cost about a millisecond. The lock keeps two threads from
    moving the reader's stream position at once."""

    def __init__(self, pdf: bytes) -> None:
        from pyhanko.pdf_utils.reader import PdfFileReader

        self.reader = PdfFileReader(BytesIO(pdf))
        self._lock = threading.Lock()

    def import_into(self, writer: BasePdfFileWriter) -> generic.IndirectObject:
        with self._lock:
            return writer.import_page_as_xobject(self.reader, page_ix=0)


@lru_cache(maxsize=128)
def _seal_drawing(style: SealStampStyle, diameter: float) -> CachedPage:
    """The cached drawing of a seal at a size (:func:`seal_drawing_pdf`), parsed once."""
    return CachedPage(seal_drawing_pdf(style, diameter))


class CachedSealStamp(BaseStamp):
    """The widget appearance: the cached seal drawing imported and centred in the box."""

    style: SealStampStyle

    def __init__(self, writer: BasePdfFileWriter, style: SealStampStyle, box: layout.BoxConstraints | None):
        if box is None or not (box.width_defined and box.height_defined):
            box = layout.BoxConstraints(width=DEFAULT_DIAMETER_PT, height=DEFAULT_DIAMETER_PT)
        super().__init__(writer=writer, style=style, box=box)

    def _render_inner_content(self) -> list[bytes]:
        w, h = self.box.width, self.box.height
        diameter = round(min(w, h), 2)
        assert self.writer is not None
        xobj = _seal_drawing(self.style, diameter).import_into(self.writer)
        self.set_resource(category=content.ResourceType.XOBJECT, name=pdf_name("/Seal"), value=xobj)
        return [b"q 1 0 0 1 %.3f %.3f cm /Seal Do Q" % ((w - diameter) / 2, (h - diameter) / 2)]


class SealStamp(BaseStamp):
    style: SealStampStyle

    def __init__(self, writer: BasePdfFileWriter, style: SealStampStyle, box: layout.BoxConstraints | None):
        if box is None or not (box.width_defined and box.height_defined):
            box = layout.BoxConstraints(width=DEFAULT_DIAMETER_PT, height=DEFAULT_DIAMETER_PT)
        super().__init__(writer=writer, style=style, box=box)

    def _render_inner_content(self) -> list[bytes]:
        face = self.style.face
        missing = missing_glyphs(face.all_text)
        if missing:
            raise BadInput(
                "STAMP_GLYPH_MISSING",
                f"the CJK font cannot draw: {missing}",
                f"字体缺少以下字符：{missing}",
                details={"characters": missing},
            )
        w, h = self.box.width, self.box.height
        diameter = min(w, h)
        cx, cy, outer = w / 2, h / 2, diameter / 2
        lw = diameter / 38
        r_ring = outer - lw / 2 - 0.5
        assert self.writer is not None
        engine = font_engine(self.writer, face.all_text)
        self.set_resource(
            category=content.ResourceType.FONT, name=pdf_name("/SealF"), value=engine.as_resource()
        )
        # Ink, not paint: multiply blending lets the name and date printed under the seal show through.
        self.set_resource(
            category=content.ResourceType.EXT_G_STATE,
            name=pdf_name("/SealInk"),
            value=generic.DictionaryObject({pdf_name("/BM"): pdf_name("/Multiply")}),
        )
        red = b"%.3f %.3f %.3f" % self.style.color
        ops: list[bytes] = [
            b"/SealInk gs",
            red + b" RG " + red + b" rg",
            b"%.3f w" % lw,
            _circle(cx, cy, r_ring) + b" S",
        ]
        ops.append(_star(cx, cy + diameter * 0.02, diameter * 0.17))

        # Upper arc: characters centred on a circle inside the ring, tops outwards.
        arc = face.arc
        n = len(arc)
        if n:
            fs_max = diameter * 0.15
            r_text_outer = r_ring - lw * 1.6
            span = math.radians(min(self.style.arc_span_deg, 40.0 * n))
            # font size limited by the ring's depth and by the arc length each character gets
            fs = min(fs_max, r_text_outer * 0.32)
            r_c = r_text_outer - fs * 0.5
            pitch = span * r_c / max(n, 1)
            x_scale = min(1.0, pitch * 0.92 / fs)
            engine.font_size = fs  # type: ignore[assignment]
            for i, ch in enumerate(arc):
                theta = math.pi / 2 + span / 2 - (i + 0.5) * span / n
                phi = theta - math.pi / 2
                shaped = engine.shape(ch)
                adv = shaped.x_advance * fs * x_scale
                c, s = math.cos(phi), math.sin(phi)
                gx, gy = cx + r_c * math.cos(theta), cy + r_c * math.sin(theta)
                # glyph origin: half an advance left and ~0.38 em down from the centre, in the rotated frame
                ox, oy = -adv / 2, -fs * 0.38
                tx = gx + ox * c - oy * s
                ty = gy + ox * s + oy * c
                ops.append(
                    b"BT /SealF %.3f Tf %.4f %.4f %.4f %.4f %.3f %.3f Tm %s ET"
                    % (fs, c * x_scale, s * x_scale, -s, c, tx, ty, shaped.graphics_ops)
                )

        def centred_line(text: str, fs: float, baseline_y: float, max_width: float) -> None:
            if not text:
                return
            engine.font_size = fs  # type: ignore[assignment]
            shaped = engine.shape(text)
            width = shaped.x_advance * fs
            scale = min(1.0, max_width / width) if width else 1.0
            x = cx - width * scale / 2
            ops.append(
                b"BT /SealF %.3f Tf %.4f 0 0 1 %.3f %.3f Tm %s ET"
                % (fs, scale, x, baseline_y, shaped.graphics_ops)
            )

        line_fs = diameter * 0.085
        line_y = cy - diameter * 0.26
        centred_line(face.line, line_fs, line_y, diameter * 0.62)
        if face.number:
            num_fs = diameter * 0.07
            centred_line(face.number, num_fs, line_y - line_fs * 1.35, diameter * 0.4)
        return [b"q " + b" ".join(ops) + b" Q"]
