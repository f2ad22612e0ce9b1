"""The verification QR code and line ("扫码验证 / verify at …"), drawn into the page before sealing.

The QR code leads to the public verification page by document number and the SHA-256 of the document as
it was brought for sealing (the sealed file's own hash cannot be printed inside it); both are also bound
in the signature (``document_number``, ``source_sha256``), so the page can match them. It goes into the
same incremental update as the seal, so the seal covers it. Drawing on a page changes page content, which
would break signatures already in the document: a PDF that is already signed gets no QR code.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from operator import itemgetter
from urllib.parse import urlencode

import qrcode
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from qrcode import util as qr_util

from ._fonts import font_engine

QR_SIZE_PT = 56.0


def verification_url(base_url: str, document_number: str, source_sha256: str) -> str:
    return f"{base_url.rstrip('/')}/verify?" + urlencode({"no": document_number, "h": source_sha256})


def qr_box(page_box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Lower left of the page, inside a 1-inch margin: out of the way of the seal at the lower right."""
    x0, y0 = page_box[0] + 72, page_box[1] + 40
    return (x0, y0, x0 + QR_SIZE_PT, y0 + QR_SIZE_PT)


# Mask choice, the same as qrcode's ``QRCode.best_mask_pattern`` but computed on strings and integers.
#
# qrcode builds the whole matrix in Python for each of the 8 masks (``makeImpl(True, i)``) and scores each
# with ``util.lost_point``, module by module: ~16 ms of CPU per document number, the largest single cost of a
# sealing in the service (profile of 2026-12-06, docs/performance.md). Per version we keep the data modules'
# order and each mask's bits over them; a candidate is then one XOR of two integers and one C-level gather
# into row and column strings, scored with ``re``/``str.count``/``int.bit_count``. The score is qrcode's
# exactly (the rules and their reading are qrcode's, tested against it mask by mask); the final matrix is
# still made by qrcode itself with the chosen mask, so the printed code is the one qrcode would print.
# one pattern per colour: a literal prefix lets re skip ahead (5x faster than one alternation)
_RUN_LIGHT, _RUN_DARK = re.compile(r"00000+"), re.compile(r"11111+")
_FINDER_LIKE = ("10111010000", "00001011101")  # neither overlaps itself: str.count finds every one
_layout_lock = threading.Lock()


@lru_cache(maxsize=41)
def _version_layout(version: int) -> tuple[int, int, tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """For a QR version, as qrcode lays it out in a mask test (format and version bits light):
    (size, number of data modules, each mask's bits over the data modules as an int (first module = highest
    bit), row-major gather indices, column-major gather indices) into ``data bits + "01"``."""
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
    masks = []
    for m in range(8):
        func = qr_util.mask_func(m)
        masks.append(int("".join("1" if func(r, c) else "0" for r, c in positions), 2))
    index = {rc: k for k, rc in enumerate(positions)}

    def at(r: int, c: int) -> int:
        k = index.get((r, c))
        if k is not None:
            return k
        return count + 1 if grid[r][c] else count

    by_row = tuple(at(r, c) for r in range(n) for c in range(n))
    by_col = tuple(at(r, c) for c in range(n) for r in range(n))
    return n, count, tuple(masks), by_row, by_col


def _penalty(rows: list[str], cols: list[str], n: int) -> int:
    """qrcode's ``util.lost_point`` of the matrix whose rows and columns are these '0'/'1' strings."""
    lines = ",".join(rows) + "," + ",".join(cols)
    runs = _RUN_LIGHT.findall(lines) + _RUN_DARK.findall(lines)  # level 1: runs of 5 or more, len - 2 each
    points = sum(map(len, runs)) - 2 * len(runs)
    ints = [int(r, 2) for r in rows]
    inner = (1 << (n - 1)) - 1
    for a, b in zip(ints, ints[1:], strict=False):  # level 2: 2x2 blocks of one colour
        same = ~(a ^ b)
        points += 3 * (same & (same >> 1) & ~(a ^ (a >> 1)) & inner).bit_count()
    points += 40 * sum(lines.count(p) for p in _FINDER_LIKE)  # level 3
    dark = sum(r.count("1") for r in rows)  # level 4: departure from half dark
    percent = float(dark) / (n**2)
    return points + int(abs(percent * 100 - 50) / 5) * 10


def _best_mask(version: int, data: list[int]) -> tuple[int, list[str]]:
    """The mask qrcode's ``best_mask_pattern`` picks for ``data`` (encoded) at ``version``, and the rows
    of the matrix with that mask as the mask test lays it out (format and version bits light)."""
    n, count, masks, by_row, by_col = _version_layout(version)
    bits = int.from_bytes(bytes(data), "big")
    have = len(data) * 8
    # modules past the data are light; data past the modules is not placed (qrcode's map_data)
    bits = bits << (count - have) if have <= count else bits >> (have - count)
    best, best_points, best_rows = 0, 0, []
    gather_rows, gather_cols = itemgetter(*by_row), itemgetter(*by_col)
    for m, mask in enumerate(masks):
        src = format(bits ^ mask, f"0{count}b") + "01"
        flat = "".join(gather_rows(src))
        flat_cols = "".join(gather_cols(src))
        rows = [flat[i : i + n] for i in range(0, n * n, n)]
        cols = [flat_cols[i : i + n] for i in range(0, n * n, n)]
        points = _penalty(rows, cols, n)
        if m == 0 or best_points > points:
            best, best_points, best_rows = m, points, rows
    return best, best_rows


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
def _generator_logs(ec_count: int) -> tuple[int, ...]:
    """The Reed-Solomon generator of degree ``ec_count`` (qrcode's), as logs, leading term dropped."""
    from qrcode import LUT, base

    if ec_count in LUT.rsPoly_LUT:
        coefficients = list(LUT.rsPoly_LUT[ec_count])
    else:
        poly = base.Polynomial([1], 0)
        for i in range(ec_count):
            poly = poly * base.Polynomial([1, base.gexp(i)], 0)
        coefficients = list(poly)
    return tuple(base.LOG_TABLE[c] for c in coefficients[1:])


def _ec_bytes(block: list[int], ec_count: int) -> list[int]:
    """The remainder of block(x)·x^ec_count by the generator: qrcode's ``Polynomial`` mod's bytes."""
    from qrcode.base import EXP_TABLE, LOG_TABLE

    gen = _generator_logs(ec_count)
    rem = [0] * ec_count
    for byte in block:
        factor = byte ^ rem[0]
        rem = rem[1:] + [0]
        if factor:
            lf = LOG_TABLE[factor]
            rem = [r ^ EXP_TABLE[(g + lf) % 255] for r, g in zip(rem, gen, strict=True)]
    return rem


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


def draw_verification_qr(
    writer: IncrementalPdfFileWriter, page: int, box: tuple[float, ...], url: str
) -> None:
    matrix = qr_matrix(url)
    n = len(matrix)
    rects = _module_rects(n, box[0], box[3], (box[2] - box[0]) / n)
    ops = [b"q 0 0 0 rg"]
    ops.extend(rects[i] for i, dark in enumerate(d for row in matrix for d in row) if dark)
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
