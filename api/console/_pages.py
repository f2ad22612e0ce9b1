"""Console pages for the window staff and the county: one landing page per role, deny by default.

Every page calls the same library functions the API routes call (:class:`api._signing.SigningWorkflow`,
the seal registry, the policy store, the ledger); downloads of the monthly report go to the API's own
``GET /v1/reports/monthly`` (the session cookie authenticates a GET there), so no rule is written twice.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from api._accounts import (
    MIN_PASSWORD_LEN,
    check_password,
    close_session,
    open_session,
)
from api._authz import Permission, Principal, ServicesDep, public
from api._cookies import SESSION_COOKIE, clear_session_cookie, set_session_cookie
from api._json import JsonObject, JsonValue
from api._login_guard import client_address, guarded
from api._signing import SigningWorkflow, Status, Submission
from api.console._gate import LOGIN_PATH, PASSWORD_PATH, Gate, console_gate
from api.console._render import ROLE_NAMES, STATUS_NAMES, org_names, page, refuse
from core.db import transaction
from core.errors import PolicyDenied, SealServiceError
from core.settings import Settings
from policies import OrgKind, Role

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from api._accounts import Account
    from api._services import Services
    from api._signing import DecisionEvent, SigningRequestView
    from keystore import Seal
    from policies import Agreement
    from signer import Template

P = Permission
STAGES = ("受理", "审核", "初审", "复核", "审批")
KINDS = (
    "受理通知书",
    "不予受理通知书",
    "补正材料告知书",
    "意见",
    "批复",
    "许可证及其附件",
    "审批表单",
    "准予决定书",
    "不予批准决定书",
)
#: Where each role lands after logging in (deny by default: a role not listed sees only its account).
LANDING = {
    Role.TOWNSHIP_CLERK: "/ui/clerk",
    Role.TOWNSHIP_PRINCIPAL: "/ui/principal",
    Role.DEPARTMENT_OFFICER: "/ui/department",
    Role.AUDITOR: "/ui/auditor",
    Role.COUNTY_ADMIN: "/ui/seals",
    Role.SEAL_CUSTODIAN: "/ui/seals",
}
MAX_FIELD = 500
#: The login page's messages, by code (``?error=CODE``); nothing else from the address is shown.
LOGIN_MESSAGES = {
    "LOGIN_FAILED": "用户名或密码错误。",
    "ACCOUNT_DISABLED": "该账号已停用，请联系管理员。",
    "RATE_LIMITED": "尝试次数过多，请稍后再试。",
    "LOGIN_THROTTLED": "该账号或本机登录失败次数过多，已暂停登录，请稍后再试（最长 15 分钟）；"
    "如忘记密码，请联系县行政审批局管理员重置。（LOGIN_THROTTLED）",
    "LOGIN_BUSY": "当前登录人数过多，请几秒后重试。（LOGIN_BUSY）",
}
PASSWORD_MESSAGES = {
    "PASSWORD_CHANGE_FAILED": "密码未能修改，请重试。",
    "PASSWORD_REQUIRED": "请填写当前密码和新密码。",
    "PASSWORD_MISMATCH": "两次输入的新密码不一致。",
    "PASSWORD_UNCHANGED": "新密码不能与当前密码相同。",
    "LOGIN_FAILED": "当前密码不正确。",
    "LOGIN_THROTTLED": "当前密码错误次数过多，已暂停修改，请稍后再试。（LOGIN_THROTTLED）",
    "LOGIN_BUSY": "当前登录人数过多，请几秒后重试。（LOGIN_BUSY）",
    "PASSWORD_TOO_SHORT": f"新密码至少 {MIN_PASSWORD_LEN} 位。",
    "PASSWORD_TOO_LONG": "新密码过长。",
}
_NONCE = re.compile(r"[0-9a-f]{24}")
MONTH_RE = r"[0-9]{4}-(0[1-9]|1[0-2])"


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + (mon == 12):04d}-{mon % 12 + 1:02d}"


def _gate(*permissions: Permission) -> Callable[[Request, Services], Awaitable[Gate]]:
    return console_gate(*permissions, refuse=refuse)


AnyUser = Annotated[Gate, Depends(_gate(P.SELF))]
ClerkGate = Annotated[Gate, Depends(_gate(P.SIGNING_SUBMIT))]
ReaderGate = Annotated[Gate, Depends(_gate(P.SIGNING_READ))]
ApproverGate = Annotated[Gate, Depends(_gate(P.SIGNING_APPROVE))]
ReportsGate = Annotated[Gate, Depends(_gate(P.REPORTS_READ))]
SealsGate = Annotated[Gate, Depends(_gate(P.SEALS_READ))]
LifecycleGate = Annotated[Gate, Depends(_gate(P.DECISION_LIFECYCLE))]
#: 变更、撤回、撤销、注销: the action's name on its button, and the history's name for the event.
ACTION_NAMES = {"CHANGED": "变更", "WITHDRAWN": "撤回", "REVOKED": "撤销", "CANCELLED": "注销"}
EVENT_NAMES = {"ISSUED": "用印签发", **ACTION_NAMES}


async def _workflow(request: Request, services: ServicesDep) -> SigningWorkflow:
    return SigningWorkflow(services, request.app.state.metrics)


#: The signing workflow over the app's services, injected: ``workflow: Workflow``.
Workflow = Annotated[SigningWorkflow, Depends(_workflow)]


def _back(path: str, message: str = "", error: bool = False) -> RedirectResponse:
    if message:
        path += f"?{'error' if error else 'msg'}={quote(message)}"
    return RedirectResponse(path, status_code=303)


def _flash(msg: str | None, error: str | None) -> JsonObject:
    return {"message": (error or msg or "")[:300], "is_error": bool(error)}


def _templates() -> list[Template]:
    from signer import load_template, template_names

    return [load_template(n) for n in template_names()]


FIELD_NAMES = {
    "issuer": "发文机关",
    "applicant": "申请人",
    "matter_name": "事项名称",
    "submitted_date": "申请日期",
    "date": "成文日期",
    "reason": "不予受理理由",
    "reasons": "不予批准理由（每行一条）",
    "items": "需补正的材料（每行一项）",
    "basis": "依据",
    "remedy": "救济途径",
    "deadline": "补正期限",
    "time_limit": "办理时限（工作日）",
    "contact": "联系方式",
    "unit_name": "单位名称",
    "legal_representative": "法定代表人（负责人）",
    "address": "地址",
    "licensed_items": "许可项目",
    "valid_from": "有效期起",
    "valid_until": "有效期止",
}


def _list_fields(template: str) -> set[str]:
    from signer import load_template

    try:
        tpl = load_template(template)
    except SealServiceError:
        return set()
    return {str(b.get("field")) for b in tpl.blocks if b.get("type") == "list"}


def _template_form(tpl: Template) -> JsonObject:
    """The fields a clerk fills for one template: required first, then the optional ones with defaults."""
    from policies import DocumentKind

    names = list(tpl.required) + [k for k in tpl.defaults if k not in tpl.required]
    lists = {str(b.get("field")) for b in tpl.blocks if b.get("type") == "list"}
    try:
        kind = DocumentKind[tpl.document_kind].value
    except KeyError:
        kind = ""
    return {
        "fields": [
            {
                "name": n,
                "label": FIELD_NAMES.get(n, n),
                "required": n in tpl.required,
                "default": tpl.defaults.get(n, ""),
                "multiline": n in lists or len(tpl.defaults.get(n, "")) > 40,
                "list": n in lists,
            }
            for n in names
        ],
        "kind": kind,
    }


def _can_see(workflow: SigningWorkflow, who: Principal, request_id: str) -> bool:
    try:
        workflow.get(who, request_id)
    except SealServiceError:
        return False
    return True


def _resubmission_values(
    workflow: SigningWorkflow, who: Principal, request_id: str
) -> tuple[dict[str, str], str | None]:
    """The clerk's form values of a rejected or refused request, to edit and submit again (issue 23)."""
    import json

    from api._signing import Status
    from api._storage import SigningRequestRow
    from core.errors import Conflict

    view = workflow.get(who, request_id)
    if view.status not in (Status.REJECTED, Status.DENIED):
        raise Conflict(
            "RESUBMIT_NOT_REFUSED",
            "not rejected or refused",
            "只有被驳回或未通过策略审查的申请才能修改后重新提交",
        )
    newer = workflow.resubmission_of(who, view.request_id)
    if newer is not None:
        raise Conflict("RESUBMIT_ALREADY", "already resubmitted", "该申请已修改后重新提交过")
    with transaction(workflow.services.sessions) as s:
        row = s.get(SigningRequestRow, view.request_id)
        template, data, applicant = (
            (row.template, row.template_data, row.applicant) if row else (None, None, None)
        )
    values = {
        "resubmits": view.request_id,
        "seal_id": view.seal_id,
        "matter_code": view.matter_code,
        "stage": view.stage,
        "document_kind": view.document_kind,
        "reason": view.reason,
        "applicant": applicant or "",
    }
    try:
        fields = json.loads(data) if data else {}
    except ValueError:
        fields = {}
    for name, value in fields.items() if isinstance(fields, dict) else ():
        values["f_" + name] = "\n".join(map(str, value)) if isinstance(value, list) else str(value)
    return values, template


def _visible_seals(services: Services, who: Principal, *, active_only: bool) -> list[Seal]:
    registry = services.need_seal_registry()
    seals = registry.list() if who.county_wide else registry.list(township_code=who.org_code)
    out = [
        s
        for s in seals
        if who.in_scope(township_code=s.township_code, department_code=s.department_code)
        or (who.role is Role.DEPARTMENT_OFFICER and s.department_code == who.org_code)
    ]
    if active_only:
        out = [s for s in out if s.status.value == "ACTIVE"]
    return out


def _matters_for(services: Services, who: Principal) -> list[tuple[str, str]]:
    """Matters the caller's township may handle (its powers and its No. 2 agreements), for the picker."""
    store = services.policy_store
    if store is None or who.county_wide:
        return []
    found: dict[str, str] = {}
    try:
        # the full name with its sub-item (首次/变更/补证/延续/注销): XG-14…XG-18 differ only there
        for entry in store.powers(who.org_code):
            found[entry.matter.code] = entry.matter.title
        county = store.organisation(who.org_code).county_code
        names = {m.code: m.title for m in store.matters(county)} if county is not None else {}
        for agreement in store.agreements(who.org_code):
            for code in sorted(agreement.matters):
                found.setdefault(code, names.get(code, code))
    except SealServiceError:
        return sorted(found.items())
    return sorted(found.items())


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/ui", tags=["console"], include_in_schema=False)

    # -- login / logout -------------------------------------------------------------------------------
    @router.get("/login", dependencies=[Depends(public())], response_class=HTMLResponse)
    def login_page(
        request: Request, error: str | None = None, expired: str | None = None, done: str | None = None
    ) -> Response:
        # codes only: the page never prints text from the address (a forged link would show it in the
        # official banner); an unknown code is the generic failure
        message = ""
        if error:
            message = LOGIN_MESSAGES.get(error, LOGIN_MESSAGES["LOGIN_FAILED"])
        elif expired:
            message = "登录已过期，请重新登录。"
        notice = "密码已修改，请用新密码登录。" if done == "password" and not message else ""
        return page(
            request,
            "login.html",
            None,
            message=message or notice,
            is_error=bool(message),
            oidc_enabled=settings.oidc_issuer is not None,
        )

    @router.post("/login", dependencies=[Depends(public(rate_limited=True))])
    def login(
        request: Request,
        services: ServicesDep,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
    ) -> Response:
        name = username.strip().lower()
        sessions = services.sessions

        def attempt() -> tuple[Account, str]:
            with transaction(sessions) as s:
                account = check_password(s, name, password)
                cookie, _csrf = open_session(s, account)
            return account, cookie

        try:
            account, cookie = guarded(sessions, name, client_address(request), attempt)
        except SealServiceError as exc:
            return _back(LOGIN_PATH, exc.code, error=True)
        landing = PASSWORD_PATH if account.must_change_password else LANDING.get(account.role, "/ui/")
        response = RedirectResponse(landing, status_code=303)
        set_session_cookie(response, settings, cookie)
        return response

    @router.post("/logout")
    def logout(request: Request, services: ServicesDep, gate: AnyUser) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            with transaction(services.sessions) as s:
                close_session(s, cookie)
        response = RedirectResponse(LOGIN_PATH, status_code=303)
        clear_session_cookie(response)
        return response

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request, gate: AnyUser) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        target = LANDING.get(gate.who.role)
        if target is not None:
            return RedirectResponse(target, status_code=303)
        return page(request, "account.html", gate)

    # -- clerk: submit, status, download -------------------------------------------------------------
    @router.get("/clerk", response_class=HTMLResponse)
    def clerk(
        request: Request,
        workflow: Workflow,
        gate: ClerkGate,
        template: str | None = None,
        resubmit: str | None = None,
        msg: str | None = None,
        error: str | None = None,
    ) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        if resubmit:
            # a rejected or refused request, edited: the form filled with what it held, linked to it
            try:
                values, template = _resubmission_values(workflow, gate.who, resubmit[:64])
            except SealServiceError as exc:
                status = {"not_found": 404, "permission_denied": 403}.get(exc.family, 409)
                return refuse(request, status, exc.message_zh, exc.code)
            return _clerk_page(request, workflow, gate, template, values=values, **_flash(msg, error))
        return _clerk_page(request, workflow, gate, template, **_flash(msg, error))

    def _clerk_page(
        request: Request,
        workflow: SigningWorkflow,
        gate: Gate,
        template: str | None,
        *,
        values: dict[str, str] | None = None,
        status_code: int = 200,
        **flash: JsonValue,
    ) -> Response:
        """The submission form; after a refusal, ``values`` fills it again with what was typed."""
        who = gate.who
        templates = _templates()
        chosen = next((t for t in templates if t.name == template), None)
        return page(
            request,
            "clerk.html",
            gate,
            status_code=status_code,
            values=values or {},
            seals=_visible_seals(workflow.services, who, active_only=True),
            matters=_matters_for(workflow.services, who),
            stages=STAGES,
            kinds=KINDS,
            templates=templates,
            chosen=chosen,
            chosen_form=_template_form(chosen) if chosen is not None else None,
            nonce=secrets.token_hex(12),
            requests=workflow.list(who, limit=50),
            **flash,
        )

    @router.post("/clerk/submit")
    async def submit(
        request: Request, services: ServicesDep, workflow: Workflow, gate: ClerkGate
    ) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        who = gate.who
        form = await request.form()

        def text(name: str) -> str:
            value = form.get(name)
            return value.strip()[:MAX_FIELD] if isinstance(value, str) else ""

        upload = form.get("file")
        pdf: bytes | None = None
        if isinstance(upload, UploadFile) and upload.filename:
            pdf = await upload.read(services.settings.max_pdf_bytes + 1)
            if len(pdf) > services.settings.max_pdf_bytes:
                return _back("/ui/clerk", "PDF 超过大小上限", error=True)
        template = text("template") or None
        data: JsonObject | None = None
        if pdf is None and template is not None:
            list_fields = _list_fields(template)
            data = {}
            for key, value in form.multi_items():
                if not key.startswith("f_") or not isinstance(value, str) or not value.strip():
                    continue
                name = key[2:64]
                if name in list_fields:
                    lines = [line.strip()[:MAX_FIELD] for line in value.splitlines() if line.strip()]
                    data[name] = lines[:50]
                else:
                    data[name] = value.strip()[:MAX_FIELD]
        elif pdf is not None:
            template = None
        nonce = text("nonce")
        if not _NONCE.fullmatch(nonce):
            nonce = secrets.token_hex(12)
        sub = Submission(
            seal_id=text("seal_id"),
            matter_code=text("matter_code"),
            stage=text("stage"),
            document_kind=text("document_kind"),
            reason=text("reason") or "窗口办理",
            idempotency_key="console-" + nonce,
            applicant=text("applicant") or None,
            template=template,
            template_data=data,
            resubmits=text("resubmits")[:64] or None,
        )

        def run() -> tuple[SigningRequestView, bool]:
            return workflow.submit(who, sub, pdf)

        def again(message: str, status_code: int) -> Response:
            # the form again with what was typed (a PDF must be chosen again: browsers never refill a file)
            typed = {k: v.strip()[:MAX_FIELD] for k, v in form.multi_items() if isinstance(v, str)}
            typed.pop("csrf_token", None)
            typed.pop("nonce", None)  # a fresh one: an edited request is a new request
            return _clerk_page(
                request,
                workflow,
                gate,
                template,
                values=typed,
                status_code=status_code,
                message=message,
                is_error=True,
            )

        try:
            view, _created = await anyio.to_thread.run_sync(run)
        except PolicyDenied as exc:
            request_id = exc.details.get("request_id")
            if request_id and _can_see(workflow, who, str(request_id)):
                return _back(f"/ui/requests/{request_id}", "策略审查未通过，见下方原因", error=True)
            reasons = "；".join(
                str(r.get("message_zh") or r.get("code", "")) for r in exc.details.get("reasons", [])
            )
            message = f"{exc.message_zh}：{reasons}" if reasons else exc.message_zh
            return again(message, 403)
        except SealServiceError as exc:
            from api._errors import status_for

            status = status_for(exc)
            return again(f"{exc.message_zh}（{exc.code}）", status if status != 500 else 409)
        return _back(
            f"/ui/requests/{view.request_id}", f"已提交：{STATUS_NAMES.get(view.status, view.status)}"
        )

    @router.get("/requests/{request_id}", response_class=HTMLResponse)
    def request_page(
        request_id: str,
        request: Request,
        workflow: Workflow,
        gate: ReaderGate,
        msg: str | None = None,
        error: str | None = None,
    ) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        try:
            view = workflow.get(gate.who, request_id[:64])
            history = workflow.decision_history(gate.who, view.request_id) if view.document_number else ()
        except SealServiceError as exc:
            return refuse(request, 404 if exc.code.endswith("NOT_FOUND") else 403, exc.message_zh, exc.code)
        from api.console._approval import approval_context

        return page(
            request,
            "request.html",
            gate,
            r=view,
            **approval_context(workflow, gate.who, view),
            # what the caller may do is the workflow's answer (the same check the API's change runs)
            actions=workflow.lifecycle_actions(gate.who, view),
            can_attest=gate.who.may(P.ATTEST) and view.status == Status.SEALED,
            action_names=ACTION_NAMES,
            event_names=EVENT_NAMES,
            history=history,
            resubmitted_as=(
                workflow.resubmission_of(gate.who, view.request_id)
                if view.status in (Status.REJECTED, Status.DENIED)
                else None
            ),
            can_resubmit=gate.who.may(P.SIGNING_SUBMIT) and view.status in (Status.REJECTED, Status.DENIED),
            **_flash(msg, error),
        )

    # -- decision lifecycle: 变更、撤回、撤销、注销 (principal of the township, the entrusting department) ---
    async def _lifecycle_form(request: Request) -> tuple[str, str]:
        form = await request.form()
        status, reason = form.get("status"), form.get("reason")
        return (
            status.strip()[:16] if isinstance(status, str) else "",
            reason.strip()[:1000] if isinstance(reason, str) else "",
        )

    def _lifecycle_refusal(request: Request, request_id: str, exc: SealServiceError) -> Response:
        """Scope and role refusals are a 403 page with the code; the rest go back to the request's page."""
        if exc.family in {"permission_denied", "not_found"}:
            status = 404 if exc.family == "not_found" else 403
            return refuse(request, status, exc.message_zh, exc.code)
        return _back(f"/ui/requests/{request_id}", f"{exc.message_zh}（{exc.code}）", error=True)

    @router.post("/requests/{request_id}/status/confirm", response_class=HTMLResponse)
    async def lifecycle_confirm(
        request_id: str, request: Request, workflow: Workflow, gate: LifecycleGate
    ) -> Response:
        """Step 1: every check of the change, nothing written; the page asks to confirm."""
        if gate.refusal is not None:
            return gate.refusal
        request_id = request_id[:64]
        status, reason = await _lifecycle_form(request)

        def check() -> SigningRequestView:
            return workflow.check_decision_status(gate.who, request_id, status, reason)

        try:
            view = await anyio.to_thread.run_sync(check)
        except SealServiceError as exc:
            return _lifecycle_refusal(request, request_id, exc)
        return page(
            request,
            "decision_confirm.html",
            gate,
            r=view,
            status=status,
            action=ACTION_NAMES[status],
            reason=reason,
        )

    @router.post("/requests/{request_id}/status")
    async def lifecycle_change(
        request_id: str, request: Request, workflow: Workflow, gate: LifecycleGate
    ) -> Response:
        """Step 2: the change itself (a ledger entry), then back to the request with the result."""
        if gate.refusal is not None:
            return gate.refusal
        request_id = request_id[:64]
        status, reason = await _lifecycle_form(request)

        def change() -> tuple[SigningRequestView, DecisionEvent]:
            return workflow.record_decision_status(gate.who, request_id, status, reason)

        try:
            view, event = await anyio.to_thread.run_sync(change)
        except SealServiceError as exc:
            return _lifecycle_refusal(request, request_id, exc)
        from api.console._render import DECISION_NAMES

        done = f"已{ACTION_NAMES[status]}：文书效力为“{DECISION_NAMES.get(view.decision_status)}”"
        return _back(f"/ui/requests/{request_id}", f"{done}，台账序号 {event.ledger_index}")

    @router.get("/requests/{request_id}/sealed.pdf")
    def download(request_id: str, request: Request, workflow: Workflow, gate: ReaderGate) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        try:
            view = workflow.get(gate.who, request_id[:64])
            pdf = workflow.document(gate.who, request_id[:64])
        except SealServiceError as exc:
            return refuse(request, 409 if exc.code == "NOT_SEALED" else 403, exc.message_zh, exc.code)
        name = quote(f"{view.document_number or view.request_id}.pdf")
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
        )

    @router.get("/requests/{request_id}/receipt.txt")
    def receipt(request_id: str, request: Request, workflow: Workflow, gate: ReaderGate) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        try:
            text = workflow.receipt(gate.who, request_id[:64])
        except SealServiceError as exc:
            return refuse(request, 409 if exc.code == "NOT_SEALED" else 403, exc.message_zh, exc.code)
        return Response(
            text,
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="receipt-{request_id[:64]}.txt"'},
        )

    # -- principal: approval queue --------------------------------------------------------------------
    @router.get("/principal", response_class=HTMLResponse)
    def principal_page(
        request: Request,
        workflow: Workflow,
        gate: ApproverGate,
        msg: str | None = None,
        error: str | None = None,
    ) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        return page(
            request,
            "principal.html",
            gate,
            pending=workflow.list(gate.who, status=Status.PENDING_APPROVAL),
            recent=[r for r in workflow.list(gate.who, limit=30) if r.status != Status.PENDING_APPROVAL],
            **_flash(msg, error),
        )

    async def _decide(
        request: Request, workflow: SigningWorkflow, gate: Gate, request_id: str, approve: bool
    ) -> Response:
        form = await request.form()
        comment = form.get("comment")
        note = comment.strip()[:1000] if isinstance(comment, str) else ""

        def run() -> SigningRequestView:
            if approve:
                return workflow.approve(gate.who, request_id[:64], note)
            return workflow.reject(gate.who, request_id[:64], note)

        try:
            view = await anyio.to_thread.run_sync(run)
        except SealServiceError as exc:
            # from the request's own page (the approval with the document in view): back there
            back = f"/ui/requests/{request_id[:64]}" if form.get("from") == "request" else "/ui/principal"
            return _back(back, f"{exc.message_zh}（{exc.code}）", error=True)
        if not approve:
            return _back("/ui/principal", "已驳回")
        if view.status == Status.SEALED:
            return _back("/ui/principal", f"已批准并用印，文号 {view.document_number or '—'}")
        return _back("/ui/principal", f"已批准：{STATUS_NAMES.get(view.status, view.status)}")

    @router.post("/requests/{request_id}/approve")
    async def approve(request_id: str, request: Request, workflow: Workflow, gate: ApproverGate) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        return await _decide(request, workflow, gate, request_id, True)

    @router.post("/requests/{request_id}/reject")
    async def reject(request_id: str, request: Request, workflow: Workflow, gate: ApproverGate) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        return await _decide(request, workflow, gate, request_id, False)

    # -- department: agreements, monthly report ------------------------------------------------------
    @router.get("/department", response_class=HTMLResponse)
    def department(
        request: Request, services: ServicesDep, workflow: Workflow, gate: ReportsGate
    ) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        who = gate.who
        store = services.need_policy_store()
        agreements: list[Agreement] = []
        for org in store.organisations(kind=OrgKind.TOWNSHIP):
            for a in store.agreements(org.code):
                if who.in_scope(township_code=a.township_code, department_code=a.department_code):
                    agreements.append(a)
        from policies import CHINA_TZ

        month = datetime.now(CHINA_TZ).strftime("%Y-%m")  # the county's month
        dept = who.org_code if who.role is Role.DEPARTMENT_OFFICER else None
        town = who.org_code if who.role is Role.TOWNSHIP_PRINCIPAL else None
        from api.console._approval import agreement_state

        report_query = f"month={month}"
        if dept:
            report_query += f"&department_code={quote(dept)}"
        if town:
            report_query += f"&township_code={quote(town)}"
        return page(
            request,
            "department.html",
            gate,
            agreements=agreements,
            agreement_state=agreement_state,
            stage_order=STAGES,
            month=month,
            report_query=report_query,
            requests=workflow.list(who, limit=30) if who.may(P.SIGNING_READ) else [],
        )

    # -- monthly report: month picker, tables, charts; the PDF and CSV from the API ---------------------
    @router.get("/reports", response_class=HTMLResponse)
    def reports(
        request: Request,
        services: ServicesDep,
        gate: ReportsGate,
        month: str | None = None,
        township: str | None = None,
    ) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        from api._charts import to_svg
        from api._reports import build_monthly_report, previous_months
        from policies import CHINA_TZ

        who = gate.who
        month = (month or "").strip()[:16] or datetime.now(CHINA_TZ).strftime("%Y-%m")
        if not re.fullmatch(MONTH_RE, month):
            return refuse(request, 400, "月份无效（应为YYYY-MM）", "MONTH_INVALID")
        towns: list[tuple[str, str]] = []
        dept = who.org_code if who.role is Role.DEPARTMENT_OFFICER else None
        town = who.org_code if who.role is Role.TOWNSHIP_PRINCIPAL else None
        if who.county_wide:
            store = services.need_policy_store()
            towns = sorted(
                ((o.code, o.name) for o in store.organisations(kind=OrgKind.TOWNSHIP)), key=lambda t: t[0]
            )
            town = (township or "").strip()[:64] or None
            if town is not None and town not in dict(towns):
                return refuse(request, 400, "没有这个乡镇", "TOWNSHIP_UNKNOWN")
        report = build_monthly_report(services, month, township_code=town, department_code=dept)
        before, after = previous_months(month, 2)[0], _next_month(month)
        town_query = f"&township={quote(town)}" if who.county_wide and town else ""
        api_query = f"month={month}"
        if dept:
            api_query += f"&department_code={quote(dept)}"
        if town:
            api_query += f"&township_code={quote(town)}"
        return page(
            request,
            "reports.html",
            gate,
            report=report,
            charts=[to_svg(c) for c in report.charts],
            townships=towns,
            township=town or "",
            prev_query=f"month={before}{town_query}",
            next_query=f"month={after}{town_query}",
            api_query=api_query,
        )

    # -- auditor: the ledger view is api/console/_ledger_page.py -----------------------------------------

    # -- seals (bureau: every seal; others: their organisation's) -----------------------------------
    @router.get("/seals", response_class=HTMLResponse)
    def seals(request: Request, services: ServicesDep, gate: SealsGate) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        visible = _visible_seals(services, gate.who, active_only=False)
        ids = {s.seal_id for s in visible}
        registry = services.need_seal_registry()
        events = [e for e in registry.lifecycle_events() if e.seal_id in ids][-30:]
        names = {s.seal_id: s.name for s in visible}
        return page(request, "seals.html", gate, seals=visible, events=events[::-1], seal_names=names)

    @router.get("/account", response_class=HTMLResponse)
    def account(request: Request, gate: AnyUser) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        return page(request, "account.html", gate)

    # -- one's own password (also what a password set by an administrator asks for first) -------------
    @router.get("/account/password", response_class=HTMLResponse)
    def password_form(request: Request, gate: AnyUser, error: str | None = None) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        message = PASSWORD_MESSAGES.get(error, PASSWORD_MESSAGES["PASSWORD_CHANGE_FAILED"]) if error else ""
        return page(request, "password.html", gate, message=message, is_error=bool(message))

    @router.post("/account/password")
    async def change_password(request: Request, services: ServicesDep, gate: AnyUser) -> Response:
        """As ``POST /v1/me/password``: the current password, then the new one (twice here). Every session
        of the account ends with the change, this one too: the person logs in again."""
        if gate.refusal is not None:
            return gate.refusal
        form = await request.form()

        def text(name: str) -> str:
            value = form.get(name)
            return value[:1024] if isinstance(value, str) else ""

        current, new, again = text("current_password"), text("new_password"), text("new_password_again")
        if not current or not new:
            return _back(PASSWORD_PATH, "PASSWORD_REQUIRED", error=True)
        if new != again:
            return _back(PASSWORD_PATH, "PASSWORD_MISMATCH", error=True)
        if new == current:
            return _back(PASSWORD_PATH, "PASSWORD_UNCHANGED", error=True)
        who = gate.who

        def run() -> None:
            from api._accounts import AccountChange, set_password
            from api.routes._auth import _record

            def attempt() -> None:
                with transaction(services.sessions) as s:
                    check_password(s, who.account.username, current)
                    set_password(s, who.account.account_id, new)
                    _record(s, services.need_ledger(), who, AccountChange.PASSWORD_CHANGED)

            # The current password is guessed no faster here than at the login.
            guarded(services.sessions, who.account.username, client_address(request), attempt)

        try:
            await anyio.to_thread.run_sync(run)
        except SealServiceError as exc:
            return _back(PASSWORD_PATH, exc.code, error=True)
        response = RedirectResponse(LOGIN_PATH + "?done=password", status_code=303)
        clear_session_cookie(response)
        return response

    _ = (org_names, ROLE_NAMES)  # re-exported for templates via page()
    return router
