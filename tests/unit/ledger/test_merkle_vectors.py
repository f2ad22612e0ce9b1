"""Every published transparency-dev/merkle vector (tests/data/merkle, Apache-2.0), wantErr cases included."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger import _merkle

VECTORS = Path(__file__).resolve().parents[2] / "data" / "merkle"


def _b(x: str | None) -> bytes:
    return base64.b64decode(x) if x else b""


def _cases(kind: str) -> list[Path]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files, f"no {kind} vectors under {VECTORS}"
    return files


def _id(p: Path) -> str:
    return str(p.relative_to(VECTORS))


@pytest.mark.parametrize("path", _cases("inclusion"), ids=_id)
def test_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["leafIdx"], v["treeSize"], _b(v["leafHash"]), [_b(h) for h in v["proof"] or []], _b(v["root"]))
    if v["wantErr"]:
        with pytest.raises(_merkle.ProofError) as exc:
            _merkle.verify_inclusion(*args)
        assert exc.value.code in {"LEDGER_PROOF_INVALID", "LEDGER_ROOT_MISMATCH", "LEDGER_INDEX_OUT_OF_RANGE"}
    else:
        _merkle.verify_inclusion(*args)


@pytest.mark.parametrize("path", _cases("consistency"), ids=_id)
def test_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["size1"], v["size2"], [_b(h) for h in v["proof"] or []], _b(v["root1"]), _b(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(_merkle.ProofError) as exc:
            _merkle.verify_consistency(*args)
        assert exc.value.code in {"LEDGER_PROOF_INVALID", "LEDGER_ROOT_MISMATCH"}
    else:
        _merkle.verify_consistency(*args)


def test_vector_count() -> None:
    # 199 files in the published set, minus README/LICENSE/roots.json: all of them are exercised above.
    assert len(_cases("inclusion")) + len(_cases("consistency")) == 196


def test_roots_json() -> None:
    data = json.loads((VECTORS / "roots.json").read_text())
    leaves = [_merkle.leaf_hash(bytes.fromhex(x)) for x in data["leaf_inputs_hex"]]
    for n, want in enumerate(data["root_hashes_hex_by_size"]):
        assert _merkle.root_of(leaves[:n]).hex() == want


def test_happy_vectors_are_reproduced_by_our_proofs() -> None:
    """Our generator emits exactly the published proofs for the published tree."""
    data = json.loads((VECTORS / "roots.json").read_text())
    leaves = [_merkle.leaf_hash(bytes.fromhex(x)) for x in data["leaf_inputs_hex"]]
    for path in _cases("inclusion"):
        v = json.loads(path.read_text())
        if not v["wantErr"] and v["treeSize"] <= len(leaves):
            got = _merkle.inclusion_proof(v["leafIdx"], leaves[: v["treeSize"]])
            assert got == [_b(h) for h in v["proof"] or []], path
    for path in _cases("consistency"):
        v = json.loads(path.read_text())
        if not v["wantErr"] and 0 < v["size1"] < v["size2"] <= len(leaves):
            got = _merkle.consistency_proof(v["size1"], leaves[: v["size2"]])
            assert got == [_b(h) for h in v["proof"] or []], path
