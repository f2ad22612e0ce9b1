"""Verifier benchmark: verifications/s for a sealed one-page permit, and what the strict checks cost.

    .venv/bin/python bench/bench_verify.py [--seconds 5] [--workers 2]

Same document, same run, each configuration for a fixed wall time:

* ``pyhanko-stock`` — pyHanko's validator alone (reader + validate_pdf_signature, default diff policy), with
                     pyHanko's own hex-string reader: the bare-library baseline;
* ``pyhanko``      — the same with Yizhang's pyHanko patches installed (``verifier._pdffast``, what
                     every configuration below runs with);
* ``strict``       — verify_document in-process: byte ranges, strict xref, strict diff policy, trust and
                     revocation at the signing time, endesive cross-check, qpdf --check;
* ``strict-noqpdf``— the same without qpdf (its subprocess is the single largest cost);
* ``sandbox-fork`` — ``strict`` in a fresh forked child per document (RLIMIT_AS, RLIMIT_CPU, timeout);
* ``sandbox-pool`` — the production default: ``strict`` in a pre-forked, recycled worker (RLIMIT_AS,
                     timeout).

Then the production default from ``--workers`` threads sharing one pool of as many worker processes (the
target: ≥ 100/s on 2 cores). JSON goes to bench/out/bench_verify.json.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _make_document() -> tuple[bytes, bytes]:
    from tests.unit.verify._factory import CountyCA, blank_pdf, sign_pdf

    ca = CountyCA()
    seal = ca.issue_seal()
    crl = ca.crl_der(datetime(2026, 2, 28, tzinfo=UTC))
    pdf = sign_pdf(
        blank_pdf("Permit 2026-001"), ca, seal, timestamp_at=datetime(2026, 3, 1, tzinfo=UTC), crls=[crl]
    )
    return pdf, ca.root.der


def _pyhanko_alone(pdf: bytes, root_der: bytes) -> bool:
    from asn1crypto import x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    vc = ValidationContext(trust_roots=[x509.Certificate.load(root_der)], allow_fetching=False, moment=NOW)
    sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    return bool(validate_pdf_signature(sig, vc).bottom_line)


def _rate(fn: Any, seconds: float) -> tuple[float, int]:
    fn()  # warm-up (imports, endesive's libcrypto selection)
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0), n


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_per_verification(strict: Any, rounds: int, per_round: int) -> dict[str, Any]:
    """CPU time, not wall time, of one pooled verification: the worker's (from /proc) and the parent's.

    Wall-clock rates on a shared 2-core machine move with whatever else runs; CPU time per verification
    barely does, and it bounds what the cores can give: ``cores * 1000 / (worker + parent)`` per second.
    One worker that is never recycled, so that /proc keeps counting the same process."""
    import statistics

    from verifier._sandbox import SandboxPool, _set_default, default_pool

    previous = default_pool()
    pool = SandboxPool(size=1, max_tasks=10**9)
    _set_default(pool)
    try:
        run = strict()
        for _ in range(5):
            run()  # warm: imports, parse caches
        pid = pool._normal.idle.queue[0].pid
        worker, parent = [], []
        for _ in range(rounds):
            w0, p0 = _proc_cpu_s(pid), time.process_time()
            for _ in range(per_round):
                run()
            worker.append((_proc_cpu_s(pid) - w0) / per_round * 1000)
            parent.append((time.process_time() - p0) / per_round * 1000)
    finally:
        _set_default(previous)
        pool.close()
    return {
        "rounds": rounds,
        "worker_ms": round(statistics.median(worker), 2),
        "parent_ms": round(statistics.median(parent), 2),
    }


def main() -> None:
    from verifier import patches

    patches.install()  # as the service and the CLI do (verifier/patches.py)
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)

    from verifier import Indication, TrustList, VerifyLimits, verify_document

    pdf, root = _make_document()
    trust = TrustList(roots=(root,))

    def strict(**kw: Any) -> Any:
        def run() -> None:
            r = verify_document(pdf, trust, now=NOW, limits=VerifyLimits(**kw))
            assert r.indication is Indication.TOTAL_PASSED, r.codes

        return run

    from verifier import _pdffast

    def stock() -> bool:
        _pdffast.uninstall()
        try:
            return _pyhanko_alone(pdf, root)
        finally:
            _pdffast.install()

    configs = {
        "pyhanko-stock": stock,
        "pyhanko": lambda: _pyhanko_alone(pdf, root),
        "strict": strict(sandbox=False),
        "strict-noqpdf": strict(sandbox=False, qpdf=False),
        "sandbox-fork": strict(sandbox_mode="fork"),
        "sandbox-pool": strict(),
    }
    rows: dict[str, dict[str, float]] = {}
    for name, fn in configs.items():
        rate, n = _rate(fn, args.seconds)
        rows[name] = {"per_s": round(rate, 1), "ms": round(1000 / rate, 2), "n": n}
    base = rows["pyhanko-stock"]["ms"]
    for row in rows.values():
        row["x_pyhanko"] = round(row["ms"] / base, 2)

    # production default: threads sharing the process-wide pool (one worker process per thread)
    from concurrent.futures import ThreadPoolExecutor

    from verifier._sandbox import SandboxPool, _set_default

    _set_default(SandboxPool(size=args.workers))
    run = strict()
    with ThreadPoolExecutor(args.workers) as ex:
        list(ex.map(lambda _: run(), range(args.workers * 2)))  # warm every worker
        n = max(args.workers, int(rows["sandbox-pool"]["per_s"] * args.workers * args.seconds))
        t0 = time.perf_counter()
        list(ex.map(lambda _: run(), range(n)))
        elapsed = time.perf_counter() - t0
    parallel = {"workers": args.workers, "n": n, "per_s": round(n / elapsed, 1)}
    cpu = _cpu_per_verification(strict, rounds=5, per_round=40)
    cpu["capacity_per_s"] = round((os.cpu_count() or 1) * 1000 / (cpu["worker_ms"] + cpu["parent_ms"]), 1)
    print(f"document: {len(pdf)} bytes, one PAdES signature + timestamp + DSS; cpus={os.cpu_count()}")
    print(f"{'configuration':16s} {'verif/s':>9s} {'ms/verif':>9s} {'x stock pyHanko':>16s}")
    for name, row in rows.items():
        print(f"{name:16s} {row['per_s']:9.1f} {row['ms']:9.2f} {row['x_pyhanko']:16.2f}")
    print(
        f"sandbox-pool, {args.workers} workers: {parallel['per_s']:.1f} verif/s (target >= 100/s on 2 cores)"
    )
    print(
        f"cpu per verification (medians of {cpu['rounds']} rounds): worker {cpu['worker_ms']:.2f} ms"
        f" + parent {cpu['parent_ms']:.2f} ms -> {cpu['capacity_per_s']:.1f}/s"
        f" when {os.cpu_count()} cores do nothing else"
    )
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_verify.json").write_text(
        json.dumps({"document_bytes": len(pdf), "single": rows, "parallel": parallel, "cpu": cpu}, indent=2)
    )


if __name__ == "__main__":
    main()
