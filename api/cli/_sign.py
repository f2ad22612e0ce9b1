"""``yizhang sign`` (apply a seal: policy, number, stamp, token signature, timestamp, ledger) and
``yizhang render`` (a template from JSON data into an A4 PDF)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api._json import JsonObject
from api.cli._common import HomeOpt, JsonOpt, cli_errors, emit, settings_for
from core.errors import BadInput

if TYPE_CHECKING:
    from api._services import Services
    from policies import Actor


def _read_json(path: Path) -> JsonObject:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput(
            "TEMPLATE_DATA_INVALID", f"cannot read JSON data {path}: {exc}", "无法读取模板数据"
        ) from exc
    if not isinstance(data, dict):
        raise BadInput(
            "TEMPLATE_DATA_INVALID", "template data must be a JSON object", "模板数据须为 JSON 对象"
        )
    return data


def _rect(text: str) -> tuple[float, float, float, float]:
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4:
        raise BadInput(
            "STAMP_BOX_INVALID", f"a box is x1,y1,x2,y2 (points), got {text!r}", "区域格式应为 x1,y1,x2,y2"
        )
    return parts[0], parts[1], parts[2], parts[3]


def _protected(spec: str) -> tuple[int, tuple[float, float, float, float]]:
    page, sep, box = spec.partition(":")
    if not sep or not page.lstrip("-").isdigit():
        raise BadInput(
            "STAMP_BOX_INVALID", f"--protect is PAGE:x1,y1,x2,y2, got {spec!r}", "受保护区域格式无效"
        )
    return int(page), _rect(box)


def _approver(services: Services, name: str, org: str | None) -> Actor:
    """The approving principal as the API sees it: an existing, enabled account (by user name or account
    id), its own role, township and person; the policy then requires a principal of the seal's township
    who is not the seal user (004). Free text is never an approver (issue 22, leak 11)."""
    from api._accounts import get_account, get_account_by_username
    from core.db import transaction
    from core.errors import NotFound
    from policies import Actor

    account = None
    with transaction(services.engine) as s:
        for find in (get_account_by_username, get_account):
            try:
                account = find(s, name)
                break
            except NotFound:
                continue
    if account is None:
        raise BadInput(
            "APPROVER_UNKNOWN",
            f"--approver {name!r} is no account: the approver is a township principal's account",
            f"批准人 {name} 不是已开设的账号："
            "批准人须为本乡镇主要负责人的账号（依据004：经乡镇主要负责人审批）",
            details={"field": "--approver", "source": "004"},
        )
    if account.disabled:
        raise BadInput(
            "APPROVER_DISABLED",
            f"the approver's account {name!r} is disabled",
            f"批准人账号 {name} 已停用",
            details={"field": "--approver"},
        )
    if org is not None and org != account.org_code:
        raise BadInput(
            "APPROVER_ORG_MISMATCH",
            f"--approver-org {org} is not the approver's township ({account.org_code})",
            f"--approver-org {org} 与批准人账号所属乡镇（{account.org_code}）不符",
            details={"field": "--approver-org"},
        )
    return Actor(
        user_id=account.account_id,
        role=account.role,
        org_code=account.org_code,
        service_centre=account.service_centre,
        person_id=account.person_id or None,
    )


def register(app: typer.Typer) -> None:
    @app.command("render")
    def render(
        template: Annotated[str, typer.Option("--template", help="template name (see --list)")] = "",
        data: Annotated[
            Path | None, typer.Option("--data", help="JSON object with the template's fields")
        ] = None,
        out: Annotated[Path | None, typer.Option("--out", help="where to write the PDF")] = None,
        list_templates: Annotated[bool, typer.Option("--list", help="list the templates")] = False,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Render a document template (受理/不予受理/补正/不予批准/不予行政许可/许可证) to an A4 PDF."""
        from signer import render_template, template_names

        del home  # rendering needs no deployment state; accepted like on every command
        with cli_errors(as_json):
            if list_templates:
                emit(template_names(), as_json)
                return
            if not template or data is None or out is None:
                raise BadInput("ARGUMENTS_MISSING", "--template, --data and --out are required", "缺少参数")
            pdf = render_template(template, _read_json(data))
            out.write_bytes(pdf)
            emit({"template": template, "out": str(out), "bytes": len(pdf)}, as_json)

    @app.command("sign")
    def sign(
        seal: Annotated[str, typer.Option("--seal", help="seal id")],
        matter: Annotated[str, typer.Option("--matter", help="matter code")],
        stage: Annotated[str, typer.Option("--stage", help="受理 | 审核 | 初审 | 复核 | 审批")],
        kind: Annotated[
            str, typer.Option("--kind", help="document kind, e.g. 受理通知书 or ACCEPTANCE_NOTICE")
        ],
        out: Annotated[Path, typer.Option("--out", help="sealed PDF")],
        operator: Annotated[str, typer.Option("--operator", help="user id of the seal user (window clerk)")],
        in_pdf: Annotated[Path | None, typer.Option("--in", help="PDF to seal")] = None,
        template: Annotated[
            str | None, typer.Option("--template", help="render this template instead")
        ] = None,
        data: Annotated[Path | None, typer.Option("--data", help="template data (JSON)")] = None,
        operator_role: Annotated[str, typer.Option("--operator-role")] = "CLERK",
        operator_org: Annotated[
            str | None, typer.Option("--operator-org", help="default: seal's township")
        ] = None,
        operator_centre: Annotated[
            str | None, typer.Option("--operator-centre", help="default: its centre")
        ] = None,
        approver: Annotated[
            str | None, typer.Option("--approver", help="the approving principal's account (user name or id)")
        ] = None,
        approver_org: Annotated[str | None, typer.Option("--approver-org")] = None,
        reason: Annotated[str, typer.Option("--reason", help="事由")] = "",
        level: Annotated[
            str | None, typer.Option("--level", help="B-T | B-LT | B-LTA (default: settings)")
        ] = None,
        key: Annotated[
            str | None, typer.Option("--idempotency-key", help="default: hash of the request")
        ] = None,
        page: Annotated[int, typer.Option("--page", help="0-based page, negative from the end")] = -1,
        box: Annotated[str | None, typer.Option("--box", help="x1,y1,x2,y2 in points")] = None,
        protect: Annotated[
            list[str] | None, typer.Option("--protect", help="PAGE:x1,y1,x2,y2 (repeat)")
        ] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Seal a PDF (or a rendered template): policy → number → stamp → sign → timestamp → ledger."""
        from api._services import build_services
        from policies import Actor, Role
        from signer import Placement, SealRequest

        with cli_errors(as_json):
            if (in_pdf is None) == (template is None):
                raise BadInput(
                    "ARGUMENTS_MISSING",
                    "give --in PDF or --template with --data",
                    "须提供 --in 或 --template",
                )
            try:
                pdf = in_pdf.read_bytes() if in_pdf is not None else None
            except OSError as exc:
                raise BadInput("INPUT_UNREADABLE", f"cannot read {in_pdf}", f"无法读取 {in_pdf}") from exc
            tdata = _read_json(data) if data is not None else ({} if template else None)
            settings = settings_for(home)
            services = build_services(settings)
            try:
                registry = services.need_seal_registry()
                policy_store = services.need_policy_store()
                services.need_keystore()
                services.need_county_pki()
                services.need_ledger()
                sealer = services.need_signer()
                the_seal = registry.get(seal)
                org = operator_org or the_seal.township_code
                centre = operator_centre
                if centre is None:
                    try:
                        centre = policy_store.organisation(org).service_centre
                    except Exception:  # noqa: BLE001 - unknown org: the policy decides (fails closed)
                        centre = None
                try:
                    op_role = Role.parse(operator_role)
                except ValueError:
                    raise BadInput("ROLE_UNKNOWN", f"unknown role {operator_role}", "未知角色") from None
                op = Actor(user_id=operator, role=op_role, org_code=org, service_centre=centre)
                appr = None if approver is None else _approver(services, approver, approver_org)
                placement = Placement(
                    page=page,
                    box=_rect(box) if box else None,
                    protected=tuple(_protected(p) for p in (protect or [])),
                )
                idem = (
                    key
                    or hashlib.sha256(
                        json.dumps(
                            [
                                seal,
                                matter,
                                stage,
                                kind,
                                operator,
                                template,
                                tdata,
                                hashlib.sha256(pdf or b"").hexdigest(),
                            ],
                            ensure_ascii=True,
                            sort_keys=True,
                        ).encode()
                    ).hexdigest()[:32]
                )
                result = sealer.seal(
                    SealRequest(
                        seal_id=seal,
                        matter_code=matter,
                        stage=stage,
                        document_kind=kind,
                        idempotency_key=idem,
                        operator=op,
                        approver=appr,
                        reason=reason,
                        unverified_pdf=pdf,
                        template=template,
                        template_data=tdata,
                        placement=placement,
                        level=level,
                    )
                )
            finally:
                services.close()
                services.engine.dispose()
            out.write_bytes(result.pdf)
            emit(
                {
                    "out": str(out),
                    "document_number": result.document_number,
                    "sha256": result.sha256,
                    "level": result.level,
                    "ledger_index": result.ledger_index,
                    "idempotency_key": result.idempotency_key,
                    "replayed": result.replayed,
                },
                as_json,
            )

    @app.command("sweep-numbers")
    def sweep_numbers(
        older_than: Annotated[
            float | None,
            typer.Option("--older-than", help="seconds; default YIZHANG_NUMBER_RESERVATION_TTL_S"),
        ] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Void document numbers whose signing never ended (a process died after reserving them).

        ``yizhang serve`` does this by itself; run it by hand after a crash, once no signing is running,
        with ``--older-than 0`` to settle every open reservation at once."""
        from datetime import timedelta

        from api._services import build_services

        with cli_errors(as_json):
            if older_than is not None and older_than < 0:
                raise BadInput("ARGUMENTS_INVALID", "--older-than must be ≥ 0", "--older-than 须 ≥ 0")
            services = build_services(settings_for(home))
            try:
                ttl = timedelta(seconds=older_than) if older_than is not None else None
                voided = services.need_signer().sweep_reservations(ttl)
            finally:
                services.close()
            emit({"voided": voided}, as_json)
