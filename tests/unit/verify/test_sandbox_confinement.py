"""Issue 21 finding 9: a verifier worker holds nothing of the serve process and runs unprivileged.

The parent here plays the serve process: it holds a listening socket, an accepted-style client socket and a
read-write database file when the pool forks its worker. The worker is inspected from outside
(``/proc/<pid>/status``, ``/proc/<pid>/fd``, ``/proc/<pid>/limits``), and still gives the right verdicts —
qpdf (libqpdf, in process) and the memory measurement included.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

import pytest

from tests.unit.verify import _factory as f
from tests.unit.verify.conftest import NOW
from verifier import Indication, TrustList, VerifyLimits
from verifier import _sandbox as _verify_sandbox
from verifier._sandbox import SandboxPool


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def _fds(pid: int) -> list[str]:
    d = f"/proc/{pid}/fd"
    return [os.readlink(os.path.join(d, n)) for n in os.listdir(d)]


def _limit(pid: int, name: str) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith(name):
            soft, hard = line[len(name) :].split()[:2]
            return soft, hard
    raise AssertionError(name)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_pool_worker_is_confined_and_still_verifies(sealed: bytes, trust: TrustList, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    db_path = tmp_path / "service.db"
    db = sqlite3.connect(db_path)
    db.execute("create table t (x)")
    db.commit()
    pool = SandboxPool(size=1)
    try:
        report, usage = pool.run_measured(sealed, trust, NOW, VerifyLimits())
        assert report.indication is Indication.TOTAL_PASSED
        assert usage.start_rss is not None and usage.peak_rss is not None  # clear_refs still works
        pid = pool._idle.queue[0].pid

        st = _status(pid)
        assert st["NoNewPrivs"] == "1"
        if os.geteuid() == 0:
            assert all(int(x) != 0 for x in st["Uid"].split()), st["Uid"]
            assert all(int(x) != 0 for x in st["Gid"].split()), st["Gid"]
            assert st["Groups"] == ""
        assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0

        fds = _fds(pid)
        assert not [t for t in fds if t.startswith("socket:")], fds
        assert not [t for t in fds if str(db_path) in t or "service.db" in t], fds
        assert len(fds) <= 6, fds  # stdio (/dev/null), two pipes, /proc/self/clear_refs
        assert all(t == os.devnull or t.startswith("pipe:") or t.endswith("clear_refs") for t in fds), fds

        assert _limit(pid, "Max open files") == (str(_verify_sandbox.SANDBOX_NOFILE),) * 2
        assert _limit(pid, "Max core file size") == ("0", "0")
        fsize = _limit(pid, "Max file size")
        assert fsize[0] != "unlimited" and int(fsize[0]) <= VerifyLimits().max_bytes + (1 << 20)

        # A forged document still fails for the right reason: qpdf (libqpdf in the worker, through its
        # temporary file) and the Python checks both ran.
        forged = pool.run(f.append_orphan_update_with_broken_xref(sealed), trust, NOW, VerifyLimits())
        assert forged.indication is Indication.TOTAL_FAILED
        assert "XREF_INVALID" in forged.codes or "STRUCTURE_INVALID" in forged.codes
        assert "VERIFY_RESOURCE_LIMIT" not in forged.codes
        tampered = pool.run(f.append_annotation(sealed), trust, NOW, VerifyLimits())
        assert tampered.indication is not Indication.TOTAL_PASSED
        assert pool._idle.queue[0].pid == pid  # the same confined worker answered all three
    finally:
        pool.close()
        client.close()
        listener.close()
        db.close()


def test_fork_mode_child_verifies_confined(sealed: bytes, trust: TrustList) -> None:
    limits = VerifyLimits(sandbox_mode="fork")
    from verifier import verify_document

    assert verify_document(sealed, trust, now=NOW, limits=limits).indication is Indication.TOTAL_PASSED
    broken = verify_document(f.append_orphan_update_with_broken_xref(sealed), trust, now=NOW, limits=limits)
    assert broken.indication is Indication.TOTAL_FAILED and "VERIFY_RESOURCE_LIMIT" not in broken.codes
