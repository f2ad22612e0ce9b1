"""Forwarding seal lifecycle and policy changes into the ledger (a transactional outbox).

The keystore records every seal transition in its append-only ``ks_seal_events`` table, and the policy store
every change as an append-only revision, each in the same transaction as the change itself. This module
copies them into the ledger with idempotency keys derived from their ids (``seal-event:<id>``,
``policy-rev:<n>``), so forwarding can run any number of times, from any worker, after any crash: an event
is never lost (it is durable with the change) and never logged twice (the ledger dedupes the key).
It runs after each lifecycle/policy command, and before every checkpoint so a checkpoint covers them.
Catalog and organisation registrations are versioned in the policy store but not forwarded (the ledger's
entry kinds cover powers and agreements, which is what a township may stamp, and a township's rename,
merger or retirement: ``TOWNSHIP_CHANGED``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import Request

from api._authz import ServicesDep
from core.db import transaction
from core.errors import NotFound

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from api._services import Services
    from keystore import SealRegistry
    from ledger import Checkpoint, EntryFields, Ledger
    from policies import PolicyStore


log = logging.getLogger("yizhang.journal")
_lock = threading.Lock()
_AGREEMENT_ACTIONS = (
    "create_agreement",
    "amend_agreement",
    "suspend_agreement",
    "resume_agreement",
    "revoke_agreement",
)
_POWERS_ACTIONS = ("grant_powers", "revoke_powers")
_TOWNSHIP_ACTIONS = ("rename_township", "merge_township", "retire_township")  # issue 22, leak 7


def _subject(note: str) -> str:
    return note.split(":", 1)[0].strip()


def pending_entries(
    registry: SealRegistry | None, policy_store: PolicyStore | None
) -> list[tuple[EntryFields, str]]:
    """Every event and revision as (EntryFields, idempotency key), oldest first."""
    from ledger import EntryFields, EntryKind

    items: list[tuple[EntryFields, str]] = []
    if registry is not None:
        for e in registry.lifecycle_events():
            body = {
                "seal_id": e.seal_id,
                "event": str(e.event.value if hasattr(e.event, "value") else e.event),
                "actor": e.actor,
                "reason": e.reason or "-",
                "approver": e.approver or "-",
                "requested_by": e.requested_by or "-",
                "cert_serial": e.cert_serial,
            }
            if e.previous_cert_serial is not None:
                body["previous_cert_serial"] = str(e.previous_cert_serial)
            if e.status is not None:
                body["status"] = str(e.status.value if hasattr(e.status, "value") else e.status)
            items.append(
                (EntryFields(kind=EntryKind.SEAL_LIFECYCLE, at=e.at, body=body), f"seal-event:{e.event_id}")
            )
    if policy_store is not None:
        for r in sorted(policy_store.revisions(limit=1_000_000), key=lambda r: r.revision):
            if r.action in _AGREEMENT_ACTIONS:
                body = {
                    "agreement_id": _subject(r.note),
                    "change": r.action,
                    "actor": r.actor,
                    "revision": r.revision,
                    "note": r.note,
                }
                # The version this revision made, so a later edit of its terms is visible to an auditor.
                try:
                    version = policy_store.agreement(_subject(r.note), revision=r.revision)
                except NotFound:  # a revision note of another shape: logged without the terms
                    log.warning("agreement revision %s: no agreement version found", r.revision)
                else:
                    body["version"] = version.version
                    body["terms_sha256"] = version.terms_sha256()
                kind = EntryKind.AGREEMENT_CHANGED
            elif r.action in _POWERS_ACTIONS:
                body = {
                    "township_code": _subject(r.note),
                    "change": r.action,
                    "actor": r.actor,
                    "revision": r.revision,
                    "note": r.note,
                }
                kind = EntryKind.POWERS_CHANGED
            elif r.action in _TOWNSHIP_ACTIONS:
                # note: "<code>: <what>; basis: <decision>" (policies.PolicyStore.rename_township etc.)
                body = {
                    "township_code": _subject(r.note),
                    "change": r.action,
                    "actor": r.actor,
                    "basis": r.note.rpartition("; basis: ")[2] or "-",
                    "revision": r.revision,
                    "note": r.note,
                }
                kind = EntryKind.TOWNSHIP_CHANGED
            else:
                continue
            items.append((EntryFields(kind=kind, at=r.created_at, body=body), f"policy-rev:{r.revision}"))
    return items


def forward_events(
    engine: Engine, ledger: Ledger, registry: SealRegistry | None, policy_store: PolicyStore | None
) -> int:
    """Append what is not in the ledger yet; returns how many entries were new."""
    items = pending_entries(registry, policy_store)
    if not items:
        return 0
    with _lock, transaction(engine) as session:
        before = ledger.size() if hasattr(ledger, "size") else None
        entries = ledger.append_many(session, items)
    if before is None:
        return len(entries)
    return sum(1 for e in entries if e.index >= before)


def forward(services: Services) -> int:
    """:func:`forward_events` for a services container (its engine, ledger, seal registry, policy store).
    Without a ledger only an empty backlog is forwarded; events waiting answer ``503``."""
    ledger = services.ledger
    if ledger is None:
        if not pending_entries(services.seal_registry, services.policy_store):
            return 0
        ledger = services.need_ledger()
    return forward_events(services.engine, ledger, services.seal_registry, services.policy_store)


def forward_quietly(services: Services) -> int:
    """Forward now, after a lifecycle or policy change made through the API. Best effort by design: the
    change itself is already committed with its event row, so a failure here loses nothing; the next call,
    the periodic checkpoint or ``yizhang ledger checkpoint`` forwards it."""
    if services.ledger is None:
        return 0
    try:
        return forward(services)
    except Exception:  # noqa: BLE001 - see above: nothing is lost, the next forward retries
        log.warning("forwarding seal/policy events into the ledger failed; will retry", exc_info=True)
        return 0


def forward_and_checkpoint(services: Services) -> Checkpoint | None:
    """One round of the periodic checkpoint: forward pending events, sign the decision status list again if
    it is due or out of date, then sign the tree head if it grew.

    Returns the latest checkpoint (new or unchanged), or ``None`` when there is no ledger, no log key or
    no entry yet. Safe from several workers at once: ``Ledger.checkpoint`` locks the head and never signs
    two checkpoints that disagree; the same size returns the stored one.
    """
    ledger = services.ledger
    if ledger is None:
        return None
    forward(services)
    if ledger.signer is None:
        return None
    from api._status_list import publish_quietly

    publish_quietly(services)  # the decision status list: when out of date or due (issue 19)
    last = ledger.latest_checkpoint()
    size = ledger.size()
    if size == 0 or (last is not None and last.size >= size):
        return last
    return ledger.checkpoint()


def journal_after_change(request: Request, services: ServicesDep) -> Iterator[None]:
    """Router dependency for the seal and policy routes: after a successful write, forward its event into
    the ledger before the response goes out (``Depends(..., scope="function")``). A failed request raises
    at the ``yield`` and forwards nothing (nothing changed)."""
    yield
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        forward_quietly(services)
