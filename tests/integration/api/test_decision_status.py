"""Decision status for every verifier (issue 19, item 2): 撤销/撤回/注销 are not PASSED, 变更 names its
successor, in the county (``yizhang verify --home``), out of it (``verify-bundle`` + ``verify --bundle``),
through ``POST /v1/verify`` and on the public page; the signed status list at ``/pki/status``; a stale list is
INDETERMINATE ``STATUS_LIST_STALE`` (injected clock).

Real token, real policies, the signing workflow over HTTP (the ``county`` fixture of the workflow tests).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.api.test_attestation import _cli, _permit
from tests.integration.api.test_signing_workflow import county  # noqa: F401 - the fixture

pytestmark = pytest.mark.softhsm
ENDED = {"REVOKED": "DECISION_REVOKED", "WITHDRAWN": "DECISION_WITHDRAWN", "CANCELLED": "DECISION_CANCELLED"}


def _change(c: Any, h: dict, rid: str, status: str, successor: str | None = None) -> Any:  # type: ignore[type-arg]
    body = {"status": status, "reason": "依法处理", **({"successor": successor} if successor else {})}
    return c.post(f"/v1/signing-requests/{rid}/status", json=body, headers=h["bureau"])


def _codes(report: dict) -> set[str]:  # type: ignore[type-arg]
    return {r["code"] for r in report["reasons"]}


def _signatures_authentic(report: dict) -> bool:  # type: ignore[type-arg]
    """The seal itself still verifies: every signature's own verdict passes, whatever the status."""
    return bool(report["signatures"]) and all(s["indication"] == "TOTAL_PASSED" for s in report["signatures"])


def test_every_verifier_sees_the_decision_status(county, tmp_path: Path) -> None:  # noqa: F811
    c, h = county["client"], county["h"]
    settings = c.app.state.services.settings
    c.post("/v1/seals/crl/publish", headers=h["admin"])
    permits = {s: _permit(county, f"status-{s.lower()}") for s in (*ENDED, "CHANGED", "VALID")}
    successor = _permit(county, "status-successor")

    # the successor is named only for a change, and must be a document issued here
    r = _change(c, h, permits["REVOKED"]["request_id"], "REVOKED", successor["document_number"])
    assert (r.status_code, r.json()["code"]) == (400, "DECISION_SUCCESSOR_INVALID"), r.text
    r = _change(c, h, permits["CHANGED"]["request_id"], "CHANGED", "兴江审批〔2099〕1号")
    assert (r.status_code, r.json()["code"]) == (400, "DECISION_SUCCESSOR_UNKNOWN"), r.text
    r = _change(c, h, permits["CHANGED"]["request_id"], "CHANGED", permits["CHANGED"]["document_number"])
    assert (r.status_code, r.json()["code"]) == (400, "DECISION_SUCCESSOR_INVALID"), r.text

    for status in ENDED:
        r = _change(c, h, permits[status]["request_id"], status)
        assert r.status_code == 200 and r.json()["decision_status"] == status, r.text
    r = _change(c, h, permits["CHANGED"]["request_id"], "CHANGED", successor["document_number"])
    assert r.status_code == 200, r.text

    # the status list was signed at once: served at /pki/status, checked with the published log key
    from api._local_evidence import parse_vkey
    from ledger import DecisionStatus
    from verifier import StatusList

    name, key = parse_vkey(c.get("/v1/public/log-key").text)
    served = c.get("/pki/status")
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/plain")
    listed = StatusList.open(served.text, key, name)
    assert listed.url is not None and listed.url.endswith("/pki/status")
    assert listed.next_update - listed.this_update == timedelta(seconds=settings.status_list_validity_s)
    assert listed.entries[permits["REVOKED"]["document_number"]] == (DecisionStatus.REVOKED, None)
    assert listed.entries[permits["CHANGED"]["document_number"]] == (
        DecisionStatus.CHANGED,
        successor["document_number"],
    )
    assert permits["VALID"]["document_number"] not in listed.entries

    # the offline bundle carries it
    bundle = tmp_path / "bundle.json"
    out = _cli(settings, "verify-bundle", "--out", str(bundle), "--json")
    assert out.exit_code == 0 and json.loads(out.output.splitlines()[-1])["status_list"] is True, out.output
    assert StatusList.open(json.loads(bundle.read_text())["status_list"], key, name).entries == listed.entries

    for status, permit in permits.items():
        pdf = permit["pdf"]
        doc = tmp_path / f"{status}.pdf"
        doc.write_bytes(pdf)
        api = c.post("/v1/verify", files={"file": ("p.pdf", pdf, "application/pdf")}).json()
        home = _cli(settings, "verify", str(doc), "--json")
        away = _cli(settings, "verify", str(doc), "--bundle", str(bundle), "--json")
        page = c.post("/verify", files={"file": ("p.pdf", pdf, "application/pdf")})
        assert page.status_code == 200
        for where, report, exit_code in (
            ("POST /v1/verify", api, None),
            ("verify --home", json.loads(home.output), home.exit_code),
            ("verify --bundle", json.loads(away.output), away.exit_code),
        ):
            shown = (where, json.dumps(report, ensure_ascii=False)[:2000])
            assert _signatures_authentic(report), shown
            if status in ENDED:
                assert report["indication"] == "TOTAL_FAILED" and ENDED[status] in _codes(report), shown
                assert report["facts"]["status"] == status.lower(), shown
                assert exit_code in (None, 1), shown
            elif status == "CHANGED":
                assert report["indication"] == "INDETERMINATE", shown
                changed = next(r for r in report["reasons"] if r["code"] == "DECISION_CHANGED")
                assert successor["document_number"] in changed["detail"], shown
                assert report["facts"]["successor_document_number"] == successor["document_number"], shown
                assert exit_code in (None, 1), shown
            else:
                assert report["indication"] == "TOTAL_PASSED", shown
                assert report["facts"]["status"] == "valid" and exit_code in (None, 0), shown
        label = {"REVOKED": "已撤销", "WITHDRAWN": "已撤回", "CANCELLED": "已注销", "CHANGED": "已变更"}
        if status in label:
            assert label[status] in page.text and "验证通过" not in page.text, status
        if status == "CHANGED":
            assert f"新文书：{successor['document_number']}" in page.text


def test_a_stale_status_list_is_indeterminate(county, tmp_path: Path) -> None:  # noqa: F811
    """A bundle's list past its next_update: INDETERMINATE STATUS_LIST_STALE naming where to refresh it;
    a revocation it records still fails the document. The clock is injected (verify_document's ``now``)."""
    from api.cli._verify import _bundle_evidence
    from verifier import Indication, TrustList, VerifyLimits, verify_document

    c, h = county["client"], county["h"]
    settings = c.app.state.services.settings
    c.post("/v1/seals/crl/publish", headers=h["admin"])
    valid, revoked = _permit(county, "stale-valid"), _permit(county, "stale-revoked")
    assert _change(c, h, revoked["request_id"], "REVOKED").status_code == 200
    bundle_path = tmp_path / "bundle.json"
    assert _cli(settings, "verify-bundle", "--out", str(bundle_path)).exit_code == 0
    bundle = json.loads(bundle_path.read_text())
    evidence = _bundle_evidence(bundle)
    trust = TrustList.from_bundle(bundle)
    limits = VerifyLimits(sandbox=False)
    now = datetime.now(UTC)
    later = now + timedelta(seconds=settings.status_list_validity_s, hours=1)

    fresh = verify_document(valid["pdf"], trust, now=now, limits=limits, evidence=evidence)
    assert fresh.indication is Indication.TOTAL_PASSED, fresh.codes
    stale = verify_document(valid["pdf"], trust, now=later, limits=limits, evidence=evidence)
    assert stale.indication is not Indication.TOTAL_PASSED and "STATUS_LIST_STALE" in stale.codes
    reason = next(r for r in stale.reasons if r.code == "STATUS_LIST_STALE")
    assert "/pki/status" in (reason.detail or "") and "days old" in (reason.detail or "")
    gone = verify_document(revoked["pdf"], trust, now=later, limits=limits, evidence=evidence)
    assert gone.indication is Indication.TOTAL_FAILED and "DECISION_REVOKED" in gone.codes

    # a bundle whose list was altered: STATUS_LIST_INVALID, never a pass on the word of the altered list
    bundle["status_list"] = bundle["status_list"].replace('"revoked"', '"changed"')
    tampered = _bundle_evidence(bundle)
    r = verify_document(revoked["pdf"], trust, now=now, limits=limits, evidence=tampered)
    assert r.indication is not Indication.TOTAL_PASSED and "STATUS_LIST_INVALID" in r.codes
