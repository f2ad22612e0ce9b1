"""The fast hex-string reader gives pyHanko's own result (value, type, position or error) for any input."""

from __future__ import annotations

from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils import generic

from signer import _pdffast


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


def test_installed_by_the_signer_package() -> None:
    import signer  # noqa: F401

    assert _pdffast.installed()
    assert generic.read_hex_string_from_stream is _pdffast.read_hex_string_from_stream
    assert generic.read_until_delimiter is _pdffast.read_until_delimiter


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
