"""Ledger benchmark: appends/s, a 1,000,000-entry audit (time, peak RSS), proof generation at 1,000,000.

    .venv/bin/python bench/bench_ledger.py [--entries 1000000] [--only sqlite|postgresql]

Each figure is set beside a bare baseline measured in the same run: plain INSERTs of rows of the same size,
hashlib alone over the same bytes, a bare primary-key SELECT. PostgreSQL at YIZHANG_TEST_PG_URL (default
postgresql://postgres@127.0.0.1:5432/postgres), a fresh database dropped afterwards. JSON to bench/out/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG_ADMIN = os.environ.get("YIZHANG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = datetime(2026, 3, 1, tzinfo=UTC)


class _BenchSigner:
    def __init__(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self._k = Ed25519PrivateKey.generate()
        self._pub = self._k.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    name = "bench.yizhang/ledger"

    @property
    def public_key(self) -> bytes:
        return self._pub

    def sign(self, message: bytes) -> bytes:
        return self._k.sign(message)


def _fields(i: int) -> Any:
    from ledger import EntryFields, EntryKind

    body = {
        "seal_id": f"seal-{i % 25:03d}",
        "matter": "最低生活保障审核确认",
        "stage": "APPROVE",
        "document_kind": "APPROVAL_FORM",
        "document_number": f"兴审批〔2026〕{i + 1}号",
        "document_sha256": hashlib.sha256(i.to_bytes(8, "big")).hexdigest(),
        "operator": "clerk-li",
        "approver": "principal-wang",
        "reason": "办理低保审批",
        "count": 1,
        "cert_serial": 0x1234567890ABCDEF1234567890ABCDEF,
    }
    return EntryFields(EntryKind.SEAL_SIGNED, T0 + timedelta(seconds=i), body)


def _new_db(kind: str, tmp: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}", None
    import psycopg

    name = f"yz_bench_ledger_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return "postgresql+psycopg://" + f"{base}/{name}".split("://", 1)[1], drop


def bench_appends(url: str, single: int, batched: int, batch: int) -> dict[str, float]:
    from sqlalchemy import text

    from core.db import make_engine, migrate, transaction
    from ledger import Ledger

    migrate(url)
    engine = make_engine(url)
    lg = Ledger(engine, _BenchSigner())
    t = time.perf_counter()
    for i in range(single):
        with transaction(engine) as s:
            lg.append(s, _fields(i), f"single-{i}")
    single_rate = single / (time.perf_counter() - t)
    t = time.perf_counter()
    for start in range(0, batched, batch):
        with transaction(engine) as s:
            lg.append_many(s, [(_fields(i), f"batch-{i}") for i in range(start, start + batch)])
    batch_rate = batched / (time.perf_counter() - t)
    assert lg.audit().ok

    # Baseline: the same rows, plain INSERTs, no hashing, no lock, no nodes.
    with engine.begin() as c:
        c.exec_driver_sql(
            "CREATE TABLE bench_plain (idx BIGINT PRIMARY KEY, body BYTEA, k VARCHAR(200) UNIQUE)"
            if engine.dialect.name == "postgresql"
            else "CREATE TABLE bench_plain (idx BIGINT PRIMARY KEY, body BLOB, k VARCHAR(200) UNIQUE)"
        )
    payload = lg.get(0).encoded
    t = time.perf_counter()
    for i in range(single):
        with engine.begin() as c:
            c.execute(
                text("INSERT INTO bench_plain VALUES (:i, :b, :k)"), {"i": i, "b": payload, "k": f"s{i}"}
            )
    plain_single = single / (time.perf_counter() - t)
    t = time.perf_counter()
    for start in range(0, batched, batch):
        rows = [{"i": single + i, "b": payload, "k": f"b{i}"} for i in range(start, start + batch)]
        with engine.begin() as c:
            c.execute(text("INSERT INTO bench_plain VALUES (:i, :b, :k)"), rows)
    plain_batch = batched / (time.perf_counter() - t)
    lg.close()
    engine.dispose()
    return {
        "append_single_per_s": single_rate,
        f"append_batch{batch}_per_s": batch_rate,
        "plain_insert_single_per_s": plain_single,
        f"plain_insert_batch{batch}_per_s": plain_batch,
    }


def fill(url: str, n: int, batch: int = 5000) -> tuple[float, str]:
    from core.db import make_engine, migrate, transaction
    from ledger import Ledger, NoteVerifier

    migrate(url)
    engine = make_engine(url)
    signer = _BenchSigner()
    lg = Ledger(engine, signer)
    t = time.perf_counter()
    for start in range(0, n, batch):
        with transaction(engine) as s:
            lg.append_many(s, [(_fields(i), f"e{i}") for i in range(start, min(n, start + batch))])
    rate = n / (time.perf_counter() - t)
    lg.checkpoint()
    lg.close()
    engine.dispose()
    return rate, NoteVerifier.for_signer(signer).vkey


def _audit_child(url: str, origin: str, vkey: str, q: Any) -> None:
    """In a fresh process, so that peak RSS is the audit's own."""
    from core.db import make_engine
    from ledger import Ledger, NoteVerifier

    engine = make_engine(url)
    lg = Ledger(engine, None, origin=origin, verifiers=[NoteVerifier.from_vkey(vkey)])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    report = lg.audit()
    elapsed = time.perf_counter() - t
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lg.close()
    engine.dispose()
    q.put(
        {
            "seconds": elapsed,
            "size": report.size,
            "ok": report.ok,
            "rss_before_audit_kib": rss0,
            "peak_rss_kib": rss1,
        }
    )


def _baseline_child(url: str, q: Any) -> None:
    """Bare baseline: read the same rows and SHA-256 each, nothing else."""
    from sqlalchemy import select

    from core.db import make_engine
    from ledger._storage import entries_t

    engine = make_engine(url)
    eng = engine
    if engine.dialect.name == "sqlite":
        from sqlalchemy import create_engine

        eng = create_engine(engine.url)
    t = time.perf_counter()
    cursor, n = 0, 0
    sha = hashlib.sha256
    with eng.connect() as c:
        while True:
            rows = c.execute(
                select(entries_t.c.idx, entries_t.c.encoded)
                .where(entries_t.c.idx >= cursor)
                .order_by(entries_t.c.idx)
                .limit(5000)
            ).all()
            if not rows:
                break
            for r in rows:
                sha(b"\x00" + r.encoded).digest()
            n += len(rows)
            cursor = rows[-1].idx + 1
    read_and_hash = time.perf_counter() - t
    q.put(
        {
            "read_and_sha256_seconds": read_and_hash,
            "rows": n,
            "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }
    )


def _in_child(target: Any, *args: Any) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    out = q.get(timeout=3600)
    p.join()
    return dict(out)


def bench_proofs(url: str, n: int, rounds: int = 300) -> dict[str, float]:
    from sqlalchemy import select

    from core.db import make_engine
    from ledger import Ledger, _merkle
    from ledger._storage import entries_t

    engine = make_engine(url)
    lg = Ledger(engine, None, origin="bench.yizhang/ledger")
    rng = random.Random(1)
    root = lg.root(n)
    with lg.read_engine.connect() as c:
        # warm-up and a correctness check against the root
        i = rng.randrange(n)
        _merkle.verify_inclusion(i, n, lg.get(i, c).entry_hash, lg.inclusion_proof(i, n, c), root)
        t = time.perf_counter()
        for _ in range(rounds):
            lg.inclusion_proof(rng.randrange(n), n, c)
        incl = (time.perf_counter() - t) / rounds
        t = time.perf_counter()
        for _ in range(rounds):
            lg.consistency_proof(rng.randrange(1, n), n, c)
        cons = (time.perf_counter() - t) / rounds
        t = time.perf_counter()
        for _ in range(rounds):
            c.execute(select(entries_t.c.entry_hash).where(entries_t.c.idx == rng.randrange(n))).scalar_one()
        bare = (time.perf_counter() - t) / rounds
    lg.close()
    engine.dispose()
    return {
        "inclusion_proof_ms": incl * 1e3,
        "consistency_proof_ms": cons * 1e3,
        "bare_pk_select_ms": bare * 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    ap.add_argument("--single", type=int, default=1000)
    ap.add_argument("--batched", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    kinds = [args.only] if args.only else ["postgresql", "sqlite"]
    results: dict[str, Any] = {
        "entries": args.entries,
        "cpus": os.cpu_count(),
        "at": datetime.now(UTC).isoformat(),
    }

    # hashlib alone: SHA-256 leaf hashes and the RFC 6962 tree over n entry-sized inputs
    payload = b"\x01" + b"x" * 480
    t = time.perf_counter()
    sha = hashlib.sha256
    for i in range(args.entries):
        sha(b"\x00" + payload + i.to_bytes(8, "big")).digest()
    results["hashlib_leaf_hashes_seconds"] = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for kind in kinds:
            r: dict[str, Any] = {}
            url, drop = _new_db(kind, tmp)
            try:
                r.update(bench_appends(url, args.single, args.batched, args.batch))
            finally:
                if drop:
                    drop()
            url, drop = _new_db(kind, tmp)
            try:
                r["fill_batch5000_per_s"], vkey = fill(url, args.entries)
                r["audit"] = _in_child(_audit_child, url, "bench.yizhang/ledger", vkey)
                r["baseline_read_and_hash"] = _in_child(_baseline_child, url)
                r.update(bench_proofs(url, args.entries))
            finally:
                if drop:
                    drop()
            results[kind] = r
            print(f"[{kind}] {json.dumps(r, indent=1)}", flush=True)

    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "ledger.json").write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(f"{'measure':44} " + " ".join(f"{k:>14}" for k in kinds))
    rows = [
        ("append, 1 per transaction (/s)", lambda r: r["append_single_per_s"]),
        (f"append, batch {args.batch} (/s)", lambda r: r[f"append_batch{args.batch}_per_s"]),
        ("  baseline plain INSERT, 1 per tx (/s)", lambda r: r["plain_insert_single_per_s"]),
        (
            f"  baseline plain INSERT, batch {args.batch} (/s)",
            lambda r: r[f"plain_insert_batch{args.batch}_per_s"],
        ),
        (f"audit of {args.entries} (s)", lambda r: r["audit"]["seconds"]),
        ("  audit peak RSS (MiB)", lambda r: r["audit"]["peak_rss_kib"] / 1024),
        (
            "  baseline read + SHA-256 only (s)",
            lambda r: r["baseline_read_and_hash"]["read_and_sha256_seconds"],
        ),
        ("inclusion proof (ms)", lambda r: r["inclusion_proof_ms"]),
        ("consistency proof (ms)", lambda r: r["consistency_proof_ms"]),
        ("  baseline PK SELECT (ms)", lambda r: r["bare_pk_select_ms"]),
    ]
    for label, get in rows:
        print(f"{label:44} " + " ".join(f"{get(results[k]):14.2f}" for k in kinds))
    label = f"hashlib alone, {args.entries} leaf hashes (s)"
    print(f"{label:44} {results['hashlib_leaf_hashes_seconds']:14.2f}")


if __name__ == "__main__":
    main()
