"""Township lifecycle (issue 22, leak 7): rename (乡改镇), merge (撤并), retire (撤销); for CLI and API.

One act is a policy change and the seals' changes that follow from it:

* **rename**: the township's registered name changes from a new policy revision on; each live seal of the
  township is changed (变更): a new key and certificate naming the new township (the township seal also
  gets the new name, checked against R5), the old certificate revoked as superseded. Documents sealed before
  keep their certificate and show the name they were sealed under; they still verify (signed before the
  revocation).
* **merge**: in one policy revision the township's powers pass to the township it merges into and it is
  closed (rule ``TOWNSHIP_MERGED``); its live seals are sealed away (封存, 002), their documents still verify.
  The successor keeps its own seals and number series; the merged township draws no number again.
* **retire**: the township is closed without a successor (``TOWNSHIP_RETIRED``); its seals are sealed away.

The policy change comes first (one transaction, ``TOWNSHIP_CHANGED`` in the ledger via the journal); the
seals follow one by one (each its own ``SEAL_LIFECYCLE`` entry). Run again after an interruption, the same
command skips what is done and finishes the seals. ``now`` dates the seals' changes (default: the clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from core.errors import Conflict

if TYPE_CHECKING:
    from keystore import Seal, SealRegistry
    from policies import PolicyStore, TownshipRecord


BUREAU = "县行政审批局"  # files for and makes the townships' seals (002)


@dataclass(frozen=True)
class TownshipChange:
    code: str
    state: str  # ACTIVE | MERGED | RETIRED
    name: str
    former_names: tuple[str, ...]
    successor_code: str | None
    basis: str | None
    seals_changed: list[str] = field(default_factory=list)
    seals_retired: list[str] = field(default_factory=list)


def _live(registry: SealRegistry, code: str) -> list[Seal]:
    from keystore import SealStatus

    live = {SealStatus.ISSUED, SealStatus.ACTIVE, SealStatus.SUSPENDED}
    return [s for s in registry.list(township_code=code) if s.status in live]


def _result(store: PolicyStore, code: str, changed: list[str], retired: list[str]) -> TownshipChange:
    rec = store.township_record(code)
    return TownshipChange(
        code=rec.code,
        state=rec.state,
        name=rec.name,
        former_names=rec.former_names,
        successor_code=rec.successor_code,
        basis=rec.basis,
        seals_changed=changed,
        seals_retired=retired,
    )


def _closed(rec: TownshipRecord) -> Conflict:
    return Conflict(
        "TOWNSHIP_CLOSED",
        f"{rec.code} is {rec.state.lower()}" + (f" into {rec.successor_code}" if rec.successor_code else ""),
        f"{rec.code} 已" + ("并入" + rec.successor_code if rec.successor_code else "撤销"),
        details={"code": rec.code, "state": rec.state, "successor_code": rec.successor_code},
    )


def rename_township(
    store: PolicyStore,
    registry: SealRegistry,
    code: str,
    new_name: str,
    *,
    actor: str,
    basis: str,
    now: datetime | None = None,
) -> TownshipChange:
    """乡改镇 or another rename, with every live seal of the township changed to name it."""
    from keystore import SealKind
    from policies import SealKindFact, normalise_code

    rec = store.township_record(code)
    if rec.state != "ACTIVE":
        raise _closed(rec)
    if normalise_code(rec.name) != normalise_code(new_name.strip()):
        rec = store.township_record(store.rename_township(code, new_name, actor=actor, basis=basis).code)
    name = rec.name
    changed: list[str] = []
    for seal in _live(registry, rec.code):
        if seal.township == name:
            continue  # done on an earlier run
        seal_name = seal.name
        if seal.kind is SealKind.TOWNSHIP_APPROVAL:
            seal_name = seal.name.replace(seal.township, name, 1)
        store.check_seal_issue(
            kind=SealKindFact(seal.kind.name),
            name=seal_name,
            township_code=rec.code,
            township_name=name,
            department_code=seal.department_code,
            number=seal.number,
        )
        registry.change(
            seal.seal_id,
            actor=actor,
            approved_by=basis,
            requested_by=seal.department or BUREAU,
            reason=f"乡镇更名：{seal.township}→{name}（{basis}）",
            new_name=seal_name,
            new_township=name,
            now=now,
        )
        changed.append(seal.seal_id)
    return _result(store, rec.code, changed, [])


def _seal_away(
    registry: SealRegistry, code: str, *, actor: str, reason: str, basis: str, now: datetime | None
) -> list[str]:
    """Every live seal of a closed township: 封存 (an ISSUED one, never activated, is cancelled first)."""
    from keystore import SealStatus

    retired: list[str] = []
    for seal in _live(registry, code):
        if seal.status is SealStatus.ISSUED:
            registry.cancel(seal.seal_id, actor=actor, approved_by=basis, reason=reason, now=now)
        registry.retire(seal.seal_id, actor=actor, approved_by=basis, reason=reason, now=now)
        retired.append(seal.seal_id)
    return retired


def merge_township(
    store: PolicyStore,
    registry: SealRegistry,
    code: str,
    into: str,
    *,
    actor: str,
    basis: str,
    now: datetime | None = None,
) -> TownshipChange:
    """撤并: ``code`` merges into ``into`` (powers pass, seals sealed away, no more numbers drawn)."""
    from policies import normalise_code

    rec = store.township_record(code)
    if rec.state == "ACTIVE":
        store.merge_township(code, into, actor=actor, basis=basis)
        rec = store.township_record(code)
    elif rec.state != "MERGED" or rec.successor_code != normalise_code(into):
        raise _closed(rec)
    reason = f"乡镇并入{rec.successor_code}：印章收回封存（{basis}）"
    retired = _seal_away(registry, rec.code, actor=actor, reason=reason, basis=basis, now=now)
    return _result(store, rec.code, [], retired)


def retire_township(
    store: PolicyStore,
    registry: SealRegistry,
    code: str,
    *,
    actor: str,
    basis: str,
    now: datetime | None = None,
) -> TownshipChange:
    """撤销 without a successor."""
    rec = store.township_record(code)
    if rec.state == "ACTIVE":
        store.retire_township(code, actor=actor, basis=basis)
        rec = store.township_record(code)
    elif rec.state != "RETIRED":
        raise _closed(rec)
    reason = f"乡镇撤销：印章收回封存（{basis}）"
    retired = _seal_away(registry, rec.code, actor=actor, reason=reason, basis=basis, now=now)
    return _result(store, rec.code, [], retired)
