"""What the request page shows about the document and its seal, so the principal approves with full sight.

For a request not yet sealed: the document exactly as the signer will stamp it (``signer.preview_seal``:
a template rendered as ``Sealer.seal`` renders it, the number shown as to be drawn; an upload as uploaded),
its pages as pictures (PDFium, 100 dpi) with the stamp's box and the QR code's box outlined; the filled
template fields; the seal and, for a No. 2 seal, its agreement; earlier requests on the same matter.
Everything here reads; nothing is drawn, numbered or written.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from api._authz import Permission, Principal
from api._json import JsonObject
from api._signing import SigningRequestView, SigningWorkflow, Status
from api._storage import DocumentRow, SigningRequestRow
from core.db import transaction
from core.errors import SealServiceError

if TYPE_CHECKING:
    from api._services import Services
    from keystore import Seal
    from policies import Agreement
    from signer import SealPreview


log = logging.getLogger("yizhang.console")
PREVIEWED = {Status.PENDING_APPROVAL, Status.APPROVED}
EARLIER_LIMIT = 8


def agreement_state(agreement: Agreement, now: datetime | None = None) -> str:
    """The agreement as it stands today: 有效, 未生效, 已过期, 已暂停 or 已撤销 (the term counts, not only
    the recorded status: an ACTIVE agreement past its end no longer lets the seal be used)."""
    status = getattr(agreement.status, "value", str(agreement.status))
    if status == "SUSPENDED":
        return "已暂停"
    if status == "REVOKED":
        return "已撤销"
    now = now or datetime.now(UTC)
    if agreement.ends_at is not None and agreement.ends_at <= now:
        return "已过期"
    if agreement.starts_at > now:
        return "未生效"
    return "有效"


def _row(services: Services, request_id: str) -> SigningRequestRow | None:
    with transaction(services.sessions) as s:
        row = s.get(SigningRequestRow, request_id)
        if row is not None:
            s.expunge(row)
        return row


def _source_pdf(services: Services, request_id: str) -> bytes | None:
    with transaction(services.sessions) as s:
        doc = s.get(DocumentRow, (request_id, "source"))
        return bytes(doc.data) if doc is not None else None


def template_fields(row: SigningRequestRow | None) -> list[tuple[str, str]]:
    """The template's filled fields, labelled as on the clerk's form, in the template's order."""
    from api.console._pages import FIELD_NAMES

    if row is None or not row.template_data:
        return []
    try:
        data = json.loads(row.template_data)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    order: list[str] = []
    try:
        from signer import load_template

        tpl = load_template(row.template or "")
        order = list(tpl.required) + [k for k in tpl.defaults if k not in tpl.required]
    except SealServiceError:
        order = []
    names = [k for k in order if k in data] + [k for k in data if k not in order]
    out = []
    for name in names:
        value = data[name]
        text = "\n".join(str(v) for v in value) if isinstance(value, list) else str(value)
        out.append((FIELD_NAMES.get(str(name)) or str(name), text))
    return out


def _pages(preview: SealPreview) -> list[JsonObject]:
    from signer import render_pages

    if preview.pdf is None:
        return []
    pictures = render_pages(preview.pdf)
    out = []
    for p in pictures:
        boxes = []
        if p.index == preview.page:
            marks = ((preview.stamp_box, "stamp-box", "印章位置"), (preview.qr_box, "qr-box", "验证二维码"))
            for box, css, label in marks:
                if box is None:
                    continue
                # percentages of the page from its top left (PDF y grows upwards)
                boxes.append(
                    {
                        "css": css,
                        "label": label,
                        "left": 100 * box[0] / p.width_pt,
                        "top": 100 * (p.height_pt - box[3]) / p.height_pt,
                        "width": 100 * (box[2] - box[0]) / p.width_pt,
                        "height": 100 * (box[3] - box[1]) / p.height_pt,
                    }
                )
        out.append(
            {
                "number": p.index + 1,
                "src": "data:image/png;base64," + base64.b64encode(p.png).decode("ascii"),
                "boxes": boxes,
            }
        )
    return out


def _seal_and_agreement(
    services: Services, view: SigningRequestView
) -> tuple[Seal | None, Agreement | None, str]:
    seal = agreement = None
    try:
        seal = services.need_seal_registry().get(view.seal_id)
    except SealServiceError:
        return None, None, ""
    if view.department_code and seal.number is not None and services.policy_store is not None:
        try:
            candidates = [
                a
                for a in services.policy_store.agreements(view.township_code)
                if a.department_code == view.department_code and a.seal_number == seal.number
            ]
        except SealServiceError:
            candidates = []
        covering = [a for a in candidates if view.matter_code in a.matters] or candidates
        agreement = max(covering, key=lambda a: (agreement_state(a) == "有效", a.version), default=None)
    return seal, agreement, agreement_state(agreement) if agreement is not None else ""


def _earlier(workflow: SigningWorkflow, who: Principal, view: SigningRequestView) -> list[SigningRequestView]:
    """Earlier requests of the same township on the same matter, newest first (decided ones first)."""
    with transaction(workflow.services.sessions) as s:
        ids = s.scalars(
            select(SigningRequestRow.request_id)
            .where(
                SigningRequestRow.township_code == view.township_code,
                SigningRequestRow.matter_code == view.matter_code,
                SigningRequestRow.request_id != view.request_id,
            )
            .order_by(SigningRequestRow.created_at.desc())
            .limit(EARLIER_LIMIT)
        ).all()
    out = []
    for request_id in ids:
        try:
            out.append(workflow.get(who, request_id))
        except SealServiceError:
            continue  # outside the caller's scope
    return out


def approval_context(workflow: SigningWorkflow, who: Principal, view: SigningRequestView) -> JsonObject:
    """The request page's document section: fields, seal, agreement, earlier requests and, while the
    request is not sealed yet, the preview of the document as it will be sealed."""
    services = workflow.services
    row = _row(services, view.request_id)
    seal, agreement, agreement_status = _seal_and_agreement(services, view)
    context: dict[str, object] = {
        "fields": template_fields(row),
        "applicant": row.applicant if row is not None else None,
        "seal": seal,
        "agreement": agreement,
        "agreement_status": agreement_status,
        "earlier": _earlier(workflow, who, view),
        "preview_pages": [],
        "preview_problem": None,
        "preview_qr": False,
        "can_decide": view.status == Status.PENDING_APPROVAL and who.may(Permission.SIGNING_APPROVE),
    }
    if view.status not in PREVIEWED or row is None or services.signer is None:
        return context
    from signer import preview_seal

    source = _source_pdf(services, view.request_id) if row.source == "upload" else None
    try:
        preview = preview_seal(
            services.signer,
            seal_id=row.seal_id,
            template=row.template,
            template_data=json.loads(row.template_data) if row.template_data else {},
            unverified_pdf=source,
            verify_qr=workflow.wants_qr(source),
            now=datetime.now(UTC),
        )
        context["preview_pages"] = _pages(preview)
        context["preview_qr"] = preview.qr_box is not None
        if preview.problem is not None:
            context["preview_problem"] = f"{preview.problem.message_zh}（{preview.problem.code}）"
    except Exception:  # noqa: BLE001 - a preview that cannot be drawn is said so; approval stays possible
        log.warning("preview failed for %s", view.request_id, exc_info=True)
        context["preview_problem"] = "文书预览生成失败"
    return context
