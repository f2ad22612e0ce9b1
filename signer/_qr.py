"""The verification QR code and line ("扫码验证 / verify at …"), drawn into the page before sealing.

The QR code leads to the public verification page by document number and the SHA-256 of the document as
it was brought for sealing (the sealed file's own hash cannot be printed inside it); both are also bound
in the signature (``document_number``, ``source_sha256``), so the page can match them. It goes into the
same incremental update as the seal, so the seal covers it. Drawing on a page changes page content, which
would break signatures already in the document: a PDF that is already signed gets no QR code.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from operator import itemgetter
from urllib.parse import urlencode

import qrcode
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from qrcode import util as qr_util

from ._fonts import font_engine
from ._stamp import CachedPage

QR_SIZE_PT = 56.0


def verification_url(base_url: str, document_number: str, source_sha256: str) -> str:
    return f"{base_url.rstrip('/')}/verify?" + urlencode({"no": document_number, "h": source_sha256})


def qr_box(page_box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Lower left of the page, inside a 1-inch margin: out of the way of the seal at the lower right."""
    x0, y0 = page_box[0] + 72, page_box[1] + 40
    return (x0, y0, x0 + QR_SIZE_PT, y0 + QR_SIZE_PT)


# Mask choice, the same as qrcode's ``QRCode.best_mask_pattern`` but computed on integers.
#
# qrcode builds the whole matrix in Python for each of the 8 masks (``makeImpl(True, i)``) and scores each
# with ``util.lost_point``, module by module: ~16 ms of CPU per document number, the largest single cost of a
# sealing in the service (profile of 2026-12-06, docs/performance.md). Per version we keep the data modules'
# place in the rows and in the columns and each mask's bits laid out the same way; the document's data is
# gathered into a row integer and a column integer once, a candidate is one XOR with the mask's, and each of
# qrcode's four rules is a few shifts, ANDs and ``int.bit_count`` over all rows at once (a second version of
# this, on strings with ``re``, still cost ~2 ms per document). The score is qrcode's exactly (tested
# against ``lost_point`` mask by mask); the final matrix is still made by qrcode itself with the chosen mask,
# so the printed code is the one qrcode would print.
_FINDER_LIKE = ("10111010000", "00001011101")  # level 3's two patterns, leftmost module first
_layout_lock = threading.Lock()


@dataclass(frozen=True)
class _Layout:
    """A QR version's matrix as the mask test lays it out (format and version bits light), for scoring masks
    on integers: the rows (and, apart, the columns) as one integer of ``n`` slots of ``n + 1`` bits, row 0 in
    the highest slot, each slot's lowest bit a light separator. A rule then runs on every row at once."""

    n: int
    count: int  # data modules
    by_row: tuple[int, ...]  # gather indices into ``data bits + "01"``: each row's n modules, then a "0"
    by_col: tuple[int, ...]
    row_masks: tuple[int, ...]  # each mask's bits over the data modules, laid out as rows (as columns)
    col_masks: tuple[int, ...]
    full: int  # every bit of the n slots
    modules: int  # every module bit (the separators clear)
    blocks: int  # level 2: bit p of a row that has a row below and a module at p + 1
    windows: int  # level 3: the lowest bit of each 11-module window inside a row


@lru_cache(maxsize=41)
def _version_layout(version: int) -> _Layout:
    with _layout_lock:
        qr = qrcode.QRCode(version=version, border=0, error_correction=qrcode.constants.ERROR_CORRECT_M)
        n = qr.modules_count = version * 4 + 17
        qr.modules = [[None] * n for _ in range(n)]
        qr.setup_position_probe_pattern(0, 0)
        qr.setup_position_probe_pattern(n - 7, 0)
        qr.setup_position_probe_pattern(0, n - 7)
        qr.setup_position_adjust_pattern()
        qr.setup_timing_pattern()
        qr.setup_type_info(True, 0)
        if version >= 7:
            qr.setup_type_number(True)
        grid = qr.modules
    positions: list[tuple[int, int]] = []  # qrcode's map_data walk: two columns at a time, zig-zag
    inc, row = -1, n - 1
    for col in range(n - 1, 0, -2):
        if col <= 6:
            col -= 1
        while True:
            for c in (col, col - 1):
                if grid[row][c] is None:
                    positions.append((row, c))
            row += inc
            if row < 0 or n <= row:
                row -= inc
                inc = -inc
                break
    count = len(positions)
    index = {rc: k for k, rc in enumerate(positions)}

    def at(r: int, c: int) -> int:
        k = index.get((r, c))
        if k is not None:
            return k
        return count + 1 if grid[r][c] else count

    by_row = tuple(i for r in range(n) for i in (*(at(r, c) for c in range(n)), count))
    by_col = tuple(i for c in range(n) for i in (*(at(r, c) for r in range(n)), count))
    row_masks, col_masks = [], []
    for m in range(8):
        func = qr_util.mask_func(m)
        src = "".join("1" if func(r, c) else "0" for r, c in positions) + "00"
        row_masks.append(int("".join(src[i] for i in by_row), 2))
        col_masks.append(int("".join(src[i] for i in by_col), 2))
    w = n + 1
    slots = range(n)
    return _Layout(
        n=n,
        count=count,
        by_row=by_row,
        by_col=by_col,
        row_masks=tuple(row_masks),
        col_masks=tuple(col_masks),
        full=(1 << (n * w)) - 1,
        modules=sum(((1 << n) - 1) << (s * w + 1) for s in slots),
        blocks=sum(((1 << (n - 1)) - 1) << (s * w + 1) for s in slots if s > 0),
        windows=sum(((1 << (n - 10)) - 1) << (s * w + 1) for s in slots),
    )


_FINDER_BITS = tuple(int(p, 2) for p in _FINDER_LIKE)  # bit k = the pattern's module 10 - k


def _runs_and_finders(x: int, lay: _Layout) -> int:
    """Levels 1 and 3 of qrcode's ``lost_point`` over every row (or column) in ``x`` at once."""
    points = 0
    for y in (x, x ^ lay.modules):  # dark runs, then light runs (separators stay clear in both)
        five = y & (y >> 1) & (y >> 2) & (y >> 3) & (y >> 4)  # bit p: modules p..p+4 of one colour
        # a run of L >= 5 sets L - 4 bits here and scores L - 2: its bits plus 2 for where it starts
        points += five.bit_count() + 2 * (five & ~(five << 1)).bit_count()
    dark = [x >> k for k in range(11)]
    light = [(x ^ lay.full) >> k for k in range(11)]
    for pattern in _FINDER_BITS:
        hit = lay.windows
        for k in range(11):
            hit &= dark[k] if pattern >> k & 1 else light[k]
        points += 40 * hit.bit_count()
    return points


def _penalty(rows: int, cols: int, lay: _Layout) -> int:
    """qrcode's ``util.lost_point`` of the matrix whose rows and columns are these (:class:`_Layout`)."""
    points = _runs_and_finders(rows, lay) + _runs_and_finders(cols, lay)
    same = (rows ^ (rows << (lay.n + 1))) ^ lay.full  # bit p: this row's module p = the next row's
    points += 3 * (same & (same >> 1) & ~(rows ^ (rows >> 1)) & lay.blocks).bit_count()  # level 2: 2x2
    percent = float(rows.bit_count()) / (lay.n**2)  # level 4: departure from half dark
    return points + int(abs(percent * 100 - 50) / 5) * 10


def _rows(rows: int, lay: _Layout) -> list[str]:
    """The '0'/'1' strings of the rows in ``rows``, top first."""
    w = lay.n + 1
    flat = format(rows, f"0{lay.n * w}b")
    return [flat[i : i + lay.n] for i in range(0, lay.n * w, w)]


def _best_mask(version: int, data: list[int]) -> tuple[int, list[str]]:
    """The mask qrcode's ``best_mask_pattern`` picks for ``data`` (encoded) at ``version``, and the rows
    of the matrix with that mask as the mask test lays it out (format and version bits light).

    A mask flips data modules only, so each candidate's rows are the unmasked rows XOR that mask's rows:
    the data is gathered into rows and columns once, not once per mask."""
    lay = _version_layout(version)
    bits = int.from_bytes(bytes(data), "big")
    have = len(data) * 8
    # modules past the data are light; data past the modules is not placed (qrcode's map_data)
    bits = bits << (lay.count - have) if have <= lay.count else bits >> (have - lay.count)
    src = format(bits, f"0{lay.count}b") + "01"
    rows = int("".join(itemgetter(*lay.by_row)(src)), 2)
    cols = int("".join(itemgetter(*lay.by_col)(src)), 2)
    best, best_points = 0, 0
    for m in range(8):
        points = _penalty(rows ^ lay.row_masks[m], cols ^ lay.col_masks[m], lay)
        if m == 0 or best_points > points:
            best, best_points = m, points
    return best, _rows(rows ^ lay.row_masks[best], lay)


class _Bits:
    """qrcode's ``BitBuffer`` for ``QRData.write``, as one integer (its ``put_bit`` per bit cost ~20 %)."""

    def __init__(self) -> None:
        self.value = 0
        self.length = 0

    def put(self, num: int, length: int) -> None:
        self.value = (self.value << length) | (num & ((1 << length) - 1))
        self.length += length

    def __len__(self) -> int:
        return self.length


@lru_cache(maxsize=64)
def _generator_products(ec_count: int) -> tuple[int, ...]:
    """For each byte value f, f times qrcode's Reed-Solomon generator of degree ``ec_count`` (leading term
    dropped), its ``ec_count`` coefficients as one big-endian integer."""
    from qrcode import LUT, base

    if ec_count in LUT.rsPoly_LUT:
        coefficients = list(LUT.rsPoly_LUT[ec_count])
    else:
        poly = base.Polynomial([1], 0)
        for i in range(ec_count):
            poly = poly * base.Polynomial([1, base.gexp(i)], 0)
        coefficients = list(poly)
    logs = [base.LOG_TABLE[c] for c in coefficients[1:]]
    products = [0]
    for factor in range(1, 256):
        lf = base.LOG_TABLE[factor]
        products.append(int.from_bytes(bytes(base.EXP_TABLE[(g + lf) % 255] for g in logs), "big"))
    return tuple(products)


def _ec_bytes(block: list[int], ec_count: int) -> list[int]:
    """The remainder of block(x)·x^ec_count by the generator: qrcode's ``Polynomial`` mod's bytes. The
    remainder is one integer, one byte per coefficient: each step is a shift and one XOR with a product
    looked up in a table, rather than ``ec_count`` multiplications in Python."""
    products = _generator_products(ec_count)
    top = 8 * (ec_count - 1)
    keep = (1 << top) - 1
    rem = 0
    for byte in block:
        rem = ((rem & keep) << 8) ^ products[(rem >> top) ^ byte]
    return list(rem.to_bytes(ec_count, "big"))


def _best_fit(error_correction: int, data_list: list[qr_util.QRData], start: int = 1) -> int:
    """``QRCode.best_fit``: the smallest version the data fits, with its own ``BitBuffer`` as an integer."""
    from bisect import bisect_left

    mode_sizes = qr_util.mode_sizes_for_version(start)
    buffer = _Bits()
    for data in data_list:
        buffer.put(data.mode, 4)
        buffer.put(len(data), mode_sizes[data.mode])
        data.write(buffer)
    version = bisect_left(qr_util.BIT_LIMIT_TABLE[error_correction], len(buffer), start)
    if version == 41:
        raise qrcode.exceptions.DataOverflowError()
    if mode_sizes is not qr_util.mode_sizes_for_version(version):
        return _best_fit(error_correction, data_list, version)
    return version


def _create_data(version: int, error_correction: int, data_list: list[qr_util.QRData]) -> list[int]:
    """``qrcode.util.create_data`` with the bit buffer as an integer and table-driven Reed-Solomon."""
    from qrcode import base

    buffer = _Bits()
    for data in data_list:
        buffer.put(data.mode, 4)
        buffer.put(len(data), qr_util.length_in_bits(data.mode, version))
        data.write(buffer)
    rs_blocks = base.rs_blocks(version, error_correction)
    bit_limit = sum(block.data_count * 8 for block in rs_blocks)
    if len(buffer) > bit_limit:
        raise qrcode.exceptions.DataOverflowError(
            f"Code length overflow. Data size ({len(buffer)}) > size available ({bit_limit})"
        )
    buffer.put(0, min(bit_limit - len(buffer), 4))  # terminator
    if len(buffer) % 8:
        buffer.put(0, 8 - len(buffer) % 8)
    for i in range((bit_limit - len(buffer)) // 8):
        buffer.put(qr_util.PAD0 if i % 2 == 0 else qr_util.PAD1, 8)
    stream = list(buffer.value.to_bytes(buffer.length // 8, "big"))
    dcdata: list[list[int]] = []
    ecdata: list[list[int]] = []
    offset = 0
    for block in rs_blocks:
        dc = stream[offset : offset + block.data_count]
        offset += block.data_count
        dcdata.append(dc)
        ecdata.append(_ec_bytes(dc, block.total_count - block.data_count))
    out: list[int] = []
    for group in (dcdata, ecdata):
        for i in range(max(len(x) for x in group)):
            out.extend(x[i] for x in group if i < len(x))
    return out


def qr_matrix(url: str) -> list[list[bool]]:
    """The QR code of ``url`` (error correction M, no border): qrcode's ``make(fit=True)`` matrix."""
    qr = qrcode.QRCode(border=0, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(url)
    qr.version = _best_fit(qr.error_correction, qr.data_list)
    data = _create_data(qr.version, qr.error_correction, qr.data_list)
    qr.data_cache = data
    qr.mask_pattern, rows = _best_mask(qr.version, data)
    # qrcode's makeImpl(False, mask): the mask test's matrix with the format (and version) bits written
    qr.modules_count = len(rows)
    qr.modules = [[ch == "1" for ch in row] for row in rows]
    qr.setup_type_info(False, qr.mask_pattern)
    if qr.version >= 7:
        qr.setup_type_number(False)
    return qr.get_matrix()


@lru_cache(maxsize=32)
def _module_rects(n: int, x0: float, y1: float, module: float) -> tuple[bytes, ...]:
    """Each module's ``re`` operator, row by row, for an n×n code whose box starts at x0 and ends at y1
    (formatted once per size and page box: formatting ~1,400 rectangles was ~10 % of sealing's Python)."""
    return tuple(
        b"%.3f %.3f %.3f %.3f re" % (x0 + c * module, y1 - (r + 1) * module, module, module)
        for r in range(n)
        for c in range(n)
    )


_LABEL = "扫码验证 / verify at"
_LABEL_SIZE, _LABEL_LEADING, _LABEL_DESCENT = 7, 10, 3  # points: font size, line spacing, room below


@lru_cache(maxsize=16)
def _label_pdf(host: str) -> bytes:
    """The label beside the code ("扫码验证 / verify at" over ``host``) drawn once on a page of its own with
    the subset of the CJK font it needs. The host is the deployment's and never changes, so each sealing
    imports this page as a form XObject: making the glyph accumulator (parsing the font) and shaping the
    two lines per document were ~5 % of a serve worker's CPU (profile of 2026-12-06)."""
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    w = PdfFileWriter()
    engine = font_engine(w, _LABEL + host)
    engine.font_size = _LABEL_SIZE  # type: ignore[assignment]
    lines = [engine.shape(_LABEL), engine.shape(host)]
    width = max(line.x_advance for line in lines) * _LABEL_SIZE + 2  # x_advance is in ems
    y1 = _LABEL_DESCENT + _LABEL_LEADING
    ops = b"\n".join(
        b"BT 0 0 0 rg /YzQrF %d Tf 1 0 0 1 0 %.2f Tm %s ET" % (_LABEL_SIZE, y, line.graphics_ops)
        for y, line in ((y1, lines[0]), (_LABEL_DESCENT, lines[1]))
    )
    resources = generic.DictionaryObject(
        {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/YzQrF"): engine.as_resource()})}
    )
    contents = w.add_object(generic.StreamObject(stream_data=ops))
    height = y1 + _LABEL_SIZE + 2
    w.insert_page(PageObject(contents=contents, media_box=(0, 0, width, height), resources=resources))
    out = BytesIO()
    w.write(out)
    return out.getvalue()


@lru_cache(maxsize=16)
def _label(host: str) -> CachedPage:
    """The label's page (:func:`_label_pdf`), parsed once."""
    return CachedPage(_label_pdf(host))


def draw_verification_qr(
    writer: IncrementalPdfFileWriter, page: int, box: tuple[float, ...], url: str
) -> None:
    matrix = qr_matrix(url)
    n = len(matrix)
    rects = _module_rects(n, box[0], box[3], (box[2] - box[0]) / n)
    ops = [b"q 0 0 0 rg"]
    ops.extend(rects[i] for i, dark in enumerate(d for row in matrix for d in row) if dark)
    ops.append(b"f Q")
    label = _label(url.split("?", 1)[0]).import_into(writer)
    # the second line's baseline 20 pt above the code's bottom edge, the first one 10 pt above it
    ops.append(b"q 1 0 0 1 %.2f %.2f cm /YzQrL Do Q" % (box[2] + 6, box[1] + 20 - _LABEL_DESCENT))
    resources = generic.DictionaryObject(
        {pdf_name("/XObject"): generic.DictionaryObject({pdf_name("/YzQrL"): label})}
    )
    # isolate the page's existing graphics state from ours, as pyHanko's stamps do
    writer.add_stream_to_page(page, writer.add_object(generic.StreamObject(stream_data=b"q\n")), prepend=True)
    writer.add_stream_to_page(page, writer.add_object(generic.StreamObject(stream_data=b"\nQ\n")))
    writer.add_stream_to_page(
        page, writer.add_object(generic.StreamObject(stream_data=b"\n".join(ops))), resources=resources
    )
