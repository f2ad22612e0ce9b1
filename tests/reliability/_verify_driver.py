"""Verify every ``*.pdf`` in a directory against a deployment home's trust list, in 2 processes.

    python _verify_driver.py HOME DIR

Prints one JSON object: ``{"checked": n, "passed": n, "failed": [{"file", "indication", "codes"}]}``.
Runs as its own process so the pytest process never imports a SoftHSM configuration (reliability suite
rule); the strict verifier runs in-process here (no sandbox: the inputs are the service's own output).
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_TRUST: Any = None


def _init(home: str) -> None:
    global _TRUST
    from verifier import TrustList, patches

    patches.install()  # as the service does (verifier/patches.py)

    _TRUST = TrustList.for_home(Path(home))


def _verify(path: str) -> dict[str, Any]:
    from verifier import VerifyLimits, verify_document

    report = verify_document(
        Path(path).read_bytes(), _TRUST, now=datetime.now(UTC), limits=VerifyLimits(sandbox=False)
    )
    out = report.to_dict()
    codes = sorted({r["code"] for r in out.get("reasons", []) if isinstance(r, dict) and "code" in r})
    return {"file": Path(path).name, "passed": bool(report.passed), "indication": out.get("indication"),
            "codes": codes}  # fmt: skip


def main() -> None:
    home, folder = sys.argv[1], Path(sys.argv[2])
    files = sorted(str(p) for p in folder.glob("*.pdf"))
    with ProcessPoolExecutor(2, initializer=_init, initargs=(home,)) as pool:
        results = list(pool.map(_verify, files, chunksize=8))
    failed = [r for r in results if not r["passed"]]
    print(json.dumps({"checked": len(results), "passed": len(results) - len(failed), "failed": failed[:20]}))


if __name__ == "__main__":
    main()
