"""RFC 6962 / RFC 9162 Merkle tree: hashing, roots, proof plans, proofs and their verifiers.

Pure functions over bytes, standard library only (an import-linter contract keeps it so).

Nodes are named ``(level, index)``: the perfect subtree of ``2**level`` leaves starting at leaf
``index * 2**level``. Any proof element is the hash of a subtree ``[begin, end)`` that RFC 6962 draws; such a
subtree is either perfect (one stored node) or a right border, which is the right-fold of the perfect subtrees
covering it (at most ``log2(n)`` of them). A *plan* lists, per proof element, the perfect nodes to fold, so
that storage fetches every node a proof needs in one query and no proof walks the leaves.

The verifiers are a port of transparency-dev/merkle ``proof/verify.go`` (Apache-2.0), with one stricter rule
that the shared vectors require: a consistency proof from an empty tree (``size1 == 0``) is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]
Plan = list[list[Node]]


class ProofError(ValueError):
    """A proof, a size or a hash is malformed or does not match (verifiers raise it, never return False)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- compact ranges: the right border of a growing tree -------------------------------------------------


class CompactRange:
    """The perfect subtrees covering leaves ``[0, size)``, largest first; O(log n) memory.

    ``append`` returns the perfect nodes it completes (level, index, hash), lowest first, so that a store can
    persist every interior node exactly once as the tree grows.
    """

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1"):
            raise ProofError("LEDGER_RANGE_INVALID", "compact range does not match its size")
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        made = [(0, self.size, leaf)]
        h = leaf
        level = 0
        n = self.size
        while n & 1:
            h = node_hash(self.hashes.pop(), h)
            level += 1
            n >>= 1
            made.append((level, n, h))
        self.hashes.append(h)
        self.size += 1
        return made

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        h = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            h = node_hash(left, h)
        return h

    def nodes(self) -> list[Node]:
        """The (level, index) of each hash held, largest subtree first."""
        return perfect_nodes(0, self.size)

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> CompactRange:
        if len(blob) % HASH_SIZE:
            raise ProofError("LEDGER_RANGE_INVALID", "compact range blob is not a multiple of 32 bytes")
        return cls(size, [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)])


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """The root of the tree whose leaves have these hashes (streaming, O(log n) memory)."""
    cr = CompactRange()
    for h in leaf_hashes:
        cr.append(h)
    return cr.root()


# --- plans: which perfect nodes make each proof element ------------------------------------------------


def perfect_nodes(begin: int, end: int) -> list[Node]:
    """The perfect subtrees covering ``[begin, end)`` for an RFC 6962 subtree range, largest first.

    Valid when ``begin`` is aligned to the largest power of two below ``end - begin`` (true for every range a
    proof mentions, and for ``[0, n)``).
    """
    out: list[Node] = []
    while begin < end:
        size = end - begin
        level = size.bit_length() - 1  # the largest power of two not above size
        if begin & ((1 << level) - 1):
            raise ProofError("LEDGER_RANGE_INVALID", f"[{begin}, {end}) is not an RFC 6962 subtree range")
        out.append((level, begin >> level))
        begin += 1 << level
    return out


def _largest_pow2_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_plan(index: int, size: int) -> Plan:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]) as node plans, leaf-side first."""
    if not 0 <= index < size:
        raise ProofError("LEDGER_INDEX_OUT_OF_RANGE", f"index {index} is not below tree size {size}")
    out: Plan = []
    begin, end, m = 0, size, index
    # Walk down from the root, collecting siblings; reversed at the end so the proof runs leaf to root.
    while end - begin > 1:
        k = _largest_pow2_below(end - begin)
        if m < k:
            out.append(perfect_nodes(begin + k, end))
            end = begin + k
        else:
            out.append(perfect_nodes(begin, begin + k))
            begin += k
            m -= k
    out.reverse()
    return out


def consistency_plan(size1: int, size2: int) -> Plan:
    """RFC 9162 §2.1.4.1 PROOF(size1, D[0:size2]) as node plans."""
    if not 0 < size1 <= size2:
        raise ProofError("LEDGER_INDEX_OUT_OF_RANGE", f"no consistency proof from {size1} to {size2}")
    out: Plan = []
    begin, end, m, whole = 0, size2, size1, True
    while m != end - begin:
        n = end - begin
        k = _largest_pow2_below(n)
        if m <= k:
            out.append(perfect_nodes(begin + k, end))
            end = begin + k
        else:
            out.append(perfect_nodes(begin, begin + k))
            begin += k
            m -= k
            whole = False
    if not whole:
        out.append(perfect_nodes(begin, end))
    out.reverse()
    return out


def plan_nodes(plan: Plan) -> set[Node]:
    return {node for element in plan for node in element}


def materialize(plan: Plan, nodes: Mapping[Node, bytes]) -> list[bytes]:
    """Fold each plan element's perfect nodes (right to left) into one proof hash."""
    proof = []
    for element in plan:
        h = nodes[element[-1]]
        for node in reversed(element[:-1]):
            h = node_hash(nodes[node], h)
        proof.append(h)
    return proof


# --- in-memory proofs (reference use, tests, export checks) --------------------------------------------


def _subtree_hash(leaf_hashes: Sequence[bytes], level: int, index: int) -> bytes:
    begin = index << level
    return root_of(leaf_hashes[begin : begin + (1 << level)])


def node_lookup(leaf_hashes: Sequence[bytes]) -> Callable[[Node], bytes]:
    return lambda node: _subtree_hash(leaf_hashes, node[0], node[1])


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    plan = inclusion_plan(index, len(leaf_hashes))
    get = node_lookup(leaf_hashes)
    return materialize(plan, {n: get(n) for n in plan_nodes(plan)})


def consistency_proof(size1: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    plan = consistency_plan(size1, len(leaf_hashes))
    get = node_lookup(leaf_hashes)
    return materialize(plan, {n: get(n) for n in plan_nodes(plan)})


# --- verifiers (port of transparency-dev/merkle proof/verify.go) ---------------------------------------


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise ProofError("LEDGER_PROOF_INVALID", f"proof element {i} is not a 32-byte hash")


def _match(calculated: bytes, expected: bytes) -> None:
    if not hmac.compare_digest(bytes(calculated), bytes(expected)):
        raise ProofError("LEDGER_ROOT_MISMATCH", "calculated root does not match the expected root")


def _decomp_incl_proof(index: int, size: int) -> tuple[int, int]:
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    if index < 0 or index >= size:
        raise ProofError("LEDGER_INDEX_OUT_OF_RANGE", f"index {index} is beyond tree size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError("LEDGER_PROOF_INVALID", f"leaf hash has {len(leaf)} bytes, want {HASH_SIZE}")
    inner, border = _decomp_incl_proof(index, size)
    if len(proof) != inner + border:
        raise ProofError("LEDGER_PROOF_INVALID", f"wrong proof size {len(proof)}, want {inner + border}")
    _check_hashes(proof)
    res = _chain_inner(leaf, proof[:inner], index)
    return _chain_border_right(res, proof[inner:])


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof`` puts leaf ``index`` in the tree (``size``, ``root``)."""
    _match(root_from_inclusion_proof(index, size, leaf, proof), root)


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows the tree ``(size1, root1)`` is a prefix of ``(size2,
    root2)``."""
    if size1 < 0 or size2 < size1:
        raise ProofError("LEDGER_PROOF_INVALID", f"size2 ({size2}) < size1 ({size1})")
    if size1 == 0:
        # verify.go accepts 0 == 0; the shared vectors (and this log) hold that a proof from the empty tree
        # proves nothing and is refused.
        raise ProofError("LEDGER_PROOF_INVALID", "consistency proof from an empty tree")
    if size1 == size2:
        if proof:
            raise ProofError("LEDGER_PROOF_INVALID", "size1 == size2 but the proof is not empty")
        _match(root1, root2)
        return
    if not proof:
        raise ProofError("LEDGER_PROOF_INVALID", "empty consistency proof")
    _check_hashes(proof)
    inner, border = _decomp_incl_proof(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    # The proof starts with the root of the subtree of size 2**shift, unless size1 is that very subtree.
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = proof[0], 1
    if len(proof) != start + inner + border:
        raise ProofError(
            "LEDGER_PROOF_INVALID", f"wrong proof size {len(proof)}, want {start + inner + border}"
        )
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    _match(hash1, root1)
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    _match(hash2, root2)
