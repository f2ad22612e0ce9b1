"""Hostile PDFs over real HTTP to every PDF upload path: an answer, never a 5xx, time and memory bounded.

``yizhang serve --workers 1`` on a demo county on its own PostgreSQL database, in a subprocess (the pytest
process never opens a SoftHSM configuration of its own; with one worker the served process *is* the worker,
so its RSS can be read from ``/proc/<pid>/status``). An in-process server was not used: it would load the
token into the pytest process (one SoftHSM configuration per process) and hide what the real entry point,
its middleware and its verification sandbox do.

Inputs (``YIZHANG_UPLOAD_FUZZ_CASES`` mutated cases, default 24 in CI; seed ``YIZHANG_UPLOAD_FUZZ_SEED``):
every file of ``tests/data/corpus/foreign`` (its manifest), then mutations of the demo's sealed PDFs and of
the corpus — byte flips, truncations, splices of two files, inserted garbage, huge declared ``/Length``,
``/Count``, ``/Size`` values, deep array and dictionary nesting, xref and ``startxref`` garbage, and a
Flate bomb (16–256 MiB inflated) appended as an incremental update. Each input goes to every PDF upload
route, found from the route table (a new upload route fails ``test_every_pdf_upload_route_is_fuzzed`` until
it is added here):

* ``POST /v1/verify`` (public): 200 with a report (an indication, or ``unreadable`` with its code), or a
  4xx ``{code, message}``;
* ``POST /v1/signing-requests`` as a clerk of 兴江乡 with its own seal (the policy allows it: the bytes
  reach the signer): 201 sealed, or a 4xx ``{code, message}`` (``NOT_A_PDF``, ``PDF_MALFORMED`` …);
* ``POST /v1/signing-requests/batch``: 200 with one result per item, each sealed or ``{code, message}``;
* ``POST /verify`` (the public verification page): an HTML page with a verdict, or a 4xx page;
* ``POST /ui/clerk/submit`` (the console's upload, session + CSRF): a redirect, never a 5xx.

Asserted: no 5xx except a deliberate 503 with its code (database, token, TSA unavailable); every JSON 4xx
has a stable UPPER_SNAKE ``code`` and a ``message``; each request ends within the configured hard limits
(verification sandbox timeout + token timeout) plus a generous margin — a bound against hangs, not a
timing assertion; the worker's RSS after the run stays under its RSS after warm-up plus a bound tied to
the configured PDF size limit; ``/readyz`` answers 200 at the end; the ledger audits ok. Oversized bodies
(a declared ``Content-Length`` far over the limit) are refused with 413 before they are read.

The server runs with ``YIZHANG_MAX_PDF_BYTES`` = 8 MiB, so the memory bound means something. Each input comes
from its own client address (``X-Forwarded-For``, trusted from 127.0.0.1 as behind the TLS terminator):
otherwise the public routes' per-address rate limit (5/s) would turn the fuzz into a test of the limiter;
the clerk's per-account limit is met with a retry after ``Retry-After``, as a client would.

Figures (max wall time per path, RSS before/after, counts per status and code) are printed and written
to ``test-output/reliability/upload-fuzz.json``.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import socket
import subprocess
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._home import ROOT, YIZHANG, DemoHome, check_invariants, free_port, wait_ready

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]

CASES = int(os.environ.get("YIZHANG_UPLOAD_FUZZ_CASES", "24"))
SEED = int(os.environ.get("YIZHANG_UPLOAD_FUZZ_SEED", "2026"))
THREADS = int(os.environ.get("YIZHANG_UPLOAD_FUZZ_THREADS", "2"))
CORPUS = ROOT / "tests" / "data" / "corpus" / "foreign"
OUT = ROOT / "test-output" / "reliability"
FAILED = OUT / "upload-fuzz-failures"  # inputs that drew a violation, to replay
#: The PDF size limit of the served county (small, so the memory bound below means something).
MAX_PDF_BYTES = 8 * 1024 * 1024
#: A bound against hangs: the verification sandbox's wall timeout (verifier.VerifyLimits, 20 s) plus the
#: token call bound (settings.token_timeout_s, 10 s), plus a wide margin for a busy shared machine.
MARGIN_S = 90.0
#: Growth of the worker's RSS allowed between warm-up and the end: a few PDFs at the size limit in flight
#: (the upload, its copy in the database row, pyHanko's reader) plus allocator slack.
RSS_GROWTH_BOUND = 12 * MAX_PDF_BYTES + 96 * 1024 * 1024
#: The only 5xx allowed: a deliberate 503 naming what is unavailable.
DELIBERATE_503 = {"DATABASE_UNAVAILABLE", "TSA_UNAVAILABLE", "TRUST_NOT_CONFIGURED"}
DELIBERATE_503_FAMILIES = {"keystore", "unavailable"}
CODE = re.compile(r"^[A-Z][A-Z0-9_]{2,63}$")
#: Upload routes of the OpenAPI document and the console, and the ones not fuzzed here (with why).
FUZZED = {"/v1/verify", "/v1/signing-requests", "/v1/signing-requests/batch", "/verify", "/ui/clerk/submit"}
NOT_PDF = {"/v1/catalogs"}  # catalog CSV/JSON uploads: no PDF parser behind them
#: Department officers only: an attestation upload is first verified by verifier.verify_document exactly as
#: POST /v1/verify (fuzzed here) verifies it, and refused unless TOTAL_PASSED (tests/integration/api/
#: test_attestation.py); fuzzing it needs a department seal the served demo county does not have.
NOT_FUZZED_YET = {"/v1/attestations", "/ui/attest"}


# ---- inputs ----------------------------------------------------------------------------------------------


def corpus_files() -> list[tuple[str, bytes]]:
    with (CORPUS / "manifest.csv").open(encoding="utf-8") as f:
        names = [row["file"] for row in csv.DictReader(f)]
    return [(f"corpus:{n}", (CORPUS / n).read_bytes()) for n in names]


_BOMBS: dict[int, bytes] = {}


def _bomb(size: int) -> bytes:
    """``size`` zero bytes, Flate-compressed (cached: compressing 256 MiB takes a while)."""
    if size not in _BOMBS:
        _BOMBS[size] = zlib.compress(b"\0" * size, 9)
    return _BOMBS[size]


def _bomb_update(base: bytes, size: int) -> bytes:
    """An incremental update adding one Flate stream that inflates to ``size`` zero bytes, with its own xref
    section. Nothing refers to it: a reader that decodes every stream (``qpdf --check`` in the verifier)
    meets it, a reader that follows references does not."""
    startxref = re.findall(rb"startxref\s+(\d+)", base)
    sizes = re.findall(rb"/Size\s+(\d+)", base)
    roots = re.findall(rb"/Root\s+(\d+\s+\d+\s+R)", base)
    if not (startxref and sizes and roots):
        return base + b"\n" + _bomb(size)
    n = int(sizes[-1])
    body = _bomb(size)
    obj = b"%d 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % (n, len(body)) + body
    obj += b"\nendstream\nendobj\n"
    offset = len(base) + 1
    xref = b"xref\n%d 1\n%010d 00000 n \n" % (n, offset)
    trailer = b"trailer\n<< /Size %d /Root %s /Prev %s >>\nstartxref\n%d\n%%%%EOF\n" % (
        n + 1,
        roots[-1],
        startxref[-1],
        offset + len(obj),
    )
    return base + b"\n" + obj + xref + trailer


def mutate(rng: random.Random, seeds: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """One hostile variant of a seed file: (what was done, the bytes)."""
    name, data = rng.choice(seeds)
    what = rng.choice(
        ["flip", "truncate", "splice", "insert", "length", "count", "nesting", "xref", "bomb", "stack"]
    )
    size = len(data)
    if what == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 64)):
            i = rng.randrange(size)
            out[i] ^= rng.randint(1, 255)
        result = bytes(out)
    elif what == "truncate":
        result = data[: rng.randrange(8, size)]
    elif what == "splice":
        _, other = rng.choice(seeds)
        result = data[: rng.randrange(size)] + other[rng.randrange(len(other)) :]
    elif what == "insert":
        i = rng.randrange(size)
        garbage = rng.choice(
            [
                rng.randbytes(rng.randint(1, 8192)),
                b"obj << /Type /Catalog /Pages 999999 0 R >> endobj " * rng.randint(1, 200),
                b"\x00" * rng.randint(1, 100_000),
                b"(" * rng.randint(1, 50_000),
            ]
        )
        result = data[:i] + garbage + data[i:]
    elif what in ("length", "count"):
        key = rb"/Length" if what == "length" else rng.choice([rb"/Count", rb"/Size", rb"/N", rb"/First"])
        huge = rng.choice([b"2147483648", b"9223372036854775808", b"1" + b"0" * 40, b"-1", b"99999999999"])
        hits = [m.start() for m in re.finditer(re.escape(key) + rb"\s+\d+", data)]
        if hits:
            at = rng.choice(hits)
            m = re.match(re.escape(key) + rb"\s+\d+", data[at:])
            assert m is not None
            result = data[:at] + key + b" " + huge + data[at + m.end() :]
        else:
            result = data.replace(b"%%EOF", b"/Length " + huge + b" %%EOF", 1)
    elif what == "nesting":
        depth = rng.choice([1_000, 10_000, 200_000])
        opener, closer = rng.choice([(b"[", b"]"), (b"<</A ", b">>"), (b"[<</A ", b">>]")])
        deep = opener * depth + (closer * depth if rng.random() < 0.5 else b"")
        target = rng.choice([rb"/Type\s*/Catalog", rb"/Type\s*/Page\b", rb"trailer\s*<<"])
        m = re.search(target, data)
        at = m.end() if m else rng.randrange(size)
        result = data[:at] + b" /Deep " + deep + b" " + data[at:]
    elif what == "xref":
        choice = rng.randrange(4)
        if choice == 0:  # startxref pointing anywhere (or far beyond the end)
            result = re.sub(
                rb"startxref\s+\d+",
                b"startxref\n" + str(rng.choice([0, 1, size // 2, size * 1000, 2**63])).encode(),
                data,
            )
        elif choice == 1:  # the xref keyword and trailer garbled
            result = data.replace(b"xref", rng.randbytes(4)).replace(b"trailer", b"trai1er")
        elif choice == 2:  # garbage written over the last xref section or stream
            at = data.rfind(b"xref")
            at = at if at >= 0 else size - 200
            n = rng.randint(16, 512)
            result = data[:at] + rng.randbytes(n) + data[at + n :]
        else:  # xref sections claiming huge object numbers or entry widths (tables, or xref streams)
            result = re.sub(rb"xref\s+\d+\s+\d+", b"xref\n0 2147483647", data)
            result = re.sub(rb"/W\s*\[[^\]]*\]", b"/W [4 2147483647 2]", result, count=1)
    elif what == "bomb":
        result = _bomb_update(data, rng.choice([16, 64, 256]) * 1024 * 1024)
    else:  # "stack": several mutations at once
        first = mutate(rng, [(name, data)])
        second = mutate(rng, [first])
        return f"stack({first[0].split(':')[0]},{second[0].split(':')[0]}):{name}", second[1]
    if result == data:  # the pattern was not there: never send the seed itself as a "mutation"
        i = rng.randrange(size)
        result = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
        what += "+flip"
    return f"{what}:{name}", result


# ---- the served county -----------------------------------------------------------------------------------


def _rss(pid: int) -> int:
    """Resident set size of one process in bytes (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


@dataclass
class Tally:
    answers: Counter[str] = field(default_factory=Counter)  # "path status code"
    violations: list[str] = field(default_factory=list)
    max_s: dict[str, float] = field(default_factory=dict)
    slowest: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    sealed: int = 0
    unreadable: int = 0
    passed: list[str] = field(default_factory=list)  # mutated inputs /v1/verify still passed: to look at
    kinds: Counter[str] = field(default_factory=Counter)  # inputs per kind of mutation

    def merge(self, other: Tally) -> None:
        self.answers.update(other.answers)
        self.violations += other.violations
        for path, seconds in other.max_s.items():
            if seconds > self.max_s.get(path, 0.0):
                self.max_s[path] = seconds
                self.slowest[path] = other.slowest[path]
        self.requests += other.requests
        self.sealed += other.sealed
        self.unreadable += other.unreadable
        self.passed += other.passed
        self.kinds.update(other.kinds)

    def timed(self, path: str, what: str, seconds: float) -> None:
        self.requests += 1
        if seconds > self.max_s.get(path, 0.0):
            self.max_s[path] = seconds
            self.slowest[path] = what


def _check_json_error(tally: Tally, where: str, r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        tally.violations.append(f"{where}: {r.status_code} without a JSON body: {r.text[:200]!r}")
        return "NO_JSON"
    code = body.get("code") if isinstance(body, dict) else None
    if not (isinstance(code, str) and CODE.match(code) and body.get("message")):
        tally.violations.append(f"{where}: {r.status_code} without {{code, message}}: {r.text[:200]!r}")
        return "NO_CODE"
    if r.status_code >= 500 and not (
        r.status_code == 503 and (code in DELIBERATE_503 or body.get("family") in DELIBERATE_503_FAMILIES)
    ):
        tally.violations.append(f"{where}: {r.status_code} {code}: {r.text[:300]}")
    return code


class Fuzzer:
    def __init__(self, base: str, clerk: dict[str, str], seal_id: str, console: httpx.Client, csrf: str):
        self.base = base
        self.clerk = clerk
        self.seal_id = seal_id
        self.console = console
        self.csrf = csrf
        self._local = threading.local()  # one tally per client thread, merged at the end
        self._tallies: list[Tally] = []
        self._lock = threading.Lock()
        from core.settings import Settings
        from verifier import VerifyLimits

        # the configured hard limits: the verification sandbox's wall timeout, one token call's bound
        token_s = float(Settings.model_fields["token_timeout_s"].default)
        self.hard_limit_s = VerifyLimits().timeout_s + token_s + MARGIN_S

    @property
    def tally(self) -> Tally:
        mine: Tally | None = getattr(self._local, "tally", None)
        if mine is None:
            mine = self._local.tally = Tally()
            with self._lock:
                self._tallies.append(mine)
        return mine

    def merged(self) -> Tally:
        total = Tally()
        with self._lock:
            for part in self._tallies:
                total.merge(part)
        return total

    def _form(self, key: str) -> dict[str, str]:
        return {
            "seal_id": self.seal_id,
            "matter_code": "SX-002",
            "stage": "受理",
            "document_kind": "受理通知书",
            "reason": "fuzz",
            "idempotency_key": key,
        }

    def _send(self, client: httpx.Client, path: str, what: str, **kw: Any) -> httpx.Response | None:
        """One request, retried after a 429 (per-client or per-account rate limit) as a client would."""
        for _ in range(30):
            t0 = time.monotonic()
            try:
                r = client.post(path, **kw)
            except httpx.HTTPError as exc:
                self.tally.violations.append(f"{path} {what}: no answer: {type(exc).__name__} {exc}")
                return None
            elapsed = time.monotonic() - t0
            self.tally.timed(path, what, elapsed)
            if elapsed > self.hard_limit_s:
                self.tally.violations.append(f"{path} {what}: {elapsed:.1f} s > {self.hard_limit_s} s")
            if r.status_code != 429:
                return r
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 3.0))
        self.tally.violations.append(f"{path} {what}: still 429 after 30 tries")
        return None

    def one(self, index: int, what: str, pdf: bytes) -> None:
        """Send one input to every upload path and check each answer; keep the input if one failed."""
        before = len(self.tally.violations)  # this thread's own tally
        self._one(index, what, pdf)
        if len(self.tally.violations) > before:
            FAILED.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", what)[:80]
            (FAILED / f"{index:06d}-{safe}.pdf").write_bytes(pdf)

    def _one(self, index: int, what: str, pdf: bytes) -> None:
        t = self.tally
        # A distinct client address per input (the server trusts X-Forwarded-For from 127.0.0.1, as behind
        # its TLS terminator): the public routes' per-address rate limit would otherwise turn the fuzz into
        # a test of the rate limiter.
        fwd = {"X-Forwarded-For": f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"}
        files = {"file": ("fuzz.pdf", pdf, "application/pdf")}
        with httpx.Client(base_url=self.base, timeout=self.hard_limit_s + 30) as c:
            # 1. the public verification API
            r = self._send(c, "/v1/verify", what, files=files, headers=fwd)
            if r is not None:
                where = f"/v1/verify {what}"
                if r.status_code == 200:
                    report = r.json()
                    if report.get("indication") not in {"TOTAL_PASSED", "TOTAL_FAILED", "INDETERMINATE"}:
                        t.violations.append(f"{where}: no verdict: {r.text[:300]}")
                    codes = [x.get("code") for x in report.get("reasons", [])]
                    if report.get("unreadable"):
                        t.unreadable += 1
                        if not any(isinstance(c_, str) and CODE.match(c_) for c_ in codes):
                            t.violations.append(f"{where}: unreadable without a code: {r.text[:300]}")
                    t.answers[f"/v1/verify 200 {report.get('indication')}"] += 1
                    if report.get("indication") == "TOTAL_PASSED":
                        t.passed.append(what)
                else:
                    code = _check_json_error(t, where, r)
                    t.answers[f"/v1/verify {r.status_code} {code}"] += 1
            # 2. the clerk's upload
            key = f"fuzz-{SEED}-{index:06d}"
            r = self._send(
                c,
                "/v1/signing-requests",
                what,
                files=files,
                data=self._form(key + "-one"),
                headers=self.clerk,
            )
            if r is not None:
                where = f"/v1/signing-requests {what}"
                if r.status_code in (200, 201):
                    status = r.json().get("status")
                    t.sealed += status == "SEALED"
                    t.answers[f"/v1/signing-requests {r.status_code} {status}"] += 1
                else:
                    code = _check_json_error(t, where, r)
                    t.answers[f"/v1/signing-requests {r.status_code} {code}"] += 1
            # 3. the batch upload: this input and a truncated copy of it
            items = [self._form(key + "-b0"), self._form(key + "-b1")]
            batch_files = [
                ("files", ("a.pdf", pdf, "application/pdf")),
                ("files", ("b.pdf", pdf[: max(8, len(pdf) // 3)], "application/pdf")),
            ]
            r = self._send(
                c,
                "/v1/signing-requests/batch",
                what,
                files=batch_files,
                data={"items": json.dumps(items)},
                headers=self.clerk,
            )
            if r is not None:
                where = f"/v1/signing-requests/batch {what}"
                if r.status_code == 200:
                    for item in r.json().get("results", []):
                        status = int(item.get("status", 0))
                        if status >= 400:
                            err = item.get("error") or {}
                            item_code = err.get("code")
                            coded = isinstance(item_code, str) and CODE.match(item_code)
                            if not (coded and err.get("message")):
                                t.violations.append(f"{where}: item without {{code, message}}: {item}")
                            if status >= 500 and not (status == 503 and item_code in DELIBERATE_503):
                                t.violations.append(f"{where}: item {status} {item_code}")
                            t.answers[f"/v1/signing-requests/batch item {status} {item_code}"] += 1
                        else:
                            t.sealed += item.get("request", {}).get("status") == "SEALED"
                            t.answers[f"/v1/signing-requests/batch item {status}"] += 1
                else:
                    code = _check_json_error(t, where, r)
                    t.answers[f"/v1/signing-requests/batch {r.status_code} {code}"] += 1
            # 4. the public verification page
            r = self._send(c, "/verify", what, files=files, headers=fwd)
            if r is not None:
                verdict = re.search(r'id="verdict">([^<]+)<', r.text)
                if r.status_code == 200 and verdict is None:
                    t.violations.append(f"/verify {what}: 200 without a verdict")
                elif r.status_code >= 500 or (r.status_code != 200 and 'id="flash"' not in r.text):
                    t.violations.append(f"/verify {what}: {r.status_code} {r.text[:200]!r}")
                t.answers[f"/verify {r.status_code} {verdict.group(1) if verdict else ''}"] += 1
        # 5. the console's upload (one session shared by the threads: httpx.Client is thread-safe)
        r = self._send(
            self.console,
            "/ui/clerk/submit",
            what,
            files=files,
            data={**self._form("unused"), "csrf_token": self.csrf, "nonce": f"{SEED:06x}{index:018x}"[-24:]},
        )
        if r is not None:
            location = r.headers.get("location", "")
            # sealed: 303 to the request; refused: the form again (4xx) with the reason in its flash, the
            # clerk's entries kept (issue 23), or (older path) a 303 back to the clerk's page
            form_again = 400 <= r.status_code < 500 and 'id="flash"' in r.text
            if not form_again and (
                r.status_code != 303 or not location.startswith(("/ui/requests/", "/ui/clerk"))
            ):
                t.violations.append(f"/ui/clerk/submit {what}: {r.status_code} {location} {r.text[:200]!r}")
            outcome = "sealed" if location.startswith("/ui/requests/") else "refused"
            t.answers[f"/ui/clerk/submit {r.status_code} {outcome}"] += 1


def _declared_too_large(base: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """A request declaring a body far over the limit, with no body sent: refused before it is read."""
    host, port = base.removeprefix("http://").split(":")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{extra}"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 99999999999\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data) < 200:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace")


@pytest.fixture(scope="module")
def served(pg_demo: DemoHome) -> Any:
    demo = pg_demo
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "upload-fuzz-serve.log"  # kept: a 5xx's traceback is there, by its request id
    env = {**demo.env, "YIZHANG_MAX_PDF_BYTES": str(MAX_PDF_BYTES), "YIZHANG_CHECKPOINT_INTERVAL_S": "0"}
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [YIZHANG, "serve", "--home", str(demo.home), "--port", str(port), "--workers", "1"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(base, server, log)
        yield demo, base, server, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def test_every_pdf_upload_route_is_fuzzed(served: Any) -> None:
    """The route table's upload routes (multipart bodies with a binary part) are all covered here."""
    _demo, base, _server, _log = served
    spec = httpx.get(base + "/openapi.json", timeout=30).json()
    uploads = set()
    for path, ops in spec["paths"].items():
        for op in ops.values():
            content = (op.get("requestBody") or {}).get("content", {})
            if "multipart/form-data" in content:
                uploads.add(path)
    # the console's routes are not in the OpenAPI document: the body-limit table names them
    from api.app import UPLOAD_PATHS

    console = {p for p in UPLOAD_PATHS if not p.startswith("/v1/")}
    assert uploads | console <= FUZZED | NOT_PDF | NOT_FUZZED_YET, sorted(
        (uploads | console) - FUZZED - NOT_PDF - NOT_FUZZED_YET
    )
    assert FUZZED <= uploads | console | {"/v1/signing-requests/batch"}


@pytest.mark.timeout(1800 + 30 * CASES)
def test_hostile_pdfs_over_http(served: Any) -> None:
    demo, base, server, log = served
    issued = json.loads(
        demo.run("account", "token", "--username", "xj.clerk", "--ttl-days", "1", "--json").stdout
    )
    token = next(v for v in issued.values() if isinstance(v, str) and v.startswith("yz_"))
    clerk = {"Authorization": f"Bearer {token}"}
    seal_id = demo.seals["兴江乡"]["seal_id"]
    passwords = json.loads((demo.home / "secrets" / "demo-accounts.json").read_text())
    console = httpx.Client(base_url=base, timeout=180, follow_redirects=False)
    r = console.post("/ui/login", data={"username": "xj.clerk", "password": passwords["xj.clerk"]})
    assert r.status_code == 303, r.text
    m = re.search(r'name="csrf_token" value="([^"]+)"', console.get(r.headers["location"]).text)
    assert m, "no CSRF token on the clerk's page"
    fuzzer = Fuzzer(base, clerk, seal_id, console, m.group(1))

    sealed = [(f"sealed:{p.name}", p.read_bytes()) for p in sorted((demo.home / "sealed").glob("*.pdf"))]
    assert sealed, "the demo sealed no documents"
    corpus = corpus_files()
    seeds = sealed + corpus

    # Warm-up: every path once with a good sealed PDF (imports, pools, caches), then the baseline RSS.
    fuzzer.one(0, "warmup:" + sealed[0][0], sealed[0][1])
    rss_before = _rss(server.pid)
    started = time.monotonic()

    # Case i is made from its own generator (seed, i): reproducible alone, made when it is sent (2,000
    # inputs held at once would cost the test process ~0.5 GB).
    def run(i: int) -> None:
        if i < len(corpus):
            what, pdf = corpus[i]
        else:
            what, pdf = mutate(random.Random(SEED * 1_000_003 + i), seeds)
        fuzzer.tally.kinds[what.split(":")[0].split("(")[0]] += 1
        fuzzer.one(i + 1, what, pdf)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(run, range(len(corpus) + CASES)))

    # Oversized bodies are refused on their declared length, before a byte is read.
    too_large = {}
    for path, headers in (
        ("/v1/verify", {"X-Forwarded-For": "10.255.255.1"}),
        ("/v1/signing-requests", clerk),
        ("/verify", {"X-Forwarded-For": "10.255.255.2"}),
    ):
        status, body = _declared_too_large(base, path, headers)
        too_large[path] = status
        assert status == 413 and json.loads(body)["code"] == "PAYLOAD_TOO_LARGE", (path, status, body[:300])

    elapsed = time.monotonic() - started
    rss_after = _rss(server.pid)
    children = {pid: _rss(pid) for pid in _children(server.pid)}
    ready = httpx.get(base + "/readyz", timeout=30)
    console.close()
    t = fuzzer.merged()
    summary = {
        "seed": SEED,
        "cases": CASES,
        "inputs": len(corpus) + CASES,
        "input_kinds": dict(sorted(t.kinds.items())),
        "requests": t.requests,
        "violations": len(t.violations),
        "sealed": t.sealed,
        "verify_unreadable": t.unreadable,
        "max_seconds": {k: round(v, 2) for k, v in sorted(t.max_s.items())},
        "slowest_input": t.slowest,
        "hard_limit_s": fuzzer.hard_limit_s,
        "rss_mib_after_warmup": round(rss_before / 2**20, 1),
        "rss_mib_after": round(rss_after / 2**20, 1),
        "rss_growth_bound_mib": round(RSS_GROWTH_BOUND / 2**20, 1),
        "sandbox_children_rss_mib": [round(v / 2**20, 1) for v in children.values()],
        "seconds": round(elapsed, 1),
        "answers": dict(sorted(t.answers.items())),
        "verify_passed_inputs": t.passed,
        "declared_too_large": too_large,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "upload-fuzz.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    print("upload fuzz:", json.dumps(summary, ensure_ascii=False))
    assert not t.violations, "\n".join(t.violations[:20])
    assert server.poll() is None, log.read_text(errors="replace")[-3000:]
    assert ready.status_code == 200, ready.text
    assert rss_after < rss_before + RSS_GROWTH_BOUND, summary
    demo.audit()
    # numbers drawn for a document that then failed to seal are voided and logged, never reused
    print("upload fuzz numbers:", check_invariants(demo.url))
