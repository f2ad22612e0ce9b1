"""One test per library patch (verifier/patches.py): it fails when upstream fixes what the patch works
around (the unpatched function no longer has the cost that needed it: remove the patch then) and when
upstream changes the code the patch hooks into (the patch would be dead or wrong: check it then).
``test_pdffast.py`` shows that each patched function gives upstream's own result (hypothesis); the
oscrypto fix has ``test_endesive_ready.py``. Costs are counted (Python calls, objects parsed), never timed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest
from asn1crypto import x509 as a_x509
from pyhanko.pdf_utils import generic, misc, rw_common
from pyhanko.pdf_utils.reader import PdfFileReader

from tests.unit.verify.test_pdffast import _tree_pdf
from verifier import _endesive, _pdffast, patches


def _python_calls(fn: Callable[[], Any]) -> int:
    calls = 0

    def prof(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_install_is_what_the_test_session_runs_and_is_idempotent() -> None:
    assert patches.installed()  # tests/conftest.py installs them as api.app.create_app / api.cli.main do
    patches.install()
    patches.install()
    assert patches.installed()
    assert sum(isinstance(f, _endesive._OscryptoFixFinder) for f in sys.meta_path) == 1
    assert generic.read_hex_string_from_stream is _pdffast.read_hex_string_from_stream
    assert generic.read_until_delimiter is _pdffast.read_until_delimiter
    assert generic._decode_name is _pdffast.decode_name
    assert rw_common.PdfHandler._walk_page_tree is _pdffast.walk_page_tree
    assert a_x509.Name.__eq__ is _pdffast._name_eq


# --- pyHanko: hex strings (the CMS of every signature is one) -------------------------------------------


def test_upstream_hex_reader_calls_python_per_digit() -> None:
    data = b"<" + b"0a1B" * 1024 + b">"
    upstream = _python_calls(lambda: _pdffast._ORIGINAL(BytesIO(data)))
    ours = _python_calls(lambda: _pdffast.read_hex_string_from_stream(BytesIO(data)))
    assert upstream >= 4096, f"pyHanko reads hex strings in {upstream} calls now: remove the patch"
    assert ours < 50
    theirs = _pdffast._ORIGINAL(BytesIO(data)).original_bytes
    assert _pdffast.read_hex_string_from_stream(BytesIO(data)).original_bytes == theirs


def test_pyhanko_reads_hex_strings_through_the_patched_name(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def spy(stream: Any) -> Any:
        seen.append(stream.tell())
        return _pdffast.read_hex_string_from_stream(stream)

    monkeypatch.setattr(generic, "read_hex_string_from_stream", spy)
    value = generic.read_object(BytesIO(b"<48656c6c6f>"), generic.TrailerReference(None))
    assert value.original_bytes == b"Hello"
    assert seen == [0], "pyHanko's read_object no longer calls generic.read_hex_string_from_stream"


# --- pyHanko: tokens and names --------------------------------------------------------------------------


def test_upstream_token_reader_calls_python_per_byte() -> None:
    data = b"1" * 400 + b" "
    upstream = _python_calls(lambda: _pdffast._ORIGINAL_UNTIL_DELIMITER(BytesIO(data)))
    ours = _python_calls(lambda: _pdffast.read_until_delimiter(BytesIO(data)))
    assert _pdffast._ORIGINAL_UNTIL_DELIMITER is misc.read_until_delimiter
    assert upstream >= 300, f"pyHanko reads a token in {upstream} calls now: remove the patch"
    assert ours < 30


def test_upstream_name_decoder_calls_python_per_byte() -> None:
    name = b"A" * 200
    upstream = _python_calls(lambda: _pdffast._DECODE_NAME(name))
    ours = _python_calls(lambda: _pdffast.decode_name(name))
    assert upstream >= 150, f"pyHanko decodes a name in {upstream} calls now: remove the patch"
    assert ours < 10
    assert _pdffast._DECODE_NAME(name) == _pdffast.decode_name(name)


def test_pyhanko_reads_names_through_the_patched_names(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def until(stream: Any) -> bytes:
        seen.append("until")
        return _pdffast.read_until_delimiter(stream)

    def decode(name_bytes: bytes) -> Any:
        seen.append("decode")
        return _pdffast.decode_name(name_bytes)

    monkeypatch.setattr(generic, "read_until_delimiter", until)
    monkeypatch.setattr(generic, "_decode_name", decode)
    assert generic.NameObject.read_from_stream(BytesIO(b"/Type ")) == "/Type"
    assert seen == ["until", "decode"], "pyHanko's name reader no longer calls the patched functions"


# --- pyHanko: page lookups ------------------------------------------------------------------------------


def test_upstream_page_walk_parses_every_page_before_the_one_wanted() -> None:
    pdf = _tree_pdf([None] * 200, rsrc_every=7)
    upstream = PdfFileReader(BytesIO(pdf), strict=False)
    _pdffast._WALK_PAGE_TREE(upstream, -1, False)
    ours = PdfFileReader(BytesIO(pdf), strict=False)
    _pdffast.walk_page_tree(ours, -1, False)
    assert len(upstream.resolved_objects) >= 200, "pyHanko finds the last page cheaply now: remove the patch"
    assert len(ours.resolved_objects) < 10


def test_pyhanko_finds_pages_through_the_patched_walk() -> None:
    """``find_page_for_modification`` / ``find_page_container`` (what the sealer calls for the seal's page)
    still go through ``PdfHandler._walk_page_tree``: the last page is found without parsing the others."""
    pdf = _tree_pdf([None] * 50, rsrc_every=7)
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    page_ref, _rsrc = reader.find_page_for_modification(-1)
    assert len(reader.resolved_objects) < 10, "pyHanko's page lookups no longer go through _walk_page_tree"
    assert page_ref.get_object()["/MediaBox"][2] == 50
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    _pages, index, _rsrc = reader.find_page_container(-1)
    assert index == 49 and len(reader.resolved_objects) < 10


# --- asn1crypto: X.509 name comparison ------------------------------------------------------------------


def _name_der() -> bytes:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "兴国县人民政府"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "兴国县电子印章管理中心"),
            x509.NameAttribute(NameOID.COMMON_NAME, "兴国县电子印章CA"),
        ]
    ).public_bytes()


def test_upstream_name_comparison_prepares_every_fresh_name() -> None:
    """asn1crypto prepares (RFC 4518) every attribute of each freshly parsed name it compares, with no
    memory across parses of the same bytes; path building compares hundreds per verification."""
    der = _name_der()
    a, b = a_x509.Name.load(der), a_x509.Name.load(der)
    upstream = _python_calls(lambda: _pdffast._NAME_EQ(a, b))
    assert upstream >= 40, f"asn1crypto compares two fresh names in {upstream} calls now: remove the patch"
    c, d = a_x509.Name.load(der), a_x509.Name.load(der)
    assert c == d  # patched: the first comparison computes one hashable ...
    e, f = a_x509.Name.load(der), a_x509.Name.load(der)
    ours = _python_calls(lambda: e == f)  # ... and fresh parses of the same bytes reuse it
    assert ours < upstream // 4, (ours, upstream)
    other = a_x509.Name.build({"common_name": "梅窖镇人民政府"})
    assert (e == other) is _pdffast._NAME_EQ(a_x509.Name.load(der), other) is False
    assert e.hashable == _pdffast._NAME_HASHABLE.fget(a_x509.Name.load(der))


def test_asn1crypto_compares_names_through_the_patched_methods() -> None:
    """pyhanko-certvalidator matches issuers with ``==`` and ``.hashable`` on asn1crypto's ``Name``: both
    must still be the class attributes the patch replaces."""
    assert "__eq__" in vars(a_x509.Name) and "hashable" in vars(a_x509.Name)
    assert isinstance(_pdffast._NAME_HASHABLE, property)
    assert isinstance(a_x509.Name.__dict__["hashable"], property)
    assert a_x509.Name.__dict__["hashable"].fget is _pdffast._name_hashable
