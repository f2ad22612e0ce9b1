"""``yizhang sign-batch``: a manifest sealed with a progress bar, killed half-way, run again: each document is
sealed once (idempotency keys), numbers without gaps, a results file line per item (issue 23).

The issue's 200 documents: about 18 s of sealing here (0.09 s a document at B-LTA with the demo's TSA once
warm; the first few take longer), plus the start-up of each run."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from policies import CHINA_TZ

pytestmark = pytest.mark.softhsm

N = 200
REASON = "批量中断测试"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("SOFTHSM2_CONF", "YIZHANG_HOME")}


def _yz(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "yizhang"), *args]


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("batch") / "home"
    built = subprocess.run(
        _yz("demo", "--home", str(home), "--json"), capture_output=True, text=True, env=_env(), timeout=600
    )
    assert built.returncode == 0, built.stderr
    seals = {
        s["township"]: s["seal_id"]
        for s in json.loads(built.stdout)["seals"]
        if s["kind"] != "DEPARTMENT_NO2"
    }
    return home, seals


def _manifest(path: Path, seal: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seal", "matter", "stage", "kind", "template", "data", "reason"])
        for i in range(N):
            data = {
                "issuer": "兴国县梅窖镇人民政府",
                "applicant": f"批量申请人{i}",
                "matter_name": "临时救助",
                "submitted_date": "2026年11月20日",
                "date": "2026年11月22日",
            }
            w.writerow(
                [
                    seal,
                    "SX-002",
                    "受理",
                    "受理通知书",
                    "acceptance_notice",
                    json.dumps(data, ensure_ascii=False),
                    REASON,
                ]
            )


def test_interrupted_batch_seals_each_document_once(
    county: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    home, seals = county
    manifest = tmp_path / "notices.csv"
    _manifest(manifest, seals["梅窖镇"])
    out, results = tmp_path / "sealed", tmp_path / "sealed" / "results.jsonl"
    months = {datetime.now(CHINA_TZ).strftime("%Y-%m")}
    args = ("sign-batch", str(manifest), "--out", str(out), "--operator", "mj.clerk", "--home", str(home))
    stderr = (tmp_path / "first.err").open("w")
    first = subprocess.Popen(_yz(*args), stdout=subprocess.DEVNULL, stderr=stderr, env=_env())
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and first.poll() is None:
            if results.exists() and len(results.read_text().splitlines()) >= 40:
                break
            time.sleep(0.2)
        assert first.poll() is None, "the batch ended before it could be interrupted"
        first.send_signal(signal.SIGKILL)  # a crash, not a polite stop
    finally:
        first.wait(timeout=60)
        stderr.close()
    done_before = len(results.read_text().splitlines())
    assert 40 <= done_before < N
    # progress as it goes (one line an item when stderr is not a terminal; the bar on a terminal)
    assert f"[1/{N}] 梅窖" in (tmp_path / "first.err").read_text()

    second = subprocess.run(_yz(*args, "--json"), capture_output=True, text=True, env=_env(), timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    months.add(datetime.now(CHINA_TZ).strftime("%Y-%m"))
    summary = json.loads(second.stdout)
    assert summary["items"] == N and summary["refused"] == 0
    assert summary["replayed"] >= done_before and summary["sealed"] + summary["replayed"] == N
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["item"] for r in lines] == list(range(1, N + 1))
    assert {r["status"] for r in lines} <= {"SEALED", "REPLAYED"}
    numbers = [r["document_number"] for r in lines]
    assert len(set(numbers)) == N
    seqs = sorted(int(n.split("〕")[1].rstrip("号")) for n in numbers)
    assert seqs == list(range(seqs[0], seqs[0] + N))  # the crash drew no number that was lost
    assert all(Path(r["out"]).read_bytes().startswith(b"%PDF-") for r in lines)

    # the ledger: one SEAL_SIGNED entry per document, no more
    ledgered = []
    for month in months:
        usage = subprocess.run(
            _yz(
                "ledger", "usage", "--seal", seals["梅窖镇"], "--month", month, "--home", str(home), "--json"
            ),
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
        )
        assert usage.returncode == 0, usage.stderr
        ledgered += [r["document_number"] for r in json.loads(usage.stdout) if r["reason"] == REASON]
    assert sorted(ledgered) == sorted(numbers)

    # a third run: nothing new; the summary table on stderr
    third = subprocess.run(_yz(*args), capture_output=True, text=True, env=_env(), timeout=600)
    assert third.returncode == 0, third.stderr
    assert "批量用印" in third.stderr and f"{N}/{N}" in third.stderr
    assert [json.loads(line)["document_number"] for line in results.read_text().splitlines()] == numbers
