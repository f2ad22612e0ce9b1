"""SIGKILL a ``yizhang serve`` worker at random points of signing, under load: nothing lost, nothing doubled.

``yizhang serve --workers 2`` on a demo county on its own PostgreSQL database. ``YIZHANG_KILL_CLIENTS`` (6)
client threads submit signing requests without pause across the three township seals — from a template, or
(every third) an uploaded PDF — each with its own idempotency key, and retry 503, 429 and connection errors
(reset, server disconnected) with the same body and key, as a real client must; a request answered
``APPROVED`` but not sealed is submitted again with its key (the retry finishes the sealing). Meanwhile a
killer thread sends SIGKILL to one of the serve's worker processes (children of the uvicorn supervisor, read
from /proc), ``YIZHANG_WORKER_KILLS`` times (10 in CI; the full run is 100): each time it waits for a signing
request to be sent, sleeps a random delay in [0, w] (``w`` = the median latency of an uninterrupted signing
so far, so the kill lands anywhere in the request: idempotency lookup, request row, policy, number
reservation, stamping, token, timestamp, settle, request row SEALED, answer), kills a worker chosen at random,
and waits until the supervisor has started a new one and it is ready before the next kill (uvicorn's
multiprocess supervisor restarts a dead worker by itself; asserted: the worker count is back to 2).

Afterwards (the service stopped, then ``yizhang sweep-numbers --older-than 0``, whose voids are reported):
* every request ended ``SEALED`` exactly once, and one more retry of it returns the same request, number and
  sha256; no number given to two requests;
* one stored document and one ``SEAL_SIGNED`` entry per request; ``check_invariants`` with no open
  reservation (no gap, no duplicate, voids logged, no half-written row); the ledger audit ok;
* no 5xx other than 503; every sealed document verifies ``TOTAL_PASSED``.

Seed ``YIZHANG_KILL_SEED`` (default 8) for the kill delays and the worker chosen.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._home import (
    ACCEPTANCE,
    PYTHON,
    YIZHANG,
    DemoHome,
    _rows,
    check_invariants,
    free_port,
    stop_server,
    verify_stored,
    wait_ready,
)

KILLS = int(os.environ.get("YIZHANG_WORKER_KILLS", "10"))
CLIENTS = int(os.environ.get("YIZHANG_KILL_CLIENTS", "6"))
SEED = int(os.environ.get("YIZHANG_KILL_SEED", "8"))
TOWNSHIPS = ("兴江乡", "古龙岗镇", "梅窖镇")
CLERKS = {"兴江乡": "xj.clerk", "古龙岗镇": "glg.clerk", "梅窖镇": "mj.clerk"}
PDF_EVERY = 3  # every third request uploads a PDF, the others name a template
WORKERS = 2

pytestmark = [pytest.mark.postgres, pytest.mark.softhsm, pytest.mark.timeout(900 + 30 * KILLS)]


# ---- the serve's worker processes ---------------------------------------------------------------------


def _workers(supervisor: int) -> list[int]:
    """The uvicorn worker processes of the supervisor: its children started by multiprocessing's spawn
    (not its resource tracker)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == supervisor and fields[0] != "Z" and b"spawn_main" in cmdline:
            out.append(int(entry))
    return sorted(out)


def _all_started(log: Path, workers: list[int]) -> bool:
    """Every worker alive has logged its start, and every started worker has finished its startup."""
    text = log.read_text(encoding="utf-8", errors="replace")
    return all(f"Started server process [{pid}]" in text for pid in workers) and text.count(
        "Application startup complete"
    ) >= text.count("Started server process")


def _supervisor_restarts(log: Path) -> int:
    """Workers the supervisor found dead or unanswering and replaced ("Child process [pid] died")."""
    return log.read_text(encoding="utf-8", errors="replace").count("] died")


# ---- clients ------------------------------------------------------------------------------------------


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    codes_503: Counter[str] = field(default_factory=Counter)
    transport: Counter[str] = field(default_factory=Counter)
    transport_spans: list[tuple[float, float]] = field(default_factory=list)  # (sent, failed) of each
    server_errors: list[str] = field(default_factory=list)  # 5xx other than 503
    retries: int = 0  # attempts beyond the first of one logical call
    resubmits: int = 0  # whole requests submitted again because they came back APPROVED, not SEALED
    latencies: list[float] = field(default_factory=list)  # uninterrupted signing submissions
    in_flight: int = 0
    sent: threading.Event = field(default_factory=threading.Event)  # a signing submission was just sent

    def saw(self, r: httpx.Response) -> None:
        with self.lock:
            self.statuses[r.status_code] += 1
            if r.status_code == 503:
                try:
                    self.codes_503[str(r.json().get("code"))] += 1
                except ValueError:
                    self.codes_503["(not json)"] += 1
            elif r.status_code >= 500:
                self.server_errors.append(f"{r.status_code} {r.request.url.path}: {r.text[:300]}")


def _retriable_409(r: httpx.Response) -> bool:
    try:
        return r.status_code == 409 and r.json().get("code") == "IDEMPOTENCY_RACE"
    except ValueError:
        return False


def _call(client: httpx.Client, tally: Tally, method: str, url: str, **kw: Any) -> httpx.Response:
    """One logical call, retried on 503, 429 and connection errors (same body, same idempotency key), for
    at most three minutes."""
    signing = method == "POST"
    deadline = time.monotonic() + 180
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        if attempt > 1:
            with tally.lock:
                tally.retries += 1
        t0 = time.monotonic()
        if signing:
            with tally.lock:
                tally.in_flight += 1
            tally.sent.set()
        try:
            r = client.request(method, url, **kw)
        except httpx.TransportError as exc:
            with tally.lock:
                tally.transport[type(exc).__name__] += 1
                tally.transport_spans.append((t0, time.monotonic()))
            time.sleep(min(2.0, 0.1 * attempt))
            continue
        finally:
            if signing:
                with tally.lock:
                    tally.in_flight -= 1
        tally.saw(r)
        if r.status_code in (429, 503) or _retriable_409(r):
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 2.0) * random.uniform(0.5, 1.0))
            continue
        if signing and attempt == 1 and r.status_code == 201:  # a new signing, not a replay
            with tally.lock:
                tally.latencies.append(time.monotonic() - t0)
        return r
    raise AssertionError(f"{method} {url}: no answer but 503/429/errors for 180 s ({attempt} attempts)")


@dataclass
class Job:
    key: str
    township: str
    pdf: bool
    final: dict[str, Any] | None = None


def _render_pdfs(demo: DemoHome, out: Path) -> dict[str, bytes]:
    """One unsealed source PDF per township, rendered in a subprocess (the pytest process loads no signer)."""
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from signer import render_template\n"
        "for township, path in json.loads(sys.argv[1]).items():\n"
        "    data = json.loads(Path(sys.argv[2]).read_text(encoding='utf-8'))\n"
        "    data['issuer'] = f'兴国县{township}人民政府'\n"
        "    Path(path).write_bytes(render_template('acceptance_notice', data))\n"
    )
    paths = {t: str(out / f"source-{k}.pdf") for k, t in enumerate(TOWNSHIPS)}
    acceptance = out / "acceptance.json"
    acceptance.write_text(json.dumps(ACCEPTANCE, ensure_ascii=False), encoding="utf-8")
    proc = subprocess.run(
        [PYTHON, "-c", script, json.dumps(paths, ensure_ascii=False), str(acceptance)],
        env=demo.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    pdfs = {t: Path(p).read_bytes() for t, p in paths.items()}
    assert all(p.startswith(b"%PDF-") for p in pdfs.values())
    return pdfs


def test_kill_serve_workers_while_signing(pg_demo: DemoHome, work_dir: Path) -> None:
    demo = pg_demo
    rng = random.Random(SEED)
    people = {}
    for username in CLERKS.values():
        issued = json.loads(
            demo.run("account", "token", "--username", username, "--ttl-days", "1", "--json").stdout
        )
        token = next(v for v in issued.values() if isinstance(v, str) and v.startswith("yz_"))
        people[username] = {"Authorization": f"Bearer {token}"}
    pdfs = _render_pdfs(demo, work_dir)
    before = {
        "documents": int(_rows(demo.url, "SELECT count(*) FROM sig_documents")[0][0]),
        "signed": int(
            _rows(demo.url, "SELECT count(*) FROM ledger_entries WHERE kind = 'SEAL_SIGNED'")[0][0]
        ),
    }

    jobs: list[Job] = []
    jobs_lock = threading.Lock()
    tally = Tally()
    stop = threading.Event()  # a client failed: everyone gives up
    kills_done = threading.Event()  # no new requests after this
    kills: list[dict[str, Any]] = []

    def new_job() -> Job:
        with jobs_lock:
            i = len(jobs)
            job = Job(f"wkill-{i:06d}", TOWNSHIPS[i % 3], i % PDF_EVERY == PDF_EVERY - 1)
            jobs.append(job)
            return job

    def submit(client: httpx.Client, job: Job) -> httpx.Response:
        seal = demo.seals[job.township]
        auth = people[CLERKS[job.township]]
        fields = {
            "seal_id": seal["seal_id"], "matter_code": "SX-002", "stage": "受理",
            "document_kind": "受理通知书", "reason": "worker kill", "idempotency_key": job.key,
        }  # fmt: skip
        if job.pdf:
            files = {"file": ("source.pdf", pdfs[job.township], "application/pdf")}
            url = "/v1/signing-requests"
            return _call(client, tally, "POST", url, headers=auth, data=fields, files=files)
        body = {
            **fields, "template": "acceptance_notice",
            "data": {**ACCEPTANCE, "issuer": f"兴国县{job.township}人民政府"},
        }  # fmt: skip
        return _call(client, tally, "POST", "/v1/signing-requests/from-template", headers=auth, json=body)

    def run(client: httpx.Client, job: Job) -> None:
        view: dict[str, Any] = {}
        for _ in range(20):
            r = submit(client, job)
            assert r.status_code in (200, 201), f"{job.key}: {r.status_code} {r.text[:300]}"
            view = r.json()
            if view["status"] == "SEALED":
                break
            # APPROVED but not sealed (e.g. the sealing service was not wired yet): submit it again.
            assert view["status"] == "APPROVED", f"{job.key}: {view}"
            with tally.lock:
                tally.resubmits += 1
            time.sleep(0.5)
        assert view["status"] == "SEALED", f"{job.key}: {view}"
        # One more retry of the whole request with its key: the same request, number and document.
        again = submit(client, job)
        assert again.status_code == 200, f"{job.key}: {again.status_code} {again.text[:300]}"
        a = again.json()
        assert (a["request_id"], a["status"], a["document_number"], a["sealed_sha256"]) == (
            view["request_id"], "SEALED", view["document_number"], view["sealed_sha256"],
        ), (view, a)  # fmt: skip
        job.final = view

    def client_loop(base: str) -> None:
        with httpx.Client(base_url=base, timeout=180) as client:
            while not stop.is_set() and not kills_done.is_set():
                try:
                    run(client, new_job())
                except BaseException:
                    stop.set()
                    raise

    def killer(supervisor: int, log: Path) -> None:
        while len(kills) < KILLS and not stop.is_set():
            # Wait for a fresh signing submission, then a random moment within one typical signing.
            tally.sent.clear()
            if not tally.sent.wait(60):
                raise AssertionError("no signing request sent for 60 s")
            with tally.lock:
                window = statistics.median(tally.latencies[-40:]) if tally.latencies else 0.5
            delay = rng.uniform(0, window)
            time.sleep(delay)
            workers = _workers(supervisor)
            assert len(workers) == WORKERS, f"workers {workers}"
            victim = rng.choice(workers)
            with tally.lock:
                in_flight = tally.in_flight
            t_kill = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            kills.append(
                {"pid": victim, "t": t_kill, "delay": delay, "window": window, "in_flight": in_flight}
            )  # fmt: skip
            # The supervisor restarts it by itself (it checks every 0.5 s); wait until the new worker
            # has finished its startup and the service answers ready.
            deadline = time.monotonic() + 300
            while True:
                alive = _workers(supervisor)
                if len(alive) == WORKERS and victim not in alive and _all_started(log, alive):
                    break
                assert time.monotonic() < deadline, f"worker not replaced: {alive} {victim}"
                time.sleep(0.2)
            kills[-1]["replaced_s"] = time.monotonic() - t_kill
            while httpx.get(f"{base}/readyz", timeout=30).status_code != 200:
                assert time.monotonic() < deadline, "not ready again"
                time.sleep(0.5)
            time.sleep(rng.uniform(0.2, 1.0))  # some load on both workers before the next kill
        kills_done.set()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work_dir / "serve.log"
    env = {**demo.env, "YIZHANG_CHECKPOINT_INTERVAL_S": "5"}
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [YIZHANG, "serve", "--home", str(demo.home), "--port", str(port), "--workers", str(WORKERS)],
            env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    started_at = time.monotonic()
    errors: list[BaseException] = []

    def guarded(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)
            stop.set()

    try:
        wait_ready(base, server, log)
        for _ in range(600):  # both workers up (the first readyz 200 may come from one alone)
            alive = _workers(server.pid)
            if len(alive) == WORKERS and _all_started(log, alive):
                break
            time.sleep(0.5)
        restarts_at_start = _supervisor_restarts(log)
        assert len(_workers(server.pid)) == WORKERS, _workers(server.pid)
        threads = [threading.Thread(target=guarded, args=(killer, server.pid, log))] + [
            threading.Thread(target=guarded, args=(client_loop, base)) for _ in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        assert server.poll() is None, "the supervisor died"
        assert len(_workers(server.pid)) == WORKERS
        restarts = _supervisor_restarts(log) - restarts_at_start
    finally:
        elapsed = time.monotonic() - started_at
        stop_server(server, timeout=60)

    assert len(kills) == KILLS
    assert not tally.server_errors, tally.server_errors[:5]

    # Reservations left by a kill whose client retry did not take them over: the sweeper voids them.
    voided = json.loads(demo.run("sweep-numbers", "--older-than", "0", "--json").stdout)["voided"]
    swept = len(voided) if isinstance(voided, list) else int(voided)

    # Every request sealed exactly once, with the number and document the client was told.
    finals = [j.final for j in jobs]
    assert all(f is not None and f["status"] == "SEALED" for f in finals), [
        j.key for j in jobs if j.final is None
    ]
    requests = len(jobs)
    numbers = [f["document_number"] for f in finals if f]
    assert len(set(numbers)) == requests, "a document number was given to two requests"
    assert len({f["request_id"] for f in finals if f}) == requests
    stored = {
        key: (number, sha, idx)
        for key, number, sha, idx in _rows(
            demo.url, "SELECT idempotency_key, document_number, sha256, ledger_index FROM sig_documents"
        )
    }
    for f in finals:
        assert f is not None
        assert stored[f"api:{f['request_id']}"] == (
            f["document_number"], f["sealed_sha256"], f["ledger_index"],
        ), f  # fmt: skip
    entries = Counter(
        key
        for (key,) in _rows(demo.url, "SELECT idempotency_key FROM ledger_entries WHERE kind = 'SEAL_SIGNED'")
    )
    for f in finals:
        assert f is not None
        assert entries[f"seal:api:{f['request_id']}"] == 1, f
    rows = _rows(
        demo.url,
        "SELECT idempotency_key, status FROM api_signing_requests WHERE idempotency_key LIKE 'wkill-%'",
    )
    assert len(rows) == requests and all(status == "SEALED" for _, status in rows), Counter(
        s for _, s in rows
    )
    after_docs = int(_rows(demo.url, "SELECT count(*) FROM sig_documents")[0][0])
    after_signed = int(
        _rows(demo.url, "SELECT count(*) FROM ledger_entries WHERE kind = 'SEAL_SIGNED'")[0][0]
    )
    assert after_docs - before["documents"] == requests, "a stored document too many or too few"
    assert after_signed - before["signed"] == requests, "a SEAL_SIGNED entry too many or too few"
    counts = check_invariants(demo.url)  # no open keys: every number USED or VOID
    report = demo.audit()

    # Every document the service handed out verifies.
    result = verify_stored(demo, set(numbers), work_dir / "sealed", timeout=3600)
    assert result["checked"] == requests and result["passed"] == requests, result

    # A kill "hit" a request when a request sent before it failed on the connection after it.
    hits = sum(any(sent < k["t"] <= failed for sent, failed in tally.transport_spans) for k in kills)
    print(
        f"\nworker kill: kills={len(kills)} hit_in_flight={hits} "
        f"in_flight_at_kill={sum(k['in_flight'] > 0 for k in kills)} seed={SEED} "
        f"requests={requests} (pdf={sum(j.pdf for j in jobs)}) clients={CLIENTS} elapsed={elapsed:.0f}s "
        f"statuses={dict(sorted(tally.statuses.items()))} 503={dict(tally.codes_503)} "
        f"retries={tally.retries} resubmits={tally.resubmits} transport_errors={dict(tally.transport)} "
        f"replaced_s(median/max)={statistics.median(k['replaced_s'] for k in kills):.1f}/"
        f"{max(k['replaced_s'] for k in kills):.1f} supervisor_restarts={restarts} "
        f"(not ours: {restarts - len(kills)}; at start: {restarts_at_start}) swept_void={swept} "
        f"used={counts['used']} void={counts['void']} entries={counts['entries']} audit_ok={report['ok']} "
        f"server_errors=0 lost=0 duplicates=0 verified={result['passed']}/{result['checked']}"
    )
