"""The fast hex-string reader gives pyHanko's own result (value, type, position or error) for any input."""

from __future__ import annotations

from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils import generic

from verifier import _pdffast


def _outcome(fn, data: bytes) -> tuple[object, ...]:
    s = BytesIO(data)
    try:
        v = fn(s)
    except Exception as exc:  # noqa: BLE001 - the error class and text are part of what must match
        return ("error", type(exc).__name__, str(exc))
    return ("ok", type(v).__name__, bytes(v.original_bytes), s.tell())


def _same(data: bytes) -> None:
    assert _outcome(_pdffast.read_hex_string_from_stream, data) == _outcome(_pdffast._ORIGINAL, data)


@pytest.mark.parametrize(
    "data",
    [
        b"<>",
        b"<41>",
        b"<4142434>rest",
        b"< 41 42\n43\r\t\x0c\x0044 > trailing",
        b"<FEFF004100>",
        b"<41 % a comment > with\n42>",
        b"<41G2>",
        b"<4142",
        b"<",
        b"<" + b"ab" * 40000 + b">",
        b"<" + b"ab" * 40000,
        b"<41>42>",
    ],
)
def test_known_cases_match_pyhanko(data: bytes) -> None:
    _same(data)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64).map(lambda b: b"<" + b))
def test_random_bytes_match_pyhanko(data: bytes) -> None:
    _same(data)


_HEXISH = [b"0", b"a", b"F", b" ", b"\n", b"%", b">", b"\r", b"z", b"\x00"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_HEXISH), max_size=40))
def test_hex_like_input_matches_pyhanko(parts: list[bytes]) -> None:
    _same(b"<" + b"".join(parts))


def _token_outcome(fn, data: bytes, skip: int) -> tuple[object, ...]:
    s = BytesIO(data)
    s.seek(min(skip, len(data)))
    return (fn(s), s.tell())


@pytest.mark.parametrize(
    "data",
    [b"", b"/Type /Page", b"123 0 R", b"true]", b"/Name", b"abc" * 100, b"x" * 128 + b"(", b"1.5\x00", b"%c"],
)
def test_token_reader_matches_pyhanko(data: bytes) -> None:
    for skip in range(0, min(len(data), 4) + 1):
        assert _token_outcome(_pdffast.read_until_delimiter, data, skip) == _token_outcome(
            _pdffast._ORIGINAL_UNTIL_DELIMITER, data, skip
        )


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=5))
def test_token_reader_random_bytes_match_pyhanko(data: bytes, skip: int) -> None:
    assert _token_outcome(_pdffast.read_until_delimiter, data, skip) == _token_outcome(
        _pdffast._ORIGINAL_UNTIL_DELIMITER, data, skip
    )


def _name_outcome(fn, data: bytes) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    try:
        v = fn(data)
    except Exception as exc:  # noqa: BLE001 - the error class and text are part of what must match
        return ("error", type(exc).__name__, str(exc))
    return ("ok", type(v).__name__, str(v))


@pytest.mark.parametrize(
    "data",
    [b"", b"Type", b"Page", b"J#53", b"A#20B", b"#", b"A#4", b"A#zz", b"caf\xc3\xa9", b"\xff", b"a(b", b"a/b"]
    + [b"x" * 200, b"Name~!*'"],
)
def test_name_decoding_matches_pyhanko(data: bytes) -> None:
    assert _name_outcome(_pdffast.decode_name, data) == _name_outcome(_pdffast._DECODE_NAME, data)
    assert _pdffast.decode_name(b"Type") is not _pdffast.decode_name(b"Type")  # never shared (container_ref)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=40))
def test_name_decoding_random_bytes_match_pyhanko(data: bytes) -> None:
    assert _name_outcome(_pdffast.decode_name, data) == _name_outcome(_pdffast._DECODE_NAME, data)


def test_installed_by_the_signer_package() -> None:
    import signer  # noqa: F401

    assert _pdffast.installed()
    assert generic.read_hex_string_from_stream is _pdffast.read_hex_string_from_stream
    assert generic.read_until_delimiter is _pdffast.read_until_delimiter
    assert generic._decode_name is _pdffast.decode_name


def _name(**attrs: str) -> object:
    from asn1crypto import x509 as a_x509

    return a_x509.Name.build(attrs)


_NAMES = [
    {"common_name": "兴国县兴江乡人民政府行政审批服务专用章", "country_name": "CN"},
    {"common_name": "Xingguo County Issuing CA", "organization_name": "兴国县"},
    {"common_name": "xingguo  county ISSUING ca", "organization_name": "兴国县"},  # equal under RFC 4518
    {"common_name": "Xingguo County Root", "organization_name": "兴国县"},
    {"common_name": "Xingguo County Root"},
]


def test_name_comparison_and_hashable_match_asn1crypto() -> None:
    from asn1crypto import x509 as a_x509

    names = [_name(**n) for n in _NAMES]
    reparsed = [a_x509.Name.load(n.dump()) for n in names]  # type: ignore[attr-defined]
    for a in names + reparsed:
        assert _pdffast._name_hashable(a) == _pdffast._NAME_HASHABLE.fget(a)
        for b in names + reparsed:
            for _ in range(2):  # the second answer comes from the memo
                assert _pdffast._name_eq(a, b) == _pdffast._NAME_EQ(a, b)
                assert (a == b) == _pdffast._NAME_EQ(a, b)
    assert names[1] == names[2]  # case and inner spaces do not matter (RFC 5280 §7.1)
    assert names[1] != names[3]
    assert (names[0] == "not a name") is False


# --- page lookups from the back ------------------------------------------------------------------------

Tree = list  # a /Pages node: a list of kids, each None (a page) or a Tree; nodes may carry /Resources


def _tree_pdf(tree: Tree, rsrc_every: int, count_delta: int = 0) -> bytes:
    """A PDF whose page tree has the given shape. Pages are told apart by their MediaBox width (index + 1);
    every ``rsrc_every``-th node carries its own /Resources so inheritance is exercised."""
    objs: dict[int, bytes] = {}
    counter = iter(range(3, 10**6))
    pages = iter(range(1, 10**6))

    def node(kids: Tree, num: int, parent: int | None, depth: int) -> int:
        refs, total = [], 0
        for kid in kids:
            n = next(counter)
            if kid is None:
                w = next(pages)
                res = f" /Resources << /Mark {n} >>" if n % rsrc_every == 0 else ""
                objs[n] = f"<< /Type /Page /Parent {num} 0 R /MediaBox [0 0 {w} 10]{res} >>".encode()
                total += 1
            else:
                total += node(kid, n, num, depth + 1)
            refs.append(f"{n} 0 R")
        count = total + (count_delta if parent is None else 0)
        res = f" /Resources << /Mark {num} >>" if num % rsrc_every == 0 else ""
        par = f" /Parent {parent} 0 R" if parent is not None else ""
        objs[num] = f"<< /Type /Pages /Kids [{' '.join(refs)}] /Count {count}{par}{res} >>".encode()
        return total

    node(tree, 2, None, 0)
    objs[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    out = bytearray(b"%PDF-1.7\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n"
    xref = len(out)
    size = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for num in range(1, size):
        out += b"%010d 00000 n \n" % offsets[num]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def _lookup(walk, data: bytes, ix: int, parent: bool) -> tuple[object, ...]:
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(BytesIO(data), strict=False)
    try:
        found = walk(reader, ix, parent)
    except Exception as exc:  # noqa: BLE001 - the error class is part of what must match
        return ("error", type(exc).__name__)
    if parent:
        ref, kid_index, rsrc = found
        return ("ok", ref.reference, kid_index, rsrc)
    ref, rsrc = found
    width = ref.get_object()["/MediaBox"][2]
    return ("ok", ref.reference, width, rsrc)


_trees = st.recursive(
    st.lists(st.none(), min_size=1, max_size=4),
    lambda children: st.lists(st.one_of(st.none(), children), min_size=1, max_size=4),
    max_leaves=40,
)


@given(tree=_trees, rsrc_every=st.integers(2, 5), data=st.data())
@settings(max_examples=150, deadline=None)
def test_page_lookup_from_the_back_matches_pyhanko(tree: Tree, rsrc_every: int, data: st.DataObject) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    pdf = _tree_pdf(tree, rsrc_every)
    count = int(PdfFileReader(BytesIO(pdf), strict=False).root["/Pages"]["/Count"])
    assert count >= 1
    for ix in {count - 1, -1, count // 2, data.draw(st.integers(-count - 1, count))}:
        for parent in (False, True):
            ours = _lookup(_pdffast.walk_page_tree, pdf, ix, parent)
            theirs = _lookup(_pdffast._WALK_PAGE_TREE, pdf, ix, parent)
            assert ours == theirs, (tree, ix, parent)
            if not parent and 0 <= ix < count:
                assert ours[2] == ix + 1  # the page with that index, by its width


def test_page_lookup_from_the_back_reads_only_the_path() -> None:
    """The point of it: the last of 200 pages is found without parsing the 199 before it."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    pdf = _tree_pdf([None] * 200, rsrc_every=7)
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    ref, _ = _pdffast.walk_page_tree(reader, -1, False)
    assert ref.get_object()["/MediaBox"][2] == 200
    assert len(reader.resolved_objects) < 10  # catalog, root, last page (pyHanko's walk: all 200)
    ref, _ = _pdffast._WALK_PAGE_TREE(PdfFileReader(BytesIO(pdf), strict=False), -1, False)
    assert ref.get_object()["/MediaBox"][2] == 200


def test_page_lookup_with_counts_that_do_not_add_up_never_crashes() -> None:
    for delta in (-2, -1, 1, 3):
        pdf = _tree_pdf([None, [None, None], None], rsrc_every=3, count_delta=delta)
        for ix in (-1, 0, 2, 3, 4, 10):
            for parent in (False, True):
                outcome = _lookup(_pdffast.walk_page_tree, pdf, ix, parent)
                assert outcome[0] in ("ok", "error")
