"""Policy evidence: ledger receipt + inclusion proof against a signed checkpoint, decision status, delegation.

All inputs are optional: the verifier checks what it is given and says what it did not check. A ledger that
*was* supplied is a verdict, not a note: a ledger that answers "no entry for this document" fails the
document (``LEDGER_ENTRY_MISSING``), one whose entry is not yet under a signed checkpoint leaves it
indeterminate (``LEDGER_ENTRY_PENDING``); ``LEDGER_NOT_CHECKED`` is only for "no ledger was asked". The Merkle
proof and the C2SP signed-note checks are implemented here from RFC 9162 §2.1.3.2 and the C2SP
signed-note / tlog-checkpoint specs, independently of the ledger package (a verifier should not trust the
code of the thing it verifies).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ledger import FINAL_DECISION_STATUSES, DecisionStatus
from verifier._model import BindingFacts, Reason, SealFacts
from verifier._reasons import reason
from verifier._status import STATUS_WIRE, StatusAnswer, StatusListError, read_decision_status


@dataclass(frozen=True)
class LedgerReceipt:
    """A ledger entry with its inclusion proof and the signed checkpoint it proves against."""

    index: int
    entry: bytes  # the canonical entry bytes (leaf data)
    proof: tuple[bytes, ...]  # audit path, 32-byte hashes
    checkpoint: bytes  # C2SP signed note: origin, size, base64 root hash, blank line, signatures

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> LedgerReceipt:
        proof = d.get("proof") or d.get("inclusion_proof") or []
        if not isinstance(proof, list):
            raise ValueError("receipt proof must be a list")
        entry = d.get("entry") or d.get("leaf") or ""
        return cls(
            index=int(str(d.get("index", d.get("leaf_index", -1)))),
            entry=base64.b64decode(str(entry)),
            proof=tuple(base64.b64decode(str(p)) for p in proof),
            checkpoint=str(d.get("checkpoint", "")).encode(),
        )

    @classmethod
    def from_text(cls, text: str) -> LedgerReceipt:
        """A C2SP tlog-proof (``c2sp.org/tlog-proof@v1``): extra (the entry), index, proof hashes, a blank
        line, then the signed checkpoint — the format the ledger hands out as a receipt."""
        head, sep, note = text.partition("\n\n")
        lines = head.split("\n")
        if not sep or not lines or lines[0] != TLOG_PROOF_HEADER:
            raise ValueError("not a c2sp.org/tlog-proof@v1 proof")
        i = 1
        entry = b""
        if i < len(lines) and lines[i].startswith("extra "):
            entry = base64.b64decode(lines[i][6:], validate=True)
            i += 1
        if i >= len(lines) or not lines[i].startswith("index ") or not lines[i][6:].isdigit():
            raise ValueError("missing index line")
        index = int(lines[i][6:])
        proof = tuple(base64.b64decode(h, validate=True) for h in lines[i + 1 :] if h)
        return cls(index=index, entry=entry, proof=proof, checkpoint=note.encode())

    @classmethod
    def parse(cls, data: bytes) -> LedgerReceipt:
        """JSON (index, entry, proof, checkpoint; base64) or tlog-proof text."""
        text = data.decode("utf-8")
        if text.lstrip().startswith("{"):
            obj = json.loads(text)
            if not isinstance(obj, dict):
                raise ValueError("receipt JSON must be an object")
            return cls.from_dict(obj)
        return cls.from_text(text)


TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class LedgerQuery:
    """What a ledger lookup gets to find the document's entry: the binding (ledger index, idempotency key,
    document number), the seal, and the SHA-256 of every revision prefix of the file (the entry logs the
    digest of the sealed output; later LTV revisions may have been appended since)."""

    binding: BindingFacts | None
    seal: SealFacts | None
    revision_sha256: tuple[str, ...]


class LedgerAnswer(StrEnum):
    FOUND = "found"  # the entry, with its proof against a signed checkpoint
    MISSING = "missing"  # this ledger has no entry for the document
    PENDING = "pending"  # the entry exists but no signed checkpoint covers it yet


@dataclass(frozen=True)
class LedgerFinding:
    """A ledger's answer about one document (``Evidence.ledger_lookup``). The ledger is a source, not an
    authority: a FOUND receipt is checked like any other; a PENDING entry is still compared with the
    document."""

    answer: LedgerAnswer
    receipt: LedgerReceipt | None = None  # FOUND
    index: int | None = None  # PENDING: the entry's index
    entry: bytes | None = None  # PENDING: the entry's canonical bytes
    checkpoint_size: int | None = None  # PENDING: the latest signed checkpoint's size (0: none yet)
    detail: str | None = None

    @classmethod
    def found(cls, receipt: LedgerReceipt) -> LedgerFinding:
        return cls(LedgerAnswer.FOUND, receipt=receipt, index=receipt.index)

    @classmethod
    def missing(cls, detail: str) -> LedgerFinding:
        return cls(LedgerAnswer.MISSING, detail=detail)

    @classmethod
    def pending(cls, index: int, entry: bytes, checkpoint_size: int) -> LedgerFinding:
        return cls(LedgerAnswer.PENDING, index=index, entry=entry, checkpoint_size=checkpoint_size)


@dataclass(frozen=True)
class Evidence:
    """Optional inputs for step 8 of the plan. Anything left ``None`` is reported as not checked.

    ``ledger_lookup`` asks a ledger (this deployment's database) for the document's entry; it returns
    ``None`` when that ledger cannot speak for the document (not this county's seal), else a
    :class:`LedgerFinding`. ``checkpoint``/``checkpoint_at`` are the latest signed checkpoint an offline
    verifier holds (the verify bundle) and when it was signed: a document sealed after it cannot be in it.
    """

    receipt: LedgerReceipt | None = None
    log_public_key: bytes | None = None  # raw 32-byte Ed25519 key of the county's log
    log_key_name: str | None = None  # the signed-note key name; any name when None
    # The decision's status: a plain status name (the county's database) or a StatusAnswer (a signed
    # status list, with its dates); None when the source cannot speak for the document.
    status_lookup: Callable[[BindingFacts], StatusAnswer | str | None] | None = None
    delegation_lookup: Callable[[SealFacts, BindingFacts, datetime], bool | None] | None = None
    ledger_lookup: Callable[[LedgerQuery], LedgerFinding | None] | None = None
    checkpoint: bytes | None = None
    checkpoint_at: datetime | None = None
    # The untouched original over time (``verifier._archive``): an evidence record that came with the
    # document (``EvidenceRecord``), or, in the county, one read from the database for an entry index.
    archive: Any = None
    archive_lookup: Callable[[int], Any] | None = None


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: tuple[bytes, ...]) -> bytes:
    """RFC 9162 §2.1.3.2; raises ValueError when the proof cannot be for (index, size)."""
    if not 0 <= index < size:
        raise ValueError("index out of range")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if len(p) != 32:
            raise ValueError("proof hash is not 32 bytes")
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof too short")
    return r


def open_signed_note(note: bytes, public_key: bytes, key_name: str | None) -> str:
    """A C2SP signed note's text (ending in a newline) when one of its signatures is a valid Ed25519
    signature by ``public_key`` under ``key_name`` (any name when None). Raises ValueError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = note.decode("utf-8")
    body, sep, sigs = text.partition("\n\n")
    if not sep:
        raise ValueError("no signature block")
    body += "\n"
    pk = Ed25519PublicKey.from_public_bytes(public_key)
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            continue
        name, _, b64 = line[2:].rpartition(" ")
        if key_name is not None and name != key_name:
            continue
        blob = base64.b64decode(b64)
        sig = blob[4:]
        # key hash = SHA-256(name || 0x0A || 0x01 || pubkey)[:4] for Ed25519 keys
        key_hash = hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]
        if blob[:4] != key_hash:
            continue
        try:
            pk.verify(sig, body.encode())
        except InvalidSignature:
            continue
        return body
    raise ValueError("no valid signature by the log key")


def verify_checkpoint(note: bytes, public_key: bytes, key_name: str | None) -> tuple[str, int, bytes]:
    """Verify a C2SP signed note with an Ed25519 key; return (origin, size, root). Raises ValueError."""
    body = open_signed_note(note, public_key, key_name)
    lines = body.split("\n")
    if len(lines) < 4:
        raise ValueError("checkpoint body too short")
    origin, size_s, root_b64 = lines[0], lines[1], lines[2]
    size = int(size_s)
    root = base64.b64decode(root_b64, validate=True)
    return origin, size, root


def check_evidence(
    evidence: Evidence,
    binding: BindingFacts | None,
    seal: SealFacts | None,
    signing_time: datetime | None,
    now: datetime,
    revision_sha256: tuple[str, ...] = (),
) -> tuple[list[Reason], dict[str, object]]:
    """Step 8: reasons and facts (ledger_index, ledger_verified, status) from the optional inputs."""
    reasons: list[Reason] = []
    facts: dict[str, object] = {}
    reasons += _check_ledger(evidence, binding, seal, signing_time, revision_sha256, facts)
    lookup_binding = binding or BindingFacts()
    if evidence.status_lookup is not None:
        reasons += _check_status(evidence.status_lookup, lookup_binding, now, facts)
    if evidence.delegation_lookup is not None and seal is not None:
        try:
            delegated = evidence.delegation_lookup(seal, lookup_binding, signing_time or now)
        except Exception as exc:  # noqa: BLE001 - an unreachable policy store is "unknown", not a crash
            delegated = None
            reasons.append(reason("DELEGATION_UNKNOWN", detail=str(exc)[:200]))
        if delegated is False:
            reasons.append(reason("MATTER_NOT_DELEGATED", detail=lookup_binding.matter))
    return reasons, facts


def _check_status(
    lookup: Callable[[BindingFacts], StatusAnswer | str | None],
    binding: BindingFacts,
    now: datetime,
    facts: dict[str, object],
) -> list[Reason]:
    """Step 8b, the decision's status (变更、撤回、撤销、注销), from the database in the county or the
    county's signed status list elsewhere:

    1. ask; a list that cannot be used is its code (``STATUS_LIST_INVALID``), a source that cannot be asked
       is ``STATUS_UNKNOWN``; no answer (no document number, not this county's) says nothing;
    2. withdrawn, revoked, cancelled: the document fails, however old the list (such a decision never
       comes back into force); the signatures' own reports are untouched (the seal is still authentic);
    3. changed: ``DECISION_CHANGED`` naming the successor document;
    4. a signed list past its ``next_update`` cannot vouch that nothing happened since:
       ``STATUS_LIST_STALE`` (INDETERMINATE, TRY_LATER), with its age and where a fresh one is.
    """
    # 1
    try:
        raw = lookup(binding)
    except StatusListError as exc:
        return [reason(exc.code, detail=exc.detail)]
    except Exception as exc:  # noqa: BLE001 - an unreachable status service is "unknown", not a crash
        return [reason("STATUS_UNKNOWN", detail=str(exc)[:200])]
    if not raw:
        return []
    if isinstance(raw, StatusAnswer):
        answer = raw
    else:
        try:
            answer = StatusAnswer(read_decision_status(raw))
        except ValueError:
            return [reason("STATUS_UNKNOWN", detail=f"unknown status {str(raw)[:40]!r}")]
    facts["status"] = STATUS_WIRE[answer.status]
    if answer.successor:
        facts["successor_document_number"] = answer.successor
    # 2
    if answer.status is not None and answer.status in FINAL_DECISION_STATUSES:
        return [reason(f"DECISION_{answer.status.name}", detail=_status_source(answer))]
    out: list[Reason] = []
    # 3
    if answer.status is DecisionStatus.CHANGED:
        out.append(
            reason(
                "DECISION_CHANGED",
                detail=f"successor 新文书: {answer.successor}" if answer.successor else "no successor named",
            )
        )
    # 4
    if answer.next_update is not None and now >= answer.next_update:
        out.append(reason("STATUS_LIST_STALE", detail=_stale_detail(answer, now)))
    return out


def _status_source(answer: StatusAnswer) -> str:
    if answer.this_update is None:
        return "the county's records"
    return f"status list of {answer.county or 'the county'}, {_shanghai(answer.this_update)}"


def _stale_detail(answer: StatusAnswer, now: datetime) -> str:
    assert answer.this_update is not None and answer.next_update is not None
    age = now - answer.this_update
    days = age.total_seconds() / 86400
    where = answer.url or "the issuing county (yizhang verify-bundle)"
    return (
        f"status list of {answer.county or 'the county'} signed {_shanghai(answer.this_update)}, "
        f"{days:.1f} days old, due for renewal by {_shanghai(answer.next_update)}; "
        f"fetch a fresh one from {where}"
    )


def _shanghai(at: datetime) -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M %z")


def _check_ledger(
    evidence: Evidence,
    binding: BindingFacts | None,
    seal: SealFacts | None,
    signing_time: datetime | None,
    revision_sha256: tuple[str, ...],
    facts: dict[str, object],
) -> list[Reason]:
    """Step 8a, the document's ledger entry:

    1. the receipt that came with the document, else what the ledger lookup answers for it;
    2. a receipt (given or found): checkpoint signature, inclusion proof, the entry is about this document
       (``CHECKPOINT_INVALID``, ``LEDGER_PROOF_INVALID``, ``LEDGER_ENTRY_MISMATCH``);
    3. the lookup found no entry: ``LEDGER_ENTRY_MISSING``; an entry no signed checkpoint covers yet: the
       same "is it about this document" check, then ``LEDGER_ENTRY_PENDING``;
    4. no receipt, no lookup, but an offline checkpoint of this log (bundle): a document sealed after that
       checkpoint was signed cannot be in it (``LEDGER_ENTRY_PENDING``); otherwise a checkpoint alone proves
       nothing about one entry (``LEDGER_NOT_CHECKED``, asking for the receipt);
    5. nothing supplied: ``LEDGER_NOT_CHECKED``.
    """
    # 1
    receipt = evidence.receipt
    finding: LedgerFinding | None = None
    if receipt is None and evidence.ledger_lookup is not None:
        try:
            finding = evidence.ledger_lookup(LedgerQuery(binding, seal, revision_sha256))
        except Exception as exc:  # noqa: BLE001 - an unreachable ledger is "not checked", not a crash
            return [reason("LEDGER_NOT_CHECKED", detail=f"ledger lookup failed: {str(exc)[:200]}")]
        if finding is not None and finding.answer is LedgerAnswer.FOUND:
            receipt = finding.receipt
    # 2
    if receipt is not None:
        if evidence.log_public_key is None:
            return [reason("LEDGER_NOT_CHECKED", detail="a receipt but no log key to check it against")]
        return _check_receipt(receipt, evidence, binding, revision_sha256, facts)
    # 3
    if finding is not None:
        facts["ledger_verified"] = False
        if finding.answer is LedgerAnswer.MISSING:
            return [reason("LEDGER_ENTRY_MISSING", detail=finding.detail)]
        if finding.answer is LedgerAnswer.PENDING and finding.entry is not None:
            facts["ledger_index"] = finding.index
            mismatch = entry_mismatch(finding.entry, binding, revision_sha256)
            if mismatch:
                return [reason("LEDGER_ENTRY_MISMATCH", detail=mismatch)]
            return [
                reason(
                    "LEDGER_ENTRY_PENDING",
                    detail=f"entry {finding.index}; latest signed checkpoint size {finding.checkpoint_size}",
                )
            ]
        return [reason("LEDGER_NOT_CHECKED", detail="the ledger lookup gave no usable answer")]
    if evidence.ledger_lookup is not None:
        return [reason("LEDGER_NOT_CHECKED", detail="this ledger does not keep this seal's documents")]
    # 4
    if evidence.checkpoint is not None and evidence.log_public_key is not None:
        try:
            _origin, size, _root = verify_checkpoint(
                evidence.checkpoint, evidence.log_public_key, evidence.log_key_name
            )
        except (ValueError, UnicodeDecodeError) as exc:
            return [reason("CHECKPOINT_INVALID", detail=f"the offline checkpoint: {exc}")]
        at = evidence.checkpoint_at
        if signing_time is not None and at is not None and signing_time > at:
            facts["ledger_verified"] = False
            return [
                reason(
                    "LEDGER_ENTRY_PENDING",
                    detail=f"sealed {signing_time.isoformat()}, after the checkpoint held here "
                    f"(size {size}, {at.isoformat()})",
                )
            ]
        return [
            reason(
                "LEDGER_NOT_CHECKED",
                detail=f"a checkpoint (size {size}) alone does not prove this document's entry: "
                "supply its receipt",
            )
        ]
    # 5
    return [reason("LEDGER_NOT_CHECKED")]


def _check_receipt(
    receipt: LedgerReceipt,
    evidence: Evidence,
    binding: BindingFacts | None,
    revision_sha256: tuple[str, ...],
    facts: dict[str, object],
) -> list[Reason]:
    assert evidence.log_public_key is not None
    reasons: list[Reason] = []
    facts["ledger_index"] = receipt.index
    try:
        _origin, size, root = verify_checkpoint(
            receipt.checkpoint, evidence.log_public_key, evidence.log_key_name
        )
    except (ValueError, UnicodeDecodeError) as exc:
        facts["ledger_verified"] = False
        return [reason("CHECKPOINT_INVALID", detail=str(exc))]
    try:
        ok = root_from_inclusion_proof(receipt.index, size, leaf_hash(receipt.entry), receipt.proof) == root
    except ValueError as exc:
        ok = False
        reasons.append(reason("LEDGER_PROOF_INVALID", detail=str(exc)))
    if not ok and not reasons:
        reasons.append(reason("LEDGER_PROOF_INVALID", detail="root mismatch"))
    mismatch = entry_mismatch(receipt.entry, binding, revision_sha256) if ok else None
    if mismatch:
        reasons.append(reason("LEDGER_ENTRY_MISMATCH", detail=mismatch))
    facts["ledger_verified"] = ok and not mismatch
    return reasons


def entry_payload(entry: bytes) -> dict[str, object] | None:
    """The JSON payload of a ledger entry: the ledger's canonical encoding is a fixed binary header (version,
    index, previous hash …) followed by UTF-8 JSON; bare JSON is accepted too."""
    start = entry.find(b"{")
    while 0 <= start < len(entry):
        try:
            obj = json.loads(entry[start:].decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            start = entry.find(b"{", start + 1)
            continue
        return obj if isinstance(obj, dict) else None
    return None


def entry_mismatch(
    entry: bytes, binding: BindingFacts | None, revision_sha256: tuple[str, ...] = ()
) -> str | None:
    """The entry must be about this document: its logged digest is the digest of one of the document's
    revisions (LTV updates may have been appended since), and fields it shares with the binding agree."""
    obj = entry_payload(entry)
    if obj is None:
        return None  # an opaque entry: only its inclusion is checked
    kind = obj.get("kind")
    if kind is not None and kind != "SEAL_SIGNED":
        return f"the ledger entry records {str(kind)[:40]}, not a sealing"
    body = obj.get("body")
    logged = body.get("document_sha256") if isinstance(body, dict) else obj.get("document_sha256")
    if logged is not None and revision_sha256 and str(logged) not in revision_sha256:
        return f"document_sha256: ledger {str(logged)[:16]}… matches no revision of this file"
    if binding is None:
        return None
    if not isinstance(obj, dict):
        return None
    flat = dict(obj)
    for v in obj.values():
        if isinstance(v, dict):
            flat.update(v)
    for key in ("idempotency_key", "document_number", "matter", "stage", "document_kind", "decision_id"):
        ours = getattr(binding, key)
        theirs = flat.get(key)
        if ours is not None and theirs is not None and str(theirs) != ours:
            return f"{key}: ledger {theirs!r} ≠ document {ours!r}"
    return None
