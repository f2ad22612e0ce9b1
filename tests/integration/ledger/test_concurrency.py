"""Many processes append at once: no fork, no gap, no duplicate, chain and tree intact."""

from __future__ import annotations

import multiprocessing
import random

import pytest
from sqlalchemy import text

from core.db import make_engine


def _worker(url: str, worker: int, workers: int, total: int, shared: int) -> int:
    from core.db import transaction
    from ledger import EntryFields, EntryKind, Ledger
    from tests._fixtures.ledger import BASE_TIME, MemorySigner, seal_signed_body

    engine = make_engine(url, pool_size=1)
    ledger = Ledger(engine, MemorySigner())
    rng = random.Random(worker)
    # Every worker also retries the first `shared` keys: they must be logged once, not `workers` times.
    mine = [i for i in range(total) if i % workers == worker or i < shared]
    rng.shuffle(mine)
    done = 0
    while mine:
        take = rng.randint(1, 8)
        batch, mine = mine[:take], mine[take:]
        with transaction(engine) as s:
            items = [
                (EntryFields(EntryKind.SEAL_SIGNED, BASE_TIME, seal_signed_body(i)), f"req-{i}")
                for i in batch
            ]
            ledger.append_many(s, items)
        done += len(batch)
    ledger.close()
    engine.dispose()
    return done


def _run(url: str, workers: int, total: int, shared: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        results = [pool.apply_async(_worker, (url, w, workers, total, shared)) for w in range(workers)]
        done = [r.get(timeout=600) for r in results]
    assert sum(done) == total + shared * (workers - 1)

    from ledger import Ledger, NoteVerifier
    from tests._fixtures.ledger import MemorySigner

    engine = make_engine(url)
    try:
        with engine.connect() as c:
            n, lo, hi, keys = c.execute(
                text(
                    "SELECT count(*), min(idx), max(idx), count(DISTINCT idempotency_key) FROM ledger_entries"
                )
            ).one()
        assert (n, lo, hi, keys) == (total, 0, total - 1, total)
        signer = MemorySigner()
        ledger = Ledger(engine, signer)
        cp = ledger.checkpoint()
        report = ledger.audit()
        assert report.ok, report.problems[:5]
        assert report.size == total and report.root == cp.root.hex()
        reader = Ledger(engine, None, origin=signer.name, verifiers=[NoteVerifier.for_signer(signer)])
        assert reader.audit().ok
        ledger.close()
        reader.close()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_eight_processes_append_5000_on_postgresql(pg_url: str) -> None:
    from core.db import migrate

    migrate(pg_url)
    _run(pg_url, workers=8, total=5000, shared=40)


def test_four_processes_append_on_sqlite(sqlite_url: str) -> None:
    from core.db import migrate

    migrate(sqlite_url)
    _run(sqlite_url, workers=4, total=400, shared=20)
