"""Public verification of a served county under hostile uploads (issue 21, finding 6), over real TCP.

Shared by the outcome test (``tests/security/test_verify_served_hostile.py``) and the benchmark
(``bench/bench_verify_served_hostile.py``): ``yizhang serve`` on 127.0.0.1 (an ephemeral port) over a demo
home, anonymous clients that upload the worst PDFs to ``POST /v1/verify`` in a loop, each from its own
loopback source address (127.0.0.2 …: the verification gate and the rate limiter key by client address, and
uvicorn trusts proxy headers from 127.0.0.1 only), and ordinary clients verifying a sealed document of the
county, spread over addresses 127.0.1.x so that the per-address rate limit never answers them.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests._fixtures.hostile import MiB, _content_bomb, many_pages
from tests.reliability._home import YIZHANG, free_port, stop_server, wait_ready

HOSTILE_ADDRESSES = tuple(f"127.0.0.{i}" for i in range(2, 6))  # 4 anonymous clients
NORMAL_ADDRESSES = tuple(f"127.0.1.{i}" for i in range(1, 65))
#: What a hostile upload may get: a report refusing it (unread, over budget, failed), 413, or 429.
HOSTILE_CODES_429 = {"VERIFY_BUSY", "RATE_LIMITED"}


def worst_pdfs(sealed: bytes) -> dict[str, bytes]:
    """The uploads that cost a verifier the most (``bench/bench_verify_hostile.py`` and the review): the
    200 000-object file, the 0.3 MB xref-stream bomb, a 45 000-object file just inside the budget (the
    expensive honest-looking case), a 256 MiB content bomb on a sealed page, the 60 000-page file."""
    from tests.unit.verify.test_budget import many_objects, xref_stream_bomb

    return {
        "200k-objects": many_objects(200_000),
        "xref-stream-bomb": xref_stream_bomb(),
        "45k-objects": many_objects(45_000),
        "content-flate-bomb": _content_bomb(sealed, 256 * MiB),
        "60k-pages": many_pages(60_000),
    }


@contextmanager
def serving(home: Path, env: dict[str, str], log: Path, workers: int = 2) -> Iterator[str]:
    """``yizhang serve`` on 127.0.0.1 and a free port; yields the base URL; SIGTERM at the end."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [YIZHANG, "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)]
            + ["--workers", str(workers)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(base, server, log)
        yield base
    finally:
        stop_server(server)


def client_from(address: str, base: str, timeout: float = 120.0) -> httpx.Client:
    """An HTTP client whose connections leave from the loopback ``address``."""
    return httpx.Client(base_url=base, transport=httpx.HTTPTransport(local_address=address), timeout=timeout)


def report_codes(report: dict[str, Any]) -> list[str]:
    codes = [r["code"] for r in report.get("reasons", [])]
    for sig in report.get("signatures", []):
        codes.extend(r["code"] for r in sig.get("reasons", []))
    return codes


BOUNDARY = "yizhang-served-hostile-0b5e"


def multipart(pdf: bytes) -> bytes:
    """The ``POST /v1/verify`` body for ``pdf``, encoded once (a sender re-encoding 10 MB per request spent
    more CPU than the server it attacked, on the same 2 cores)."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="doc.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    return head + pdf + f"\r\n--{BOUNDARY}--\r\n".encode()


def verify(client: httpx.Client, pdf: bytes, *, encoded: bytes | None = None) -> tuple[int, str, str]:
    """(status, indication or error code, first reason code) of one ``POST /v1/verify``; ``encoded``: the
    body already made by :func:`multipart`."""
    if encoded is not None:
        ctype = f"multipart/form-data; boundary={BOUNDARY}"
        r = client.post("/v1/verify", content=encoded, headers={"Content-Type": ctype})
    else:
        r = client.post("/v1/verify", files={"file": ("doc.pdf", pdf, "application/pdf")})
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code == 200:
        codes = report_codes(body)
        return 200, str(body.get("indication")), codes[0] if codes else ""
    return r.status_code, str(body.get("code", "")), ""


@dataclass
class HostileLoad:
    """``senders`` threads per address, each uploading the worst PDFs in turn until stopped. A refused
    upload (429) waits ``backoff_s`` and sends the next one, as a client that ignores Retry-After would."""

    base: str
    pdfs: dict[str, bytes]
    addresses: tuple[str, ...] = HOSTILE_ADDRESSES
    senders: int = 2
    backoff_s: float = 0.2
    answers: Counter[tuple[str, int, str, str]] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _send(self, address: str, offset: int) -> None:
        names = list(self.pdfs)
        bodies = {name: multipart(pdf) for name, pdf in self.pdfs.items()}
        i = offset
        with client_from(address, self.base) as client:
            while not self._stop.is_set():
                name = names[i % len(names)]
                i += 1
                try:
                    status, what, first = verify(client, self.pdfs[name], encoded=bodies[name])
                except httpx.HTTPError as exc:
                    status, what, first = -1, type(exc).__name__, ""
                with self._lock:
                    self.answers[(name, status, what, first)] += 1
                if status == 429:
                    time.sleep(self.backoff_s)

    def __enter__(self) -> HostileLoad:
        for n, address in enumerate(self.addresses):
            for s in range(self.senders):
                t = threading.Thread(target=self._send, args=(address, n + s), daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=180)


def run_hostile_for(base: str, pdfs: dict[str, bytes], seconds: float, senders: int, out: Any) -> None:
    """:class:`HostileLoad` for ``seconds``, its answers put on the queue ``out``: the benchmark runs it in
    a process of its own, so its threads do not share the GIL of the process measuring ordinary latency."""
    with HostileLoad(base, pdfs, senders=senders) as load:
        time.sleep(seconds)
    out.put(dict(load.answers))
