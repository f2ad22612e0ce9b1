"""The visible-change check's cost: ms per page to render and compare, and its memory in the sandbox.

    .venv/bin/python bench/bench_visual.py [--rounds 7] [--dpi 100] [--dpis 72,100,150]

A one-page acceptance notice (a template, CJK font embedded), signed with pyHanko, then:

* ``unchanged``  — a later invisible document timestamp (the LTV shape; the verifier skips the check for
                   these, so this is the cost of the honest case only if it ran anyway): every rendering
                   equals its counterpart, the comparison stops at one memcmp;
* ``overlay``    — a visible document timestamp whose widget whites out a line and redraws it (issue 18,
                   attack 1): the full pixel comparison runs and finds the region.

Each figure is the median over rounds of one ``visible_changes`` call (both files opened, 2 modes × 2
renderings, compare) for the one page. Memory: a fresh interpreter that has imported the verifier (as a
sandbox child has) runs the check once: its peak address-space and resident growth (VmPeak/VmHWM over the
values before), and the least RLIMIT_AS headroom over its own size under which the check still finishes.
JSON goes to bench/out/bench_visual.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _documents() -> tuple[bytes, bytes, bytes]:
    from signer._templates import render_template
    from tests._fixtures.signer import ACCEPTANCE_DATA
    from tests.unit.verify._factory import (
        CountyCA,
        add_document_timestamp,
        add_visible_document_timestamp,
        sign_pdf,
    )

    ca = CountyCA()
    source = render_template(
        "acceptance_notice",
        {
            **ACCEPTANCE_DATA,
            "issuer": "兴国县兴江乡人民政府",
            "date": "2026年11月22日",
            "document_number": "兴江审批〔2026〕3号",
        },
    )
    sealed = sign_pdf(source, ca, ca.issue_seal(), timestamp_at=datetime(2026, 3, 1, tzinfo=UTC))
    at = datetime(2026, 3, 2, tzinfo=UTC)
    return sealed, add_document_timestamp(sealed, ca, at), add_visible_document_timestamp(sealed, ca, at)


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmPeak", "VmSize", "VmHWM", "VmRSS"}:
            out[key] = int(value.split()[0])  # kB
    return out


def _measure_fresh(sealed_path: str, whole_path: str, dpi: float, headroom_mib: int) -> None:
    """In a fresh interpreter (no earlier rendering has grown its heap): the check's own peak growth."""
    from verifier import visible_changes  # and what a sandbox child has loaded (import verifier: the checks)

    sealed, whole = Path(sealed_path).read_bytes(), Path(whole_path).read_bytes()
    before = _status()
    if headroom_mib:
        limit = before["VmSize"] * 1024 + headroom_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    visible_changes(sealed, whole, dpi=dpi)
    after = _status()
    print(
        json.dumps(
            {
                "vm_size_before_mib": round(before["VmSize"] / 1024, 1),
                "address_space_growth_mib": round((after["VmPeak"] - before["VmSize"]) / 1024, 1),
                "resident_growth_mib": round((after["VmHWM"] - before["VmRSS"]) / 1024, 1),
            }
        )
    )


def _memory(sealed: bytes, whole: bytes, dpi: float) -> dict[str, object]:
    """Peak growth of one check in a fresh process, and the least RLIMIT_AS headroom over the process's
    size it runs in (PDFium aborts when an allocation fails: the sandbox reports VERIFY_RESOURCE_LIMIT)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp, "sealed.pdf"), Path(tmp, "whole.pdf")]
        paths[0].write_bytes(sealed)
        paths[1].write_bytes(whole)

        def run(headroom: int) -> dict[str, object] | None:
            cmd = [
                sys.executable,
                __file__,
                "--measure",
                str(paths[0]),
                str(paths[1]),
                str(dpi),
                str(headroom),
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            return json.loads(done.stdout) if done.returncode == 0 else None

        free = run(0) or {}
        least = next((h for h in (4, 8, 12, 16, 24, 32, 48, 64, 128) if run(h) is not None), None)
    return {**free, "least_headroom_mib": least}


def main() -> None:
    from verifier import patches

    patches.install()  # as the service and the CLI do (verifier/patches.py)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--dpis", default="72,100,150")
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)  # internal: the fresh-process probe
    args = parser.parse_args()
    if args.measure:
        sealed_path, whole_path, dpi, headroom = args.measure
        _measure_fresh(sealed_path, whole_path, float(dpi), int(headroom))
        return

    from verifier import visible_changes

    sealed, ltv, overlay = _documents()
    results: dict[str, object] = {"pages": 1, "modes": ["view", "print"], "rounds": args.rounds, "runs": []}
    for dpi in (float(d) for d in args.dpis.split(",")):
        for label, whole in (("unchanged", ltv), ("overlay", overlay)):
            found = visible_changes(sealed, whole, dpi=dpi)  # warm up (fonts, caches)
            assert bool(found) == (label == "overlay"), found
            medians = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                for _ in range(args.per_round):
                    visible_changes(sealed, whole, dpi=dpi)
                medians.append((time.perf_counter() - start) * 1000 / args.per_round)
            run = {
                "case": label,
                "dpi": dpi,
                "ms_per_page_median": round(statistics.median(medians), 2),
                "ms_per_page_rounds": [round(m, 2) for m in medians],
                "memory": _memory(sealed, whole, dpi),
            }
            results["runs"].append(run)  # type: ignore[attr-defined]
            mem = run["memory"]
            print(
                f"{label:9s} {dpi:5.0f} dpi  {run['ms_per_page_median']:7.2f} ms/page  "
                f"(rounds {', '.join(f'{m:.1f}' for m in medians)})  memory: {mem}"
            )
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_visual.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
