"""Rendering: the Jinja2 environment (autoescaped), the shared page context, the refusal page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from api._authz import Permission, Principal
from api._signing import Status
from policies import Role

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
CSS = (HERE / "templates" / "console.css").read_text(encoding="utf-8")

ROLE_NAMES = {
    Role.COUNTY_ADMIN: "县行政审批局管理员",
    Role.DEPARTMENT_OFFICER: "县直部门",
    Role.TOWNSHIP_CLERK: "窗口人员",
    Role.TOWNSHIP_PRINCIPAL: "主要负责人",
    Role.SEAL_CUSTODIAN: "印章保管人",
    Role.AUDITOR: "审计监督",
}
STATUS_NAMES = {
    Status.PENDING_APPROVAL: "待审批",
    Status.APPROVED: "已批准待用印",
    Status.SEALED: "已用印",
    Status.DENIED: "策略拒绝",
    Status.REJECTED: "已驳回",
    Status.FAILED: "用印失败",
}
DECISION_NAMES = {
    "VALID": "有效",
    "CHANGED": "已变更",
    "WITHDRAWN": "已撤回",
    "REVOKED": "已撤销",
    "CANCELLED": "已注销",
}
SEAL_STATUS_NAMES = {
    "ISSUED": "已制发待启用",
    "ACTIVE": "在用",
    "SUSPENDED": "暂停使用",
    "CANCELLED": "已注销",
    "RETIRED": "已停用",
}
SEAL_EVENT_NAMES = {
    "ISSUED": "制发",
    "ACTIVATED": "启用",
    "SUSPENDED": "暂停",
    "RESUMED": "恢复",
    "CHANGED": "变更",
    "CANCELLED": "注销",
    "RETIRED": "停用",
}
SEAL_KIND_NAMES = {"TOWNSHIP_APPROVAL": "乡镇行政审批专用章", "DEPARTMENT_NO2": "县直部门2号章"}
#: The navigation, each entry shown only to a role holding its permission.
NAV = (
    ("/ui/clerk", "用章申请", Permission.SIGNING_SUBMIT),
    ("/ui/principal", "审批队列", Permission.SIGNING_APPROVE),
    ("/ui/department", "委托协议", Permission.REPORTS_READ),
    ("/ui/reports", "月报", Permission.REPORTS_READ),
    ("/ui/attest", "书面认证", Permission.ATTEST),
    ("/ui/auditor", "台账审计", Permission.LEDGER_READ),
    ("/ui/seals", "印章", Permission.SEALS_READ),
    ("/verify", "文书验证", None),
)


BEIJING = timezone(timedelta(hours=8))


def beijing(at: datetime | None) -> str:
    return at.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M:%S（北京时间）") if at else "—"


def short_time(at: datetime | None) -> str:
    return at.astimezone(BEIJING).strftime("%m-%d %H:%M") if at else ""


def stage_zh(name: str | None) -> str:
    from policies import Stage

    try:
        return Stage[name].value if name else "—"
    except KeyError:
        return name or "—"


def kind_zh(name: str | None) -> str:
    from policies import DocumentKind

    try:
        return DocumentKind[name].value if name else "—"
    except KeyError:
        return name or "—"


def org_names(request: Request) -> dict[str, str]:
    """Organisation code → name, from the policy store (cached per request)."""
    cached = getattr(request.state, "org_names", None)
    if cached is not None:
        return dict(cached)
    names: dict[str, str] = {}
    store = getattr(request.app.state.services, "policy_store", None)
    if store is not None:
        try:
            names = {o.code: o.name for o in store.organisations()}
        except Exception:  # noqa: BLE001 - names are decoration; codes still show
            names = {}
    request.state.org_names = names
    return names


def matter_titles(request: Request) -> dict[str, str]:
    """Matter code → its full name with the sub-item (``公共场所卫生许可（变更）``), every county's catalog,
    from the policy store (cached per request)."""
    cached = getattr(request.state, "matter_titles", None)
    if cached is not None:
        return dict(cached)
    titles: dict[str, str] = {}
    store = getattr(request.app.state.services, "policy_store", None)
    if store is not None:
        try:
            orgs = store.organisations()
            counties = {o.county_code for o in orgs if o.county_code} | {
                o.code for o in orgs if getattr(o.kind, "value", o.kind) == "COUNTY"
            }
            for county in counties:
                titles.update({m.code: m.title for m in store.matters(county)})
        except Exception:  # noqa: BLE001 - names are decoration; codes still show
            titles = {}
    request.state.matter_titles = titles
    return titles


def _matter_label(request: Request, code: str | None) -> str:
    title = matter_titles(request).get(code or "")
    return f"{code} {title}" if title else (code or "—")


def people(request: Request) -> dict[str, tuple[str, str]]:
    """Account id (and username) → (display name, username), cached per request: pages name people, never
    by UUID; the username goes in a tooltip."""
    cached = getattr(request.state, "people", None)
    if cached is not None:
        return dict(cached)
    found: dict[str, tuple[str, str]] = {}
    services = getattr(request.app.state, "services", None)
    try:
        from sqlalchemy import select

        from api._storage import AccountRow
        from core.db import reading

        with reading(services.sessions) as s:  # type: ignore[union-attr]
            for account_id, username, display in s.execute(
                select(AccountRow.account_id, AccountRow.username, AccountRow.display_name)
            ):
                found[account_id] = found[username] = (display or username, username)
    except Exception:  # noqa: BLE001 - names are decoration
        found = {}
    request.state.people = found
    return found


def page(
    request: Request, template: str, gate: object, *, status_code: int = 200, **context: object
) -> Response:
    principal: Principal | None = getattr(gate, "principal", None)
    names = org_names(request)
    nav = [
        (href, label)
        for href, label, perm in NAV
        if perm is None or (principal is not None and principal.may(perm))
    ]
    base = {
        "css": CSS,
        "account": principal.account if principal else None,
        "principal": principal,
        "csrf_token": getattr(gate, "csrf_token", ""),
        "role_names": ROLE_NAMES,
        "status_names": STATUS_NAMES,
        "decision_names": DECISION_NAMES,
        "seal_status_names": SEAL_STATUS_NAMES,
        "seal_kind_names": SEAL_KIND_NAMES,
        "event_names": SEAL_EVENT_NAMES,
        "org": lambda code: names.get(code or "", code or ""),
        "matter": lambda code: _matter_label(request, code),
        "person": lambda who: people(request).get(who or "", (who or "—", who or ""))[0],
        "person_account": lambda who: people(request).get(who or "", ("", who or ""))[1],
        "nav": nav,
        "beijing": beijing,
        "short_time": short_time,
        "stage_zh": stage_zh,
        "kind_zh": kind_zh,
        "path": request.url.path,
        "message": "",
        "is_error": False,
    }
    base.update(context)
    response = TEMPLATES.TemplateResponse(request, template, base, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def refuse(request: Request, status_code: int, message_zh: str, code: str = "") -> Response:
    """An HTML refusal (403/404/409) for a browser: the reason, its stable code (also in the
    ``X-Error-Code`` header, for scripts), and a way back."""
    try:
        response = page(
            request,
            "refused.html",
            None,
            status_code=status_code,
            message=message_zh,
            is_error=True,
            error_code=code,
        )
    except Exception:  # noqa: BLE001 - never let the refusal itself become a 500
        response = HTMLResponse(f"<p>{status_code} {code}</p>", status_code=status_code)
    if code:
        response.headers["X-Error-Code"] = code
    return response
