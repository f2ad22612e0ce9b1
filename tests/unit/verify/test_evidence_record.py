"""The evidence record's format (``yizhang-evidence-record/1``, docs/ledger-format.md): what the verifier's
own parser accepts and refuses. The chain itself is verified against a real TSA and ledger in
tests/integration/signer/test_ledger_evidence.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

PROOF = "c2sp.org/tlog-proof@v1\nextra " + base64.b64encode(b"entry").decode() + "\nindex 3\n\nnote\n"


def _record(**changes: Any) -> bytes:
    link = {"kind": "STAMP", "checkpoint": "o\n1\nAA==\n", "token": "AAEC", "certs": [], "crls": []}
    record: dict[str, Any] = {
        "format": "yizhang-evidence-record/1",
        "index": 3,
        "proof": PROOF,
        "chain": [link],
    }
    record.update(changes)
    return json.dumps(record).encode()


def test_a_well_formed_record_parses() -> None:
    from verifier import EvidenceRecord

    data = _record()
    assert EvidenceRecord.looks_like(data) and not EvidenceRecord.looks_like(PROOF.encode())
    record = EvidenceRecord.parse(data)
    assert record.receipt.index == 3 and record.receipt.entry == b"entry"
    assert [(link.kind, link.token) for link in record.links] == [("STAMP", b"\x00\x01\x02")]


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"format": "yizhang-evidence-record/2"}, "not a yizhang-evidence-record/1"),
        ({"chain": []}, "1..64 links"),
        ({"chain": [{"kind": "RENEWAL", "checkpoint": "x", "token": "AA=="}]}, "must be a STAMP"),
        (
            {
                "chain": [
                    {"kind": "STAMP", "checkpoint": "x", "token": "AA=="},
                    {"kind": "STAMP", "checkpoint": "x", "token": "AA=="},
                ]
            },
            "must be a RENEWAL",
        ),
        ({"chain": [{"kind": "STAMP", "checkpoint": "x", "token": "not base64!"}]}, "not base64"),
        ({"chain": [{"kind": "STAMP", "token": "AA=="}]}, "names no checkpoint"),
        ({"chain": [{"kind": "STAMP", "checkpoint": "x", "token": "AA=="}] * 65}, "1..64 links"),
        ({"proof": "c2sp.org/tlog-proof@v1\nindex x\n\nnote\n"}, "missing index line"),
    ],
)
def test_malformed_records_are_refused(changes: dict[str, Any], why: str) -> None:
    from verifier import EvidenceRecord

    with pytest.raises(ValueError, match=why):
        EvidenceRecord.parse(_record(**changes))
