"""Evidence from this deployment's own database: the ledger entry of a sealed document, and its proof.

Used when the verifier runs beside the service (``yizhang verify --home``, the API). The receipt is built
from stored data (the sealed-document row, the ledger entry, an inclusion proof against the latest *signed*
checkpoint) and then checked by the same independent code as a receipt that arrives with the document: the
database is a source, not an authority. Nothing is signed here; no checkpoint covering the entry yet means
"not checked".
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from signer._verify_evidence import Evidence, LedgerReceipt
from signer._verify_model import BindingFacts, SealFacts


def parse_vkey(vkey: str) -> tuple[str, bytes]:
    """C2SP vkey ``name+keyhash+base64(0x01 || ed25519 key)`` → (name, raw key). Raises ValueError."""
    name, _hash, b64 = vkey.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise ValueError("not an Ed25519 vkey")
    return name, raw[1:]


def local_evidence(engine: Engine, vkey_file: Path) -> Evidence:
    """An :class:`Evidence` whose receipts come from the local ledger; empty if the log key is unknown."""
    try:
        name, key = parse_vkey(vkey_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Evidence()

    def lookup(binding: BindingFacts) -> LedgerReceipt | None:
        return local_receipt(engine, binding, origin=name)  # the log's key name is its origin

    return Evidence(log_public_key=key, log_key_name=name, receipt_lookup=lookup)


def local_receipt(engine: Engine, binding: BindingFacts, *, origin: str) -> LedgerReceipt | None:
    from ledger import Ledger
    from signer._storage import SealedDocumentRow

    index = binding.ledger_index
    try:
        if index is None and binding.idempotency_key:
            with engine.connect() as conn:
                index = conn.execute(
                    select(SealedDocumentRow.ledger_index).where(
                        SealedDocumentRow.idempotency_key == binding.idempotency_key
                    )
                ).scalar_one_or_none()
        if index is None:
            return None
        led = Ledger(engine, None, origin=origin)
        cp = led.latest_checkpoint()
        if cp is None or cp.size <= index:
            return None
        entry = led.get(index)
        proof = led.inclusion_proof(index, cp.size)
    except SQLAlchemyError:
        return None  # no such tables in this database: nothing to say
    return LedgerReceipt(index=index, entry=entry.encoded, proof=tuple(proof), checkpoint=cp.note.encode())


def policy_delegation_lookup(store: Any) -> Callable[[SealFacts, BindingFacts, datetime], bool | None]:
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
