"""Hostile input ends in a clear TOTAL_FAILED / unreadable answer inside the sandbox's bounds."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.verify.conftest import NOW
from verifier import Indication, TrustList, VerifyLimits, verify_document

SANDBOX = VerifyLimits(timeout_s=20, memory_bytes=768 * 1024 * 1024, qpdf_timeout_s=5)


def _check(pdf: bytes, limits: VerifyLimits = SANDBOX):  # type: ignore[no-untyped-def]
    r = verify_document(pdf, TrustList.empty(), now=NOW, limits=limits)
    assert r.indication is Indication.TOTAL_FAILED, r.codes
    return r


def _pdf(objects: list[bytes], root: int = 1) -> bytes:
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world", b"\x00" * 4096, b"PK\x03\x04" + b"\x00" * 100, b"%PDF-1.7\n"],
    ids=["empty", "text", "zeros", "zip", "header-only"],
)
def test_non_pdf_is_unreadable(data: bytes) -> None:
    r = _check(data)
    assert r.unreadable and r.codes == ("PDF_UNREADABLE",)


def test_truncated_sealed_file(sealed: bytes) -> None:
    r = _check(sealed[: len(sealed) // 2])
    assert r.unreadable or "PDF_UNREADABLE" in r.codes


def test_unsigned_pdf_has_no_signature() -> None:
    from tests.unit.verify._factory import blank_pdf

    r = _check(blank_pdf())
    assert r.codes[0] == "NO_SIGNATURE" and r.sub_indication is not None
    assert r.sub_indication.value == "SIGNED_DATA_NOT_FOUND"


def test_deep_nesting() -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    r = _check(
        _pdf([b"<< /Type /Catalog /Pages 2 0 R /X " + deep + b" >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])
    )
    assert r.codes


def test_zip_bomb_stream_appended_to_a_sealed_document(sealed: bytes) -> None:
    """A 200 MiB flate bomb as new page content after the seal: bounded by RLIMIT_AS and qpdf's timeout."""
    from pyhanko.pdf_utils import generic

    from tests.unit.verify._factory import _incremental, _page

    c = zlib.compressobj(9)
    chunk = b"\x00" * (1 << 20)
    bomb = b"".join([c.compress(chunk) for _ in range(200)] + [c.flush()])

    def mutate(w):  # type: ignore[no-untyped-def]
        ref, page = _page(w)
        stream = generic.StreamObject(
            {generic.NameObject("/Filter"): generic.NameObject("/FlateDecode")}, encoded_data=bomb
        )
        page[generic.NameObject("/Contents")] = w.add_object(stream)
        w.mark_update(ref)

    r = _check(_incremental(sealed, mutate), VerifyLimits(memory_bytes=192 * 1024 * 1024, qpdf_timeout_s=5))
    assert set(r.codes) & {
        "MODIFIED_AFTER_SIGNING",
        "STRUCTURE_INVALID",
        "VERIFY_RESOURCE_LIMIT",
        "VERIFY_BUDGET_EXCEEDED",  # the pre-parse budget now stops it before anything inflates
    }


def test_huge_xref_table() -> None:
    body = _pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])
    head, _, _ = body.partition(b"xref\n")
    xref_at = len(head)
    n = 300_000
    rows = b"0000000000 65535 f \n" * n
    pdf = (
        head
        + b"xref\n0 %d\n" % n
        + rows
        + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (n, xref_at)
    )
    _check(pdf)


def test_size_limit() -> None:
    r = _check(b"%PDF-1.7\n" + b" " * 2048 + b"%%EOF", VerifyLimits(max_bytes=1024))
    assert r.codes == ("PDF_TOO_LARGE",)


def test_time_limit_kills_the_child(sealed: bytes) -> None:
    r = _check(sealed, VerifyLimits(timeout_s=0.001))
    assert r.unreadable and r.codes == ("VERIFY_RESOURCE_LIMIT",)


def test_memory_limit_is_an_answer_not_a_crash(sealed: bytes) -> None:
    # RLIMIT_AS below what the forked child already maps: every new mapping fails inside the child.
    r = verify_document(sealed, TrustList.empty(), now=NOW, limits=VerifyLimits(memory_bytes=1024 * 1024))
    full = verify_document(sealed, TrustList.empty(), now=NOW)
    assert full.indication is Indication.INDETERMINATE  # intact, untrusted
    if r.indication is Indication.TOTAL_FAILED:
        # Fail closed: the child dies (VERIFY_RESOURCE_LIMIT) or qpdf cannot start (STRUCTURE_INVALID).
        assert "VERIFY_RESOURCE_LIMIT" in r.codes or "STRUCTURE_INVALID" in r.codes
    else:
        # Or everything fit in what the forked child already had mapped (libqpdf loaded in the parent
        # before the fork, qpdf run in-process): then it is the same, complete answer.
        assert r == full


def test_absurd_certificate_extension(county, crl) -> None:  # type: ignore[no-untyped-def]
    from cryptography import x509

    from tests.unit.verify._factory import blank_pdf, sign_pdf

    weird = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x04\x82\xff\xff" + b"A" * 3000
    )
    seal = county.issue_seal(seal_id="SEAL-WEIRD", extra=[weird])
    doc = sign_pdf(blank_pdf(), county, seal)
    r = verify_document(doc, TrustList.empty(), now=NOW, limits=SANDBOX)
    assert r.indication is Indication.INDETERMINATE  # intact, untrusted; facts parsed defensively
    assert r.signatures[0].seal is not None and r.signatures[0].seal.extension


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_sealed_pdf_never_crashes(sealed: bytes, trust: TrustList, data: st.DataObject) -> None:
    """Random byte edits, truncations and insertions: always a report, never TOTAL_PASSED unless untouched."""
    b = bytearray(sealed)
    ops = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(b) - 1), st.integers(0, 255), st.sampled_from("rit")),
            min_size=1,
            max_size=4,
        )
    )
    for pos, val, op in ops:
        pos = min(pos, len(b) - 1)
        if op == "r":
            b[pos] = val
        elif op == "i":
            b.insert(pos, val)
        else:
            del b[pos:]
            if not b:
                b = bytearray(b"%")
    mutated = bytes(b)
    r = verify_document(mutated, trust, now=NOW, limits=VerifyLimits(sandbox=False, qpdf=False))
    if mutated != sealed and r.indication is Indication.TOTAL_PASSED:
        # Only edits that change nothing a reader or the signature sees may pass: the signed bytes are intact.
        assert all(s.intact and s.crypto_valid for s in r.signatures)
