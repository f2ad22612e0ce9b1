"""``verifier._qpdf.Checker``: the long-lived ``qpdf --check`` child used outside the sandbox (sealing)
answers as the binary does, and a hang or a crash costs the child, never the caller."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from verifier import _qpdf
from verifier._core import QpdfJob

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "foreign"


def _binary_answer(data: bytes) -> str | None:
    """The same job on the binary's path (a process per document), for comparison."""
    saved = _qpdf.available
    _qpdf.available = lambda: False  # type: ignore[assignment]
    try:
        job = QpdfJob(data, 10)
        assert job.checker is None and job.proc is not None
        try:
            return job.result()
        finally:
            job.close()
    finally:
        _qpdf.available = saved  # type: ignore[assignment]


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.pdf"))[:12])
def test_same_answer_as_the_binary(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    job = QpdfJob(data, 10)
    assert job.checker is not None  # the checker, not a process per document
    try:
        answer = job.result()
    finally:
        job.close()
    assert answer == _binary_answer(data)


def test_one_child_serves_many_documents_then_retires() -> None:
    data = sorted(CORPUS.glob("*.pdf"))[0].read_bytes()
    first = QpdfJob(data, 10)
    pid = first.checker.proc.pid if first.checker else None
    first.result()
    first.close()
    second = QpdfJob(data, 10)
    assert second.checker is not None and second.checker.proc.pid == pid
    second.checker.uses = _qpdf.CHECKER_USES  # worn out: retired after this answer
    second.result()
    second.close()
    third = QpdfJob(data, 10)
    assert third.checker is not None and third.checker.proc.pid != pid
    third.result()
    third.close()


def test_a_hang_is_killed_at_the_timeout(tmp_path: Path) -> None:
    fifo = tmp_path / "never.pdf"
    os.mkfifo(fifo)  # qpdf's open blocks: nothing ever writes
    checker = _qpdf.acquire_checker()
    checker.start(str(fifo))
    t0 = time.monotonic()
    assert checker.finish(0.5) is None
    assert time.monotonic() - t0 < 5
    assert checker.proc.poll() is not None and not checker.healthy
    _qpdf.release_checker(checker)  # retired, not kept
    assert checker not in _qpdf._idle


def test_a_crash_reads_as_the_binarys_signal_and_the_child_is_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "crash.pdf"
    os.mkfifo(fifo)
    checker = _qpdf.acquire_checker()
    checker.start(str(fifo))
    time.sleep(0.3)
    os.kill(checker.proc.pid, signal.SIGSEGV)
    answer = checker.finish(5)
    assert answer is not None and answer[0] == -signal.SIGSEGV
    _qpdf.release_checker(checker)
    assert checker not in _qpdf._idle
    replacement = _qpdf.acquire_checker()
    assert replacement is not checker and replacement.proc.poll() is None
    _qpdf.release_checker(replacement)


def test_an_unread_answer_does_not_go_back_to_the_idle_list() -> None:
    data = sorted(CORPUS.glob("*.pdf"))[0].read_bytes()
    job = QpdfJob(data, 10)
    checker = job.checker
    assert checker is not None
    job.close()  # e.g. the graph walk refused the document first
    assert checker.proc.poll() is not None
    assert checker not in _qpdf._idle
