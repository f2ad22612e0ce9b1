"""One county home lived through 1,500 days, shared by the long-term tests (issue 19): in the county
(``test_ltv``) and out of it (``test_out_of_county``). Real processes, the clock moved by libfaketime.

The timeline (``aged_county``, run once for the package):

- T: the home (``_home``: a B-LTA acceptance notice sealed through the service's wiring) and six decisions
  issued through the signing workflow (``_permits``: withdrawn, cancelled and changed at T; the county's
  trust bundle fetched from ``/pki/trust-bundle.json``; then one revoked).
- T+10 d, T+400 d, T+1000 d, T+1500 d: ``yizhang serve`` runs until its first rounds are done (ready, CRLs
  of the day, the long-term validation round leaving nothing due, the day's checkpoint timestamped and the
  ledger's evidence chains renewed) and another county fetches its trust bundle then (at T+1500 d the
  holders of two permits also fetch their evidence records); right after, the verifications of that age
  run (``VERIFICATIONS``), under the same clock, one process per age (``_verify_many``: the
  ``yizhang verify`` command itself).

Nothing else is done to the home: serve ran for a moment four times, that is all.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.lifetime.test_lifetime import (
    ROOT,
    _crl_this_update,
    _env,
    _faketime,
    _serve_a_moment,
)

AGES = (10, 400, 1000, 1500)


@dataclass
class AgedCounty:
    home: Path
    doc: Path  # the home's document as sealed (the in-county tests)
    number: str  # its document number
    permits: dict[str, dict[str, str]]  # name -> pdf, receipt, number, request_id (as the holder got them)
    bundles: dict[int, Path] = field(default_factory=dict)  # age (d) -> trust bundle fetched then; 0: at T
    stored: dict[tuple[int, str], Path] = field(default_factory=dict)  # (age, number) -> stored copy then
    evidence: dict[tuple[int, str], Path] = field(default_factory=dict)  # (age, name) -> evidence record then
    verified: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> exit_code, report

    def report(self, label: str) -> dict[str, Any]:
        found: dict[str, Any] = self.verified[label]["report"]
        return found

    def exit_code(self, label: str) -> int:
        return int(self.verified[label]["exit_code"])


def _readyz(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:  # noqa: S310 - loopback
            body: dict[str, Any] = json.loads(r.read())
            return body
    except OSError:
        return None


def stored_copy(home: Path, number: str, out: Path) -> Path:
    """The holder's download of document ``number``: ``GET /v1/signing-requests/{id}/document`` answers
    these stored bytes (the extended copy once renewed)."""
    with sqlite3.connect(home / "yizhang.db") as db:
        query = "select sealed from sig_documents where document_number = ?"
        (data,) = db.execute(query, (number,)).fetchone()
    out.write_bytes(data)
    return out


def ledger_index(receipt: str | Path) -> int:
    """The entry index a holder's receipt (tlog-proof) names."""
    for line in Path(receipt).read_text(encoding="utf-8").splitlines():
        if line.startswith("index "):
            return int(line[6:])
    raise AssertionError(f"no index line in {receipt}")


def settled(
    home: Path, sealed_at: datetime, days: int, bundle: Path, fetch: dict[str, Path] | None = None
) -> Callable[[int], bool]:
    """serve is ready, its first long-term validation round left nothing due (documents and the ledger's
    evidence chains; today's checkpoint stamped), the CRLs are of the day; then the county's trust bundle
    is fetched, as another county's ``trust refresh`` would, and whatever else ``fetch`` names (route ->
    file: the holders' evidence records)."""

    def until(port: int) -> bool:
        body = _readyz(port)
        crl = _crl_this_update(home)
        if body is None or body.get("status") != "ok" or crl is None:
            return False
        ltv = body.get("ltv") or {}
        tsa = ltv.get("tsa_not_after")
        evidence = ltv.get("evidence") or {}
        stamped = evidence.get("latest_stamp")
        if not (
            crl >= sealed_at + timedelta(days=days - 1)
            and ltv.get("status") == "ok"
            and ltv.get("documents_due") == 0
            and ltv.get("documents_unknown") == 0
            and evidence.get("chains_due") == 0
            and stamped is not None
            and tsa is not None
            and datetime.fromisoformat(tsa) > sealed_at + timedelta(days=days + 365)
        ):
            return False
        try:
            for route, path in {"/pki/trust-bundle.json": bundle, **(fetch or {})}.items():
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{route}", timeout=30) as r:  # noqa: S310
                    path.write_bytes(r.read())
        except OSError:
            return False
        return True

    return until


def verifications(aged: AgedCounty, age: int, tmp: Path) -> dict[str, list[str]]:
    """What is verified at each age, by label: ``home.*`` in the county (``--home``), ``out.*`` out of it
    (a trust bundle and the ledger receipt, nothing of the home)."""
    p = aged.permits

    def away(
        name: str, bundle_age: int, pdf: str | Path | None = None, receipt: Path | None = None
    ) -> list[str]:
        doc = str(pdf or p[name]["pdf"])
        return [
            doc,
            "--bundle",
            str(aged.bundles[bundle_age]),
            "--receipt",
            str(receipt or p[name]["receipt"]),
        ]

    home = ["--home", str(aged.home)]
    if age == 10:
        return {
            "out.valid@10": away("valid", 10),
            "out.valid.bundle0@10": away("valid", 0),
            "out.revoked@10": away("revoked", 10),
        }
    if age == 400:
        return {
            "home.original@400": [str(aged.doc), *home],
            "out.valid@400": away("valid", 400),
            "out.valid.bundle0@400": away("valid", 0),
            "out.revoked@400": away("revoked", 400),
            "out.revoked.bundle0@400": away("revoked", 0),
            "out.withdrawn@400": away("withdrawn", 400),
            "out.cancelled@400": away("cancelled", 400),
            "out.changed@400": away("changed", 400),
        }
    if age == 1500:
        extended = {
            name: stored_copy(aged.home, p[name]["number"], tmp / f"{name}.extended.pdf")
            for name in ("valid", "revoked")
        }
        for name, copy in extended.items():
            aged.stored[(1500, p[name]["number"])] = copy
        return {
            "home.extended@1500": [str(aged.stored[(1500, aged.number)]), *home],
            "home.original@1500": [str(aged.doc), *home],
            "out.valid.extended@1500": away("valid", 1500, extended["valid"]),
            # the untouched originals with the evidence records fetched that day (issue 19 item 4b)
            "out.valid.original@1500": away("valid", 1500, receipt=aged.evidence[(1500, "valid")]),
            "out.revoked.original@1500": away("revoked", 1500, receipt=aged.evidence[(1500, "revoked")]),
            "out.valid.bundle0@1500": away("valid", 0, extended["valid"]),
            "out.revoked.extended@1500": away("revoked", 1500, extended["revoked"]),
            "out.revoked.bundle0@1500": away("revoked", 0, extended["revoked"]),
        }
    return {}


def _run_module(module: str, *args: str, offset: str | None = None) -> str:
    cmd = [sys.executable, "-m", module, *args]
    if offset is not None:
        cmd = [_faketime(), "-f", offset, *cmd]
    res = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.fixture(scope="package")
def aged_county(tmp_path_factory: pytest.TempPathFactory) -> AgedCounty:
    tmp = tmp_path_factory.mktemp("aged")
    home, doc, out = tmp / "home", tmp / "permit.pdf", tmp / "holder"
    out.mkdir()
    sealed_at = datetime.now(UTC)
    summary = json.loads(_run_module("tests.integration.lifetime._home", str(home), str(doc), "ltv-1500d"))
    permits = json.loads(_run_module("tests.integration.lifetime._permits", str(home), str(out)))
    aged = AgedCounty(home, doc, str(summary["number"]), permits, bundles={0: out / "bundle-0.json"})
    for days in AGES:
        bundle = out / f"bundle-{days}.json"
        fetch = {}
        if days == 1500:  # the holders of the untouched originals fetch their evidence records
            for name in ("valid", "revoked"):
                record = aged.evidence[(days, name)] = out / f"{name}.evidence-{days}.json"
                fetch[f"/v1/public/proofs/{ledger_index(permits[name]['receipt'])}?evidence=1"] = record
        _serve_a_moment(home, settled(home, sealed_at, days, bundle, fetch), offset=f"+{days}d")
        aged.bundles[days] = bundle
        aged.stored[(days, aged.number)] = stored_copy(home, aged.number, tmp / f"home.{days}.pdf")
        plan = verifications(aged, days, tmp)
        if plan:
            (tmp / f"plan-{days}.json").write_text(json.dumps(plan), encoding="utf-8")
            found = _run_module(
                "tests.integration.lifetime._verify_many", str(tmp / f"plan-{days}.json"), offset=f"+{days}d"
            )
            aged.verified.update(json.loads(found))
    return aged
