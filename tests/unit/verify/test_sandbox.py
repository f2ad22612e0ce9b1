"""Both sandbox modes give the same answers; a worker that overruns is replaced, the next call works."""

from __future__ import annotations

import os

import pytest

from tests.unit.verify import _factory as f
from tests.unit.verify.conftest import NOW
from verifier import Indication, TrustList, VerifyLimits, verify_document
from verifier._sandbox import SandboxPool


@pytest.mark.parametrize("mode", ["pool", "fork"])
def test_same_verdicts_in_both_modes(sealed: bytes, trust: TrustList, mode: str) -> None:
    limits = VerifyLimits(sandbox_mode=mode)
    inproc = VerifyLimits(sandbox=False)
    # qpdf runs in-process in the sandbox (verifier._qpdf) and as the binary outside it: the broken xref
    # update is one qpdf complains about.
    broken = f.append_orphan_update_with_broken_xref(sealed)
    for doc in (sealed, f.append_annotation(sealed), sealed + b"x", b"garbage", broken):
        a = verify_document(doc, trust, now=NOW, limits=limits)
        b = verify_document(doc, trust, now=NOW, limits=inproc)
        assert (a.indication, a.codes) == (b.indication, b.codes)
        assert a == b  # the JSON round trip loses nothing


def test_pool_replaces_a_worker_that_overran(sealed: bytes, trust: TrustList) -> None:
    pool = SandboxPool(size=1)
    try:
        first = pool.run(sealed, trust, NOW, VerifyLimits())
        assert first.indication is Indication.TOTAL_PASSED
        pid = pool._idle.queue[0].pid
        slow = pool.run(sealed, trust, NOW, VerifyLimits(timeout_s=0.001))
        assert slow.unreadable and slow.codes == ("VERIFY_RESOURCE_LIMIT",)
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # the overrunning worker was killed and reaped
        again = pool.run(sealed, trust, NOW, VerifyLimits())
        assert again.indication is Indication.TOTAL_PASSED
        assert pool._idle.queue[0].pid != pid
    finally:
        pool.close()


def test_pool_recycles_after_max_tasks(sealed: bytes, trust: TrustList) -> None:
    pool = SandboxPool(size=1, max_tasks=2)
    try:
        pids = set()
        for _ in range(4):
            r = pool.run(sealed, trust, NOW, VerifyLimits())
            assert r.indication is Indication.TOTAL_PASSED
            if pool._idle.qsize():
                pids.add(pool._idle.queue[0].pid)
        assert len(pids) >= 1 and pool._spawned <= 1
    finally:
        pool.close()


def test_pyhanko_alone_accepts_what_the_strict_checks_refuse(sealed: bytes, trust: TrustList) -> None:
    """Why the structure checks exist: pyHanko's lenient reader tolerates an appended update whose xref
    offset is wrong and rates the revision an LTA-level change."""
    import io
    import logging

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature

    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    attacked = f.append_orphan_update_with_broken_xref(sealed)
    sig = PdfFileReader(io.BytesIO(attacked), strict=False).embedded_signatures[0]
    status = validate_pdf_signature(sig)
    assert status.intact and status.valid and status.docmdp_ok  # pyHanko: nothing wrong
    assert status.modification_level is not None and status.modification_level.name == "LTA_UPDATES"
    r = verify_document(attacked, trust, now=NOW, limits=VerifyLimits(sandbox=False))
    assert r.indication is Indication.TOTAL_FAILED
    assert "XREF_INVALID" in r.codes or "STRUCTURE_INVALID" in r.codes


def test_pool_serves_threads_and_survives_a_dead_idle_worker(sealed: bytes, trust: TrustList) -> None:
    import signal
    from concurrent.futures import ThreadPoolExecutor

    pool = SandboxPool(size=2)
    try:
        with ThreadPoolExecutor(4) as ex:
            results = list(ex.map(lambda _: pool.run(sealed, trust, NOW, VerifyLimits()), range(8)))
        assert all(r.indication is Indication.TOTAL_PASSED for r in results)
        assert pool._spawned <= 2
        idle = pool._idle.queue[-1]
        os.kill(idle.pid, signal.SIGKILL)  # our own worker process, dead while idle
        os.waitpid(idle.pid, 0)
        r = pool.run(sealed, trust, NOW, VerifyLimits())
        assert r.indication is Indication.TOTAL_PASSED  # retried on a fresh worker
    finally:
        pool.close()
