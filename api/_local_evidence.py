"""Evidence from this deployment's own database: the ledger entry of a sealed document, and its proof.

Used when the verifier runs beside the service (``yizhang verify --home``, the API). The answer is built
from stored data (the ledger's entries, the sealed-document rows, an inclusion proof against the latest
*signed* checkpoint) and then checked by the same independent code as a receipt that arrives with the
document: the database is a source, not an authority. This ledger answers for documents sealed with this
county's seals: no entry is ``LEDGER_ENTRY_MISSING``; an entry no signed checkpoint covers yet is
``LEDGER_ENTRY_PENDING``. Nothing is signed here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from core.errors import SealServiceError
from verifier import BindingFacts, Evidence, LedgerFinding, LedgerQuery, LedgerReceipt, SealFacts

if TYPE_CHECKING:
    from policies import PolicyStore
    from verifier import EvidenceRecord


def parse_vkey(vkey: str) -> tuple[str, bytes]:
    """C2SP vkey ``name+keyhash+base64(0x01 || ed25519 key)`` → (name, raw key). Raises ValueError."""
    name, _hash, b64 = vkey.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise ValueError("not an Ed25519 vkey")
    return name, raw[1:]


def local_evidence(engine: Engine, vkey_file: Path) -> Evidence:
    """An :class:`Evidence` whose ledger answers come from the local database; empty (nothing asked, so
    ``LEDGER_NOT_CHECKED``) if the log key is not published."""
    try:
        name, key = parse_vkey(vkey_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Evidence()

    def lookup(query: LedgerQuery) -> LedgerFinding | None:
        return find_ledger_entry(engine, query, origin=name)  # the log's key name is its origin

    def archive(index: int) -> EvidenceRecord | None:
        return find_evidence_record(engine, index, origin=name)

    return Evidence(log_public_key=key, log_key_name=name, ledger_lookup=lookup, archive_lookup=archive)


def find_evidence_record(engine: Engine, index: int, *, origin: str) -> EvidenceRecord | None:
    """The evidence record of entry ``index`` as the public route serves it (``signer._ledger_anchor``),
    read back by the verifier's own parser; None when no stamped checkpoint covers the entry yet."""
    import json

    from ledger import Ledger
    from signer import evidence_record
    from verifier import EvidenceRecord

    try:
        record = evidence_record(Ledger(engine, None, origin=origin), index)
    except (SealServiceError, SQLAlchemyError):
        return None
    return EvidenceRecord.parse(json.dumps(record).encode())


MAX_CANDIDATES = 32  # entries looked at per document (a document number shared by many rows is no DoS)


def find_ledger_entry(engine: Engine, query: LedgerQuery, *, origin: str) -> LedgerFinding | None:
    """This deployment's ledger's answer about one document.

    1. Whose is it: only a document sealed with one of this county's seals (its seal id in the seal
       registry) must be in this ledger; for any other, ``None`` (the ledger cannot speak for it).
    2. Candidate entries, strongest first: the binding's ledger index; the ledger's own idempotency key for
       the binding's key (``seal:<key>``, what the sealer appends under); the sealed-document rows found by
       the binding's key, by the digest of any revision of the file, by the document number.
    3. The first candidate that records a sealing of one of this file's revisions and agrees with the
       binding is the entry; if none does, the first candidate (its receipt then fails as
       ``LEDGER_ENTRY_MISMATCH``); no candidate at all: MISSING.
    4. Covered by the latest signed checkpoint: FOUND, with its inclusion proof; newer: PENDING.
    """
    from ledger import Ledger
    from verifier import entry_mismatch

    binding = query.binding
    try:
        with engine.connect() as conn:
            # 1
            ours = _ours(conn, query)
            if ours is None:
                return None
            # 2
            candidates = _candidates(conn, query)
            led = Ledger(engine, None, origin=origin)
            entries: list[tuple[int, bytes]] = []
            for index in candidates[:MAX_CANDIDATES]:
                try:
                    entries.append((index, led.get(index, conn).encoded))
                except (SealServiceError, ValueError):
                    continue  # a row pointing at an entry the ledger does not hold
            # 3
            if not entries:
                return LedgerFinding.missing(
                    f"no ledger entry for this document (seal {ours}, "
                    f"{_described(binding)}, digest of any of {len(query.revision_sha256)} revision(s))"
                )
            index, entry = next(
                ((i, e) for i, e in entries if entry_mismatch(e, binding, query.revision_sha256) is None),
                entries[0],
            )
            # 4
            cp = led.latest_checkpoint(conn)
            if cp is None or cp.size <= index:
                return LedgerFinding.pending(index, entry, cp.size if cp is not None else 0)
            proof = led.inclusion_proof(index, cp.size, conn)
    except SQLAlchemyError:
        return None  # no such tables in this database: nothing to say
    return LedgerFinding.found(
        LedgerReceipt(index=index, entry=entry, proof=tuple(proof), checkpoint=cp.note.encode())
    )


def _ours(conn: Connection, query: LedgerQuery) -> str | None:
    """The seal id when the document's seal is one of this county's, else None."""
    from keystore import known_seal_id

    seal_id = query.seal.seal_id if query.seal is not None else None
    if not seal_id:
        return None
    return known_seal_id(conn, seal_id)


def _candidates(conn: Connection, query: LedgerQuery) -> list[int]:
    from ledger import entry_indices_by_key
    from signer import sealed_ledger_indices

    binding = query.binding
    out: list[int] = []

    def add(values: Iterable[int | None]) -> None:
        for v in values:
            if v is not None and int(v) not in out:
                out.append(int(v))

    if binding is not None and binding.ledger_index is not None:
        add([binding.ledger_index])
    if binding is not None and binding.idempotency_key:
        key = binding.idempotency_key
        add(entry_indices_by_key(conn, [f"seal:{key}", key]))
        add(sealed_ledger_indices(conn, idempotency_key=key))
    if query.revision_sha256:
        add(
            sealed_ledger_indices(
                conn, sha256s=list(query.revision_sha256[-MAX_CANDIDATES:]), limit=MAX_CANDIDATES
            )
        )
    if binding is not None and binding.document_number:
        add(sealed_ledger_indices(conn, document_number=binding.document_number, limit=MAX_CANDIDATES))
    return out


def _described(binding: BindingFacts | None) -> str:
    if binding is None:
        return "no binding"
    parts = [
        f"{k} {v!r}"
        for k, v in (
            ("index", binding.ledger_index),
            ("key", binding.idempotency_key),
            ("number", binding.document_number),
        )
        if v is not None
    ]
    return ", ".join(parts) or "a binding without index, key or number"


def policy_delegation_lookup(
    store: PolicyStore,
) -> Callable[[SealFacts, BindingFacts, datetime], bool | None]:
    """``Evidence.delegation_lookup`` over the policies area's versioned store: was ``binding.matter`` at
    ``binding.stage`` delegated to this seal at the signing time (the policy revision in force then)?

    Township approval seals: the township's list of powers (职权清单) names the matter with that stage.
    No. 2 seals: an ACTIVE agreement of that township for the seal's number covers the matter and stage and
    is in force at that time. ``None`` when the document does not say enough to ask (no binding, no township
    code in the certificate) or the township is not this county's.
    """
    from core.errors import BadInput
    from policies import Stage

    def lookup(seal: SealFacts, binding: BindingFacts, at: datetime) -> bool | None:
        if not (binding.matter and binding.stage and seal.township_code):
            return None
        try:
            stage = Stage[binding.stage] if binding.stage in Stage.__members__ else Stage.parse(binding.stage)
        except (KeyError, ValueError, BadInput):
            return None
        # A timestamp's genTime is often whole seconds, truncated: the signing happened within the second
        # after it, and the policy decision that allowed it was read before that.
        revision = store.revision_at(at + timedelta(seconds=1))
        try:
            if seal.kind == "DEPARTMENT_NO2":
                for a in store.agreements(seal.township_code, revision):
                    if (
                        str(a.status) == "ACTIVE"
                        and binding.matter in a.matters
                        and stage in a.stages
                        and a.starts_at <= at
                        and (a.ends_at is None or at < a.ends_at)
                        and (seal.number is None or a.seal_number == seal.number)
                    ):
                        return True
                return False
            powers = store.powers(seal.township_code, revision)
        except BadInput:  # a township this county's policies do not know (another county's seal): no say
            return None
        return any(p.power.matter_code == binding.matter and stage in p.power.stages for p in powers)

    return lookup
