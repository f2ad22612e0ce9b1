"""Long-term validation end to end (issue 19, item 4): a permit sealed at T verifies TOTAL_PASSED in the
county at T+400 d and T+1500 d -- after its seal and TSA certificates (3 years) expired -- given only that
``yizhang serve`` ran for a moment at T+10 d, T+400 d, T+1000 d and T+1500 d. Real processes, the clock
moved by libfaketime.

What serve does at T+1000 d, in its first long-term validation round: the county TSA's certificate (issued
at T, 3 years) has fewer than 365 days left, so it gets a new key and certificate; the stored permit's
latest timestamp is by the old TSA, ending within 300 days, so the chain and current CRLs go into its DSS
and the new TSA adds a document timestamp. The holder's download (the stored copy) is the extended one.
Before: the T+1500 d verification was INDETERMINATE (TIMESTAMP_UNTRUSTED, OUT_OF_BOUNDS_NO_POE).
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.lifetime.test_lifetime import (
    _build,
    _codes,
    _crl_this_update,
    _serve_a_moment,
    _verify,
)

pytestmark = pytest.mark.softhsm


def _readyz(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:  # noqa: S310 - loopback
            body: dict[str, Any] = json.loads(r.read())
            return body
    except OSError:
        return None


def _stored_copy(home: Path, out: Path) -> Path:
    """The holder's download: ``GET /v1/signing-requests/{id}/document`` answers these stored bytes."""
    with sqlite3.connect(home / "yizhang.db") as db:
        (data,) = db.execute("select sealed from sig_documents").fetchone()
    out.write_bytes(data)
    return out


def test_permit_verifies_after_its_certificates_expired(tmp_path: Path) -> None:
    home, doc = tmp_path / "home", tmp_path / "permit.pdf"
    _build(home, doc, "ltv-1500d")
    sealed_at = datetime.fromisoformat(_verify(doc, home)["signatures"][0]["signing_time"])

    def settled(offset_days: int) -> Any:
        """serve is ready, its first long-term validation round left nothing due, and the CRLs are fresh"""

        def until(port: int) -> bool:
            body = _readyz(port)
            crl = _crl_this_update(home)
            if body is None or body.get("status") != "ok" or crl is None:
                return False
            ltv = body.get("ltv") or {}
            tsa = ltv.get("tsa_not_after")
            return bool(
                crl >= sealed_at + timedelta(days=offset_days - 1)
                and ltv.get("status") == "ok"
                and ltv.get("documents_due") == 0
                and ltv.get("documents_unknown") == 0
                and tsa is not None
                and datetime.fromisoformat(tsa) > sealed_at + timedelta(days=offset_days + 365)
            )

        return until

    for days in (10, 400):
        _serve_a_moment(home, settled(days), offset=f"+{days}d")
    # nothing was due yet: the stored copy is the document as sealed
    assert _stored_copy(home, tmp_path / "at400.pdf").read_bytes() == doc.read_bytes()
    report = _verify(doc, home, offset="+400d")
    assert report["indication"] == "TOTAL_PASSED", _codes(report)

    _serve_a_moment(home, settled(1000), offset="+1000d")  # rotation and renewal
    _serve_a_moment(home, settled(1500), offset="+1500d")
    extended = _stored_copy(home, tmp_path / "extended.pdf")
    data = extended.read_bytes()
    assert data.startswith(doc.read_bytes()) and len(data) > len(doc.read_bytes())

    report = _verify(extended, home, offset="+1500d")
    assert report["indication"] == "TOTAL_PASSED", _codes(report)
    kinds = [s["kind"] for s in report["signatures"]]
    assert kinds == ["signature", "doc_timestamp", "doc_timestamp"]
    assert "ARCHIVE_TIMESTAMP_POE" in _codes(report)

    # the untouched original: its archive timestamp's TSA certificate expired with nothing after it
    original = _verify(doc, home, offset="+1500d")
    assert original["indication"] == "INDETERMINATE"
    assert {"TIMESTAMP_UNTRUSTED", "TIMESTAMP_EXPIRED_NO_POE"} <= _codes(original)
