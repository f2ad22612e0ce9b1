"""Step 8: ledger receipt, inclusion proof against a C2SP signed checkpoint, decision status, delegation."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.unit.verify.conftest import FAST, NOW
from verifier import BindingFacts, Evidence, Indication, LedgerReceipt, TrustList, verify_document
from verifier._evidence import check_evidence, leaf_hash, root_from_inclusion_proof, verify_checkpoint


def _node(a: bytes, b: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + a + b).digest()


def _mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return _node(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(index: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if index < k:
        return _path(index, leaves[:k]) + [_mth(leaves[k:])]
    return _path(index - k, leaves[k:]) + [_mth(leaves[:k])]


def _checkpoint(key: Ed25519PrivateKey, name: str, size: int, root: bytes) -> bytes:
    body = f"yizhang.example/xingguo\n{size}\n{base64.b64encode(root).decode()}\n"
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_hash = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
    sig = key.sign(body.encode())
    return (body + "\n" + f"\u2014 {name} {base64.b64encode(key_hash + sig).decode()}\n").encode()


ENTRIES = [
    json.dumps({"idempotency_key": f"k{i}", "document_number": f"兴江许字〔2026〕{i}号"}).encode()
    for i in range(7)
]


@pytest.fixture(scope="module")
def log() -> tuple[Ed25519PrivateKey, bytes, bytes]:
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    leaves = [leaf_hash(e) for e in ENTRIES]
    return key, pub, _checkpoint(key, "xingguo-log", len(leaves), _mth(leaves))


def _receipt(index: int, checkpoint: bytes, entry: bytes | None = None) -> LedgerReceipt:
    leaves = [leaf_hash(e) for e in ENTRIES]
    return LedgerReceipt(
        index=index, entry=entry or ENTRIES[index], proof=tuple(_path(index, leaves)), checkpoint=checkpoint
    )


@pytest.mark.parametrize("index", range(7))
def test_inclusion_proofs_verify_for_every_leaf(index: int) -> None:
    leaves = [leaf_hash(e) for e in ENTRIES]
    assert root_from_inclusion_proof(index, 7, leaves[index], tuple(_path(index, leaves))) == _mth(leaves)


def test_tampered_proof_fails() -> None:
    leaves = [leaf_hash(e) for e in ENTRIES]
    proof = list(_path(3, leaves))
    proof[0] = bytes(32)
    assert root_from_inclusion_proof(3, 7, leaves[3], tuple(proof)) != _mth(leaves)
    with pytest.raises(ValueError):
        root_from_inclusion_proof(3, 7, leaves[3], tuple(proof[:-1]))


def test_checkpoint_signature(log) -> None:  # type: ignore[no-untyped-def]
    key, pub, cp = log
    origin, size, _root = verify_checkpoint(cp, pub, "xingguo-log")
    assert origin == "yizhang.example/xingguo" and size == 7
    with pytest.raises(ValueError):
        verify_checkpoint(cp.replace(b"\n7\n", b"\n8\n"), pub, None)


BINDING = BindingFacts(idempotency_key="k3", document_number="兴江许字〔2026〕3号", matter="M-001")


def test_receipt_checks_out(log) -> None:  # type: ignore[no-untyped-def]
    _key, pub, cp = log
    reasons, facts = check_evidence(
        Evidence(receipt=_receipt(3, cp), log_public_key=pub), BINDING, None, None, NOW
    )
    assert reasons == [] and facts["ledger_verified"] is True and facts["ledger_index"] == 3


def test_receipt_for_another_document_fails(log) -> None:  # type: ignore[no-untyped-def]
    _key, pub, cp = log
    reasons, _ = check_evidence(
        Evidence(receipt=_receipt(4, cp), log_public_key=pub), BINDING, None, None, NOW
    )
    assert [r.code for r in reasons] == ["LEDGER_ENTRY_MISMATCH"]


def test_forged_checkpoint_fails(log) -> None:  # type: ignore[no-untyped-def]
    _key, pub, _cp = log
    other = Ed25519PrivateKey.generate()
    forged = _checkpoint(other, "xingguo-log", 7, b"\x00" * 32)
    reasons, _ = check_evidence(
        Evidence(receipt=_receipt(3, forged), log_public_key=pub), BINDING, None, None, NOW
    )
    assert [r.code for r in reasons] == ["CHECKPOINT_INVALID"]


def test_wrong_entry_fails_the_proof(log) -> None:  # type: ignore[no-untyped-def]
    _key, pub, cp = log
    bad = _receipt(3, cp, entry=b'{"idempotency_key": "k3", "extra": 1}')
    reasons, _ = check_evidence(Evidence(receipt=bad, log_public_key=pub), BINDING, None, None, NOW)
    assert [r.code for r in reasons] == ["LEDGER_PROOF_INVALID"]


@pytest.mark.parametrize(
    ("status", "code", "indication"),
    [
        ("valid", None, Indication.TOTAL_PASSED),
        ("changed", "DECISION_CHANGED", Indication.INDETERMINATE),
        ("withdrawn", "DECISION_WITHDRAWN", Indication.TOTAL_FAILED),
        ("revoked", "DECISION_REVOKED", Indication.TOTAL_FAILED),
        ("cancelled", "DECISION_CANCELLED", Indication.TOTAL_FAILED),
    ],
)
def test_decision_status_on_a_sealed_document(
    sealed: bytes, trust: TrustList, status: str, code: str | None, indication: Indication
) -> None:
    r = verify_document(
        sealed, trust, now=NOW, limits=FAST, evidence=Evidence(status_lookup=lambda b: status)
    )
    assert r.indication is indication, r.codes
    assert r.facts.status == status
    if code:
        assert code in r.codes


def test_matter_not_delegated_at_signing_time(sealed: bytes, trust: TrustList) -> None:
    seen: list[datetime] = []

    def delegated(seal, binding, at):  # type: ignore[no-untyped-def]
        seen.append(at)
        return False

    r = verify_document(sealed, trust, now=NOW, limits=FAST, evidence=Evidence(delegation_lookup=delegated))
    assert r.indication is Indication.TOTAL_FAILED and "MATTER_NOT_DELEGATED" in r.codes
    assert seen == [datetime(2026, 3, 1, 9, 0, tzinfo=UTC)]  # judged at the proven signing time
