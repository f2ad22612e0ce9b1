"""Sealed documents per second: the full ``apply_seal`` against a bare pyHanko ``sign_pdf`` loop.

Run: .venv/bin/python bench/bench_signer.py [--small 30] [--large 8]
A throw-away home is made (SoftHSM token, county PKI, SQLite, the Shanxi catalog, 兴江乡's seal). Inputs:
a 1-page permit (rendered by the signer's template) and a 100-page document (the permit page 100 times).

Both sides sign with the same EC P-256 key in the same token, through the same keystore signer:

- ``bare pyHanko``: ``signers.sign_pdf(PdfSignatureMetadata(field_name=...), signer)`` — pyHanko's default
  path (no stamp, no timestamp, no ``bytes_reserved``: pyHanko estimates the size by encoding the CMS once
  more);
- ``bare pyHanko + TSA``: the same with the county time stamper (PAdES B-T without a stamp);
- ``apply_seal B-T``: policy decision, document number, the red stamp with the embedded font, token
  signature, county timestamp, ledger entry, sealed bytes stored, one transaction;
- ``apply_seal B-LTA``: the same plus county CRLs in the DSS and a document timestamp.

Rounds alternate the sides so drift on a shared machine hits each; rates use the best round.
Writes bench/out/signer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT / "policies" / "catalogs"  # the catalogs shipped as package data


def setup(home: Path) -> dict[str, Any]:
    from core.db import make_engine
    from core.settings import load_settings
    from keystore import Keystore, SealKind, SealRegistry, init_county
    from ledger import Ledger, key_file_signer
    from policies import Actor, PolicyStore, Role
    from signer import Sealer

    settings = load_settings(home, signature_level="B-T")
    os.environ["SOFTHSM2_CONF"] = str(settings.softhsm_conf)
    init_county(settings, "360732", "兴国县")
    engine = make_engine(settings.effective_database_url)
    ks = Keystore.open(settings)
    registry = SealRegistry(engine, ks, settings)
    store = PolicyStore(engine)
    store.register_county("360732", "兴国县", actor="bench")
    store.import_no2_townships("360732", (SHARED / "xingguo_no2_seals.csv").read_bytes(), actor="bench")
    store.import_catalog("360732", (SHARED / "shanxi_township_catalog.csv").read_bytes(), actor="bench")
    store.grant_powers("360732-11", None, actor="bench")
    ev = registry.issue_seal(
        name="兴国县兴江乡人民政府行政审批服务专用章",
        kind=SealKind.TOWNSHIP_APPROVAL,
        township="兴江乡",
        township_code="360732-11",
        custodian="李保管",
        requested_by="兴江乡人民政府",
        approved_by="王乡长",
        actor="bench",
    )
    registry.activate(ev.seal_id, actor="bench", approved_by="王乡长")
    seal = registry.get(ev.seal_id)
    ledger = Ledger(engine, key_file_signer(settings))
    sealer = Sealer(
        engine=engine,
        settings=settings,
        keystore=ks,
        registry=registry,
        pki=registry.pki,
        policy_store=store,
        ledger=ledger,
    )
    clerk = Actor(
        user_id="clerk-li",
        role=Role.TOWNSHIP_CLERK,
        org_code="360732-11",
        service_centre=store.organisation("360732-11").service_centre,
    )
    return {
        "settings": settings,
        "ks": ks,
        "registry": registry,
        "seal": seal,
        "sealer": sealer,
        "clerk": clerk,
    }


def inputs(tmp: Path) -> dict[str, bytes]:
    from signer import render_template

    permit = render_template(
        "public_place_hygiene_permit",
        {
            "issuer": "兴国县兴江乡人民政府",
            "unit_name": "兴国县兴江乡好客来宾馆",
            "legal_representative": "刘某某",
            "address": "兴国县兴江乡兴江大道88号",
            "licensed_items": "住宿（旅店业）",
            "valid_from": "2026年3月5日",
            "valid_until": "2030年3月4日",
            "date": "2026年3月5日",
        },
    )
    p = tmp / "permit.pdf"
    p.write_bytes(permit)
    big = tmp / "big.pdf"
    subprocess.run(["qpdf", "--empty", "--pages", *([str(p)] * 100), "--", str(big)], check=True)
    return {"1-page permit": permit, "100-page document": big.read_bytes()}


def main() -> None:
    from verifier import patches

    patches.install()  # as the service and the CLI do (verifier/patches.py)
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=30, help="documents per round, 1-page")
    ap.add_argument("--large", type=int, default=8, help="documents per round, 100-page")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from _bare import bare_signer
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter as W
    from pyhanko.sign import signers

    from signer import SealRequest
    from signer._seal import SealingKey

    with tempfile.TemporaryDirectory(prefix="yz-bench-signer-") as tmpdir:
        tmp = Path(tmpdir)
        env = setup(tmp / "home")
        docs = inputs(tmp)
        sealer, seal, registry = env["sealer"], env["seal"], env["registry"]
        key = SealingKey(
            key_label=seal.key_label,
            algorithm=seal.key_algorithm.value,
            chain_der=tuple(registry.chain_der(seal)),
            seal_name=seal.name,
        )
        bare_token_signer = bare_signer(env["ks"], key)
        stamper = sealer.timestamper
        counter = iter(range(10**9))

        def ours(pdf: bytes, level: str) -> Callable[[], Any]:
            def run() -> Any:
                return sealer.apply_seal(
                    SealRequest(
                        seal_id=seal.seal_id,
                        matter_code="SX-002",
                        stage="受理",
                        document_kind="受理通知书",
                        idempotency_key=f"bench-{next(counter)}",
                        operator=env["clerk"],
                        reason="bench",
                        unverified_pdf=pdf,
                        level=level,
                    )
                )

            return run

        def bare(pdf: bytes, tsa: bool) -> Callable[[], Any]:
            def run() -> Any:
                meta = signers.PdfSignatureMetadata(field_name="Sig1")
                ts = stamper if tsa else None
                return signers.sign_pdf(W(BytesIO(pdf)), meta, bare_token_signer, timestamper=ts)

            return run

        results: list[dict[str, Any]] = []
        for doc_name, pdf in docs.items():
            n = args.small if doc_name.startswith("1-") else args.large
            sides = {
                "bare pyHanko sign_pdf": bare(pdf, False),
                "bare pyHanko sign_pdf + TSA": bare(pdf, True),
                "apply_seal B-T": ours(pdf, "B-T"),
                "apply_seal B-LTA": ours(pdf, "B-LTA"),
            }
            for fn in sides.values():  # warm-up: font subset cache, TSA identity, key handles
                fn()
            times: dict[str, list[float]] = {k: [] for k in sides}
            for _round in range(args.rounds):
                for name, fn in sides.items():
                    t0 = time.perf_counter()
                    for _ in range(n):
                        fn()
                    times[name].append((time.perf_counter() - t0) / n)
            for name, ts in times.items():
                results.append(
                    {
                        "document": doc_name,
                        "side": name,
                        "docs_per_s": round(1 / min(ts), 2),
                        "ms_best": round(min(ts) * 1000, 1),
                        "ms_median": round(statistics.median(ts) * 1000, 1),
                        "n_per_round": n,
                    }
                )
        env["ks"].close()

    print(f"{'document':<20} {'side':<30} {'docs/s':>8} {'ms best':>9} {'ms median':>10}")
    for r in results:
        row = f"{r['document']:<20} {r['side']:<30} {r['docs_per_s']:>8}"
        print(f"{row} {r['ms_best']:>9} {r['ms_median']:>10}")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "signer.json").write_text(
        json.dumps(
            {"machine": platform.platform(), "python": platform.python_version(), "results": results},
            ensure_ascii=False,
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
