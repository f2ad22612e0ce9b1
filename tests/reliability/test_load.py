"""Load with a database outage in the middle: nothing lost, nothing doubled, every document verifies.

``yizhang serve --workers 2`` on a demo county on its own PostgreSQL database. ``YIZHANG_LOAD_CLIENTS``
(default 32) client threads send ``YIZHANG_LOAD_REQUESTS`` (default 240 in CI; the full run is 10,000)
signing requests over HTTP across the three township seals and the department's No. 2 seal (every tenth
request: the clerk submits, the request waits for approval, the township principal approves, the seal is
applied). While they run, PostgreSQL is stopped (``pg_ctlcluster ... stop -m fast``) for a few seconds and
started again: ``/readyz`` must say 503 while it is down and 200 again by itself after, requests meet
deliberate 503s (``DATABASE_UNAVAILABLE``) or connection errors, and clients retry with the same
idempotency key, as a real client would.

Afterwards, read straight from the tables and from the answers:
* every request ended ``SEALED`` exactly once: one stored document and one ``SEAL_SIGNED`` entry per
  request, the number the client was told is the one in the ledger, no number twice;
* the number sequences have no gap and no duplicate (voids recorded), ``check_invariants``;
* the ledger audits ok (chain, tree, every checkpoint);
* no 5xx other than 503; every sealed document downloads and verifies (``TOTAL_PASSED``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
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
    wait_ready,
)

REQUESTS = int(os.environ.get("YIZHANG_LOAD_REQUESTS", "240"))
CLIENTS = int(os.environ.get("YIZHANG_LOAD_CLIENTS", "32"))
OUTAGE_S = float(os.environ.get("YIZHANG_LOAD_OUTAGE_S", "4"))
VERIFY_DRIVER = str(Path(__file__).with_name("_verify_driver.py"))
NO2_EVERY = 10
PERMIT = {
    "unit_name": "梅窖镇悦来宾馆",
    "legal_representative": "陈某某",
    "address": "兴国县梅窖镇圩镇街12号",
    "licensed_items": "住宿",
    "valid_from": "2026年3月5日",
    "valid_until": "2030年3月4日",
    "date": "2026年3月5日",
}


def _cluster() -> tuple[str, str]:
    """The local PostgreSQL cluster (version, name) serving 127.0.0.1:5432."""
    if shutil.which("pg_lsclusters") is None:
        pytest.fail("pg_lsclusters not found: the load test stops and starts the local PostgreSQL cluster")
    for line in subprocess.run(
        ["pg_lsclusters", "-h"], capture_output=True, text=True, check=True
    ).stdout.splitlines():
        ver, name, port, *_ = line.split()
        if port == "5432":
            return ver, name
    pytest.fail("no local PostgreSQL cluster on port 5432")


def _pg(action: str, cluster: tuple[str, str]) -> None:
    args = ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action]
    if action == "stop":
        args += ["-m", "fast"]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    if action == "start":
        for _ in range(120):
            if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError("PostgreSQL did not come back")


@dataclass
class Job:
    i: int
    key: str
    township: str  # "兴江乡" … or "no2"
    attempts: int = 0
    final: dict[str, Any] | None = None
    statuses: list[int] = field(default_factory=list)


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # 5xx other than 503

    def saw(self, r: httpx.Response | None, exc: str | None = None) -> None:
        with self.lock:
            if r is None:
                self.errors[exc or "?"] += 1
                return
            self.statuses[r.status_code] += 1
            if r.status_code >= 500 and r.status_code != 503:
                self.server_errors.append(
                    f"{r.status_code} {r.request.method} {r.request.url.path}: {r.text[:300]}"
                )


def _call(client: httpx.Client, tally: Tally, method: str, url: str, **kw: Any) -> httpx.Response:
    """One logical call, retried on 503, 429 and connection errors (same body: same idempotency key), for
    at most two minutes."""
    deadline = time.monotonic() + 120
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        try:
            r = client.request(method, url, **kw)
        except httpx.TransportError as exc:
            tally.saw(None, type(exc).__name__)
            time.sleep(min(2.0, 0.1 * attempt))
            continue
        tally.saw(r)
        if r.status_code in (429, 503):
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 2.0) * random.uniform(0.5, 1.0))
            continue
        return r
    raise AssertionError(f"{method} {url}: no answer but 503/429/errors for 120 s ({attempt} attempts)")


@pytest.mark.timeout(900 + REQUESTS)
def test_load_with_a_database_outage(pg_demo: DemoHome, work_dir: Path) -> None:
    demo = pg_demo
    cluster = _cluster()
    people = {}
    for username in ("xj.clerk", "glg.clerk", "mj.clerk", "mj.principal"):
        issued = json.loads(
            demo.run("account", "token", "--username", username, "--ttl-days", "1", "--json").stdout
        )
        token = next(v for v in issued.values() if isinstance(v, str) and v.startswith("yz_"))
        people[username] = {"Authorization": f"Bearer {token}"}
    no2 = next(s for s in demo.demo["seals"] if s["kind"] == "DEPARTMENT_NO2")
    clerk_of = {"兴江乡": "xj.clerk", "古龙岗镇": "glg.clerk", "梅窖镇": "mj.clerk", "no2": "mj.clerk"}
    before = {
        "documents": int(_rows(demo.url, "SELECT count(*) FROM sig_documents")[0][0]),
        "signed": int(
            _rows(demo.url, "SELECT count(*) FROM ledger_entries WHERE kind = 'SEAL_SIGNED'")[0][0]
        ),
    }

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work_dir / "serve.log"
    env = {**demo.env, "YIZHANG_CHECKPOINT_INTERVAL_S": "5"}
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [YIZHANG, "serve", "--home", str(demo.home), "--port", str(port), "--workers", "2"],
            env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    tally = Tally()
    jobs = [
        Job(
            i,
            f"load-{i:06d}",
            "no2" if i % NO2_EVERY == NO2_EVERY - 1 else ("兴江乡", "古龙岗镇", "梅窖镇")[i % 3],
        )
        for i in range(REQUESTS)
    ]
    done = Counter[str]()
    outage: dict[str, Any] = {}
    pg_down = threading.Event()
    stop = threading.Event()  # a client failed: the others and the chaos thread give up

    def body(job: Job) -> dict[str, Any]:
        if job.township == "no2":
            return {
                "seal_id": no2["seal_id"],
                "matter_code": "XG-14",
                "stage": "审批",
                "document_kind": "许可证及其附件",
                "reason": "load",
                "idempotency_key": job.key,
                "template": "public_place_hygiene_permit",
                "data": PERMIT,
            }
        return {
            "seal_id": demo.seals[job.township]["seal_id"], "matter_code": "SX-002", "stage": "受理",
            "document_kind": "受理通知书", "reason": "load", "idempotency_key": job.key,
            "template": "acceptance_notice",
            "data": {**ACCEPTANCE, "issuer": f"兴国县{job.township}人民政府"},
        }  # fmt: skip

    def run(job: Job, client: httpx.Client) -> None:
        auth = people[clerk_of[job.township]]
        r = _call(client, tally, "POST", "/v1/signing-requests/from-template", headers=auth, json=body(job))
        assert r.status_code in (200, 201), f"{job.key}: {r.status_code} {r.text[:300]}"
        view = r.json()
        if view["status"] == "PENDING_APPROVAL":
            assert job.township == "no2", view
            r = _call(
                client, tally, "POST", f"/v1/signing-requests/{view['request_id']}/approve",
                headers=people["mj.principal"], json={"comment": "同意"},
            )  # fmt: skip
            if r.status_code == 409:  # approved by an earlier attempt whose answer was lost in the outage
                r = _call(client, tally, "GET", f"/v1/signing-requests/{view['request_id']}", headers=auth)
            assert r.status_code == 200, f"{job.key}: approve {r.status_code} {r.text[:300]}"
            view = r.json()
        if view["status"] != "SEALED":  # e.g. the sealing step met the outage: ask for it again
            r = _call(client, tally, "POST", f"/v1/signing-requests/{view['request_id']}/seal", headers=auth)
            assert r.status_code == 200, f"{job.key}: seal again {r.status_code} {r.text[:300]}"
            view = r.json()
        assert view["status"] == "SEALED", f"{job.key}: {view}"
        job.final = view
        with tally.lock:
            done["sealed"] += 1

    def worker(batch: list[Job]) -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            for job in batch:
                if stop.is_set():
                    return
                try:
                    run(job, client)
                except BaseException:
                    stop.set()
                    raise

    def chaos() -> None:
        """Stop PostgreSQL once a third of the requests are sealed; check /readyz; start it again."""
        while done["sealed"] < REQUESTS // 3:
            if stop.is_set():
                return
            time.sleep(0.2)
        outage["at_sealed"] = done["sealed"]
        _pg("stop", cluster)
        pg_down.set()
        t0 = time.monotonic()
        ready_while_down = []
        while time.monotonic() - t0 < OUTAGE_S:
            try:
                ready_while_down.append(httpx.get(f"{base}/readyz", timeout=10).status_code)
            except httpx.HTTPError as exc:
                ready_while_down.append(type(exc).__name__)
            time.sleep(0.5)
        outage["readyz_while_down"] = ready_while_down
        _pg("start", cluster)
        pg_down.clear()
        for _ in range(240):
            try:
                if httpx.get(f"{base}/readyz", timeout=10).status_code == 200:
                    outage["recovered"] = True
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        outage["recovered"] = False

    started = time.monotonic()
    try:
        wait_ready(base, server, log)
        batches = [jobs[k::CLIENTS] for k in range(CLIENTS)]
        with ThreadPoolExecutor(CLIENTS + 1) as pool:
            chaos_f = pool.submit(chaos)
            futures = [pool.submit(worker, b) for b in batches]
            for f in futures:
                f.result()
            chaos_f.result()
        # What the clients download is what was sealed (a sample; the rest is checked through the store).
        with httpx.Client(base_url=base, timeout=120) as client:
            for job in jobs[:: max(1, REQUESTS // 20)]:
                assert job.final is not None
                r = _call(client, tally, "GET", f"/v1/signing-requests/{job.final['request_id']}/document",
                          headers=people[clerk_of[job.township]])  # fmt: skip
                assert (
                    r.status_code == 200
                    and hashlib.sha256(r.content).hexdigest() == job.final["sealed_sha256"]
                )
    finally:
        if pg_down.is_set():
            _pg("start", cluster)
        elapsed = time.monotonic() - started
        stop_server(server)

    # The outage was seen and survived.
    assert outage.get("recovered") is True, outage
    assert 503 in outage["readyz_while_down"], outage
    assert not tally.server_errors, tally.server_errors[:5]

    # One sealed document and one SEAL_SIGNED entry per request, the numbers the clients were told.
    finals = [j.final for j in jobs]
    assert all(f is not None and f["status"] == "SEALED" for f in finals)
    numbers = [f["document_number"] for f in finals if f]
    assert len(set(numbers)) == REQUESTS, "a document number was given to two requests"
    stored = {
        number: (sha, idx)
        for number, sha, idx in _rows(
            demo.url, "SELECT document_number, sha256, ledger_index FROM sig_documents"
        )
    }
    for f in finals:
        assert f is not None
        sha, idx = stored[f["document_number"]]
        assert (sha, idx) == (f["sealed_sha256"], f["ledger_index"]), f
    after_docs = int(_rows(demo.url, "SELECT count(*) FROM sig_documents")[0][0])
    after_signed = int(
        _rows(demo.url, "SELECT count(*) FROM ledger_entries WHERE kind = 'SEAL_SIGNED'")[0][0]
    )
    assert after_docs - before["documents"] == REQUESTS
    assert after_signed - before["signed"] == REQUESTS
    counts = check_invariants(demo.url)
    report = demo.audit()

    # Every document the service handed out verifies.
    out_dir = work_dir / "sealed"
    out_dir.mkdir()
    position = {number: k for k, number in enumerate(numbers)}
    for number, blob in _rows(demo.url, "SELECT document_number, sealed FROM sig_documents"):
        if number in position:
            (out_dir / f"{position[number]}.pdf").write_bytes(bytes(blob))
    assert sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in out_dir.glob("*.pdf")) == sorted(
        f["sealed_sha256"] for f in finals if f
    )
    verified = subprocess.run(
        [PYTHON, VERIFY_DRIVER, str(demo.home), str(out_dir)],
        env=demo.env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr[-3000:]
    result = json.loads(verified.stdout)
    assert result["checked"] == REQUESTS and result["passed"] == REQUESTS, result

    print(
        f"\nload: requests={REQUESTS} clients={CLIENTS} no2={sum(j.township == 'no2' for j in jobs)} "
        f"elapsed={elapsed:.0f}s sealed/s={REQUESTS / elapsed:.1f} "
        f"statuses={dict(sorted(tally.statuses.items()))} "
        f"transport_errors={dict(tally.errors)} outage_at={outage['at_sealed']} "
        f"readyz_while_down={outage['readyz_while_down']} server_errors=0 lost=0 duplicates=0 "
        f"used={counts['used']} void={counts['void']} entries={counts['entries']} audit_ok={report['ok']} "
        f"verified={result['passed']}/{result['checked']}"
    )
