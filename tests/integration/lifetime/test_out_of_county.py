"""Out of county for a document's whole life (issue 19, "Done when"): another office holds a permit, its
ledger receipt and the county's trust bundle fetched at that time -- nothing of the county's home -- and
verifies TOTAL_PASSED at T+10 d, T+400 d and T+1500 d, given only that ``yizhang serve`` ran for a moment at
T+10, T+400, T+1000 and T+1500 d (the ``aged_county`` timeline of ``conftest``, shared with ``test_ltv``).

- The bundle fetched at T, kept: from its ``next_update`` on (7 days) INDETERMINATE ``TRUST_BUNDLE_STALE``,
  never TOTAL_PASSED (before: ``verify --bundle`` never looked at the bundle's own ``next_update``; its old
  CRLs still speak for a document sealed before them).
- A decision revoked after that bundle was fetched: never TOTAL_PASSED with it, TOTAL_FAILED
  ``DECISION_REVOKED`` with a bundle fetched since; withdrawn and cancelled decisions fail, a changed one
  names its successor -- the seal itself still shows as authentic.
- At T+1500 d the seal and first TSA certificates have expired: the holder's download then (the copy the
  service extended at T+1000 d) passes; so does the untouched original with the evidence record of its
  ledger entry fetched that day (docs/ledger-format.md, "Evidence records"), in county and out of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger import DecisionStatus
from tests.integration.lifetime.conftest import AgedCounty
from tests.integration.lifetime.test_lifetime import _codes

pytestmark = pytest.mark.softhsm


def _authentic(report: dict[str, Any]) -> bool:
    """The seal itself still verifies: every signature's own verdict passes, whatever the decision says."""
    return bool(report["signatures"]) and all(s["indication"] == "TOTAL_PASSED" for s in report["signatures"])


def _listed(aged: AgedCounty, age: int) -> dict[str, Any]:
    """The decisions a bundle's status list names (read, not verified: the verifier checks it)."""
    from verifier import StatusList

    note = json.loads(aged.bundles[age].read_text(encoding="utf-8"))["status_list"]
    return dict(StatusList.parse_body(note.partition("\n\n")[0] + "\n").entries)


def test_a_permit_passes_out_of_county_with_the_bundle_of_the_day(aged_county: AgedCounty) -> None:
    aged = aged_county
    for label in ("out.valid@10", "out.valid@400", "out.valid.extended@1500"):
        report = aged.report(label)
        shown = (label, sorted(_codes(report)))
        assert report["indication"] == "TOTAL_PASSED" and aged.exit_code(label) == 0, shown
        # the receipt was proven against the log key of the bundle; the status list said "in force"
        assert report["facts"]["ledger_verified"] is True and report["facts"]["status"] == "valid", shown
    # at T+1500 d the holder's copy is the one the service extended at T+1000 d (same number)
    as_issued = Path(aged.permits["valid"]["pdf"]).read_bytes()
    extended = aged.stored[(1500, aged.permits["valid"]["number"])].read_bytes()
    assert extended.startswith(as_issued) and len(extended) > len(as_issued)


def test_the_bundle_of_t_is_stale_later_never_total_passed(aged_county: AgedCounty) -> None:
    aged = aged_county
    made = json.loads(aged.bundles[0].read_text(encoding="utf-8"))
    for label in ("out.valid.bundle0@10", "out.valid.bundle0@400", "out.valid.bundle0@1500"):
        report = aged.report(label)
        shown = (label, sorted(_codes(report)))
        assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "TRY_LATER"), shown
        assert aged.exit_code(label) == 1, shown
        (stale,) = [r for r in report["reasons"] if r["code"] == "TRUST_BUNDLE_STALE"]
        assert f"past its nextUpdate {made['next_update']}" in stale["detail"], stale
        assert made["url"] in stale["detail"], stale  # where a fresh one is


def test_a_decision_revoked_since_is_never_passed(aged_county: AgedCounty) -> None:
    aged = aged_county
    revoked = aged.permits["revoked"]["number"]
    assert revoked not in _listed(aged, 0) and _listed(aged, 400)[revoked][0] is DecisionStatus.REVOKED
    # with the bundle fetched before the revocation: it cannot know, but it is stale by then
    for label in ("out.revoked.bundle0@400", "out.revoked.bundle0@1500"):
        report = aged.report(label)
        shown = (label, sorted(_codes(report)))
        assert report["indication"] != "TOTAL_PASSED" and aged.exit_code(label) == 1, shown
        assert "TRUST_BUNDLE_STALE" in _codes(report), shown
    # with a bundle fetched since: failed, the seal still authentic
    for label in ("out.revoked@10", "out.revoked@400", "out.revoked.extended@1500"):
        report = aged.report(label)
        shown = (label, sorted(_codes(report)))
        assert report["indication"] == "TOTAL_FAILED" and "DECISION_REVOKED" in _codes(report), shown
        assert report["facts"]["status"] == "revoked" and aged.exit_code(label) == 1, shown
        assert _authentic(report), shown


def test_ended_decisions_fail_and_a_changed_one_names_its_successor(aged_county: AgedCounty) -> None:
    aged = aged_county
    for name, code in (("withdrawn", "DECISION_WITHDRAWN"), ("cancelled", "DECISION_CANCELLED")):
        report = aged.report(f"out.{name}@400")
        shown = (name, sorted(_codes(report)))
        assert report["indication"] == "TOTAL_FAILED" and code in _codes(report), shown
        assert report["facts"]["status"] == name and aged.exit_code(f"out.{name}@400") == 1, shown
        assert _authentic(report), shown
    report = aged.report("out.changed@400")
    successor = aged.permits["successor"]["number"]
    assert report["indication"] == "INDETERMINATE" and aged.exit_code("out.changed@400") == 1, _codes(report)
    (changed,) = [r for r in report["reasons"] if r["code"] == "DECISION_CHANGED"]
    assert successor in changed["detail"]
    assert report["facts"]["successor_document_number"] == successor
    assert _authentic(report)


def test_the_untouched_original_at_1500_days_verifies_through_the_ledger(aged_county: AgedCounty) -> None:
    """The holder kept the file as sealed at T; its seal and TSA certificates expired at T+3 years. With
    the evidence record fetched at T+1500 d (``/v1/public/proofs/N?evidence=1``: the checkpoint stamped at
    T+10 d, re-anchored by the rotated TSA at T+1000 d) and the bundle of that day, it verifies TOTAL_PASSED
    out of county, judged as of the stamp; in the county (``--home``) the same is read from the database.
    Before: INDETERMINATE (TIMESTAMP_UNTRUSTED, TIMESTAMP_EXPIRED_NO_POE)."""
    aged = aged_county
    record = json.loads(aged.evidence[(1500, "valid")].read_text(encoding="utf-8"))
    assert record["format"] == "yizhang-evidence-record/1"
    assert [link["kind"] for link in record["chain"]] == ["STAMP", "RENEWAL"]
    for label in ("out.valid.original@1500", "home.original@1500"):
        report = aged.report(label)
        shown = (label, sorted(_codes(report)))
        assert report["indication"] == "TOTAL_PASSED" and aged.exit_code(label) == 0, shown
        (poe,) = [r for r in report["reasons"] if r["code"] == "EVIDENCE_RECORD_POE"]
        assert "1 renewal(s)" in poe["detail"], poe
        assert report["facts"]["ledger_verified"] is True, shown
    # a decision revoked since: still refused, the seal itself authentic
    report = aged.report("out.revoked.original@1500")
    shown = sorted(_codes(report))
    assert report["indication"] == "TOTAL_FAILED" and "DECISION_REVOKED" in _codes(report), shown
    assert "EVIDENCE_RECORD_POE" in _codes(report) and _authentic(report), shown
