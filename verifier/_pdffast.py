"""Hot spots of pyHanko and asn1crypto made cheaper, with the same results: PDF hex strings, PDF tokens
(names, numbers, keywords), X.509 names.

**Hex strings.**
pyHanko reads a hex string ``<...>`` one byte at a time through a generator (a Python function call per
character). A sealed PDF carries its CMS as such a string (``/Contents``, reserved at several kilobytes, and
again for every document timestamp), so reading one signature dictionary costs thousands of calls: about a
third of a strict verification of a one-page permit went there.

:func:`read_hex_string_from_stream` gives exactly pyHanko's result for every input: it scans up to the first
``>`` in blocks and decodes with ``bytes.translate``/``binascii`` when the string holds only hex digits and
PDF whitespace. Anything else (a ``%`` — pyHanko skips it as a comment —, a non-hex byte, no ``>`` before
the end of the stream) rewinds to where the string began and hands over to pyHanko's own function, so
errors and odd cases are pyHanko's, unchanged.

**Tokens.** pyHanko reads every name, number and keyword of an object through a per-byte generator
(``misc.read_until_delimiter``): walking the 100 page dictionaries of a long document to reach its last page
cost about 10 ms. :func:`read_until_delimiter` finds the first PDF whitespace or delimiter with one regular
expression over a block and leaves the stream exactly where pyHanko's leaves it (before that byte, or at
the end of the stream), returning the same bytes.

**PDF names.** pyHanko decodes every name token byte by byte (``generic._decode_name``: an iterator, a
``BytesIO`` and a check per byte) although nearly every name in a file is one of a few dozen plain ASCII
words. :func:`decode_name` answers names made only of regular printable ASCII characters without ``#``
escapes directly (a new ``NameObject`` of the same text: pyHanko's loop copies such bytes unchanged; never a
shared one, since the parser sets ``container_ref`` on every object it reads); anything else — an escape,
a byte pyHanko refuses — goes to pyHanko's function, with its result and its errors.

**X.509 names.** Path building and the signer-certificate lookups compare issuer and subject names
(RFC 5280 §7.1: every attribute value through RFC 4518 string preparation, regular expressions and
``stringprep`` tables) a few hundred times per verification, on names freshly parsed from each document.
``Name.hashable`` is a pure function of the name's encoding, so it is memoised by the DER bytes (a bounded
table); ``Name.__eq__`` answers ``True`` at once for two names with the same encoding once that encoding's
``hashable`` has been computed without error (the comparison is then reflexive in asn1crypto too); for two
different encodings asn1crypto's answer is memoised by the pair of encodings (also a pure function of the
bytes; an exception is not memoised, it propagates as before). Both tables are bounded (entries and name
size).

**Pages near the end.** pyHanko finds page *i* by walking the page tree from the front, parsing every page
dictionary before it; the seal goes on the last page by default, so a 100-page document cost 100 page
parses (about 10 ms) per lookup. :func:`walk_page_tree` looks a page in the back half up from the end,
stepping over subtrees by their ``/Count`` exactly as pyHanko's walk steps over them from the front, and
returns what pyHanko's walk returns (same page reference, parent, index and inherited ``/Resources``) on
every tree whose counts add up. Whenever something does not add up (a kid that is not an indirect object, a
cycle, a count that is not a non-negative integer, the counts running out before the page is found) it
hands over to pyHanko's own walk, so malformed trees get pyHanko's result and pyHanko's errors.

Installed by :func:`install` (idempotent), which ``verifier.patches.install()`` calls at service, CLI and
test start (never as a side effect of an import); :func:`uninstall` restores the libraries' own functions
(benchmarks). Upstream: no issue is filed for any of these (pyHanko's and asn1crypto's trackers searched,
December 2026); ``tests/unit/verify/test_patches.py`` fails when an upstream release makes one unnecessary
or changes the function it replaces.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from typing import Any

from asn1crypto import x509 as a_x509
from pyhanko.pdf_utils import generic, rw_common
from pyhanko.pdf_utils.misc import PDF_DELIMITERS, PDF_WHITESPACE

_ORIGINAL = generic.read_hex_string_from_stream
_ORIGINAL_UNTIL_DELIMITER = generic.read_until_delimiter
_DELIMITER = re.compile(b"[" + re.escape(PDF_WHITESPACE + PDF_DELIMITERS) + b"]")
_TOKEN_BLOCK = 128
_NAME_EQ = a_x509.Name.__eq__
_NAME_HASHABLE = a_x509.Name.__dict__["hashable"]
_NAME_CACHE_MAX = 4096
_NAME_MAX_BYTES = 4096
_name_hashables: dict[bytes, str] = {}
_name_eqs: dict[tuple[bytes, bytes], bool] = {}
_WALK_PAGE_TREE: Callable[..., Any] = rw_common.PdfHandler._walk_page_tree
_DECODE_NAME = generic._decode_name
#: Bytes pyHanko copies into a name unchanged: 0x21–0x7E except PDF delimiters and ``#`` (the escape).
_NAME_BYTES = bytes(c for c in range(0x21, 0x7F) if c not in PDF_DELIMITERS + b"#")
_PLAIN_NAME = re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in _NAME_BYTES) + b"]*")

_HEX_DIGITS = b"0123456789abcdefABCDEF"
_BLOCK = 1 << 14


def read_hex_string_from_stream(stream: Any) -> Any:
    start = stream.tell()
    stream.read(1)  # the "<"
    parts: list[bytes] = []
    found = False
    while True:
        block = stream.read(_BLOCK)
        if not block:
            break
        end = block.find(b">")
        if end >= 0:
            parts.append(block[:end])
            found = True
            break
        parts.append(block)
    raw = b"".join(parts)
    if found and b"%" not in raw:
        digits = raw.translate(None, PDF_WHITESPACE)
        if not digits.translate(None, _HEX_DIGITS):
            stream.seek(start + 1 + len(raw) + 1)
            if len(digits) % 2:
                digits += b"0"
            return generic.pdf_string(binascii.unhexlify(digits))
    stream.seek(start)
    return _ORIGINAL(stream)


def read_until_delimiter(stream: Any) -> bytes:
    start = stream.tell()
    parts: list[bytes] = []
    read = 0
    while True:
        block = stream.read(_TOKEN_BLOCK)
        if not block:  # the end of the stream: pyHanko leaves the position there too
            return b"".join(parts)
        m = _DELIMITER.search(block)
        if m is not None:
            parts.append(block[: m.start()])
            stream.seek(start + read + m.start())
            return b"".join(parts)
        parts.append(block)
        read += len(block)


def decode_name(name_bytes: bytes) -> Any:
    """``generic._decode_name`` (the bytes of a name token after its ``/``), fast for plain names."""
    if _PLAIN_NAME.fullmatch(name_bytes) is None:
        return _DECODE_NAME(name_bytes)
    return generic.NameObject("/" + name_bytes.decode("ascii"))


def _name_hashable(self: a_x509.Name) -> str:
    der = self.dump()
    value = _name_hashables.get(der)
    if value is None:
        value = _NAME_HASHABLE.fget(self)
        if len(der) <= _NAME_MAX_BYTES:
            if len(_name_hashables) >= _NAME_CACHE_MAX:
                _name_hashables.clear()
            _name_hashables[der] = value
    return value


def _name_eq(self: a_x509.Name, other: object) -> bool:
    if not isinstance(other, a_x509.Name):
        return bool(_NAME_EQ(self, other))
    try:
        a, b = self.dump(), other.dump()
        if a == b:
            _name_hashable(self)
            return True
    except Exception:  # noqa: BLE001 - a name asn1crypto cannot read: its own comparison decides
        return bool(_NAME_EQ(self, other))
    if len(a) + len(b) > _NAME_MAX_BYTES:
        return bool(_NAME_EQ(self, other))
    key = (a, b)
    hit = _name_eqs.get(key)
    if hit is None:
        hit = bool(_NAME_EQ(self, other))
        if len(_name_eqs) >= _NAME_CACHE_MAX:
            _name_eqs.clear()
        _name_eqs[key] = hit
    return hit


def walk_page_tree(self: Any, page_ix: int, retrieve_parent: bool) -> Any:
    """``PdfHandler._walk_page_tree``, from the back for pages in the back half (see the module text)."""
    try:
        root_ref = self.root.raw_get("/Pages")
        root = root_ref.get_object()
        count = root["/Count"]
        found = None
        if isinstance(root_ref, generic.IndirectObject) and isinstance(count, int) and count > 0:
            ix = page_ix + count if page_ix < 0 else page_ix
            if count // 2 <= ix < count:
                found = _walk_back(root_ref, root, ix, count, retrieve_parent)
    except Exception:  # noqa: BLE001 - anything odd: pyHanko's own walk decides, with its own errors
        found = None
    if found is not None:
        return found
    return _WALK_PAGE_TREE(self, page_ix, retrieve_parent)


def _walk_back(root_ref: Any, root: Any, ix: int, count: int, retrieve_parent: bool) -> Any:
    try:
        rsrc = root["/Resources"]
    except KeyError:
        rsrc = generic.DictionaryObject()
    node_ref, node, end = root_ref, root, count
    seen = {root_ref.reference}
    for _depth in range(64):
        kids = list(node["/Kids"])
        try:
            rsrc = node.raw_get("/Resources")
        except KeyError:
            pass
        cur_end = end
        for kid_index in range(len(kids) - 1, -1, -1):
            kid_ref = kids[kid_index]
            if not isinstance(kid_ref, generic.IndirectObject) or kid_ref.reference in seen:
                return None
            kid = kid_ref.get_object()
            node_type = kid["/Type"]
            if node_type == "/Pages":
                n = kid["/Count"]
                if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                    return None
                if cur_end - n <= ix < cur_end:
                    node_ref, node, end = kid_ref, kid, cur_end
                    seen.add(kid_ref.reference)
                    break
                cur_end -= n
            elif node_type == "/Page":
                if cur_end - 1 == ix:
                    if retrieve_parent:
                        return (node_ref, kid_index, rsrc)
                    try:
                        rsrc = kid.raw_get("/Resources")
                    except KeyError:
                        pass
                    return kid_ref, rsrc
                cur_end -= 1
            if cur_end <= ix:
                return None
        else:
            return None
    return None


def install() -> None:
    # pyHanko (0.38.0, master likewise): a page lookup parses every page dictionary before it. No upstream
    # issue filed; test_patches.test_upstream_page_walk_parses_every_page_before_the_one_wanted.
    rw_common.PdfHandler._walk_page_tree = walk_page_tree  # type: ignore[method-assign]
    # pyHanko: a Python call per hex digit (read_non_whitespace in a generator). No upstream issue filed;
    # test_patches.test_upstream_hex_reader_calls_python_per_digit.
    generic.read_hex_string_from_stream = read_hex_string_from_stream
    # pyHanko (misc.read_until_delimiter, imported into generic): a Python call per byte of every token.
    # No upstream issue filed; test_patches.test_upstream_token_reader_calls_python_per_byte.
    generic.read_until_delimiter = read_until_delimiter
    # pyHanko: every name decoded byte by byte. No upstream issue filed;
    # test_patches.test_upstream_name_decoder_calls_python_per_byte.
    generic._decode_name = decode_name
    # asn1crypto 1.5.1: RFC 4518 preparation of every attribute of every freshly parsed name it compares.
    # No upstream issue filed; test_patches.test_upstream_name_comparison_prepares_every_fresh_name.
    a_x509.Name.__eq__ = _name_eq
    a_x509.Name.hashable = property(_name_hashable)


def uninstall() -> None:
    rw_common.PdfHandler._walk_page_tree = _WALK_PAGE_TREE  # type: ignore[method-assign]
    generic.read_hex_string_from_stream = _ORIGINAL
    generic.read_until_delimiter = _ORIGINAL_UNTIL_DELIMITER
    generic._decode_name = _DECODE_NAME
    a_x509.Name.__eq__ = _NAME_EQ
    a_x509.Name.hashable = _NAME_HASHABLE
    _name_hashables.clear()
    _name_eqs.clear()


def installed() -> bool:
    return generic.read_hex_string_from_stream is read_hex_string_from_stream


__all__ = [
    "decode_name",
    "install",
    "installed",
    "read_hex_string_from_stream",
    "read_until_delimiter",
    "uninstall",
    "walk_page_tree",
]
