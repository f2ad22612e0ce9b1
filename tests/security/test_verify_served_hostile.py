"""Issue 21, finding 6 ("Done when"), outcomes only: public verification of the served county stays correct
while 4 anonymous clients upload the worst PDFs.

``yizhang serve`` (2 workers, as deployed) on 127.0.0.1 and an ephemeral port, over a demo home (SQLite,
real SoftHSM token, the demo's sealed acceptance notice). Four anonymous clients, from 127.0.0.2 … 127.0.0.5
(the gate of ``api._verify_gate`` and the rate limiter key by address), two connections each, upload in
turn the 200 000-object file, the xref-stream bomb, a 45 000-object file inside the budget, a 256 MiB
content bomb and the 60 000-page file (``tests._fixtures.served_verify.worst_pdfs``). Meanwhile ordinary
clients verify the sealed notice.

Asserted: every ordinary verification is 200 TOTAL_PASSED; every hostile upload is answered with a report
that fails it (``VERIFY_BUDGET_EXCEEDED`` for the files over the budget), a 413 ``PDF_TOO_LARGE`` or a 429
``VERIFY_BUSY`` / ``RATE_LIMITED`` — never a 5xx, never a dropped connection; the gate did refuse a second
upload in flight from one address; the service is ready at the end. Latency is measured by
``bench/bench_verify_served_hostile.py``, never here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._fixtures.served_verify import (
    HOSTILE_CODES_429,
    NORMAL_ADDRESSES,
    HostileLoad,
    client_from,
    serving,
    verify,
    worst_pdfs,
)
from tests.reliability._home import make_demo

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]

#: Files the pre-parse budget refuses unread (the rest: the 45 000-object file, inside the budget).
OVER_BUDGET = {"200k-objects", "xref-stream-bomb", "content-flate-bomb", "60k-pages"}
NORMAL_REQUESTS = 16


@pytest.fixture(scope="module")
def served_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, bytes, Path]]:
    root = tmp_path_factory.mktemp("served-hostile")
    demo = make_demo(root / "home", "")  # the home's own SQLite database
    sealed = (demo.home / "sealed" / "acceptance_notice.pdf").read_bytes()
    with serving(demo.home, demo.env, root / "serve.log", workers=2) as base:
        yield base, sealed, root / "serve.log"


def _until_every_kind_answered(load: HostileLoad, names: set[str], bound_s: float = 600) -> None:
    """Wait until each hostile file has been answered once (a bound against hangs, not a timing)."""
    end = time.monotonic() + bound_s
    while {k[0] for k in load.answers} != names:
        assert time.monotonic() < end, f"hostile uploads not answered: {dict(load.answers)}"
        time.sleep(0.2)


def test_normal_verification_passes_while_hostile_clients_upload(served_demo: Any) -> None:
    base, sealed, log = served_demo
    hostile = worst_pdfs(sealed)
    normal: list[tuple[int, str, str]] = []
    with HostileLoad(base, hostile, senders=2) as load:
        _until_every_kind_answered(load, set(hostile))
        for i in range(NORMAL_REQUESTS):
            with client_from(NORMAL_ADDRESSES[i % len(NORMAL_ADDRESSES)], base) as client:
                normal.append(verify(client, sealed))
    assert normal == [(200, "TOTAL_PASSED", normal[0][2])] * NORMAL_REQUESTS, normal

    answers = dict(load.answers)
    assert {name for name, *_ in answers} == set(hostile)
    for (name, status, what, first), _count in answers.items():
        where = (name, status, what, first)
        assert status in (200, 413, 429), where  # no 5xx, no dropped connection (-1)
        if status == 200:
            assert what == "TOTAL_FAILED", where
            if name in OVER_BUDGET:
                assert first == "VERIFY_BUDGET_EXCEEDED", where
        elif status == 413:
            assert what == "PDF_TOO_LARGE", where
        else:
            assert what in HOSTILE_CODES_429, where
    # the gate refused uploads while one from the same address was still being verified
    assert any(status == 429 and what == "VERIFY_BUSY" for _n, status, what, _f in answers), answers
    assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200
    # both serve workers served throughout: none was killed by uvicorn's supervisor and replaced
    assert "died" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]


def test_demo_document_is_what_the_ordinary_clients_send(served_demo: Any) -> None:
    """The ordinary document really is sealed by this county (else TOTAL_PASSED above would mean nothing)."""
    base, sealed, _log = served_demo
    tampered = bytearray(sealed)
    at = sealed.index(b"/Contents") - 40  # a byte inside the signed range, before the signature
    tampered[at] ^= 0x01
    with client_from(NORMAL_ADDRESSES[0], base) as client:
        assert verify(client, sealed)[:2] == (200, "TOTAL_PASSED")
        assert verify(client, bytes(tampered))[:2] == (200, "TOTAL_FAILED")
