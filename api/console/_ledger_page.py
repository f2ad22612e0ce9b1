"""The auditor's ledger view (台账审计) and the human form of a ledger receipt (issue 23).

``GET /ui/auditor`` shows the audit result and the entries, newest first, filtered by township, seal, month
(Beijing) and kind, 50 a page: kinds and fields in Chinese, people by display name (account in a tooltip),
townships, seals and matters by name, links to the document's request, its public verification and the
entry's proof. ``GET /ui/ledger/{index}`` is that proof for people: the entry, the checkpoint it is proven
against and the inclusion path, checked by :func:`ledger.verify_receipt` before it is shown; the machine
file (C2SP tlog-proof) is ``GET /ui/ledger/{index}/receipt.txt``.

A township filter means the entries on that township's seals (its approval seals and the No. 2 seals it
holds); entries about no seal (agreements, powers, accounts) show under no township.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from api._authz import Permission, ServicesDep
from api._json import JsonObject, JsonValue
from api.console._gate import Gate, console_gate
from api.console._render import (
    DECISION_NAMES,
    kind_zh,
    matter_titles,
    org_names,
    page,
    people,
    refuse,
    stage_zh,
)
from core.errors import SealServiceError
from core.settings import Settings

if TYPE_CHECKING:
    from api._services import Services
    from ledger import LedgerEntry, Receipt

LedgerGate = Annotated[Gate, Depends(console_gate(Permission.LEDGER_READ, refuse=refuse))]
ReaderGate = Annotated[Gate, Depends(console_gate(Permission.SIGNING_READ, refuse=refuse))]
PAGE_SIZE = 50
MONTH_RE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")

ENTRY_KINDS = {
    "SEAL_SIGNED": "用印",
    "SIGNING_REFUSED": "拒绝用印",
    "DOCUMENT_NUMBER_VOIDED": "文号作废",
    "SEAL_LIFECYCLE": "印章状态",
    "AGREEMENT_CHANGED": "委托协议",
    "POWERS_CHANGED": "乡镇权限",
    "DECISION_STATUS_CHANGED": "文书效力变更",
    "ACCOUNT_CHANGED": "账号变更",
    "TOWNSHIP_CHANGED": "乡镇更名撤并",
}
#: Body fields by their Chinese label, in the order shown. Fields not listed are shown under their own name.
FIELD_LABELS = {
    "township_code": "乡镇",
    "township": "乡镇",
    "seal_id": "印章",
    "matter": "事项",
    "stage": "环节",
    "document_kind": "文书种类",
    "document_number": "文号",
    "operator": "经办人",
    "approver": "审批人",
    "actor": "操作人",
    "requested_by": "申请人",
    "reason": "事由",
    "reason_codes": "拒绝原因",
    "status": "效力",
    "successor": "替代文书",
    "event": "事件",
    "change": "变更内容",
    "agreement_id": "委托协议",
    "operator_org": "经办单位",
    "count": "数量",
    "level": "签章级别",
    "cert_serial": "证书序列号",
    "document_sha256": "文书哈希",
    "via": "途径",
    "note": "备注",
    "comment": "意见",
    "idempotency_key": "幂等键",
    "request_id": "申请编号",
    "account_id": "账号",
    "username": "用户名",
    "role": "角色",
    "org_code": "单位",
    "linked_to_existing_person": "关联已有人员",
    "agreement_version": "协议版本",
    "version": "版本",
    "revision": "版本",
    "terms_sha256": "条款哈希",
    "basis": "依据",
}
PEOPLE_FIELDS = frozenset({"operator", "approver", "actor", "requested_by", "account_id"})
ORG_FIELDS = frozenset({"township_code", "township", "operator_org", "department_code", "org_code"})
#: What changed, for the ``change`` field of agreement, powers and account entries.
CHANGES = {
    "CREATED": "新建账号",
    "ROLE_CHANGED": "变更角色",
    "ORGANISATION_CHANGED": "变更单位",
    "PERSON_LINKED": "关联人员",
    "PASSWORD_RESET": "管理员重置密码",
    "PASSWORD_CHANGED": "本人修改密码",
    "DISABLED": "停用账号",
    "ENABLED": "启用账号",
    "TOKEN_ISSUED": "签发令牌",
    "TOKEN_REVOKED": "吊销令牌",
    "OIDC_BOUND": "绑定统一身份认证",
    "create_agreement": "签订委托协议",
    "grant_powers": "授予权限",
    "rename_township": "乡镇更名",
    "merge_township": "乡镇合并",
    "retire_township": "乡镇撤销",
}
#: Shown as a link or a column of their own, not among the other fields.
OWN_COLUMNS = frozenset(
    {"seal_id", "matter", "document_number", "township_code", "township", "request_id", "idempotency_key"}
)
#: Personal data of applicants: the ledger holds it for the service's own records; this view never shows it.
HIDDEN = frozenset({"applicant_name", "applicant_id_number", "id_number", "phone", "applicant"})
SEAL_EVENTS = {
    "ISSUED": "制发",
    "ACTIVATED": "启用",
    "SUSPENDED": "暂停",
    "RESUMED": "恢复",
    "CHANGED": "变更",
    "CANCELLED": "注销",
    "RETIRED": "停用",
    "REKEYED": "更换密钥",
}


def _short(text: str) -> str:
    return text[:12] + "…" if re.fullmatch(r"[0-9a-fA-F]{24,}|[0-9]{24,}", text) else text[:120]


class _Reader:
    """What the rows need, looked up once per page: names of people, organisations, seals, matters."""

    def __init__(self, request: Request, services: Services) -> None:
        self.people = people(request)
        self.orgs = org_names(request)
        self.matters = matter_titles(request)
        registry = services.seal_registry
        self.seals = {s.seal_id: s for s in registry.list()} if registry is not None else {}

    def person(self, who: str) -> tuple[str, str]:
        if who in ("", "-"):
            return ("—", "")
        return self.people.get(who, (who, who))

    def seal_name(self, seal_id: str) -> str:
        seal = self.seals.get(seal_id)
        return str(seal.name) if seal is not None else seal_id

    def value(self, key: str, value: JsonValue) -> str:
        if key in ORG_FIELDS:
            return self.orgs.get(str(value), str(value))
        if key == "stage":
            return "书面认证" if value == "ATTESTATION" else stage_zh(str(value))
        if key == "document_kind":
            return kind_zh(str(value))
        if key == "status":
            return DECISION_NAMES.get(str(value), str(value))
        if key == "event":
            return SEAL_EVENTS.get(str(value), str(value))
        if key == "change":
            return CHANGES.get(str(value), str(value))
        if key == "role":
            from api.console._render import ROLE_NAMES
            from policies import Role

            try:
                return ROLE_NAMES[Role(str(value))]
            except (ValueError, KeyError):
                return str(value)
        if isinstance(value, bool):
            return "是" if value else "否"
        if isinstance(value, list):
            return "、".join(str(v) for v in value)
        return _short(str(value))

    def row(self, entry: LedgerEntry, body: JsonObject, request_id: str | None) -> JsonObject:
        kind = getattr(entry.kind, "value", str(entry.kind))
        seal_id = str(body.get("seal_id") or "")
        seal = self.seals.get(seal_id)
        town = str(body.get("township_code") or body.get("township") or (seal.township_code if seal else ""))
        matter = str(body.get("matter") or "")
        fields: list[tuple[str, str, str]] = []  # label, text, tooltip
        for key, value in body.items():
            if key in OWN_COLUMNS or key in HIDDEN or value in (None, "", "-"):
                continue
            if key in PEOPLE_FIELDS:
                name, account = self.person(str(value))
                fields.append((FIELD_LABELS[key], name, account))
            else:
                fields.append((FIELD_LABELS.get(key, key), self.value(key, value), ""))
        order = list(FIELD_LABELS.values())
        fields.sort(key=lambda f: order.index(f[0]) if f[0] in order else len(order))
        number = str(body.get("document_number") or "")
        digest = str(body.get("document_sha256") or "")
        return {
            "index": entry.index,
            "at": entry.at,
            "kind": ENTRY_KINDS.get(kind, kind),
            "township": self.orgs.get(town, town) if town else "",
            "seal": self.seal_name(seal_id) if seal_id and seal_id != "-" else "",
            "matter": f"{matter} {self.matters.get(matter, '')}".strip() if matter not in ("", "-") else "",
            "number": number if number not in ("", "-") else "",
            "verify_link": "/verify?" + urlencode({"no": number, "h": digest}) if number and digest else "",
            "request_id": request_id or str(body.get("request_id") or ""),
            "fields": fields,
        }


def _request_ids(services: Services, indices: list[int]) -> dict[int, str]:
    """Ledger index → signing request, for the entries that sealed a request (the entry names none)."""
    if not indices:
        return {}
    from sqlalchemy import select

    from api._storage import SigningRequestRow
    from core.db import reading

    with reading(services.sessions) as s:
        rows = s.execute(
            select(SigningRequestRow.ledger_index, SigningRequestRow.request_id).where(
                SigningRequestRow.ledger_index.in_(indices)
            )
        ).all()
    return {int(i): str(r) for i, r in rows if i is not None}


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/ui", tags=["console"], include_in_schema=False)

    @router.get("/auditor", response_class=HTMLResponse)
    def auditor(
        request: Request,
        services: ServicesDep,
        gate: LedgerGate,
        township: str | None = None,
        seal: str | None = None,
        month: str | None = None,
        kind: str | None = None,
        before: int | None = None,
    ) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        from api._views import month_bounds
        from ledger import EntryKind
        from policies import CHINA_TZ, OrgKind

        ledger = services.need_ledger()
        reader = _Reader(request, services)
        township, seal = (township or "").strip()[:64], (seal or "").strip()[:64]
        month, kind = (month or "").strip()[:16], (kind or "").strip()[:40]
        store = services.need_policy_store()
        towns = sorted(
            ((o.code, o.name) for o in store.organisations(kind=OrgKind.TOWNSHIP)), key=lambda t: t[0]
        )
        if township and township not in dict(towns):
            return refuse(request, 400, "没有这个乡镇", "TOWNSHIP_UNKNOWN")
        if seal and seal not in reader.seals:
            return refuse(request, 400, "没有这枚印章", "SEAL_UNKNOWN")
        if kind and kind not in ENTRY_KINDS:
            return refuse(request, 400, "没有这种台账记录", "LEDGER_KIND_UNKNOWN")
        if month and not MONTH_RE.fullmatch(month):
            return refuse(request, 400, "月份无效（应为YYYY-MM）", "MONTH_INVALID")
        seal_ids: list[str] | None = None
        if township:
            seal_ids = [s.seal_id for s in reader.seals.values() if s.township_code == township]
        if seal:
            seal_ids = [seal] if seal_ids is None or seal in seal_ids else []
        start, end = month_bounds(month, CHINA_TZ) if month else (None, None)
        entries = ledger.entries(
            kinds=[EntryKind(kind)] if kind else None,
            seal_ids=seal_ids,
            start=start,
            end=end,
            before=before if before is not None and before >= 0 else None,
            limit=PAGE_SIZE,
        )
        bodies = ledger.opened(entries)
        sealed = _request_ids(services, [e.index for e in entries if e.kind is EntryKind.SEAL_SIGNED])
        rows = [reader.row(e, b, sealed.get(e.index)) for e, b in zip(entries, bodies, strict=True)]
        filters = {"township": township, "seal": seal, "month": month, "kind": kind}
        more = ""
        if len(entries) == PAGE_SIZE:
            more = urlencode({**{k: v for k, v in filters.items() if v}, "before": entries[-1].index})
        return page(
            request,
            "auditor.html",
            gate,
            audit=ledger.audit(),
            size=int(ledger.size()),
            rows=rows,
            filters=filters,
            townships=towns,
            seals=sorted(reader.seals.values(), key=lambda s: (s.township_code, s.number or 0, s.name)),
            kinds=ENTRY_KINDS,
            more=more,
            filtered=any(filters.values()) or before is not None,
        )

    def _receipt(services: Services, index: int) -> Receipt:
        return services.need_ledger().receipt(index)

    @router.get("/ledger/{index}", response_class=HTMLResponse)
    async def proof_page(index: int, request: Request, services: ServicesDep, gate: LedgerGate) -> Response:
        """The receipt of one entry for people: what it records and how it is proven."""
        if gate.refusal is not None:
            return gate.refusal
        return await _proof(request, services, gate, index, f"/ui/ledger/{index}/receipt.txt")

    @router.get("/requests/{request_id}/receipt", response_class=HTMLResponse)
    async def request_proof_page(
        request_id: str, request: Request, services: ServicesDep, gate: ReaderGate
    ) -> Response:
        """The same page for the people of the request's organisation (who may not read the whole ledger)."""
        if gate.refusal is not None:
            return gate.refusal
        from api._signing import SigningWorkflow

        try:
            view = SigningWorkflow(services).get(gate.who, request_id[:64])
        except SealServiceError as exc:
            return refuse(request, 404 if exc.family == "not_found" else 403, exc.message_zh, exc.code)
        if view.ledger_index is None:
            return refuse(request, 409, "尚无台账记录", "NOT_SEALED")
        return await _proof(
            request, services, gate, view.ledger_index, f"/ui/requests/{view.request_id}/receipt.txt"
        )

    async def _proof(request: Request, services: Services, gate: Gate, index: int, machine: str) -> Response:
        try:
            receipt = await anyio.to_thread.run_sync(_receipt, services, index)
        except SealServiceError as exc:
            return refuse(request, 404 if exc.family == "not_found" else 409, exc.message_zh, exc.code)
        ledger = services.need_ledger()
        entry = ledger.get(index)
        body = ledger.opened([entry])[0]
        from ledger import EntryKind

        sealed = _request_ids(services, [index]) if entry.kind is EntryKind.SEAL_SIGNED else {}
        row = _Reader(request, services).row(entry, body, sealed.get(index))
        cp = receipt.checkpoint
        return page(
            request,
            "ledger_proof.html",
            gate,
            r=row,
            entry_hash=receipt.leaf_hash.hex(),
            proof=[h.hex() for h in receipt.proof],
            checkpoint_size=cp.size,
            root=cp.root_hex,
            origin=cp.origin,
            signers=[line[2:].split(" ", 1)[0] for line in cp.note.splitlines() if line.startswith("— ")],
            machine=machine,
        )

    @router.get("/ledger/{index}/receipt.txt")
    async def proof_file(index: int, request: Request, services: ServicesDep, gate: LedgerGate) -> Response:
        """The machine file: a C2SP tlog-proof that ``yizhang ledger verify-proof`` checks offline."""
        if gate.refusal is not None:
            return gate.refusal
        try:
            receipt = await anyio.to_thread.run_sync(_receipt, services, index)
        except SealServiceError as exc:
            return refuse(request, 404 if exc.family == "not_found" else 409, exc.message_zh, exc.code)
        return Response(
            receipt.to_text(),
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="ledger-{index}-receipt.txt"'},
        )

    return router
