"""``yizhang seal issue|activate|suspend|resume|change|cancel|retire|list|show``: the seal lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from api._json import JsonObject
from api.cli._common import HomeOpt, JsonOpt, cli_errors, emit, settings_for
from keystore import LIFECYCLE, KeyAlgorithm, SealKind, SealStatus, open_registry

if TYPE_CHECKING:
    from keystore import Seal, SealEvent, SealRegistry

_R = TypeVar("_R")

ActorOpt = Annotated[str, typer.Option("--actor", help="who performs it (county approval bureau staff)")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="事由")]
ApproverOpt = Annotated[str | None, typer.Option("--approved-by", help="who approved (consent record)")]


def _seal_view(seal: Seal) -> JsonObject:
    return {
        "seal_id": seal.seal_id,
        "name": seal.name,
        "kind": seal.kind,
        "number": seal.number,
        "county": seal.county,
        "township": seal.township,
        "township_code": seal.township_code,
        "department": seal.department,
        "status": seal.status,
        "key_algorithm": seal.key_algorithm,
        "cert_serial": format(seal.cert_serial, "x"),
        "not_before": seal.not_before,
        "not_after": seal.not_after,
        "custodian": seal.custodian,
    }


def _event_view(event: SealEvent) -> JsonObject:
    return {
        "seal_id": event.seal_id,
        "event": event.event,
        "status": event.status,
        "actor": event.actor,
        "approver": event.approver,
        "requested_by": event.requested_by,
        "reason": event.reason,
        "at": event.at,
        "cert_serial": format(event.cert_serial, "x"),
    }


def _check_issue(
    home: Path | None,
    kind: SealKind,
    name: str,
    township: str,
    township_code: str,
    department_code: str | None,
    number: int | None,
) -> None:
    """The seal may be made only for a township on the county's register, under its own name and the kind's
    naming pattern (``PolicyStore.check_seal_issue``, issue 22)."""
    from core.db import make_engine
    from keystore import check_township_code
    from policies import PolicyStore, SealKindFact

    check_township_code(township_code)
    engine = make_engine(settings_for(home).effective_database_url)
    try:
        PolicyStore(engine).check_seal_issue(
            kind=SealKindFact(kind.name),
            name=name,
            township_code=township_code,
            township_name=township,
            department_code=department_code,
            number=number,
        )
    finally:
        engine.dispose()


def _run(
    home: Path | None,
    as_json: bool,
    action: Callable[[SealRegistry], _R],
    view: Callable[[_R], object],
) -> None:
    with cli_errors(as_json):
        with open_registry(settings_for(home)) as registry:
            result = action(registry)
    emit(view(result), as_json)


#: The CLI's help for each lifecycle step (what each does: ``keystore.LIFECYCLE``).
LIFECYCLE_HELP = {
    "activate": "启用: ISSUED -> ACTIVE (needs --approved-by).",
    "suspend": "ACTIVE -> SUSPENDED: no signing until resumed.",
    "resume": "SUSPENDED -> ACTIVE.",
    "cancel": "注销: revoke the certificate (cessationOfOperation); the seal never signs again.",
    "retire": "封存: destroy the private key; certificate and history stay for verifying old documents.",
}


def _lifecycle_command(seal: typer.Typer, name: str) -> None:
    """``yizhang seal NAME SEAL_ID --actor … [--reason …] [--approved-by …]``, one per step of
    ``keystore.LIFECYCLE``: ``--reason`` is required where the step requires a reason."""
    if LIFECYCLE[name].reason_required:

        def command(
            seal_id: str,
            actor: ActorOpt,
            reason: Annotated[str, typer.Option("--reason")],
            approved_by: ApproverOpt = None,
            home: HomeOpt = None,
            as_json: JsonOpt = False,
        ) -> None:
            _run_step(name, seal_id, actor, reason, approved_by, home, as_json)

    else:

        def command(  # type: ignore[misc]  # the same command, --reason optional
            seal_id: str,
            actor: ActorOpt,
            approved_by: ApproverOpt = None,
            reason: ReasonOpt = None,
            home: HomeOpt = None,
            as_json: JsonOpt = False,
        ) -> None:
            _run_step(name, seal_id, actor, reason, approved_by, home, as_json)

    command.__doc__ = LIFECYCLE_HELP[name]
    seal.command(name)(command)


def _run_step(
    name: str,
    seal_id: str,
    actor: str,
    reason: str | None,
    approved_by: str | None,
    home: Path | None,
    as_json: bool,
) -> None:
    _run(
        home,
        as_json,
        lambda r: r.step(name, seal_id, actor=actor, approved_by=approved_by, reason=reason),
        _event_view,
    )


def register(app: typer.Typer) -> None:
    seal = typer.Typer(
        help="seals: make, activate, suspend/resume, change, cancel, retire (封存)", no_args_is_help=True
    )

    @seal.command("issue")
    def issue(
        name: Annotated[
            str,
            typer.Option("--name", help="the seal's full name, e.g. 兴国县兴江乡人民政府行政审批服务专用章"),
        ],
        township: Annotated[str, typer.Option("--township")],
        township_code: Annotated[str, typer.Option("--township-code")],
        custodian: Annotated[str, typer.Option("--custodian", help="保管人")],
        requested_by: Annotated[
            str, typer.Option("--requested-by", help="who requested (township government)")
        ],
        approved_by: Annotated[str, typer.Option("--approved-by", help="who approved (consent record)")],
        actor: ActorOpt,
        kind: Annotated[SealKind, typer.Option("--kind")] = SealKind.TOWNSHIP_APPROVAL,
        number: Annotated[int | None, typer.Option("--number", help="No. 2 seals: 11..35")] = None,
        department: Annotated[str | None, typer.Option("--department")] = None,
        department_code: Annotated[str | None, typer.Option("--department-code")] = None,
        algorithm: Annotated[KeyAlgorithm, typer.Option("--algorithm")] = KeyAlgorithm.EC_P256,
        validity_days: Annotated[int, typer.Option("--validity-days")] = 3 * 365,
        reason: ReasonOpt = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Make a seal (刻制): key in the token, certificate from the county's issuing CA; status ISSUED."""

        def action(r: SealRegistry) -> Seal:
            # the policy register first: a registered township, its own name, the kind's naming pattern
            _check_issue(home, kind, name, township, township_code, department_code, number)
            event = r.issue_seal(
                name=name,
                kind=kind,
                township=township,
                township_code=township_code,
                custodian=custodian,
                requested_by=requested_by,
                approved_by=approved_by,
                actor=actor,
                number=number,
                department=department,
                department_code=department_code,
                algorithm=algorithm,
                reason=reason,
                validity_days=validity_days,
            )
            return r.get(event.seal_id)

        _run(home, as_json, action, _seal_view)

    for name in ("activate", "suspend", "resume"):
        _lifecycle_command(seal, name)

    @seal.command("change")
    def change(
        seal_id: str,
        actor: ActorOpt,
        requested_by: Annotated[str, typer.Option("--requested-by")],
        reason: Annotated[str, typer.Option("--reason")],
        approved_by: ApproverOpt = None,
        new_name: Annotated[str | None, typer.Option("--new-name")] = None,
        algorithm: Annotated[KeyAlgorithm | None, typer.Option("--algorithm")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """变更: new key and certificate (optionally renamed); the old certificate is revoked (superseded)."""
        _run(
            home,
            as_json,
            lambda r: r.change(
                seal_id,
                actor=actor,
                # the option is optional here; the registry refuses a change without it (FIELD_REQUIRED)
                approved_by=approved_by or "",
                requested_by=requested_by,
                reason=reason,
                new_name=new_name,
                algorithm=algorithm,
            ),
            _event_view,
        )

    for name in ("cancel", "retire"):
        _lifecycle_command(seal, name)

    @seal.command("list")
    def list_(
        township_code: Annotated[str | None, typer.Option("--township-code")] = None,
        status: Annotated[SealStatus | None, typer.Option("--status")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Seals of the county, by township."""
        _run(
            home,
            as_json,
            lambda r: r.list(township_code=township_code, status=status),
            lambda seals: [_seal_view(s) for s in seals],
        )

    @seal.command("show")
    def show(seal_id: str, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
        """One seal with its lifecycle history."""

        def action(r: SealRegistry) -> JsonObject:
            return {
                **_seal_view(r.get(seal_id)),
                "events": [_event_view(e) for e in r.lifecycle_events(seal_id)],
            }

        _run(home, as_json, action, lambda v: v)

    app.add_typer(seal, name="seal")
