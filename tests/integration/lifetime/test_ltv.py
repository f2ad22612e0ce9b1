"""Long-term validation end to end (issue 19, item 4): a permit sealed at T verifies TOTAL_PASSED in the
county at T+400 d and T+1500 d -- after its seal and TSA certificates (3 years) expired -- given only that
``yizhang serve`` ran for a moment at T+10 d, T+400 d, T+1000 d and T+1500 d (the ``aged_county`` timeline of
``conftest``, shared with the out-of-county tests). Real processes, the clock moved by libfaketime.

What serve does at T+1000 d, in its first long-term validation round: the county TSA's certificate (issued
at T, 3 years) has fewer than 365 days left, so it gets a new key and certificate; the stored permit's
latest timestamp is by the old TSA, ending within 300 days, so the chain and current CRLs go into its DSS
and the new TSA adds a document timestamp. The holder's download (the stored copy) is the extended one.
Before: the T+1500 d verification was INDETERMINATE (TIMESTAMP_UNTRUSTED, OUT_OF_BOUNDS_NO_POE). The
untouched original passes too, through the ledger's evidence record (issue 19 item 4b).
"""

from __future__ import annotations

import pytest

from tests.integration.lifetime.conftest import AgedCounty
from tests.integration.lifetime.test_lifetime import _codes

pytestmark = pytest.mark.softhsm


def test_permit_verifies_after_its_certificates_expired(aged_county: AgedCounty) -> None:
    aged = aged_county
    sealed = aged.doc.read_bytes()
    # nothing was due at +400 d: the stored copy is the document as sealed
    assert aged.stored[(400, aged.number)].read_bytes() == sealed
    report = aged.report("home.original@400")
    assert report["indication"] == "TOTAL_PASSED", _codes(report)

    # rotation and renewal at +1000 d: the holder's download is the document as sealed, extended
    extended = aged.stored[(1500, aged.number)].read_bytes()
    assert extended.startswith(sealed) and len(extended) > len(sealed)
    report = aged.report("home.extended@1500")
    assert report["indication"] == "TOTAL_PASSED", _codes(report)
    kinds = [s["kind"] for s in report["signatures"]]
    assert kinds == ["signature", "doc_timestamp", "doc_timestamp"]
    assert "ARCHIVE_TIMESTAMP_POE" in _codes(report)

    # the untouched original: its archive timestamp's TSA certificate expired with nothing after it in the
    # file; the ledger's evidence record (checkpoint stamped at +10 d, re-anchored at +1000 d) proves it
    original = aged.report("home.original@1500")
    assert original["indication"] == "TOTAL_PASSED", _codes(original)
    assert "EVIDENCE_RECORD_POE" in _codes(original)
