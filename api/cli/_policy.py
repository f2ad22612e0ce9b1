"""Policy administration: ``yizhang org|catalog|powers|agreement|policy ...``.

Every change names who makes it (``--actor`` or ``YIZHANG_ACTOR``) and becomes a new policy revision;
nothing is edited in place. ``yizhang policy check`` exits 0 when allowed, 1 when denied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from api._json import JsonObject, JsonValue
from api.cli._common import BEIJING, HomeOpt, JsonOpt, cli_errors, settings_for, to_jsonable
from api.cli._common import emit as _emit

if TYPE_CHECKING:
    from keystore import SealRegistry
    from policies import Agreement, Decision, PolicyStore, Stage

_E = TypeVar("_E")


ActorOpt = Annotated[
    str, typer.Option("--actor", envvar="YIZHANG_ACTOR", help="who makes this change (recorded with it)")
]
CountyOpt = Annotated[str, typer.Option("--county", help="county code, e.g. 360732")]
RevisionOpt = Annotated[int | None, typer.Option("--revision", help="read as of this policy revision")]
BasisOpt = Annotated[
    str, typer.Option("--basis", help="the decision it rests on, e.g. 赣府字〔2026〕5号 (required)")
]


def _canon(value: object) -> JsonValue:
    """Sets (stages, matters) in a stable order, so the output is the same on every run."""
    from policies import Stage

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canon(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, set | frozenset):
        order = list(Stage)
        return [
            _canon(v)
            for v in sorted(
                value, key=lambda v: (order.index(v), "") if isinstance(v, Stage) else (-1, str(v))
            )
        ]
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items()}
    return value


def emit(value: object, as_json: bool, human: Callable[[JsonValue], str] | None = None) -> None:
    _emit(_canon(value), as_json, human)


@contextmanager
def _store(home: Path | None) -> Iterator[PolicyStore]:
    from core.db import make_engine, migrate
    from policies import PolicyStore

    engine = make_engine(settings_for(home).effective_database_url)
    try:
        migrate(engine)
        yield PolicyStore(engine)
    finally:
        engine.dispose()


def _as_today(agreement: Agreement) -> JsonObject:
    """An agreement as it stands today (issue 23): ``status`` counts the term, EXPIRED past its end and
    NOT_YET_IN_FORCE before its start, as signing does; ``recorded_status`` is the status as recorded."""
    shown = dict(to_jsonable(agreement, BEIJING))
    recorded = getattr(agreement.status, "value", str(agreement.status))
    now = datetime.now(UTC)
    status = recorded
    if recorded == "ACTIVE" and agreement.ends_at is not None and agreement.ends_at <= now:
        status = "EXPIRED"
    elif recorded == "ACTIVE" and agreement.starts_at > now:
        status = "NOT_YET_IN_FORCE"
    shown.update(status=status, recorded_status=recorded)
    return shown


def _when(text: str | None, field: str) -> datetime | None:
    """ISO 8601; a date or a time without offset is Beijing time (Asia/Shanghai): ``--ends 2027-12-06`` is
    2027-12-06 00:00 in the county, the first instant the agreement no longer applies (issue 22)."""
    from core.errors import BadInput
    from policies import CHINA_TZ

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(
            "BAD_DATETIME",
            f"{field}: not an ISO 8601 date/time: {text!r}",
            f"{field}：日期时间格式错误",
            details={"field": field},
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=CHINA_TZ)


def _parse(enum_parse: Callable[[str], _E], text: str, field: str) -> _E:
    from core.errors import BadInput

    try:
        return enum_parse(text)
    except (KeyError, ValueError):
        raise BadInput(
            "BAD_INPUT",
            f"{field}: unknown value {text!r}",
            f"{field}：未知取值 {text!r}",
            details={"field": field},
        ) from None


def _stages(values: list[str] | None) -> list[Stage] | None:
    from policies import Stage

    return None if not values else [_parse(Stage.parse, v, "--stage") for v in values]


def _decision_dict(d: Decision) -> JsonObject:
    out: JsonObject = to_jsonable(d, BEIJING)
    out["reasons"] = [
        {"code": r.code, "message_en": r.message_en, "message_zh": r.message_zh} for r in d.reasons
    ]
    return out


def _human_decision(d: JsonObject) -> str:
    lines = [("ALLOWED" if d["allowed"] else "DENIED") + f"  (policy revision {d['versions']['revision']})"]
    lines += [f"  {r['code']}: {r['message_zh']} / {r['message_en']}" for r in d["reasons"]]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:  # noqa: C901 - one closure per command
    org = typer.Typer(help="the organisation registry: county, townships, departments", no_args_is_help=True)
    catalog = typer.Typer(help="the county's matter catalog", no_args_is_help=True)
    powers = typer.Typer(help="townships' lists of powers (职权清单)", no_args_is_help=True)
    agreement = typer.Typer(help="No. 2 seal agreements (委托协议)", no_args_is_help=True)
    policy = typer.Typer(help="policy decisions", no_args_is_help=True)

    # -- org ------------------------------------------------------------------------------------------------

    @org.command("add-county")
    def org_add_county(
        code: Annotated[str, typer.Argument(help="county code")],
        name: Annotated[str, typer.Argument(help="e.g. 兴国县")],
        actor: ActorOpt,
        approval_required: Annotated[
            bool, typer.Option("--township-seal-approval", help="township seal uses need the principal too")
        ] = False,
        approval_stage: Annotated[
            list[str] | None,
            typer.Option(
                "--approval-stage",
                help="with --township-seal-approval: only at these stages (default: all but 受理)",
            ),
        ] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Register a county (and give it the shipped stage -> document-kind table)."""
        with cli_errors(as_json), _store(home) as store:
            emit(
                store.register_county(
                    code,
                    name,
                    actor=actor,
                    township_seal_requires_approval=approval_required,
                    approval_stages=_stages(approval_stage),
                ),
                as_json,
            )

    @org.command("township-seal-approval")
    def org_township_seal_approval(
        code: Annotated[str, typer.Argument(help="county code")],
        actor: ActorOpt,
        on: Annotated[bool, typer.Option("--on/--off", help="township seal uses need the principal")] = True,
        stage: Annotated[
            list[str] | None,
            typer.Option(
                "--stage", help="only at these stages, e.g. --stage 审批 (default: all but 受理, 003)"
            ),
        ] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Per-stage approval of township seal uses (a new policy revision). No. 2 seals always need it."""
        with cli_errors(as_json), _store(home) as store:
            emit(
                store.set_township_seal_approval(code, required=on, stages=_stages(stage), actor=actor),
                as_json,
            )

    @org.command("add-township")
    def org_add_township(
        code: Annotated[str, typer.Argument()],
        name: Annotated[str, typer.Argument()],
        county: CountyOpt,
        centre: Annotated[str, typer.Option("--service-centre", help="its service centre's code")],
        actor: ActorOpt,
        no2: Annotated[
            int | None, typer.Option("--no2-number", help="its No. 2 seal number (11..35)")
        ] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        with cli_errors(as_json), _store(home) as store:
            emit(
                store.register_township(
                    code, name, county_code=county, service_centre=centre, actor=actor, no2_number=no2
                ),
                as_json,
            )

    @org.command("add-department")
    def org_add_department(
        code: Annotated[str, typer.Argument()],
        name: Annotated[str, typer.Argument()],
        county: CountyOpt,
        actor: ActorOpt,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        with cli_errors(as_json), _store(home) as store:
            emit(store.register_department(code, name, county_code=county, actor=actor), as_json)

    @org.command("import-townships")
    def org_import_townships(
        file: Annotated[Path, typer.Argument(help="CSV no,township,seal_name_pattern,suffix")],
        county: CountyOpt,
        actor: ActorOpt,
        encoding: Annotated[str | None, typer.Option("--encoding")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Register townships from a No. 2 seal table (code <county>-<number>)."""
        with cli_errors(as_json), _store(home) as store:
            emit(store.import_no2_townships(county, _read(file), actor=actor, encoding=encoding), as_json)

    # township lifecycle (issue 22, leak 7): the county approval bureau's admin, with the decision as basis
    @contextmanager
    def _store_and_seals(home: Path | None) -> Iterator[tuple[PolicyStore, SealRegistry]]:
        from keystore import open_registry

        with _store(home) as store, open_registry(settings_for(home)) as registry:
            yield store, registry

    @org.command("rename-township")
    def org_rename_township(
        code: Annotated[str, typer.Argument()],
        name: Annotated[str, typer.Argument(help="the new name, e.g. 兴江镇 (乡改镇)")],
        basis: BasisOpt,
        actor: ActorOpt,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Rename a township; each live seal is changed (变更) to name it. Earlier documents keep theirs."""
        from api._townships import rename_township

        with cli_errors(as_json), _store_and_seals(home) as (store, registry):
            emit(rename_township(store, registry, code, name, actor=actor, basis=basis), as_json)

    @org.command("merge-township")
    def org_merge_township(
        code: Annotated[str, typer.Argument()],
        into: Annotated[str, typer.Option("--into", help="the township it merges into")],
        basis: BasisOpt,
        actor: ActorOpt,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Merge a township into another: powers pass to it, its seals are sealed away (封存)."""
        from api._townships import merge_township

        with cli_errors(as_json), _store_and_seals(home) as (store, registry):
            emit(merge_township(store, registry, code, into, actor=actor, basis=basis), as_json)

    @org.command("retire-township")
    def org_retire_township(
        code: Annotated[str, typer.Argument()],
        basis: BasisOpt,
        actor: ActorOpt,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Abolish a township without a successor: closed, its seals sealed away (封存)."""
        from api._townships import retire_township

        with cli_errors(as_json), _store_and_seals(home) as (store, registry):
            emit(retire_township(store, registry, code, actor=actor, basis=basis), as_json)

    @org.command("show-township")
    def org_show_township(
        code: Annotated[str, typer.Argument()], home: HomeOpt = None, as_json: JsonOpt = False
    ) -> None:
        """A township's state (ACTIVE, MERGED, RETIRED), its name and former names."""
        with cli_errors(as_json), _store(home) as store:
            emit(store.township_record(code), as_json)

    @org.command("list")
    def org_list(
        county: Annotated[str | None, typer.Option("--county")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        with cli_errors(as_json), _store(home) as store:
            emit(store.organisations(county), as_json)

    # -- catalog --------------------------------------------------------------------------------------------

    @catalog.command("import")
    def catalog_import(
        file: Annotated[Path, typer.Argument(help="shanxi / xingguo CSV or the county CSV/JSON format")],
        county: CountyOpt,
        actor: ActorOpt,
        fmt: Annotated[
            str | None, typer.Option("--format", help="shanxi | xingguo | county (default: by header)")
        ] = None,
        encoding: Annotated[
            str | None, typer.Option("--encoding", help="e.g. gbk; default UTF-8, GBK refused")
        ] = None,
        merge: Annotated[
            bool, typer.Option("--merge", help="add to the catalog instead of replacing it")
        ] = False,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Import a catalog, all or nothing, as a new catalog version."""
        with cli_errors(as_json), _store(home) as store:
            emit(
                store.import_catalog(
                    county, _read(file), actor=actor, fmt=fmt, encoding=encoding, replace=not merge
                ),
                as_json,
            )

    @catalog.command("show")
    def catalog_show(
        county: CountyOpt, revision: RevisionOpt = None, home: HomeOpt = None, as_json: JsonOpt = False
    ) -> None:
        with cli_errors(as_json), _store(home) as store:
            matters = store.matters(county, revision)
        from policies import STAGE_ORDER

        rows = [
            {
                "code": m.code,
                "title": m.title,
                "power_type": m.power_label,
                "level": m.level,  # 办理层级, as the catalog gives it (issue 22, leak 18)
                "mode": m.mode.value,
                # in the order a matter is handled: 受理, 初审, 审核, 复核, 审批
                "stages": [s.value for s in STAGE_ORDER if s in m.mode.stages],
                "department": m.department_code,
                "supervising_departments": list(m.supervising_codes),
                "agency": m.agency,
            }
            for m in matters
        ]
        emit(rows, as_json)

    @catalog.command("stage-kinds")
    def catalog_stage_kinds(
        county: CountyOpt,
        actor: Annotated[str | None, typer.Option("--actor", envvar="YIZHANG_ACTOR")] = None,
        file: Annotated[Path | None, typer.Option("--set", help="JSON table to install (see docs)")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Show the county's stage -> document-kind table, or install a new version with --set FILE."""
        import json

        from core.errors import BadInput

        with cli_errors(as_json), _store(home) as store:
            if file is not None:
                try:
                    table = json.loads(_read(file).decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise BadInput(
                        "STAGE_TABLE_INVALID", f"not a UTF-8 JSON file: {exc}", "不是 UTF-8 JSON 文件"
                    ) from None
                store.set_stage_kinds(county, table, actor=actor or "")
            from policies import stage_kinds_to_json

            table_id, current = store.stage_kinds(county)
        emit({"version": table_id, **stage_kinds_to_json(current)}, as_json)

    # -- powers ---------------------------------------------------------------------------------------------

    @powers.command("grant")
    def powers_grant(
        township: Annotated[str, typer.Argument()],
        matters: Annotated[list[str] | None, typer.Argument(help="matter codes")] = None,
        actor: ActorOpt = "",
        all_: Annotated[
            bool, typer.Option("--all", help="every matter the township's own seal may serve")
        ] = False,
        stage: Annotated[list[str] | None, typer.Option("--stage", help="restrict to these stages")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        from core.errors import BadInput

        with cli_errors(as_json), _store(home) as store:
            if all_ == bool(matters):
                raise BadInput(
                    "BAD_INPUT", "name matter codes or --all (not both)", "须指定事项编码或 --all（二选一）"
                )
            emit(
                store.grant_powers(township, None if all_ else matters, actor=actor, stages=_stages(stage)),
                as_json,
            )

    @powers.command("revoke")
    def powers_revoke(
        township: Annotated[str, typer.Argument()],
        matters: Annotated[list[str], typer.Argument(help="matter codes")],
        actor: ActorOpt,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        with cli_errors(as_json), _store(home) as store:
            emit({"revoked": store.revoke_powers(township, matters, actor=actor)}, as_json)

    @powers.command("show")
    def powers_show(
        township: Annotated[str, typer.Argument()],
        revision: RevisionOpt = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        with cli_errors(as_json), _store(home) as store:
            entries = store.powers(township, revision)
        emit(
            [
                {
                    "matter": e.matter.code,
                    "title": e.matter.title,
                    "stages": sorted(s.value for s in e.power.stages),
                    "revision": e.power.version,
                }
                for e in entries
            ],
            as_json,
        )

    # -- agreements -----------------------------------------------------------------------------------------

    @agreement.command("create")
    def agreement_create(
        department: Annotated[str, typer.Option("--department", help="entrusting department code")],
        township: Annotated[str, typer.Option("--township")],
        seal_number: Annotated[int, typer.Option("--seal-number", help="the No. 2 seal's number (11..35)")],
        matter: Annotated[list[str], typer.Option("--matter", help="matter code (repeat)")],
        starts: Annotated[str, typer.Option("--starts", help="ISO 8601 start of term")],
        actor: ActorOpt,
        ends: Annotated[
            str | None,
            typer.Option(
                "--ends",
                help="end of term, required (004): the first day (Beijing time) it no longer applies",
            ),
        ] = None,
        stage: Annotated[
            list[str] | None, typer.Option("--stage", help="authority (default: all stages)")
        ] = None,
        basis: Annotated[str, typer.Option("--basis", help="用章依据, required (004)")] = "",
        agreement_id: Annotated[str | None, typer.Option("--id")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        with cli_errors(as_json), _store(home) as store:
            emit(
                store.create_agreement(
                    department_code=department,
                    township_code=township,
                    seal_number=seal_number,
                    matter_codes=matter,
                    starts_at=_when(starts, "--starts") or datetime.now(UTC),
                    ends_at=_when(ends, "--ends"),
                    actor=actor,
                    stages=_stages(stage),
                    basis=basis,
                    agreement_id=agreement_id,
                ),
                as_json,
            )

    @agreement.command("amend")
    def agreement_amend(
        agreement_id: Annotated[str, typer.Argument()],
        actor: ActorOpt,
        matter: Annotated[list[str] | None, typer.Option("--matter", help="the new list of matters")] = None,
        stage: Annotated[list[str] | None, typer.Option("--stage")] = None,
        ends: Annotated[str | None, typer.Option("--ends")] = None,
        basis: Annotated[str | None, typer.Option("--basis")] = None,
        note: Annotated[str, typer.Option("--note")] = "",
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        with cli_errors(as_json), _store(home) as store:
            emit(
                store.amend_agreement(
                    agreement_id,
                    actor=actor,
                    matter_codes=matter or None,
                    stages=_stages(stage),
                    ends_at=_when(ends, "--ends"),
                    basis=basis,
                    note=note,
                ),
                as_json,
            )

    def _transition(name: str, fn_name: str, help_: str) -> None:
        @agreement.command(name, help=help_)
        def _cmd(
            agreement_id: Annotated[str, typer.Argument()],
            actor: ActorOpt,
            reason: Annotated[str, typer.Option("--reason")] = "",
            home: HomeOpt = None,
            as_json: JsonOpt = False,
        ) -> None:
            with cli_errors(as_json), _store(home) as store:
                emit(getattr(store, fn_name)(agreement_id, actor=actor, reason=reason), as_json)

    _transition(
        "suspend", "suspend_agreement", "Suspend an agreement (the department inspects or orders correction)."
    )
    _transition("resume", "resume_agreement", "Resume a suspended agreement.")
    _transition("revoke", "revoke_agreement", "Revoke an agreement for good.")

    @agreement.command("show")
    def agreement_show(
        agreement_id: Annotated[str | None, typer.Argument()] = None,
        township: Annotated[
            str | None, typer.Option("--township", help="list a township's agreements")
        ] = None,
        revision: RevisionOpt = None,
        history: Annotated[bool, typer.Option("--history", help="every version, with who and when")] = False,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        from core.errors import BadInput

        with cli_errors(as_json), _store(home) as store:
            if agreement_id is None and township is None:
                raise BadInput(
                    "BAD_INPUT", "name an agreement id or --township", "须指定协议编号或 --township"
                )
            if agreement_id is None:
                emit([_as_today(a) for a in store.agreements(township or "", revision)], as_json)
            elif history:
                emit(
                    [{"agreement": a, "change": r} for a, r in store.agreement_history(agreement_id)], as_json
                )
            else:
                emit(_as_today(store.agreement(agreement_id, revision)), as_json)

    # -- policy check ---------------------------------------------------------------------------------------

    @policy.command("check")
    def policy_check(
        seal_township: Annotated[str, typer.Option("--seal-township", help="township code of the seal")],
        matter: Annotated[str, typer.Option("--matter")],
        stage: Annotated[str, typer.Option("--stage", help="受理|审核|初审|复核|审批 (or ACCEPT ...)")],
        document_kind: Annotated[
            str, typer.Option("--document-kind", help="e.g. 受理通知书 or ACCEPTANCE_NOTICE")
        ],
        operator: Annotated[str, typer.Option("--operator", help="operator user id")],
        operator_org: Annotated[str, typer.Option("--operator-org")],
        operator_centre: Annotated[str | None, typer.Option("--operator-centre")] = None,
        operator_role: Annotated[str, typer.Option("--operator-role")] = "CLERK",
        seal_id: Annotated[str, typer.Option("--seal-id")] = "cli",
        seal_kind: Annotated[
            str, typer.Option("--seal-kind", help="TOWNSHIP_APPROVAL | DEPARTMENT_NO2")
        ] = "TOWNSHIP_APPROVAL",
        seal_status: Annotated[str, typer.Option("--seal-status")] = "ACTIVE",
        seal_number: Annotated[int | None, typer.Option("--seal-number")] = None,
        seal_department: Annotated[str | None, typer.Option("--seal-department")] = None,
        seal_not_before: Annotated[str, typer.Option("--seal-not-before")] = "1970-01-01T00:00:00+00:00",
        seal_not_after: Annotated[str, typer.Option("--seal-not-after")] = "9999-01-01T00:00:00+00:00",
        approver: Annotated[str | None, typer.Option("--approver")] = None,
        approver_org: Annotated[str | None, typer.Option("--approver-org")] = None,
        approver_role: Annotated[str, typer.Option("--approver-role")] = "PRINCIPAL",
        at: Annotated[str | None, typer.Option("--at", help="decide as at this time (default now)")] = None,
        revision: RevisionOpt = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Decide one request. The seal's facts come from options (the seal registry is another area)."""
        from policies import (
            Actor,
            DocumentKind,
            Role,
            SealFacts,
            SealKindFact,
            SealStatusFact,
            SigningRequest,
            Stage,
            decide,
        )

        with cli_errors(as_json), _store(home) as store:
            seal = SealFacts(
                seal_id=seal_id,
                kind=_parse(SealKindFact, seal_kind.upper(), "--seal-kind"),
                status=_parse(SealStatusFact, seal_status.upper(), "--seal-status"),
                township_code=seal_township,
                not_before=_when(seal_not_before, "--seal-not-before") or datetime.min.replace(tzinfo=UTC),
                not_after=_when(seal_not_after, "--seal-not-after") or datetime.max.replace(tzinfo=UTC),
                number=seal_number,
                department_code=seal_department,
            )
            req = SigningRequest(
                seal=seal,
                operator=Actor(
                    operator,
                    _parse(Role.parse, operator_role, "--operator-role"),
                    operator_org,
                    operator_centre,
                ),
                matter_code=matter,
                stage=_parse(Stage.parse, stage, "--stage"),
                document_kind=_parse(DocumentKind.parse, document_kind, "--document-kind"),
                approver=None
                if approver is None
                else Actor(
                    approver,
                    _parse(Role.parse, approver_role, "--approver-role"),
                    approver_org or seal_township,
                ),
            )
            now = _when(at, "--at") or datetime.now(UTC)
            decision = decide(req, store.facts_for(req, revision=revision), now)
        out = _decision_dict(decision)
        emit(out, as_json, human=_human_decision)
        if not decision.allowed:
            raise typer.Exit(1)

    app.add_typer(org, name="org")
    app.add_typer(catalog, name="catalog")
    app.add_typer(powers, name="powers")
    app.add_typer(agreement, name="agreement")
    app.add_typer(policy, name="policy")


def _read(path: Path) -> bytes:
    from core.errors import BadInput

    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(
            "FILE_UNREADABLE",
            f"cannot read {path}: {exc.strerror}",
            f"无法读取文件 {path}",
            details={"field": "file"},
        ) from None
