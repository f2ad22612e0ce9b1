"""Decisions per second: the pure policy engine on one core, with a 25-township county and both real catalogs.

Run: .venv/bin/python bench/bench_policies.py [--seconds 2]
Compares against the bare floor (the dictionary lookups any decision needs) and shows the stored path
(PolicyStore.decide_now on SQLite: facts read from the database per request). Writes bench/out/policies.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from policies import DocumentKind, SigningRequest, Stage, decide  # noqa: E402
from tests._fixtures.policies import (  # noqa: E402
    NOW,
    XINGGUO,
    county_facts,
    load_xingguo,
    make_seal,
    meijiao_clerk,
    meijiao_no2_seal,
    meijiao_principal,
)

DOMAIN = ROOT / "policies" / "catalogs"  # the catalogs shipped as package data


def requests() -> list[SigningRequest]:
    """A mix across the 25 townships: allowed township-seal and No. 2 uses, and typical denials."""
    out: list[SigningRequest] = []
    for n in range(11, 36):
        code = f"{XINGGUO}-{n}"
        clerk = meijiao_clerk(org_code=code, service_centre=f"{code}-BMFW")
        head = meijiao_principal(org_code=code, service_centre=f"{code}-BMFW")
        seal = make_seal(township_code=code)
        no2 = meijiao_no2_seal(township_code=code, number=n)
        base = SigningRequest(seal, clerk, "SX-002", Stage.ACCEPT, DocumentKind.ACCEPTANCE_NOTICE)
        out += [
            base,
            dataclasses.replace(base, stage=Stage.APPROVE, document_kind=DocumentKind.APPROVAL_DECISION),
            dataclasses.replace(
                base, matter_code="SX-020", stage=Stage.APPROVE, document_kind=DocumentKind.PERMIT
            ),
            SigningRequest(no2, clerk, "XG-14", Stage.APPROVE, DocumentKind.PERMIT, head),
            SigningRequest(no2, clerk, "XG-14", Stage.APPROVE, DocumentKind.PERMIT, None),
            SigningRequest(no2, clerk, "XG-07", Stage.ACCEPT, DocumentKind.ACCEPTANCE_NOTICE, head),
            dataclasses.replace(base, operator=meijiao_clerk(org_code=f"{XINGGUO}-{11 + (n - 10) % 25}")),
        ]
    return out


def rate(fn: Callable[[], int], seconds: float) -> tuple[float, int]:
    fn()  # warm
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += fn()
    return done / (time.perf_counter() - start), done


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    facts = county_facts(DOMAIN)
    reqs = requests()
    allowed = sum(decide(r, facts, NOW).allowed for r in reqs)

    def engine_batch() -> int:
        for r in reqs:
            decide(r, facts, NOW)
        return len(reqs)

    def bare_batch() -> int:
        # The floor: the lookups a decision cannot avoid (matter, power, stage table, centre), nothing else.
        for r in reqs:
            m = facts.matters.get(r.matter_code)
            p = facts.powers.get((r.seal.township_code, r.matter_code))
            ok = m is not None and p is not None and r.stage in p.stages
            ok = ok and r.document_kind in facts.stage_kinds.get(r.stage, ())
            ok = ok and facts.service_centres.get(r.seal.township_code) == r.operator.service_centre
        return len(reqs)

    engine_rate, engine_n = rate(engine_batch, args.seconds)
    bare_rate, _ = rate(bare_batch, args.seconds)

    from core.db import make_engine, migrate
    from policies import PolicyStore

    with tempfile.TemporaryDirectory() as tmp:
        eng = make_engine(f"sqlite:///{tmp}/bench.db")
        migrate(eng)
        store = PolicyStore(eng)
        load_xingguo(store, DOMAIN)
        for n in range(11, 36):
            store.grant_powers(f"{XINGGUO}-{n}", None, actor="bench")

        def stored_batch() -> int:
            for r in reqs[:35]:
                store.decide_now(r, NOW)
            return 35

        stored_rate, _ = rate(stored_batch, args.seconds)
        eng.dispose()

    rows = [
        ("pure engine decide()", engine_rate),
        ("bare lookups (floor)", bare_rate),
        ("PolicyStore.decide_now (SQLite)", stored_rate),
    ]
    print(
        f"policies bench: 25 townships, {len(facts.matters)} matters, {len(facts.powers)} powers, "
        f"{len(facts.agreements)} agreements; {len(reqs)} requests in the mix ({allowed} allowed); one core"
    )
    print(f"{'path':36} {'decisions/s':>14}")
    for name, r in rows:
        print(f"{name:36} {r:14,.0f}")
    print(f"target >= 20,000/s for the pure engine: {'MET' if engine_rate >= 20_000 else 'NOT MET'}")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "policies.json").write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "townships": 25,
                "matters": len(facts.matters),
                "powers": len(facts.powers),
                "agreements": len(facts.agreements),
                "requests_in_mix": len(reqs),
                "engine_decisions_per_s": round(engine_rate),
                "engine_decisions_measured": engine_n,
                "bare_lookups_per_s": round(bare_rate),
                "stored_sqlite_decisions_per_s": round(stored_rate),
                "target_met": engine_rate >= 20_000,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
