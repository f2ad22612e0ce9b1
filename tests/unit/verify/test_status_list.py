"""The county's decision status list (issue 19, item 2): a C2SP signed note by the log key, dated, checked by
the verifier's own reader; a list past its next_update is INDETERMINATE STATUS_LIST_STALE (injected clock),
a revocation is believed however old the list; a tampered or foreign-signed list is STATUS_LIST_INVALID."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import DecisionStatus, KeyFileSigner
from ledger._note import sign_note
from tests.unit.verify.conftest import FAST, NOW
from verifier import (
    STATUS_LIST_HEADER,
    STATUS_WIRE,
    BindingFacts,
    Evidence,
    Indication,
    StatusList,
    StatusListError,
    SubIndication,
    TrustList,
    read_decision_status,
    status_list_body,
    verify_document,
)
from verifier._evidence import check_evidence, verify_checkpoint

ORIGIN = "seal.xingguo.example/ledger"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
URL = "https://seal.xingguo.example/pki/status"
ENTRIES = [
    ("兴江审批〔2026〕3号", DecisionStatus.REVOKED, None),
    ("兴江审批〔2026〕4号", DecisionStatus.WITHDRAWN, None),
    ("兴江审批〔2026〕5号", DecisionStatus.CANCELLED, None),
    ("兴江审批〔2026〕6号", DecisionStatus.CHANGED, "兴江审批〔2026〕9号"),
]


@pytest.fixture(scope="module")
def signer() -> KeyFileSigner:
    return KeyFileSigner(ORIGIN, Ed25519PrivateKey.generate())


def _note(signer: KeyFileSigner, *, at: datetime = T0, days: float = 7, entries=ENTRIES) -> str:  # type: ignore[no-untyped-def]
    return sign_note(status_list_body("兴国县", at, at + timedelta(days=days), URL, entries), signer)


def _evidence(signer: KeyFileSigner, note: str) -> Evidence:
    sl = StatusList.open(note, signer.public_key, signer.name)
    return Evidence(status_lookup=sl.answer)


def _codes(number: str, evidence: Evidence, now: datetime) -> tuple[list[str], dict[str, object]]:
    reasons, facts = check_evidence(evidence, BindingFacts(document_number=number), None, None, now)
    return [r.code for r in reasons if r.code != "LEDGER_NOT_CHECKED"], facts


def test_round_trip_and_answers(signer: KeyFileSigner) -> None:
    note = _note(signer)
    assert note.startswith(STATUS_LIST_HEADER + "\n")
    sl = StatusList.open(note.encode(), signer.public_key, signer.name)
    assert (sl.county, sl.url, sl.this_update, sl.next_update) == ("兴国县", URL, T0, T0 + timedelta(days=7))
    ev = Evidence(status_lookup=sl.answer)
    now = T0 + timedelta(days=1)
    assert _codes("兴江审批〔2026〕3号", ev, now)[0] == ["DECISION_REVOKED"]
    assert _codes("兴江审批〔2026〕4号", ev, now)[0] == ["DECISION_WITHDRAWN"]
    assert _codes("兴江审批〔2026〕5号", ev, now)[0] == ["DECISION_CANCELLED"]
    codes, facts = _codes("兴江审批〔2026〕6号", ev, now)
    assert codes == ["DECISION_CHANGED"]
    assert facts["successor_document_number"] == "兴江审批〔2026〕9号"
    # not listed: in force as of this_update, nothing to say
    codes, facts = _codes("兴江审批〔2026〕1号", ev, now)
    assert codes == [] and facts["status"] == "valid"
    # no document number bound: the list cannot speak for the document
    reasons, facts = check_evidence(ev, BindingFacts(), None, None, now)
    assert [r.code for r in reasons] == ["LEDGER_NOT_CHECKED"] and "status" not in facts


def test_the_published_spelling_is_lower_case_and_the_records_spelling_reads_too(
    signer: KeyFileSigner,
) -> None:
    """One enum (ledger.DecisionStatus, upper case as the ledger and the records store it; None: in force);
    the status list and the reports keep their lower-case spelling (published: out-of-county verifiers
    read it)."""
    assert dict(STATUS_WIRE) == {
        None: "valid",
        DecisionStatus.CHANGED: "changed",
        DecisionStatus.WITHDRAWN: "withdrawn",
        DecisionStatus.REVOKED: "revoked",
        DecisionStatus.CANCELLED: "cancelled",
    }
    note = _note(signer)
    assert '["兴江审批〔2026〕3号","revoked",null]' in note
    assert '["兴江审批〔2026〕6号","changed","兴江审批〔2026〕9号"]' in note
    listed = StatusList.open(note, signer.public_key, signer.name)
    assert listed.entries["兴江审批〔2026〕3号"] == (DecisionStatus.REVOKED, None)
    for status, wire in STATUS_WIRE.items():
        assert read_decision_status(wire) is status
        assert read_decision_status(status.value if status else "VALID") is status  # the records' spelling
    with pytest.raises(ValueError):
        read_decision_status("bogus")
    # the records' spelling is not the wire's: a list that says REVOKED is malformed
    upper = note.split("\n")[1].replace('"revoked"', '"REVOKED"')
    with pytest.raises(ValueError):
        StatusList.parse_body(f"{STATUS_LIST_HEADER}\n{upper}\n")


def test_stale_list_is_indeterminate_with_its_age_and_where_to_refresh(signer: KeyFileSigner) -> None:
    ev = _evidence(signer, _note(signer))
    later = T0 + timedelta(days=10)
    reasons, _ = check_evidence(ev, BindingFacts(document_number="兴江审批〔2026〕1号"), None, None, later)
    assert [r.code for r in reasons] == ["LEDGER_NOT_CHECKED", "STATUS_LIST_STALE"]
    stale = reasons[1]
    assert stale.sub_indication is SubIndication.TRY_LATER
    assert "10.0 days old" in (stale.detail or "") and URL in (stale.detail or "")
    assert "+0800" in (stale.detail or "")  # dates a person reads are Asia/Shanghai
    # exactly at next_update it is stale; a second before, not
    assert _codes("兴江审批〔2026〕1号", ev, T0 + timedelta(days=7))[0] == ["STATUS_LIST_STALE"]
    assert _codes("兴江审批〔2026〕1号", ev, T0 + timedelta(days=7, seconds=-1))[0] == []
    # a revocation never comes back: an old list that says revoked still fails the document
    assert _codes("兴江审批〔2026〕3号", ev, later)[0] == ["DECISION_REVOKED"]
    # a change in an old list: named, and the list is stale (something may have happened since)
    assert _codes("兴江审批〔2026〕6号", ev, later)[0] == ["DECISION_CHANGED", "STATUS_LIST_STALE"]


def test_tampered_or_foreign_lists_are_refused(signer: KeyFileSigner) -> None:
    note = _note(signer)
    tampered = note.replace('"revoked"', '"changed"', 1)
    for bad, key, name in (
        (tampered, signer.public_key, signer.name),
        (note, KeyFileSigner(ORIGIN, Ed25519PrivateKey.generate()).public_key, ORIGIN),  # another key
        (note, signer.public_key, "other.example/ledger"),  # another name
        (note.split("\n\n")[0] + "\n", signer.public_key, signer.name),  # unsigned
    ):
        with pytest.raises(StatusListError) as exc:
            StatusList.open(bad, key, name)
        assert exc.value.code == "STATUS_LIST_INVALID"

    def refuse(_b: BindingFacts) -> None:
        raise StatusListError("STATUS_LIST_INVALID", "x")

    codes, _ = _codes("兴江审批〔2026〕3号", Evidence(status_lookup=refuse), T0)
    assert codes == ["STATUS_LIST_INVALID"]


def test_a_checkpoint_and_a_status_list_cannot_pass_for_each_other(signer: KeyFileSigner) -> None:
    """Both are signed by the log key: the header line keeps them apart."""
    import base64

    cp = sign_note(f"{ORIGIN}\n5\n{base64.b64encode(bytes(32)).decode()}\n", signer)
    with pytest.raises(StatusListError):
        StatusList.open(cp, signer.public_key, signer.name)
    with pytest.raises(ValueError):
        verify_checkpoint(_note(signer).encode(), signer.public_key, signer.name)


def test_malformed_bodies_are_refused(signer: KeyFileSigner) -> None:
    for body in (
        f"{STATUS_LIST_HEADER}\n{{}}\n",
        f"{STATUS_LIST_HEADER}\nnot json\n",
        f'{STATUS_LIST_HEADER}\n{{"county":"x","entries":[["a","bogus",null]],'
        f'"this_update":"{T0.isoformat()}","next_update":"{(T0 + timedelta(1)).isoformat()}"}}\n',
        f'{STATUS_LIST_HEADER}\n{{"county":"x","entries":[],'
        f'"this_update":"{T0.isoformat()}","next_update":"{T0.isoformat()}"}}\n',  # no validity
        f'{STATUS_LIST_HEADER}\n{{"county":"x","entries":[],'
        f'"this_update":"2026-03-01T08:00:00","next_update":"2026-03-02T08:00:00"}}\n',  # no offset
    ):
        with pytest.raises(StatusListError):
            StatusList.open(sign_note(body, signer), signer.public_key, signer.name)


def test_revoked_document_fails_while_its_signature_stays_authentic(
    sealed: bytes, trust: TrustList, signer: KeyFileSigner
) -> None:
    """The document-level verdict falls; the signature's own report is what it was without a status. (This
    unit fixture binds no document number: the lookup reads it as number 3; the integration tests in
    tests/integration/api/test_decision_status.py use the real binding.)"""
    plain = verify_document(sealed, trust, now=NOW, limits=FAST)
    assert plain.indication is Indication.TOTAL_PASSED, plain.codes

    def as_number_3(note: str) -> Evidence:
        sl = StatusList.open(note, signer.public_key, signer.name)
        return Evidence(status_lookup=lambda b: sl.answer(replace(b, document_number="兴江审批〔2026〕3号")))

    note = _note(signer, at=NOW - timedelta(days=1))
    r = verify_document(sealed, trust, now=NOW, limits=FAST, evidence=as_number_3(note))
    assert r.indication is Indication.TOTAL_FAILED and "DECISION_REVOKED" in r.codes
    assert r.facts.status == "revoked"
    assert [(s.indication, s.reasons) for s in r.signatures] == [
        (s.indication, s.reasons) for s in plain.signatures
    ]
    # the same list, ten days on: still revoked (not merely stale)
    r = verify_document(sealed, trust, now=NOW + timedelta(days=10), limits=FAST, evidence=as_number_3(note))
    assert "DECISION_REVOKED" in r.codes and "STATUS_LIST_STALE" not in r.codes
    # a list not naming the document, past its next_update: INDETERMINATE, stale
    other = _note(signer, at=NOW - timedelta(days=8), entries=[])
    r = verify_document(sealed, trust, now=NOW, limits=FAST, evidence=as_number_3(other))
    assert r.indication is Indication.INDETERMINATE and "STATUS_LIST_STALE" in r.codes
