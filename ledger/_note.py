"""Signed notes (C2SP signed-note), checkpoints (C2SP tlog-checkpoint) and proofs (C2SP tlog-proof).

Only Ed25519 note signatures (signature type 0x01). A verifier needs nothing but the log's verifier key
``<name>+<hex key id>+<base64(0x01 || public key)>``; no database, no token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import BadInput, VerificationError
from ledger import _merkle

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # em dash and a space
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_NAME = re.compile(r"^[^\s+]+$")


@runtime_checkable
class NoteSigner(Protocol):
    """Signs notes with an Ed25519 key held in a file or a token (the caller chooses)."""

    @property
    def name(self) -> str: ...

    @property
    def public_key(self) -> bytes: ...  # 32 raw bytes

    def sign(self, message: bytes) -> bytes: ...  # 64-byte Ed25519 signature


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, code: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise VerificationError(code, f"{what} is not valid base64", f"{what} 不是有效的 base64") from exc


def key_id(name: str, public_key: bytes) -> bytes:
    """signed-note key ID: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def vkey_for(name: str, public_key: bytes) -> str:
    if not _NAME.match(name):
        raise BadInput("LEDGER_KEY_NAME_INVALID", "a key name must be non-empty, without spaces or '+'")
    return f"{name}+{key_id(name, public_key).hex()}+{_b64(bytes([ALG_ED25519]) + public_key)}"


@dataclass(frozen=True)
class NoteVerifier:
    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or not _NAME.match(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise BadInput("LEDGER_VKEY_INVALID", "malformed verifier key", "验证公钥格式错误")
        try:
            key = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadInput("LEDGER_VKEY_INVALID", "malformed verifier key", "验证公钥格式错误") from exc
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise BadInput("LEDGER_VKEY_INVALID", "only Ed25519 verifier keys are supported")
        if key_id(parts[0], key[1:]).hex() != parts[1]:
            raise BadInput("LEDGER_VKEY_INVALID", "verifier key ID does not match the key")
        return cls(parts[0], bytes.fromhex(parts[1]), key[1:])

    @classmethod
    def for_signer(cls, signer: NoteSigner) -> NoteVerifier:
        return cls.from_vkey(vkey_for(signer.name, signer.public_key))

    @property
    def vkey(self) -> str:
        return vkey_for(self.name, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class CallableSigner:
    """Adapts any Ed25519 signing function to :class:`NoteSigner`, e.g. a token-held log key::

    CallableSigner(origin_for(settings), raw_public_key, lambda m: keystore.sign_ed25519("ledger-log", m))
    """

    def __init__(self, name: str, public_key: bytes, sign: Callable[[bytes], bytes]) -> None:
        vkey_for(name, public_key)  # validates the name
        if len(public_key) != 32:
            raise BadInput("LEDGER_LOG_KEY_INVALID", "an Ed25519 public key has 32 bytes")
        self._name, self._public, self._sign = name, bytes(public_key), sign

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._sign(message)


class KeyFileSigner:
    """An Ed25519 log key in a PEM file (PKCS#8, unencrypted, mode 0600): the embedded default."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        vkey_for(name, b"\x00" * 32)  # validates the name
        self._name = name
        self._key = private_key
        self._public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def load_or_create(cls, path: Path, name: str) -> KeyFileSigner:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            # O_EXCL: two processes starting at once must not each write a different key.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(pem)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise BadInput("LEDGER_LOG_KEY_INVALID", f"cannot read the log key {path}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise BadInput("LEDGER_LOG_KEY_INVALID", f"{path} is not an Ed25519 key")
        return cls(name, key)

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


# --- signed notes ----------------------------------------------------------------------------------------


def sign_note(text: str, signer: NoteSigner) -> str:
    if not text.endswith("\n") or "\n\n" in text:
        raise BadInput("LEDGER_NOTE_INVALID", "note text must be non-empty lines, each ending in a newline")
    sig = signer.sign(text.encode("utf-8"))
    if len(sig) != 64:
        raise VerificationError("LEDGER_SIGNER_INVALID", "the log key did not return an Ed25519 signature")
    kid = key_id(signer.name, signer.public_key)
    return f"{text}\n{SIG_PREFIX}{signer.name} {_b64(kid + sig)}\n"


def open_note(note: str, verifiers: list[NoteVerifier]) -> str:
    """Return the note text if a signature by one of ``verifiers`` is valid.

    1. split text and signature block at the last blank line;
    2. parse each signature line (``— name base64(keyid || sig)``);
    3. a line naming a known key (name and key ID) must verify, else SIGNATURE_INVALID;
    4. no line from a known key at all: UNKNOWN_KEY.
    """
    text, sep, sigblock = note.rpartition("\n\n")
    if not sep or not text or not sigblock.endswith("\n"):
        raise VerificationError("LEDGER_NOTE_MALFORMED", "not a signed note", "不是签名注记")
    text += "\n"
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = False
    for line in sigblock[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise VerificationError("LEDGER_NOTE_MALFORMED", "malformed signature line", "签名行格式错误")
        name, _, b64sig = line[len(SIG_PREFIX) :].partition(" ")
        raw = _unb64(b64sig, "LEDGER_NOTE_MALFORMED", "signature")
        if len(raw) < 5:
            raise VerificationError("LEDGER_NOTE_MALFORMED", "signature too short")
        verifier = known.get((name, raw[:4]))
        if verifier is None:
            continue
        if not verifier.verify(text.encode("utf-8"), raw[4:]):
            raise VerificationError(
                "LEDGER_CHECKPOINT_SIGNATURE_INVALID",
                f"signature by {name} does not verify",
                f"{name} 的签名验证失败",
            )
        verified = True
    if not verified:
        raise VerificationError(
            "LEDGER_CHECKPOINT_UNKNOWN_KEY", "no signature from a known log key", "没有已知日志密钥的签名"
        )
    return text


# --- checkpoints ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    note: str  # the signed note, as published

    @property
    def root_hex(self) -> str:
        return self.root.hex()


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    if not origin or "\n" in origin:
        raise BadInput("LEDGER_ORIGIN_INVALID", "a log origin is one non-empty line")
    return f"{origin}\n{size}\n{_b64(root)}\n"


def parse_checkpoint_text(text: str) -> tuple[str, int, bytes]:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or not all(lines[:-1]):
        raise VerificationError("LEDGER_CHECKPOINT_MALFORMED", "checkpoint needs origin, size and root lines")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size_s):
        raise VerificationError("LEDGER_CHECKPOINT_MALFORMED", "checkpoint size is not a decimal")
    root = _unb64(root_s, "LEDGER_CHECKPOINT_MALFORMED", "checkpoint root")
    if len(root) != 32:
        raise VerificationError("LEDGER_CHECKPOINT_MALFORMED", "checkpoint root is not 32 bytes")
    return origin, int(size_s), root


def sign_checkpoint(origin: str, size: int, root: bytes, signer: NoteSigner) -> Checkpoint:
    return Checkpoint(origin, size, root, sign_note(checkpoint_text(origin, size, root), signer))


def verify_checkpoint(note: str, verifiers: list[NoteVerifier], origin: str | None = None) -> Checkpoint:
    cp_origin, size, root = parse_checkpoint_text(open_note(note, verifiers))
    if origin is not None and cp_origin != origin:
        raise VerificationError("LEDGER_CHECKPOINT_ORIGIN_MISMATCH", f"checkpoint is for {cp_origin!r}")
    return Checkpoint(cp_origin, size, root, note)


# --- tlog-proof receipts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """Proof that entry ``index`` (``entry`` bytes, leaf ``leaf_hash``) is in the checkpointed tree."""

    index: int
    entry: bytes
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    checkpoint: Checkpoint

    def to_text(self) -> str:
        """C2SP tlog-proof: the entry's canonical bytes ride in ``extra`` so the proof stands alone."""
        lines = [PROOF_HEADER, f"extra {_b64(self.entry)}", f"index {self.index}"]
        lines += [_b64(h) for h in self.proof]
        return "\n".join(lines) + "\n\n" + self.checkpoint.note


def verify_receipt(text: str, verifiers: list[NoteVerifier], origin: str | None = None) -> Receipt:
    """Check a tlog-proof offline; returns it parsed, or raises VerificationError with a LEDGER_* code.

    1. parse header, extra (the entry), index, proof hashes;
    2. verify the checkpoint's note signature against the given keys (and origin);
    3. leaf hash = SHA-256(0x00 || entry); the inclusion proof must give the checkpoint's root.
    """
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or len(lines) < 2 or lines[0] != PROOF_HEADER:
        raise VerificationError(
            "LEDGER_PROOF_INVALID", "not a c2sp.org/tlog-proof@v1 proof", "不是有效的证明"
        )
    i = 1
    entry = b""
    if lines[i].startswith("extra "):
        entry = _unb64(lines[i][6:], "LEDGER_PROOF_INVALID", "extra")
        i += 1
    if i >= len(lines) or not re.fullmatch(r"index (0|[1-9][0-9]{0,19})", lines[i]):
        raise VerificationError("LEDGER_PROOF_INVALID", "missing index line", "缺少索引行")
    index = int(lines[i][6:])
    proof = tuple(_unb64(h, "LEDGER_PROOF_INVALID", "proof hash") for h in lines[i + 1 :])
    if not entry:
        raise VerificationError("LEDGER_PROOF_INVALID", "the proof does not carry its entry (extra line)")
    checkpoint = verify_checkpoint(note, verifiers, origin)
    leaf = _merkle.leaf_hash(entry)
    try:
        _merkle.verify_inclusion(index, checkpoint.size, leaf, list(proof), checkpoint.root)
    except _merkle.ProofError as exc:
        code = (
            "LEDGER_INDEX_OUT_OF_RANGE" if exc.code == "LEDGER_INDEX_OUT_OF_RANGE" else "LEDGER_PROOF_INVALID"
        )
        raise VerificationError(
            code, f"inclusion proof does not verify: {exc}", "包含性证明验证失败"
        ) from exc
    return Receipt(index, entry, leaf, proof, checkpoint)
