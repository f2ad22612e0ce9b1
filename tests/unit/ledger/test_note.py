"""Signed notes, checkpoints and tlog-proof receipts: format, round trip, every kind of tampering."""

from __future__ import annotations

import base64
import hashlib

import pytest

from core.errors import BadInput, VerificationError
from ledger import _merkle
from ledger._note import (
    Checkpoint,
    KeyFileSigner,
    NoteVerifier,
    Receipt,
    checkpoint_text,
    key_id,
    open_note,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    verify_receipt,
    vkey_for,
)
from tests._fixtures.ledger import MemorySigner

ORIGIN = "yizhang.test/ledger"


@pytest.fixture
def signer() -> MemorySigner:
    return MemorySigner(ORIGIN)


@pytest.fixture
def verifier(signer: MemorySigner) -> NoteVerifier:
    return NoteVerifier.for_signer(signer)


def test_checkpoint_layout(signer: MemorySigner, verifier: NoteVerifier) -> None:
    root = hashlib.sha256(b"root").digest()
    cp = sign_checkpoint(ORIGIN, 20852163, root, signer)
    text, sig = cp.note.split("\n\n")
    assert text == f"{ORIGIN}\n20852163\n{base64.b64encode(root).decode()}"
    assert sig.startswith(f"\u2014 {ORIGIN} ") and sig.endswith("\n")
    raw = base64.b64decode(sig.split(" ")[2])
    assert raw[:4] == key_id(ORIGIN, signer.public_key) and len(raw) == 68
    assert verify_checkpoint(cp.note, [verifier], ORIGIN) == cp


def test_key_id_and_vkey_follow_signed_note(signer: MemorySigner) -> None:
    want = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + signer.public_key).digest()[:4]
    assert key_id(ORIGIN, signer.public_key) == want
    vkey = vkey_for(ORIGIN, signer.public_key)
    name, kid, key = vkey.split("+", 2)
    assert (name, kid) == (ORIGIN, want.hex())
    assert base64.b64decode(key) == b"\x01" + signer.public_key
    assert NoteVerifier.from_vkey(vkey).public_key == signer.public_key


def test_go_sumdb_vkey_parses() -> None:
    # The Go checksum database's published key (golang.org/x/mod/sumdb/note): a foreign, real vkey.
    v = NoteVerifier.from_vkey("sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8")
    assert v.name == "sum.golang.org" and v.key_id.hex() == "033de0ae"


@pytest.mark.parametrize(
    "vkey",
    ["", "name", "name+zz+AAAA", "a b+01020304+AQ==", "name+01020304+!!!", "name+00000000+" + "A" * 44],
)
def test_bad_vkeys(vkey: str) -> None:
    with pytest.raises(BadInput) as exc:
        NoteVerifier.from_vkey(vkey)
    assert exc.value.code == "LEDGER_VKEY_INVALID"


def _flip(note: str, pos: int) -> str:
    c = note[pos]
    return note[:pos] + ("A" if c != "A" else "B") + note[pos + 1 :]


def test_tampered_checkpoints(signer: MemorySigner, verifier: NoteVerifier) -> None:
    cp = sign_checkpoint(ORIGIN, 10, hashlib.sha256(b"r").digest(), signer)
    # a changed size, a changed root, a changed signature
    for bad in (
        cp.note.replace("\n10\n", "\n11\n"),
        _flip(cp.note, len(ORIGIN) + 5),
        _flip(cp.note, len(cp.note) - 10),
    ):
        with pytest.raises(VerificationError) as exc:
            verify_checkpoint(bad, [verifier])
        assert exc.value.code == "LEDGER_CHECKPOINT_SIGNATURE_INVALID"
    other = MemorySigner(ORIGIN)
    with pytest.raises(VerificationError) as exc:
        verify_checkpoint(sign_checkpoint(ORIGIN, 10, cp.root, other).note, [verifier])
    assert exc.value.code == "LEDGER_CHECKPOINT_UNKNOWN_KEY"
    with pytest.raises(VerificationError) as exc:
        verify_checkpoint(cp.note, [verifier], "elsewhere/ledger")
    assert exc.value.code == "LEDGER_CHECKPOINT_ORIGIN_MISMATCH"
    for garbage in ("", "hello", cp.note.replace("\n\n", "\n"), cp.note.replace("\u2014", "-")):
        with pytest.raises(VerificationError) as exc:
            verify_checkpoint(garbage, [verifier])
        assert exc.value.code in {"LEDGER_NOTE_MALFORMED", "LEDGER_CHECKPOINT_MALFORMED"}


def test_cosigned_note_with_unknown_witness_still_opens(signer: MemorySigner, verifier: NoteVerifier) -> None:
    witness = MemorySigner("witness.example")
    note = sign_note("hello\n", signer)
    extra = sign_note("hello\n", witness).split("\n\n")[1]
    assert open_note(note + extra, [verifier]) == "hello\n"


def test_note_text_rules(signer: MemorySigner) -> None:
    with pytest.raises(BadInput):
        sign_note("no newline", signer)
    with pytest.raises(BadInput):
        checkpoint_text("", 1, b"\x00" * 32)


def _receipt(signer: MemorySigner, n: int = 13, index: int = 6) -> Receipt:
    entries = [f"entry {i}".encode() for i in range(n)]
    hashes = [_merkle.leaf_hash(e) for e in entries]
    cp = sign_checkpoint(ORIGIN, n, _merkle.root_of(hashes), signer)
    return Receipt(index, entries[index], hashes[index], tuple(_merkle.inclusion_proof(index, hashes)), cp)


def test_tlog_proof_round_trip(signer: MemorySigner, verifier: NoteVerifier) -> None:
    r = _receipt(signer)
    text = r.to_text()
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(b"entry 6").decode()
    assert lines[2] == "index 6"
    assert verify_receipt(text, [verifier], ORIGIN) == r


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda t: t.replace("index 6", "index 7"), "LEDGER_PROOF_INVALID"),
        (lambda t: t.replace("index 6", "index 13"), "LEDGER_INDEX_OUT_OF_RANGE"),
        (lambda t: t.replace("index 6", "index x"), "LEDGER_PROOF_INVALID"),
        (lambda t: t.replace("extra ", "extra AAAA", 1), "LEDGER_PROOF_INVALID"),
        (lambda t: t.replace("index 6\n", "index 6\n" + "A" * 44 + "\n"), "LEDGER_PROOF_INVALID"),
        (lambda t: t.replace("index 6\n", "index 6\n%%%garbage%%%\n"), "LEDGER_PROOF_INVALID"),
        (lambda t: t.replace("tlog-proof@v1", "tlog-proof@v2"), "LEDGER_PROOF_INVALID"),
        (lambda t: "\n".join(line for i, line in enumerate(t.split("\n")) if i != 3), "LEDGER_PROOF_INVALID"),
        (lambda t: t.split("\n\n")[0], "LEDGER_PROOF_INVALID"),
        (lambda t: "\x00\xff garbage", "LEDGER_PROOF_INVALID"),
    ],
)
def test_tampered_receipts(signer: MemorySigner, verifier: NoteVerifier, mangle, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(VerificationError) as exc:
        verify_receipt(mangle(_receipt(signer).to_text()), [verifier], ORIGIN)
    assert exc.value.code == code


def test_receipt_against_unknown_key(signer: MemorySigner) -> None:
    with pytest.raises(VerificationError) as exc:
        verify_receipt(_receipt(signer).to_text(), [NoteVerifier.for_signer(MemorySigner(ORIGIN))])
    assert exc.value.code == "LEDGER_CHECKPOINT_UNKNOWN_KEY"


def test_callable_signer_checks_what_it_signs(signer: MemorySigner, verifier: NoteVerifier) -> None:
    from ledger import CallableSigner

    wrapped = CallableSigner(ORIGIN, signer.public_key, signer.sign)
    assert verify_checkpoint(sign_checkpoint(ORIGIN, 3, b"\x01" * 32, wrapped).note, [verifier]).size == 3
    broken = CallableSigner(ORIGIN, signer.public_key, lambda m: b"short")
    with pytest.raises(VerificationError) as exc:
        sign_checkpoint(ORIGIN, 3, b"\x01" * 32, broken)
    assert exc.value.code == "LEDGER_SIGNER_INVALID"


def test_key_file_signer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "secrets" / "log.key"
    a = KeyFileSigner.load_or_create(path, ORIGIN)
    assert path.stat().st_mode & 0o777 == 0o600
    b = KeyFileSigner.load_or_create(path, ORIGIN)
    assert a.public_key == b.public_key
    cp = sign_checkpoint(ORIGIN, 1, b"\x00" * 32, b)
    assert isinstance(verify_checkpoint(cp.note, [NoteVerifier.for_signer(a)]), Checkpoint)
    path.write_text("not a key")
    with pytest.raises(BadInput) as exc:
        KeyFileSigner.load_or_create(path, ORIGIN)
    assert exc.value.code == "LEDGER_LOG_KEY_INVALID"
