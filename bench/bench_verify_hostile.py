"""Ordinary verifications while hostile uploads run: p50/p99 latency alone vs beside 4 hostile clients.

    .venv/bin/python bench/bench_verify_hostile.py [--seconds 10] [--rate 10] [--rounds 3] [--workers 2]

What the public ``POST /v1/verify`` route runs for each request, without the HTTP layer (no network at
all): the per-client admission (``api._verify_gate.VerifyGate``), then ``verify_document`` on the process-
wide sandbox pool of ``--workers`` workers, with the route's limits (``PUBLIC_TIMEOUT_S``).

* Normal load, open loop: a sealed one-page permit (signature timestamp, CRL in the DSS) sent at ``--rate``
  per second from distinct clients; latency from the scheduled start, so waiting in a queue counts.
* Hostile load: 4 clients, each with 4 senders back to back (the rate limit lets a client start 5/s; each
  upload used to hold a worker for seconds): the 200 000-object upload, the 0.3 MB xref-stream bomb, and
  a 45 000-object file just inside the budget (the expensive honest-looking case the budget lets through).
  A refused sender (``429 VERIFY_BUSY``) waits 0.2 s and sends again.

Configurations: ``today`` (no budget, no admission, no large-document lane: the code of issue 18 with
the old 1 GiB memory limit), ``budget`` (the pre-parse budget only), ``guarded`` (budget + per-client
admission + the pool's low-priority lane for large documents + the public timeout: what the route
does). Each: ``--rounds`` rounds of
``alone`` and ``hostile``; the figures are medians of the rounds. Target: guarded hostile p99 ≤ 2 × alone.

If the checks do not call the budget yet (``_run_checks`` before integration), the bench installs that one
call itself and says so. Writes bench/out/bench_verify_hostile.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NOW = datetime(2026, 6, 1, tzinfo=UTC)
MiB = 1024 * 1024


def _documents() -> tuple[bytes, Any, dict[str, bytes]]:
    from tests.unit.verify._factory import CountyCA, blank_pdf, sign_pdf
    from tests.unit.verify.test_budget import many_objects, xref_stream_bomb
    from verifier import TrustList

    ca = CountyCA()
    seal = ca.issue_seal()
    crl = ca.crl_der(datetime(2026, 2, 28, tzinfo=UTC))
    pdf = sign_pdf(
        blank_pdf("Permit 2026-001"), ca, seal, timestamp_at=datetime(2026, 3, 1, tzinfo=UTC), crls=[crl]
    )
    hostile = {
        "200k-objects": many_objects(200_000),
        "xref-bomb": xref_stream_bomb(),
        "45k-objects": many_objects(45_000),
    }
    return pdf, TrustList(roots=(ca.root.der,)), hostile


def _ensure_budget_wired(trust: Any, bomb: bytes) -> bool:
    """True if the checks already refuse the bomb with VERIFY_BUDGET_EXCEEDED; else install the call."""
    from verifier import VerifyLimits
    from verifier._core import run_checks

    r = run_checks(bomb, trust, NOW, VerifyLimits(qpdf=False, timeout_s=5))
    if "VERIFY_BUDGET_EXCEEDED" in r.codes:
        return True
    import verifier._core as core
    from verifier import check_budget

    original = core._run_checks

    def _run_checks(data: bytes, sha: str, trust: Any, now: datetime, limits: Any, job: Any) -> Any:
        if limits.budget:
            problem = check_budget(data, limits)
            if problem is not None:
                return core.unreadable_report(len(data), now, "VERIFY_BUDGET_EXCEEDED", problem, sha)
        return original(data, sha, trust, now, limits, job)

    core._run_checks = _run_checks  # type: ignore[assignment]
    return False


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def _round(
    config: str, hostile_on: bool, args: Any, pdf: bytes, trust: Any, hostile: dict[str, bytes]
) -> dict[str, Any]:
    from api._verify_gate import PUBLIC_TIMEOUT_S, VerifyGate
    from verifier import Indication, VerifyLimits, verify_document
    from verifier._sandbox import SandboxPool, _set_default

    guarded = config == "guarded"
    if config == "today":
        limits = VerifyLimits(budget=False, memory_bytes=1024 * MiB)
        pool = SandboxPool(size=args.workers, large_slots=0)  # one lane for everything
    else:
        limits = VerifyLimits(budget=True, timeout_s=PUBLIC_TIMEOUT_S if guarded else 20.0)
        pool = SandboxPool(size=args.workers, large_slots=1 if guarded else 0)
    _set_default(pool)
    gate = VerifyGate()
    stop = threading.Event()
    hostile_answers: dict[str, int] = {}
    lock = threading.Lock()

    def request(client: str, doc: bytes) -> tuple[str, Any]:
        admit = gate.admit(client) if guarded else nullcontext()
        try:
            with admit:
                return "ok", verify_document(doc, trust, now=NOW, limits=limits)
        except Exception as exc:  # noqa: BLE001 - the gate's 429
            return getattr(exc, "code", type(exc).__name__), None

    def hostile_sender(client: str, kinds: list[str]) -> None:
        i = 0
        while not stop.is_set():
            kind = kinds[i % len(kinds)]
            i += 1
            status, report = request(client, hostile[kind])
            key = f"{kind} {status if report is None else ','.join(report.codes[:1])}"
            with lock:
                hostile_answers[key] = hostile_answers.get(key, 0) + 1
            if report is None:
                time.sleep(0.2)

    threads: list[threading.Thread] = []
    try:
        # warm the workers
        for _ in range(args.workers * 2):
            verify_document(pdf, trust, now=NOW, limits=limits)
        if hostile_on:
            kinds = list(hostile)
            for c in range(4):
                for s in range(4):
                    t = threading.Thread(
                        target=hostile_sender,
                        args=(f"10.66.0.{c}", kinds[s % len(kinds) :] + kinds[: s % len(kinds)]),
                    )
                    t.start()
                    threads.append(t)
            time.sleep(1.0)  # let the hostile load build up
        n = int(args.rate * args.seconds)
        latencies: list[float] = []
        wrong = 0
        t0 = time.perf_counter() + 0.05

        def normal(i: int) -> None:
            nonlocal wrong
            due = t0 + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            status, report = request(f"10.1.{i // 256 % 256}.{i % 256}", pdf)
            latencies.append(time.perf_counter() - due)
            if report is None or report.indication is not Indication.TOTAL_PASSED:
                wrong += 1

        with ThreadPoolExecutor(max(8, int(args.rate * 4))) as ex:
            list(ex.map(normal, range(n)))
    finally:
        stop.set()
        for t in threads:
            t.join()
        pool.close()
    return {
        "n": len(latencies),
        "p50_ms": round(1000 * _pct(latencies, 0.50), 1),
        "p99_ms": round(1000 * _pct(latencies, 0.99), 1),
        "max_ms": round(1000 * max(latencies), 1),
        "not_passed": wrong,
        "hostile_answers": dict(sorted(hostile_answers.items())),
    }


def main() -> None:
    from verifier import patches

    patches.install()  # as the service and the CLI do (verifier/patches.py)
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=10.0, help="normal verifications per second (open loop)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--configs", default="guarded,today", help="also: budget (slow: it starves)")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)

    pdf, trust, hostile = _documents()
    wired = _ensure_budget_wired(trust, hostile["xref-bomb"])
    print(
        f"cpus={os.cpu_count()} workers={args.workers} rate={args.rate}/s "
        f"seconds={args.seconds} rounds={args.rounds}"
    )
    print(f"budget called by the checks: {'yes' if wired else 'no - installed by this bench (same call)'}")
    print("hostile documents: " + ", ".join(f"{k} {len(v) / MiB:.2f} MiB" for k, v in hostile.items()))
    results: dict[str, Any] = {}
    for config in args.configs.split(","):
        rows: dict[str, list[dict[str, Any]]] = {"alone": [], "hostile": []}
        for _ in range(args.rounds):
            for phase in ("alone", "hostile"):
                rows[phase].append(_round(config, phase == "hostile", args, pdf, trust, hostile))
        summary: dict[str, Any] = {}
        for phase, rs in rows.items():
            summary[phase] = {
                "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                "rounds_p99_ms": [r["p99_ms"] for r in rs],
                "not_passed": sum(r["not_passed"] for r in rs),
                "hostile_answers": rs[-1]["hostile_answers"],
            }
        summary["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
        summary["p99_ratio"] = round(summary["hostile"]["p99_ms"] / max(summary["alone"]["p99_ms"], 0.1), 2)
        results[config] = summary
        a, h = summary["alone"], summary["hostile"]
        print(
            f"{config:8s} alone p50/p99 {a['p50_ms']:7.1f}/{a['p99_ms']:7.1f} ms | with 4 hostile clients "
            f"{h['p50_ms']:7.1f}/{h['p99_ms']:8.1f} ms | p99 x{summary['p99_ratio']} | not passed "
            f"{a['not_passed']}+{h['not_passed']} | load {summary['loadavg_1min_end']} | hostile answers "
            f"(last round) {h['hostile_answers']}"
        )
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_verify_hostile.json").write_text(
        json.dumps({"args": vars(args), "budget_wired": wired, "results": results}, indent=2)
    )


if __name__ == "__main__":
    main()
