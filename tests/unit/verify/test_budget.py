"""The pre-parse budget and the sandbox's memory bound (issue 18, "Budgets").

Hostile files are built here, byte by byte: the 200 000-object upload and the 0.3 MB xref-stream bomb of the
issue, and variants (declared sizes, xref widths, chained Flate, overlapping streams). Each must be refused
by ``check_budget`` in milliseconds; with the budget switched off, the sandbox must still stop them inside
its memory bound (``VerifyLimits.memory_bytes``), measured as the child's resident-set peak.
"""

from __future__ import annotations

import functools
import os
import zlib

import pytest

from tests.unit.verify.conftest import NOW
from verifier import Indication, TrustList, VerifyLimits, verify_document
from verifier._budget import check_budget, scan_budget
from verifier._sandbox import SandboxPool, run_sandboxed_measured

MiB = 1024 * 1024
#: RSS counts more than the allocations RLIMIT_DATA bounds: shared-library pages the child faults in and
#: copy-on-write copies of the parent's pages. Neither grows with the input; this is their allowance.
RSS_SLACK = 32 * MiB


def many_objects(n: int = 200_000) -> bytes:
    """``n`` tiny indirect objects in one classic xref table (the 199k-object upload of issue 18)."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    bodies = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    for i in range(1, n + 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, bodies[i - 1] if i <= 2 else b"[%d]" % i)
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (n + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (n + 1, xref_at)
    return bytes(out)


@functools.cache
def _zeros_deflated(n: int) -> bytes:
    c = zlib.compressobj(9)
    chunk = bytes(MiB)
    parts = [c.compress(chunk) for _ in range(n // MiB)]
    return b"".join([*parts, c.compress(bytes(n % MiB)), c.flush()])


def xref_stream_bomb(inflated: int = 300 * MiB, size: int | None = None, layers: int = 1) -> bytes:
    """A PDF whose xref stream (/W [1 4 2]) inflates to ``inflated`` bytes from ~0.3 MB (one Flate layer).
    ``size``: the /Size claimed (default: as many entries as the data holds). ``layers``: Flate applied
    that many times (a chained /Filter [/FlateDecode /FlateDecode] bomb)."""
    out = bytearray(b"%PDF-1.7\n")
    o1 = len(out)
    out += b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    o2 = len(out)
    out += b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    # the honest first entries, then zeros (free entries) up to ``inflated`` bytes
    head = (
        b"\x00\x00\x00\x00\x00\xff\xff\x01" + o1.to_bytes(4, "big") + b"\x00\x00\x01" + o2.to_bytes(4, "big")
    )
    head += b"\x00\x00"
    c = zlib.compressobj(9)
    parts = [c.compress(head)]
    left = inflated - len(head)
    while left > 0:
        k = min(left, MiB)
        parts.append(c.compress(bytes(k)))
        left -= k
    body = b"".join([*parts, c.flush()])
    for _ in range(layers - 1):
        body = zlib.compress(body, 9)
    n = size if size is not None else inflated // 7
    filters = b"[" + b" ".join([b"/FlateDecode"] * layers) + b"]"
    xref_at = len(out)
    out += b"3 0 obj\n<< /Type /XRef /W [1 4 2] /Size %d /Root 1 0 R /Filter %s /Length %d >>\nstream\n" % (
        n,
        filters,
        len(body),
    )
    out += body + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


@functools.cache
def _bomb() -> bytes:
    return xref_stream_bomb()


# ---- the budget ------------------------------------------------------------------------------------------


def test_our_sealed_documents_sit_far_inside_the_budget(sealed: bytes, sealed_form: bytes) -> None:
    limits = VerifyLimits()
    for doc in (sealed, sealed_form):
        scan = scan_budget(doc, limits)
        assert scan.problem is None
        assert 0 < scan.objects < limits.max_objects // 100
        assert scan.expanded_bytes < limits.max_expanded_bytes // 100
        assert scan.revisions <= 4


def test_the_200k_object_upload_is_refused_unread() -> None:
    doc = many_objects()
    assert len(doc) < 10 * MiB  # an ordinary-size upload: the size limit alone does not stop it
    problem = check_budget(doc, VerifyLimits())
    assert problem is not None and "object" in problem
    assert check_budget(many_objects(1_000), VerifyLimits()) is None  # the same shape, small: fine


def test_the_xref_stream_bomb_is_refused_unread() -> None:
    doc = _bomb()
    assert len(doc) < 400 * 1024
    assert "/Size" in (check_budget(doc, VerifyLimits()) or "")
    # the same bomb with an honest-looking /Size: refused by what it inflates to, not by what it claims
    modest = xref_stream_bomb(64 * MiB, size=3)
    assert "inflates beyond" in (check_budget(modest, VerifyLimits()) or "")
    # and one claiming as many entries as the limit allows: the structure bytes bound it
    claims = xref_stream_bomb(64 * MiB, size=50_000)
    problem = check_budget(claims, VerifyLimits())
    assert problem is not None and "inflate" in problem


def test_chained_flate_is_decoded_through_every_layer() -> None:
    """[/FlateDecode /FlateDecode]: the outer layer is small, the inner one is the bomb."""
    doc = xref_stream_bomb(200 * MiB, size=3, layers=2)
    assert len(doc) < 64 * 1024
    assert "inflates beyond" in (check_budget(doc, VerifyLimits()) or "")


def test_page_content_bomb_counts_against_the_total() -> None:
    body = _zeros_deflated(160 * MiB)
    obj = (
        b"4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(body)
        + body
        + b"\nendstream\nendobj\n"
    )
    doc = many_objects(3).replace(b"xref\n", obj + b"xref\n", 1)  # offsets wrong: the budget does not care
    problem = check_budget(doc, VerifyLimits())
    assert problem is not None and "streams inflate to more than" in problem
    assert check_budget(doc, VerifyLimits(max_expanded_bytes=200 * MiB)) is None


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        ((b"/Size 4 ", b"/Size 2147483648 "), "/Size"),
        ((b"xref\n0 4", b"xref\n0 2147483647"), "subsection"),
        ((b"startxref", b"startxref\nstartxref " * 40 + b"startxref"), "revisions"),
    ],
    ids=["declared-size", "xref-subsection", "revisions"],
)
def test_claims_over_the_limits(edit: tuple[bytes, bytes], needle: str) -> None:
    doc = many_objects(3)
    assert check_budget(doc, VerifyLimits()) is None
    hostile = doc.replace(*edit)
    assert hostile != doc
    assert needle in (check_budget(hostile, VerifyLimits(max_revisions=64)) or "")


def test_xref_stream_field_widths() -> None:
    doc = xref_stream_bomb(2 * MiB, size=3)
    wide = doc.replace(b"/W [1 4 2]", b"/W [4 2147483647 2]")
    assert "/W" in (check_budget(wide, VerifyLimits()) or "")


def test_overlapping_streams_cannot_make_the_scan_quadratic() -> None:
    """Every stream's /Length reaching over the same compressed data: input fed is bounded by the file."""
    filler = zlib.compress(bytes(8 * MiB), 1)
    objs = b"".join(
        b"%d 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % (i, 10**9) for i in range(4, 400)
    )
    doc = many_objects(3).replace(b"xref\n", objs + filler + b"\nendstream\nendobj\nxref\n", 1)
    problem = check_budget(doc, VerifyLimits())
    assert problem is not None and ("overlaps" in problem or "inflate" in problem)


# ---- in the sandbox: the verdict, and the memory bound ---------------------------------------------------


def test_budget_verdict_through_verify_document() -> None:
    """The budget runs first in the sandboxed checks: refused unread, with its own code."""
    for doc in (many_objects(), _bomb()):
        r = verify_document(doc, TrustList.empty(), now=NOW)
        assert r.indication is Indication.TOTAL_FAILED
        assert r.codes == ("VERIFY_BUDGET_EXCEEDED",), r.codes


def test_budget_keeps_hostile_files_cheap_in_memory() -> None:
    pool = SandboxPool(size=1)
    try:
        for doc in (many_objects(), _bomb()):
            r, usage = pool.run_measured(doc, TrustList.empty(), NOW, VerifyLimits())
            assert "VERIFY_BUDGET_EXCEEDED" in r.codes, r.codes
            assert usage.growth is not None and usage.growth < 64 * MiB, usage
    finally:
        pool.close()


@pytest.mark.parametrize("mode", ["pool", "fork"])
def test_memory_bound_holds_without_the_budget(sealed: bytes, trust: TrustList, mode: str) -> None:
    """With the budget off, the xref-stream bomb reaches the parser (it peaked at 894 MB before): the child
    stops at ``memory_bytes`` of growth, answers VERIFY_RESOURCE_LIMIT, and a normal document still
    verifies within the same bound afterwards."""
    limits = VerifyLimits(budget=False)
    assert limits.memory_bytes == 256 * MiB
    pool = SandboxPool(size=1)

    def run(doc: bytes):  # type: ignore[no-untyped-def]
        if mode == "pool":
            return pool.run_measured(doc, trust, NOW, limits)
        return run_sandboxed_measured(doc, trust, NOW, limits)

    try:
        normal, before = run(sealed)
        assert normal.indication is Indication.TOTAL_PASSED
        assert before.growth is not None and before.growth < 64 * MiB, before
        r, usage = run(_bomb())
        assert r.indication is Indication.TOTAL_FAILED and r.codes == ("VERIFY_RESOURCE_LIMIT",), r.codes
        assert usage.growth is not None, usage
        assert usage.growth <= limits.memory_bytes + RSS_SLACK, usage
        again, after = run(sealed)
        assert again == normal
    finally:
        pool.close()


def test_200k_objects_without_the_budget_stay_under_the_memory_bound(trust: TrustList) -> None:
    """The other hostile upload, budget off, a short wall timeout: killed (time or memory), and the worker's
    lifetime peak (``wait4``) stays within its start plus the bound."""
    pool = SandboxPool(size=1)
    try:
        _, warm = pool.run_measured(b"%PDF-1.7\n%%EOF\n", trust, NOW, VerifyLimits(budget=False))
        assert warm.start_rss is not None
        limits = VerifyLimits(budget=False, timeout_s=4)
        r, usage = pool.run_measured(many_objects(), trust, NOW, limits)
        assert r.indication is Indication.TOTAL_FAILED
        assert "VERIFY_RESOURCE_LIMIT" in r.codes, r.codes
        assert usage.peak_rss is not None
        assert usage.peak_rss <= warm.start_rss + limits.memory_bytes + RSS_SLACK, usage
    finally:
        pool.close()


# ---- sharing the verifiers -------------------------------------------------------------------------------


def test_large_documents_leave_a_worker_for_ordinary_ones(sealed: bytes, trust: TrustList) -> None:
    """Three large documents at once on a 2-worker pool run in their own low-priority lane, one at a time;
    an ordinary permit sent while they run is answered before any of them."""
    import threading

    from verifier._sandbox import is_large

    large = many_objects(45_000)  # inside the budget: a costly document the budget lets through
    assert is_large(large) and not is_large(sealed)
    pool = SandboxPool(size=2)
    done: list[str] = []
    lock = threading.Lock()

    def run(name: str, doc: bytes) -> None:
        # A generous wall time: on a loaded machine a 45k-object document can outlast the default, and a
        # worker killed for time leaves the lane empty (nothing left to look at below).
        r = pool.run(doc, trust, NOW, VerifyLimits(timeout_s=120))
        with lock:
            done.append(f"{name}:{r.indication.value}")

    try:
        pool.run(sealed, trust, NOW, VerifyLimits())  # one warm ordinary worker
        threads = [threading.Thread(target=run, args=(f"large{i}", large)) for i in range(3)]
        for t in threads:
            t.start()
        assert pool._large is not None
        while pool._large.spawned == 0:  # until a large document holds its lane
            threading.Event().wait(0.01)
        run("permit", sealed)
        large_worker = pool._large.idle.queue[0] if pool._large.idle.qsize() else None
        for t in threads:
            t.join()
        worker = large_worker or pool._large.idle.queue[0]
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == SandboxPool.LARGE_NICE
        assert pool._large.spawned == 1 and pool._normal.spawned == 1
    finally:
        pool.close()
    assert done[0] == "permit:TOTAL_PASSED", done
    assert len(done) == 4


def test_public_admission_one_verification_per_client() -> None:
    from api._errors import RateLimited
    from api._verify_gate import VerifyGate

    gate = VerifyGate()
    with gate.admit("10.0.0.1"):
        with pytest.raises(RateLimited) as exc:
            with gate.admit("10.0.0.1"):
                pass
        assert exc.value.code == "VERIFY_BUSY" and exc.value.details["retry_after_s"] >= 1
        with gate.admit("10.0.0.2"):  # another client is not affected
            assert gate.in_flight("10.0.0.2") == 1
    with gate.admit("10.0.0.1"):  # the slot is given back, also after an error inside
        pass
    with pytest.raises(ValueError):
        with gate.admit("10.0.0.1"):
            raise ValueError
    assert gate.in_flight("10.0.0.1") == 0
