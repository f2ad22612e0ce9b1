"""What a person sees: render the document as sealed and as it is now, and compare the pixels.

Defence in depth behind the structural difference checks (issue 18): whatever a later revision did to the
objects, a page that *looks* different from the sealed one is a forgery. PDFium (pypdfium2) renders both
with annotations and form widgets drawn, once as a screen shows it and once as a printer does
(``FPDF_PRINTING``: optional content switches to its print usage, annotations follow their Print/NoView
flags), and any difference outside the rectangles the caller allows (the widgets of trusted later
signatures) is reported with the page and the region in PDF points.

Plan of :func:`visible_changes`:

1. Open both files with PDFium (the sealed prefix is the file cut at the seal's revision end, itself a
   complete PDF) and initialise their forms, so widgets and ``/NeedAppearances`` are drawn as a viewer
   draws them. Either one unreadable → ``UNRENDERABLE``.
2. Page count, and the presence of an interactive form (PDFium draws no widget without one), must agree.
3. For each page asked for (all by default), up to the budget: MediaBox, CropBox and /Rotate must agree;
   the pixels the page would cost are charged to the budget before anything is drawn.
4. Per mode (view, print): render both (progressively, so a wall-clock deadline interrupts a hostile page),
   compare. Equal buffers end there (the common case: identical content renders bit-identically).
   Otherwise a pixel differs when one channel differs by ``channel_threshold`` or more; pixels inside the
   allowed rectangles (plus a margin for anti-aliasing) are ignored; the page differs when some
   ``window_px`` × ``window_px`` window holds ``min_pixels`` differing pixels (a changed character at
   100 dpi differs in dozens of pixels; one stray anti-aliased pixel does not count).

PDFium keeps global state and is not thread-safe: every call into it holds ``PDFIUM_LOCK``. Caveat for
the caller: PDFium applies an optional-content group's ``/Usage`` even without a ``/AS`` entry in the
configuration (Acrobat uses ``/AS``), so a group set up to differ between readers is not reliably caught
here; optional content added or changed after the seal must be refused structurally
(``OPTIONAL_CONTENT_VARIES``).
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import threading
import time
import unicodedata
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import StrEnum

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageChops, ImageFilter

DEFAULT_DPI = 100.0

PDFIUM_LOCK = threading.Lock()
# A fork while another thread is inside PDFium would leave the child with the lock held and PDFium's
# global state half-updated: fork only between PDFium calls.
os.register_at_fork(
    before=PDFIUM_LOCK.acquire,
    after_in_parent=PDFIUM_LOCK.release,
    after_in_child=PDFIUM_LOCK.release,
)


class RenderMode(StrEnum):
    VIEW = "view"  # as on screen
    PRINT = "print"  # as on paper


class DiffKind(StrEnum):
    PIXELS = "pixels"  # the page looks different in ``region``
    PAGE_COUNT = "page_count"
    PAGE_GEOMETRY = "page_geometry"  # MediaBox, CropBox or /Rotate changed
    FORMS = "forms"  # the interactive form appeared or vanished (widgets drawn or not)
    UNRENDERABLE = "unrenderable"  # PDFium could not open a revision or a page
    BUDGET = "budget"  # pages, pixels or time over budget: the comparison is incomplete


@dataclass(frozen=True)
class Rect:
    """A rectangle in PDF user space (points), normalised so that ``x0 <= x1`` and ``y0 <= y1``."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def of(cls, a: float, b: float, c: float, d: float) -> Rect:
        """From any two opposite corners, as in a PDF ``/Rect`` array."""
        return cls(min(a, c), min(b, d), max(a, c), max(b, d))


@dataclass(frozen=True)
class VisibleDiff:
    kind: DiffKind
    page: int | None = None  # 1-based, as a person counts pages
    mode: RenderMode | None = None
    region: Rect | None = None  # bounding box of the differing pixels, PDF points of the current file
    changed_pixels: int = 0  # differing pixels outside the allowed rectangles
    detail: str = ""

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """One line for a reason's ``detail``."""
        parts = [self.kind.value]
        if self.page is not None:
            parts.append(f"page {self.page}")
        if self.mode is not None:
            parts.append(self.mode.value)
        if self.region is not None:
            r = self.region
            parts.append(f"region [{r.x0:.0f} {r.y0:.0f} {r.x1:.0f} {r.y1:.0f}] pt")
        if self.changed_pixels:
            parts.append(f"{self.changed_pixels} px")
        if self.detail:
            parts.append(self.detail)
        return ", ".join(parts)


@dataclass(frozen=True)
class VisualBudget:
    """Bounds on one comparison. Exceeding one ends it with a ``BUDGET`` difference, never a hang."""

    max_pages: int = 16
    max_page_pixels: int = 16_000_000  # one rendering (A4 at 100 dpi: 0.97 MP; A0: 15.5 MP)
    max_total_pixels: int = 64_000_000  # all renderings together (2 files × 2 modes per page)
    time_s: float = 5.0  # wall clock for the whole comparison


@dataclass(frozen=True)
class PixelTolerance:
    channel_threshold: int = 32  # a pixel differs when one of R, G, B differs by this much (of 255)
    window_px: int = 5  # odd: the sliding window in which differing pixels are counted
    min_pixels: int = 3  # differing pixels in one window that make a visible change
    allowed_margin_px: int = 2  # allowed rectangles grow by this much (anti-aliasing at their edge)


_MODE_FLAGS = {
    RenderMode.VIEW: pdfium_c.FPDF_ANNOT,
    RenderMode.PRINT: pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_PRINTING,
}


class _OverBudget(Exception):  # noqa: N818 - a signal inside this module, never seen by callers
    def __init__(self, diff: VisibleDiff) -> None:
        super().__init__(diff.describe())
        self.diff = diff


def visible_changes(
    sealed_prefix: bytes,
    whole: bytes,
    *,
    allowed: Mapping[int, Sequence[Rect | tuple[float, float, float, float]]] | None = None,
    pages: Collection[int] | None = None,
    dpi: float = DEFAULT_DPI,
    budget: VisualBudget = VisualBudget(),  # frozen: a shared default is safe
    tolerance: PixelTolerance = PixelTolerance(),
    modes: Sequence[RenderMode] = (RenderMode.VIEW, RenderMode.PRINT),
) -> list[VisibleDiff]:
    """Differences a person could see between the document as sealed and the whole file; [] when none.

    ``allowed`` maps 0-based page *indices* to rectangles (PDF points, the current file's page space,
    any two opposite corners as in ``/Rect``) where a difference is expected: the widgets of trusted
    later signatures. ``pages`` limits the pixel comparison to those 0-based page indices (the pages a
    later revision touched); ``None`` means all. Page count and form presence are compared regardless.
    Each :class:`VisibleDiff` names its page 1-based, as a person counts. A ``BUDGET`` entry means the
    comparison did not finish: the caller must not read the absence of other entries as "unchanged".
    """
    if not 18.0 <= dpi <= 600.0:
        raise ValueError(f"dpi {dpi} outside 18..600")
    deadline = time.monotonic() + budget.time_s
    with PDFIUM_LOCK, ExitStack() as stack:
        docs = []
        for label, data in (("sealed revision", sealed_prefix), ("whole file", whole)):
            try:
                doc = pdfium.PdfDocument(data)
                stack.callback(doc.close)
                doc.init_forms()  # before any page is loaded, or PDFium draws no widget on it
            except pdfium.PdfiumError as exc:
                return [VisibleDiff(DiffKind.UNRENDERABLE, detail=f"{label}: {exc}")]
            docs.append(doc)
        sealed, current = docs
        out: list[VisibleDiff] = []
        n_sealed, n_current = len(sealed), len(current)
        if n_sealed != n_current:
            out.append(
                VisibleDiff(DiffKind.PAGE_COUNT, detail=f"{n_sealed} pages when sealed, {n_current} now")
            )
        if (sealed.formenv is None) != (current.formenv is None):
            out.append(
                VisibleDiff(
                    DiffKind.FORMS,
                    detail="interactive form " + ("removed" if current.formenv is None else "added"),
                )
            )
        common = range(min(n_sealed, n_current))
        todo = sorted(set(common) if pages is None else {p for p in pages if p in common})
        if len(todo) > budget.max_pages:
            out.append(
                VisibleDiff(
                    DiffKind.BUDGET,
                    detail=f"{len(todo)} pages to compare, budget {budget.max_pages}; the first compared",
                )
            )
            todo = todo[: budget.max_pages]
        scale = dpi / 72.0
        spent = 0
        try:
            for index in todo:
                rects = [r if isinstance(r, Rect) else Rect.of(*r) for r in (allowed or {}).get(index, ())]
                spent = _compare_page(
                    sealed,
                    current,
                    index + 1,
                    scale=scale,
                    allowed=rects,
                    modes=modes,
                    budget=budget,
                    tolerance=tolerance,
                    deadline=deadline,
                    spent=spent,
                    out=out,
                )
        except _OverBudget as over:
            out.append(over.diff)
        except pdfium.PdfiumError as exc:
            out.append(VisibleDiff(DiffKind.UNRENDERABLE, detail=str(exc)))
        return out


def _compare_page(
    sealed: pdfium.PdfDocument,
    current: pdfium.PdfDocument,
    number: int,
    *,
    scale: float,
    allowed: Sequence[Rect],
    modes: Sequence[RenderMode],
    budget: VisualBudget,
    tolerance: PixelTolerance,
    deadline: float,
    spent: int,
    out: list[VisibleDiff],
) -> int:
    with _page(sealed, number - 1) as old, _page(current, number - 1) as new:
        if old is None or new is None:
            out.append(VisibleDiff(DiffKind.UNRENDERABLE, page=number, detail="PDFium cannot load the page"))
            return spent
        geometry = [_geometry(old), _geometry(new)]
        if geometry[0] != geometry[1]:
            out.append(
                VisibleDiff(
                    DiffKind.PAGE_GEOMETRY,
                    page=number,
                    detail=f"MediaBox/CropBox/Rotate {geometry[0]} when sealed, {geometry[1]} now",
                )
            )
            return spent
        width = max(1, math.ceil(new.get_width() * scale))
        height = max(1, math.ceil(new.get_height() * scale))
        if width * height > budget.max_page_pixels:
            raise _OverBudget(
                VisibleDiff(
                    DiffKind.BUDGET,
                    page=number,
                    detail=f"page of {width}×{height} px exceeds {budget.max_page_pixels} px",
                )
            )
        spent += 2 * len(modes) * width * height
        if spent > budget.max_total_pixels:
            raise _OverBudget(
                VisibleDiff(DiffKind.BUDGET, page=number, detail=f"over {budget.max_total_pixels} px in all")
            )
        for mode in modes:
            before = render_page(old, width, height, _MODE_FLAGS[mode], deadline)
            after = render_page(new, width, height, _MODE_FLAGS[mode], deadline)
            if before is None or after is None:
                raise _OverBudget(
                    VisibleDiff(DiffKind.BUDGET, page=number, mode=mode, detail="time budget spent rendering")
                )
            if before == after:
                continue
            found = _differing_box(
                before, after, width, height, _mask(new, width, height, allowed, tolerance), tolerance
            )
            if found is not None:
                (bx0, by0, bx1, by1), count = found
                out.append(
                    VisibleDiff(
                        DiffKind.PIXELS,
                        page=number,
                        mode=mode,
                        region=_to_page_rect(new, width, height, (bx0, by0, bx1, by1)),
                        changed_pixels=count,
                    )
                )
    return spent


@contextmanager
def _page(doc: pdfium.PdfDocument, index: int) -> Iterator[pdfium.PdfPage | None]:
    try:
        page = doc[index]
    except (pdfium.PdfiumError, IndexError):
        yield None
        return
    try:
        yield page
    finally:
        page.close()


def _geometry(page: pdfium.PdfPage) -> tuple[tuple[float, ...], tuple[float, ...], int]:
    return (
        tuple(round(v, 2) for v in page.get_mediabox()),
        tuple(round(v, 2) for v in page.get_cropbox()),
        page.get_rotation(),
    )


def render_page(
    page: pdfium.PdfPage,
    width: int,
    height: int,
    flags: int,
    deadline: float,
    region: tuple[int, int, int, int] | None = None,
) -> bytes | None:
    """The page rendered at ``width`` x ``height`` as packed BGR bytes (stride ``width * 3``), or None when
    the deadline passed first. With ``region`` (x0, y0, x1, y1 in those device pixels, rows from the top)
    only that part is rendered and returned (stride ``(x1 - x0) * 3``): PDFium clips to the bitmap, so a
    small region costs a fraction of the page.

    Progressive rendering with a pause callback, so a page with millions of drawing operations is
    interrupted at the deadline instead of running on (parsing at page load and the form layer's drawing
    are not interruptible; the sandbox's wall timeout bounds those).
    """
    x0, y0, x1, y1 = region if region is not None else (0, 0, width, height)
    bw, bh = x1 - x0, y1 - y0
    bitmap = pdfium.PdfBitmap.new_native(bw, bh, pdfium_c.FPDFBitmap_BGR)
    try:
        bitmap.fill_rect((255, 255, 255, 255), 0, 0, bw, bh)
        pause = pdfium_c.IFSDK_PAUSE(version=1)
        pause.NeedToPauseNow = type(pause.NeedToPauseNow)(lambda _self: time.monotonic() > deadline)
        status = pdfium_c.FPDF_RenderPageBitmap_Start(
            bitmap, page, -x0, -y0, width, height, 0, flags, ctypes.byref(pause)
        )
        while status == pdfium_c.FPDF_RENDER_TOBECONTINUED and time.monotonic() <= deadline:
            status = pdfium_c.FPDF_RenderPage_Continue(page, ctypes.byref(pause))
        pdfium_c.FPDF_RenderPage_Close(page)
        if status == pdfium_c.FPDF_RENDER_TOBECONTINUED:
            return None
        if page.formenv:
            pdfium_c.FPDF_FFLDraw(page.formenv, bitmap, page, -x0, -y0, width, height, 0, flags)
        if time.monotonic() > deadline:
            return None
        return _packed(bitmap, bw, bh)
    finally:
        bitmap.close()


def _packed(bitmap: pdfium.PdfBitmap, width: int, height: int) -> bytes:
    raw = bytes(bitmap.buffer)
    row = width * 3
    if bitmap.stride == row:
        return raw
    return b"".join(raw[y * bitmap.stride : y * bitmap.stride + row] for y in range(height))


def _device_box(page: pdfium.PdfPage, width: int, height: int, rect: Rect) -> tuple[int, int, int, int]:
    xs, ys = [], []
    for px, py in ((rect.x0, rect.y0), (rect.x0, rect.y1), (rect.x1, rect.y0), (rect.x1, rect.y1)):
        dx, dy = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(page, 0, 0, width, height, 0, px, py, dx, dy)
        xs.append(dx.value)
        ys.append(dy.value)
    return min(xs), min(ys), max(xs), max(ys)


def _mask(
    page: pdfium.PdfPage, width: int, height: int, allowed: Sequence[Rect], tolerance: PixelTolerance
) -> list[tuple[int, int, int, int]]:
    margin = tolerance.allowed_margin_px
    boxes = []
    for rect in allowed:
        x0, y0, x1, y1 = _device_box(page, width, height, rect)
        box = (
            max(0, x0 - margin),
            max(0, y0 - margin),
            min(width, x1 + margin + 1),
            min(height, y1 + margin + 1),
        )
        if box[0] < box[2] and box[1] < box[3]:
            boxes.append(box)
    return boxes


def _differing_rows(before: bytes, after: bytes, row: int) -> tuple[int, int]:
    """First and one-past-last row where the two renderings differ (a localised change is a thin band)."""
    height = len(before) // row
    top = 0
    while top < height and before[top * row : (top + 1) * row] == after[top * row : (top + 1) * row]:
        top += 1
    bottom = height
    while (
        bottom > top and before[(bottom - 1) * row : bottom * row] == after[(bottom - 1) * row : bottom * row]
    ):
        bottom -= 1
    return top, bottom


def _differing_box(
    before: bytes,
    after: bytes,
    width: int,
    height: int,
    masked: Sequence[tuple[int, int, int, int]],
    tolerance: PixelTolerance,
) -> tuple[tuple[int, int, int, int], int] | None:
    """Bounding box (device pixels, end-exclusive) and count of the visibly differing pixels, or None."""
    row = width * 3
    top, bottom = _differing_rows(before, after, row)
    if top >= bottom:
        return None
    band = (width, bottom - top)
    diff = ImageChops.difference(
        Image.frombuffer("RGB", band, before[top * row : bottom * row], "raw", "BGR", 0, 1),
        Image.frombuffer("RGB", band, after[top * row : bottom * row], "raw", "BGR", 0, 1),
    )
    r, g, b = diff.split()
    strongest = ImageChops.lighter(ImageChops.lighter(r, g), b)
    cut = tolerance.channel_threshold
    mask = strongest.point([0] * cut + [255] * (256 - cut))
    for x0, y0, x1, y1 in masked:
        if y1 > top and y0 < bottom:
            mask.paste(0, (x0, max(0, y0 - top), x1, min(bottom, y1) - top))
    count = mask.histogram()[255]
    if count < tolerance.min_pixels:
        return None
    radius = tolerance.window_px // 2
    window = (2 * radius + 1) ** 2
    # Blur only around the differing pixels (the rest of the band is 0 and stays 0).
    mx0, my0, mx1, my1 = mask.getbbox() or (0, 0, 0, 0)
    crop = (
        max(0, mx0 - radius),
        max(0, my0 - radius),
        min(band[0], mx1 + radius),
        min(band[1], my1 + radius),
    )
    # BoxBlur's mean over the window; at least min_pixels of 255 in it, less a rounding allowance.
    floor = max(1, (255 * tolerance.min_pixels - 128) // window)
    dense = mask.crop(crop).filter(ImageFilter.BoxBlur(radius)).point([0] * floor + [255] * (256 - floor))
    found = dense.getbbox()
    if found is None:
        return None
    x0, y0, x1, y1 = (
        found[0] + crop[0],
        found[1] + crop[1] + top,
        found[2] + crop[0],
        found[3] + crop[1] + top,
    )
    bounds = (max(0, x0 - radius), max(0, y0 - radius), min(width, x1 + radius), min(height, y1 + radius))
    return bounds, count


def _to_page_rect(page: pdfium.PdfPage, width: int, height: int, box: tuple[int, int, int, int]) -> Rect:
    xs, ys = [], []
    for dx, dy in ((box[0], box[1]), (box[2], box[3])):
        px, py = ctypes.c_double(), ctypes.c_double()
        pdfium_c.FPDF_DeviceToPage(page, 0, 0, width, height, 0, dx, dy, px, py)
        xs.append(px.value)
        ys.append(py.value)
    return Rect.of(round(xs[0], 1), round(ys[0], 1), round(xs[1], 1), round(ys[1], 1))


# --- the text layer -------------------------------------------------------------------------------


@contextmanager
def pdfium_document(pdf: bytes) -> Iterator[pdfium.PdfDocument]:
    """``pdf`` opened with PDFium, with ``PDFIUM_LOCK`` held until the block ends and the document closed
    then (also on an error). Raises ``ValueError`` when PDFium cannot open it.

    Inside the block, pass the document to the functions that take one (:func:`page_texts`,
    ``signer``'s QR check); never call one that takes the lock itself (it is not reentrant: a deadlock).
    """
    with PDFIUM_LOCK:
        try:
            doc = pdfium.PdfDocument(pdf)
        except pdfium.PdfiumError as exc:
            raise ValueError(f"PDFium cannot open the file: {exc}") from exc
        try:
            yield doc
        finally:
            doc.close()


def page_text(pdf: bytes, page_index: int) -> str:
    """The text PDFium extracts from page ``page_index`` (0-based), lines separated by ``\\r\\n``.

    Raises ``ValueError`` for an unreadable file or a page that does not exist.
    """
    with pdfium_document(pdf) as doc, ExitStack() as stack:
        if not 0 <= page_index < len(doc):
            raise ValueError(f"no page index {page_index} in a document of {len(doc)} pages")
        page = doc[page_index]
        stack.callback(page.close)
        text = page.get_textpage()
        stack.callback(text.close)
        return str(text.get_text_range())


# 〔2026〕3号; after NFKC full-width digits and ［］（） are ASCII, and ﹝﹞ are 〔〕. Its issuing-organ
# prefix is the run of up to 24 CJK characters right before the bracket (whitespace allowed after each
# one: line breaks): :func:`document_numbers_in` walks back for it from each match. As one regular
# expression with the prefix in front (``((?:[CJK]\s*){0,24})〔…``) the engine retried the prefix at
# every position of the page: ~140 µs for a 228-character page, 3 times per upload; the walk gives the
# same prefixes (a test compares the two on generated text).
_NUMBER = re.compile(r"[〔【\[(〖]\s*((?:19|20)\d{2})\s*[〕】\])〗]\s*(\d{1,6})\s*号")
_PREFIX_CJK = 24
_SPACE = re.compile(r"\s+")


def _cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u4dbf" or "\u4e00" <= ch <= "\u9fff"


def normalise_document_number(text: str) -> str | None:
    """``兴江审批【２０２６】03 号`` → ``兴江审批〔2026〕3号``; None when ``text`` holds no such number."""
    found = document_numbers_in(text)
    return found[0] if len(found) == 1 else None


def document_numbers_in(text: str) -> list[str]:
    """Every document number (``…〔YYYY〕N号`` and its bracket variants) in ``text``, canonical, in order.

    Canonical: NFKC, whitespace removed, brackets 〔〕, serial without leading zeros. The prefix is the
    run of up to 24 CJK characters before the bracket, across line breaks (a prefix may wrap), so it
    often carries more than the organ's abbreviation: the words of the sentence quoting it
    (``根据兴江审批〔2026〕1号``), or the title on the line above a number line. Compare with
    :func:`same_document_number`, which matches by suffix.
    """
    flat = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    end = 0  # a prefix starts after the previous number
    for m in _NUMBER.finditer(flat):
        start = m.start()
        for _ in range(_PREFIX_CJK):
            j = start
            while j > end and flat[j - 1].isspace():
                j -= 1
            if j <= end or not _cjk(flat[j - 1]):
                break
            start = j - 1
        out.append(f"{_SPACE.sub('', flat[start : m.start()])}〔{m.group(1)}〕{int(m.group(2))}号")
        end = m.end()
    return out


def page_texts(pdf: bytes | pdfium.PdfDocument, *, max_pages: int = 500) -> list[str]:
    """The text of each page (at most ``max_pages``), one PDFium document open for all of them.

    ``pdf`` is the file (opened here, under ``PDFIUM_LOCK``; ``ValueError`` when PDFium cannot open it) or a
    document already open in the caller's :func:`pdfium_document` block (the lock is the caller's then)."""
    if not isinstance(pdf, pdfium.PdfDocument):
        with pdfium_document(pdf) as doc:
            return page_texts(doc, max_pages=max_pages)
    out: list[str] = []
    for i in range(min(len(pdf), max_pages)):
        page = pdf[i]
        try:
            text = page.get_textpage()
            try:
                out.append(str(text.get_text_range()))
            finally:
                text.close()
        finally:
            page.close()
    return out


#: How the organ designation of a 发文字号 ends (兴政发、林字、兴政函、兴江审批, and the centre's own
#: acceptance and opinion series 兴江受理、兴江意见): a number whose prefix ends otherwise (a document title,
#: an organ's name, a bare 〔2026〕2号) is counted as this series'.
_ORGAN_ENDINGS = ("审批", "受理", "意见", "发", "字", "函", "办")


def series_head(number: str) -> str | None:
    """The series part of a canonical number (``兴江审批〔2026〕3号`` → ``兴江审批``); None if none."""
    canonical = normalise_document_number(number)
    return canonical.partition("〔")[0] if canonical else None


def conflicting_numbers(texts: Sequence[str], head: str, bound: str | None = None) -> list[tuple[int, str]]:
    """Document numbers a page shows that belong to the series ``head`` (or to no series) and are not
    ``bound``: (1-based page, number). With ``bound`` None every such number conflicts (a PDF brought to
    be sealed cannot know the number the seal service will assign)."""
    out: list[tuple[int, str]] = []
    for i, text in enumerate(texts):
        for found in document_numbers_in(text):
            f_head = found.partition("〔")[0]
            ours = (head and f_head.endswith(head)) or not f_head.endswith(_ORGAN_ENDINGS)
            if not ours:
                continue
            if bound is not None and same_document_number(found, bound):
                continue
            out.append((i + 1, found))
    return out


def same_document_number(found: str, bound: str) -> bool:
    """``found`` (from :func:`document_numbers_in`) names the number ``bound`` (as bound to the seal)."""
    canonical = normalise_document_number(bound)
    if canonical is None:
        return False
    head, _, tail = canonical.partition("〔")
    f_head, _, f_tail = found.partition("〔")
    return f_tail == tail and f_head.endswith(head)


__all__ = [
    "DEFAULT_DPI",
    "PDFIUM_LOCK",
    "DiffKind",
    "PixelTolerance",
    "Rect",
    "RenderMode",
    "VisibleDiff",
    "VisualBudget",
    "document_numbers_in",
    "normalise_document_number",
    "conflicting_numbers",
    "page_text",
    "page_texts",
    "pdfium_document",
    "render_page",
    "same_document_number",
    "series_head",
    "visible_changes",
]
