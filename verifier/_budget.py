"""A cheap structural budget, checked before any PDF parser goes far: hostile files are refused unread.

A PDF parser spends memory and time in proportion to what a file *claims*, not to its size: a 0.3 MB xref
stream that inflates to 300 MB, an 8 MB file of 200 000 tiny objects, a trailer ``/Size`` of two billion,
an object stream whose ``/N`` promises a million members. pyHanko materialises every one of these in
memory before the checks can say anything (and ``qpdf --check`` decodes every stream). This module looks
at the raw bytes with regular expressions and bounded decompression only, and says whether the file stays
inside ``VerifyLimits``:

1. Claims that cost nothing to read: objects defined (``N G obj`` headers plus every object stream's
   ``/N``), the largest declared ``/Size``, xref table rows and xref subsection counts, xref stream ``/W``
   widths and ``/Index`` counts, the number of revisions (``startxref`` markers).
2. Expansion, measured by decoding rather than trusted: every stream's filter chain (Flate, also chained;
   ASCIIHex/ASCII85 in front; LZW and RunLength by length only) is decoded incrementally with
   ``decompressobj(max_length=…)``, nothing kept, and stops at the first byte over budget. Xref and object
   streams count against ``max_structure_bytes`` (the parser keeps them whole), everything against
   ``max_expanded_bytes``. The compressed input fed to the decoders is bounded too, so overlapping streams
   (every ``/Length`` pointing at the same bomb) cannot make the scan itself quadratic.

Nothing here parses the document: a stream it cannot find or decode is the parser's problem, not a pass.
The scan is an upper bound on the work the parser will do, never a verdict on the document; our own
sealed permits (100–300 objects, a few hundred kB inflated) sit three orders of magnitude inside it.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from verifier._model import VerifyLimits

_WS = rb"[\x00\t\n\f\r ]"
# Patterns that begin with a literal: re scans for a literal prefix at memchr speed, while a pattern that
# begins with \d tries every byte (≈50 MB/s, an order of magnitude slower on a sealed permit).
_OBJ_KW = re.compile(rb"obj(?![A-Za-z0-9])")
_OBJ_BEFORE = re.compile(rb"(?<![0-9])(\d{1,10})" + _WS + rb"+\d{1,5}" + _WS + rb"+\Z")
_STREAM = re.compile(rb"stream(?:\r\n|\n|\r)")
_XREF_KW = re.compile(rb"xref" + _WS + rb"*(\d{1,20})" + _WS + rb"+(\d{1,20})")
_SIZE = re.compile(rb"/Size" + _WS + rb"*(\d{1,20})(?!" + _WS + rb"*\d)")
_STARTXREF = re.compile(rb"startxref")
_TYPE = re.compile(rb"/Type" + _WS + rb"*/(XRef|ObjStm)(?![A-Za-z0-9])")
_FILTER = re.compile(rb"/Filter" + _WS + rb"*(\[[^\]]{0,1024}\]|/[^\x00\t\n\f\r /\[\]<>()]+)")
_NAME = re.compile(rb"/([^\x00\t\n\f\r /\[\]<>()]+)")
_LENGTH = re.compile(rb"/Length" + _WS + rb"*(\d{1,20})(?:" + _WS + rb"+(\d{1,10})" + _WS + rb"+R)?")
_W = re.compile(rb"/W" + _WS + rb"*\[([^\]]{0,256})\]")
_INDEX = re.compile(rb"/Index" + _WS + rb"*\[([^\]]{0,65536})\]")
_N = re.compile(rb"/N" + _WS + rb"*(\d{1,20})(?!" + _WS + rb"*\d)")
_INT = re.compile(rb"-?\d{1,20}")

_FLATE = {b"FlateDecode", b"Fl"}
_ASCII = {b"ASCIIHexDecode", b"AHx", b"ASCII85Decode", b"A85"}
_LZW = {b"LZWDecode", b"LZW"}
_RUNLENGTH = {b"RunLengthDecode", b"RL"}
_CHUNK = 1 << 16  # decoder output per step: the scan never holds more than a few of these
_DICT_WINDOW = 1 << 16  # a stream dictionary longer than this is read from its last 64 KiB
_MAX_LZW_INPUT = 4 << 20  # the length-only LZW decoder runs in Python: ~1 s per 4 MiB
_MAX_FIELD_WIDTH = 8  # an xref stream field wider than 8 bytes encodes nothing a 64-bit offset cannot


class _Exceeded(Exception):
    """Raised inside the scan at the first bound crossed; its message is the problem."""


@dataclass
class BudgetScan:
    """What the scan counted (an upper bound on the parser's work) and the first bound crossed, if any."""

    objects: int = 0  # object headers plus object-stream members
    declared_size: int = 0  # the largest trailer / xref stream /Size
    xref_entries: int = 0  # xref table rows and xref stream entries, all revisions
    revisions: int = 0  # startxref markers
    streams: int = 0
    structure_bytes: int = 0  # xref and object streams, inflated
    expanded_bytes: int = 0  # all streams, inflated
    input_bytes: int = 0  # compressed bytes fed to the decoders
    problem: str | None = None


def check_budget(unverified_pdf: bytes, limits: VerifyLimits) -> str | None:
    """``None`` when the file stays inside ``limits``; else the first bound it crosses, for
    ``VERIFY_BUDGET_EXCEEDED``'s detail. Bounded itself: linear in the file size plus the decode budget."""
    return scan_budget(unverified_pdf, limits).problem


def scan_budget(unverified_pdf: bytes, limits: VerifyLimits) -> BudgetScan:
    """The counts behind :func:`check_budget`."""
    scan = BudgetScan()
    try:
        _scan(unverified_pdf, limits, scan)
    except _Exceeded as exc:
        scan.problem = str(exc)
    return scan


def _scan(data: bytes, limits: VerifyLimits, scan: BudgetScan) -> None:
    # 1. claims
    scan.revisions = sum(1 for _ in _STARTXREF.finditer(data))
    if scan.revisions > limits.max_revisions:
        raise _Exceeded(f"{scan.revisions} revisions (startxref) > {limits.max_revisions}")
    # a count at memchr speed first: every header has an "obj" that is not part of an "endobj"
    keywords = data.count(b"obj") - data.count(b"endobj")
    if keywords > limits.max_objects:
        raise _Exceeded(f"{keywords} object keywords > {limits.max_objects} objects")
    heads: list[tuple[int, int, int]] = []  # (header start, header end, object number)
    for m in _OBJ_KW.finditer(data):
        at = m.start()
        if data[at - 3 : at] == b"end":
            continue
        head = _OBJ_BEFORE.search(data, max(0, at - 40), at)
        if head is None:
            continue
        heads.append((head.start(), m.end(), int(head.group(1))))
        if len(heads) > limits.max_objects:
            raise _Exceeded(f"more than {limits.max_objects} object headers")
    scan.objects = len(heads)
    for m in _SIZE.finditer(data):
        scan.declared_size = max(scan.declared_size, int(m.group(1)))
    if scan.declared_size > limits.max_objects:
        raise _Exceeded(f"declared /Size {scan.declared_size} > {limits.max_objects}")
    _xref_tables(data, limits, scan)

    # 2. streams: find each one's dictionary (from the last object header before the keyword)
    starts = [h[0] for h in heads]
    by_number = {num: end for _, end, num in heads}  # the last definition wins, as in an update
    for m in _STREAM.finditer(data):
        if data[m.start() - 3 : m.start()] == b"end":
            continue
        scan.streams += 1
        if scan.streams > limits.max_objects:
            raise _Exceeded(f"more than {limits.max_objects} streams")
        body = m.end()
        i = bisect.bisect_left(starts, m.start()) - 1
        dict_from = heads[i][1] if i >= 0 else 0
        sdict = data[max(dict_from, m.start() - _DICT_WINDOW) : m.start()]
        _one_stream(data, body, sdict, by_number, limits, scan)


def _xref_tables(data: bytes, limits: VerifyLimits, scan: BudgetScan) -> None:
    """Traditional tables: rows are 20 bytes each, so a table's extent up to its ``trailer`` bounds the
    rows a parser reads; the first subsection's declared count is checked as a claim."""
    for m in _XREF_KW.finditer(data):
        if data[m.start() - 5 : m.start()] == b"start":
            continue
        first, count = int(m.group(1)), int(m.group(2))
        if count > limits.max_objects or first > limits.max_objects:
            raise _Exceeded(f"xref subsection {first} {count} beyond {limits.max_objects} objects")
        end = data.find(b"trailer", m.end())
        scan.xref_entries += ((len(data) if end < 0 else end) - m.start()) // 20
        if scan.xref_entries > limits.max_xref_entries:
            raise _Exceeded(f"xref tables of {scan.xref_entries} rows > {limits.max_xref_entries}")


def _one_stream(
    data: bytes, body: int, sdict: bytes, by_number: dict[int, int], limits: VerifyLimits, scan: BudgetScan
) -> None:
    kind_m = _TYPE.search(sdict)
    kind = kind_m.group(1) if kind_m else None
    claimed: int | None = None  # what an xref stream's own dictionary says it decodes to
    if kind == b"XRef":
        claimed = _xref_stream_claims(sdict, limits, scan)
    elif kind == b"ObjStm":
        n_m = _N.search(sdict)
        n = int(n_m.group(1)) if n_m else 0
        scan.objects += n
        if scan.objects > limits.max_objects:
            raise _Exceeded(f"objects incl. object-stream members {scan.objects} > {limits.max_objects}")

    end = _stream_end(data, body, sdict, by_number)
    chain = _filters(sdict)
    structural = kind is not None
    produced = 0
    for chunk in _decode(data, body, end, chain, limits, scan):
        produced += len(chunk)
        scan.expanded_bytes += len(chunk)
        if scan.expanded_bytes > limits.max_expanded_bytes:
            raise _Exceeded(f"streams inflate to more than {limits.max_expanded_bytes} bytes")
        if structural:
            scan.structure_bytes += len(chunk)
            if scan.structure_bytes > limits.max_structure_bytes:
                raise _Exceeded(
                    f"xref and object streams inflate to more than {limits.max_structure_bytes} bytes"
                )
            if claimed is not None and produced > claimed + _CHUNK:
                raise _Exceeded(f"xref stream inflates beyond its {claimed} declared bytes")


def _xref_stream_claims(sdict: bytes, limits: VerifyLimits, scan: BudgetScan) -> int:
    """Check /W, /Index, /Size of an xref stream; the bytes its entries take (the honest decoded size)."""
    w_m = _W.search(sdict)
    widths = [int(x) for x in _INT.findall(w_m.group(1))] if w_m else []
    if len(widths) != 3 or any(w < 0 or w > _MAX_FIELD_WIDTH for w in widths):
        raise _Exceeded(f"xref stream /W {widths} (each field 0..{_MAX_FIELD_WIDTH} bytes)")
    size_m = _SIZE.search(sdict)
    size = int(size_m.group(1)) if size_m else 0
    idx_m = _INDEX.search(sdict)
    pairs = [int(x) for x in _INT.findall(idx_m.group(1))] if idx_m else [0, size]
    entries = 0
    for first, count in zip(pairs[0::2], pairs[1::2], strict=False):
        if count < 0 or first < 0 or count > limits.max_objects or first > limits.max_objects:
            raise _Exceeded(f"xref stream /Index {first} {count} beyond {limits.max_objects} objects")
        entries += count
    if entries > limits.max_objects:
        raise _Exceeded(f"xref stream claims {entries} entries > {limits.max_objects}")
    scan.xref_entries += entries
    if scan.xref_entries > limits.max_xref_entries:
        raise _Exceeded(f"{scan.xref_entries} xref entries > {limits.max_xref_entries}")
    return entries * sum(widths)


def _stream_end(data: bytes, body: int, sdict: bytes, by_number: dict[int, int]) -> int:
    """The furthest a parser could read this stream's data: its /Length (direct or resolved) or the next
    ``endstream``, whichever is later (pyHanko trusts /Length, qpdf recovers by searching)."""
    ends = []
    es = data.find(b"endstream", body)
    ends.append(len(data) if es < 0 else es)
    m = _LENGTH.search(sdict)
    if m is not None:
        length: int | None = int(m.group(1))
        if m.group(2) is not None:  # indirect: "N G obj <int> endobj"
            at = by_number.get(int(m.group(1)))
            found = _INT.match(data[at : at + 64].lstrip()) if at is not None else None
            length = int(found.group(0)) if found else None
        if length is not None and 0 <= length <= len(data) - body:
            ends.append(body + length)
    return max(ends)


def _filters(sdict: bytes) -> list[bytes]:
    """The filter chain; when a dictionary names several (nested dictionaries), the most expanding one."""
    best: list[bytes] = []
    for m in _FILTER.finditer(sdict):
        names = _NAME.findall(m.group(1))
        if _expanding(names) > _expanding(best):
            best = names
    return best


def _expanding(names: list[bytes]) -> int:
    return sum(1 for n in names if n in _FLATE or n in _LZW or n in _RUNLENGTH)


def _decode(
    data: bytes, body: int, end: int, chain: list[bytes], limits: VerifyLimits, scan: BudgetScan
) -> Iterator[bytes]:
    """Yield the decoded stream in bounded chunks (only as far as the expanding filters go)."""
    raw = memoryview(data)[body:end]
    stages = list(chain)
    # ASCII encodings in front shrink the data: decode them whole (bounded by the file size)
    source: bytes | memoryview = raw
    while stages and stages[0] in _ASCII:
        source = _ascii_decode(stages.pop(0), bytes(source))
    stages = [s for s in stages if s in _FLATE or s in _LZW or s in _RUNLENGTH]
    if not stages:
        return
    if any(s in _LZW or s in _RUNLENGTH for s in stages) and len(stages) > 1:
        raise _Exceeded(f"filter chain {[s.decode('latin-1') for s in chain]} stacks expanding filters")
    chunks: Iterator[bytes] = _input(source, limits, scan, len(data))
    if stages[0] in _LZW:
        yield from _lzw_length(b"".join(chunks), limits)
        return
    if stages[0] in _RUNLENGTH:
        yield from _runlength_length(b"".join(chunks), limits)
        return
    for _ in stages:
        chunks = _inflate(chunks)
    yield from chunks


def _input(
    source: bytes | memoryview, limits: VerifyLimits, scan: BudgetScan, file_len: int
) -> Iterator[bytes]:
    view = memoryview(source)
    for at in range(0, len(view), _CHUNK):
        chunk = bytes(view[at : at + _CHUNK])
        scan.input_bytes += len(chunk)
        # every stream's data is disjoint in an honest file: feeding the decoders much more than the file
        # means overlapping streams (each /Length reaching over the same bomb)
        if scan.input_bytes > 2 * file_len + (1 << 20):
            raise _Exceeded("stream data overlaps (compressed input read more than twice)")
        yield chunk


def _inflate(chunks: Iterator[bytes]) -> Iterator[bytes]:
    d = zlib.decompressobj()
    try:
        for chunk in chunks:
            buf = chunk
            while buf:
                out = d.decompress(buf, _CHUNK)
                if out:
                    yield out
                if d.eof:
                    return
                buf = d.unconsumed_tail
        while not d.eof:  # what zlib still holds for the input already given
            out = d.decompress(b"", _CHUNK)
            if not out:
                return
            yield out
    except zlib.error:
        return  # corrupt data: the parser will say so; what was inflated so far has been counted


def _ascii_decode(name: bytes, data: bytes) -> bytes:
    try:
        if name in (b"ASCIIHexDecode", b"AHx"):
            text = bytes(c for c in data.split(b">", 1)[0] if c not in b" \t\r\n\f\x00")
            return binascii.unhexlify(text + b"0" * (len(text) % 2))
        return base64.a85decode(data.split(b"~>", 1)[0].replace(b"<~", b""), ignorechars=b" \t\r\n\f\x00")
    except ValueError:
        return b""


def _lzw_length(data: bytes, limits: VerifyLimits) -> Iterator[bytes]:
    """LZW (PDF: early change 1) by length only: each code's string length, never the strings. In Python,
    so its input is bounded (LZW is rare in new files; an LZW stream this large is refused)."""
    if len(data) > _MAX_LZW_INPUT:
        raise _Exceeded(f"an LZW stream of {len(data)} bytes (> {_MAX_LZW_INPUT}) is not measured")
    lengths = [1] * 258
    width, bits, nbits, prev = 9, 0, 0, -1
    produced = 0
    for byte in data:
        bits = (bits << 8) | byte
        nbits += 8
        while nbits >= width:
            nbits -= width
            code = (bits >> nbits) & ((1 << width) - 1)
            if code == 256:  # clear
                del lengths[258:]
                width, prev = 9, -1
                continue
            if code == 257:  # end of data
                yield from _zeros(produced)
                return
            if code < len(lengths):
                n = lengths[code]
            elif code == len(lengths) and prev >= 0:
                n = lengths[prev] + 1
            else:
                return  # corrupt
            if prev >= 0 and len(lengths) < 4096:
                lengths.append(lengths[prev] + 1)
            prev = code
            produced += n
            if produced > limits.max_expanded_bytes:
                raise _Exceeded(f"an LZW stream inflates to more than {limits.max_expanded_bytes} bytes")
            if len(lengths) + 1 >= (1 << width) and width < 12:
                width += 1
        bits &= (1 << nbits) - 1
    yield from _zeros(produced)


def _runlength_length(data: bytes, limits: VerifyLimits) -> Iterator[bytes]:
    produced, i, n = 0, 0, len(data)
    while i < n:
        b = data[i]
        if b == 128:
            break
        if b < 128:
            produced += b + 1
            i += b + 2
        else:
            produced += 257 - b
            i += 2
        if produced > limits.max_expanded_bytes:
            raise _Exceeded(f"a RunLength stream inflates to more than {limits.max_expanded_bytes} bytes")
    yield from _zeros(produced)


def _zeros(n: int) -> Iterator[bytes]:
    """Stand-in chunks for a length-only decoder, so the caller counts them like inflated data."""
    while n > 0:
        k = min(n, _CHUNK)
        yield bytes(k)
        n -= k


__all__ = ["BudgetScan", "check_budget", "scan_budget"]
