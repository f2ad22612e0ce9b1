"""A naive RFC 6962 reference (the RFC's recursive definitions, nothing shared) against the real tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import _merkle


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over leaf *inputs*."""
    n = len(leaves)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + leaves[0])
    k = _k(n)
    return _h(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return ref_path(m, leaves[:k]) + [ref_mth(leaves[k:])]
    return ref_path(m - k, leaves[k:]) + [ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(leaves)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, leaves[:k], whole) + [ref_mth(leaves[k:])]
    return ref_subproof(m - k, leaves[k:], False) + [ref_mth(leaves[:k])]


def _leaves(n: int, salt: int = 0) -> list[bytes]:
    return [f"entry-{salt}-{i}".encode() for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=0, max_value=3000), salt=st.integers(0, 1000))
def test_root_agrees_with_reference(n: int, salt: int) -> None:
    leaves = _leaves(n, salt)
    assert _merkle.root_of(_merkle.leaf_hash(x) for x in leaves) == ref_mth(leaves)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(min_value=1, max_value=3000))
def test_proofs_agree_with_reference(data: st.DataObject, n: int) -> None:
    leaves = _leaves(n)
    hashes = [_merkle.leaf_hash(x) for x in leaves]
    root = ref_mth(leaves)
    m = data.draw(st.integers(0, n - 1))
    proof = _merkle.inclusion_proof(m, hashes)
    assert proof == ref_path(m, leaves)
    _merkle.verify_inclusion(m, n, hashes[m], proof, root)
    size1 = data.draw(st.integers(1, n))
    cproof = _merkle.consistency_proof(size1, hashes)
    assert cproof == ref_subproof(size1, leaves, True)
    _merkle.verify_consistency(size1, n, cproof, ref_mth(leaves[:size1]), root)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(min_value=2, max_value=300))
def test_tampered_proofs_are_refused(data: st.DataObject, n: int) -> None:
    hashes = [_merkle.leaf_hash(x) for x in _leaves(n)]
    root = _merkle.root_of(hashes)
    m = data.draw(st.integers(0, n - 1))
    proof = _merkle.inclusion_proof(m, hashes)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(proof)
        bad[i] = bytes(b ^ (1 << (bit % 8)) if j == bit // 8 else b for j, b in enumerate(bad[i]))
        with pytest.raises(_merkle.ProofError):
            _merkle.verify_inclusion(m, n, hashes[m], bad, root)
    with pytest.raises(_merkle.ProofError):
        _merkle.verify_inclusion(m, n, hashes[m], [*proof, b"\x00" * 32], root)
    with pytest.raises(_merkle.ProofError):
        _merkle.verify_inclusion((m + 1) % n, n, hashes[m], proof, root)
    with pytest.raises(_merkle.ProofError) as exc:
        _merkle.verify_inclusion(n, n, hashes[m], proof, root)
    assert exc.value.code == "LEDGER_INDEX_OUT_OF_RANGE"
    with pytest.raises(_merkle.ProofError) as exc:
        _merkle.verify_inclusion(m, n, hashes[m], [p[:31] for p in proof] or [b"x"], root)
    assert exc.value.code in {"LEDGER_PROOF_INVALID"}
    size1 = data.draw(st.integers(1, n - 1))
    cproof = _merkle.consistency_proof(size1, hashes)
    other = _merkle.root_of(hashes[: size1 - 1] + [_merkle.leaf_hash(b"forged")])
    with pytest.raises(_merkle.ProofError):
        _merkle.verify_consistency(size1, n, cproof, other, root)


def test_compact_range_emits_every_perfect_node_once() -> None:
    hashes = [_merkle.leaf_hash(x) for x in _leaves(100)]
    cr = _merkle.CompactRange()
    made: dict[tuple[int, int], bytes] = {}
    for h in hashes:
        for level, index, node in cr.append(h):
            assert (level, index) not in made
            made[(level, index)] = node
    for (level, index), node in made.items():
        assert node == _merkle.root_of(hashes[index << level : (index + 1) << level])
    assert cr.root() == _merkle.root_of(hashes)
    assert _merkle.CompactRange.from_bytes(cr.size, cr.to_bytes()).root() == cr.root()


def test_plans_out_of_range() -> None:
    with pytest.raises(_merkle.ProofError) as exc:
        _merkle.inclusion_plan(5, 5)
    assert exc.value.code == "LEDGER_INDEX_OUT_OF_RANGE"
    with pytest.raises(_merkle.ProofError):
        _merkle.consistency_plan(0, 5)
    with pytest.raises(_merkle.ProofError):
        _merkle.consistency_plan(6, 5)
