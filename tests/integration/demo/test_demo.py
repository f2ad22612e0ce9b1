"""``yizhang demo`` as the README's run command uses it: a fresh home, separate processes, run twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.softhsm


def _yz(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOFTHSM2_CONF", "YIZHANG_HOME")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "yizhang"), *args, "--home", str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_demo_builds_a_county_and_is_harmless_twice(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _yz(home, "demo", "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    kinds = sorted(s["kind"] for s in summary["seals"])
    assert kinds == ["DEPARTMENT_NO2", "TOWNSHIP_APPROVAL", "TOWNSHIP_APPROVAL", "TOWNSHIP_APPROVAL"]
    assert {d["template"] for d in summary["sealed"]} == {
        "acceptance_notice",
        "non_acceptance_notice",
        "supplement_notice",
        "refusal_decision",
        "public_place_hygiene_permit",
    }
    numbers = [d["document_number"] for d in summary["sealed"]]
    assert len(set(numbers)) == len(numbers) and all(n.endswith("号") for n in numbers)
    creds = home / "secrets" / "demo-accounts.json"
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    assert set(json.loads(creds.read_text())) == set(summary["accounts"])

    second = _yz(home, "demo", "--json")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert [d["document_number"] for d in again["sealed"]] == numbers
    assert all(d["replayed"] for d in again["sealed"])
    assert [d["sha256"] for d in again["sealed"]] == [d["sha256"] for d in summary["sealed"]]
    assert {s["seal_id"] for s in again["seals"]} == {s["seal_id"] for s in summary["seals"]}

    root = summary["trust_roots"][0]
    for doc in summary["sealed"]:
        pdfsig = subprocess.run(["pdfsig", doc["file"]], capture_output=True, text=True).stdout
        assert "Signature is Valid" in pdfsig
        verdict = _yz(home, "verify", doc["file"], "--trust", root, "--json")
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
        assert json.loads(verdict.stdout)["indication"] == "TOTAL_PASSED"

    audit = _yz(home, "ledger", "audit", "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    report = json.loads(audit.stdout)
    # 5 sealings + 4 seals x (issued, activated) + 3 powers grants + 1 agreement + one ACCOUNT_CHANGED
    # (created) per demo account, each exactly once even though the demo ran twice (lifecycle and policy
    # changes are forwarded with idempotency keys; existing accounts are not created again)
    accounts = len(summary["accounts"])
    assert report["ok"] is True and report["size"] == 5 + 8 + 3 + 1 + accounts, (report["size"], accounts)
