"""The console's attestation page (书面认证) for county department officers.

``GET /ui/attest`` shows the form (the department's own seals, the sealed PDF or a document number of this
county, the reason); ``POST /ui/attest`` runs :func:`api._attest.attest_document` — the same checks as
``POST /v1/attestations`` and ``yizhang attest`` — and shows the result with a download of the attested PDF
(``GET /ui/attest/{key}.pdf``, only for attestations by the caller's department). Refusals come back on the
form with their message and stable code.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from api._attest import attest_document, attestable_seals, operator_of, stored_document
from api._authz import Permission, ServicesDep
from api.console._gate import Gate, console_gate
from api.console._render import page, refuse
from core.db import transaction
from core.errors import SealServiceError
from core.settings import Settings

if TYPE_CHECKING:
    from api._attest import Attestation

AttestGate = Annotated[Gate, Depends(console_gate(Permission.ATTEST, refuse=refuse))]
_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
MAX_FIELD = 500


def _back(message: str, number: str = "") -> RedirectResponse:
    query = f"?error={quote(message)}"
    if number:
        query += f"&no={quote(number)}"
    return RedirectResponse("/ui/attest" + query, status_code=303)


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/ui", tags=["console"], include_in_schema=False)

    @router.get("/attest", response_class=HTMLResponse)
    def attest_form(
        request: Request,
        services: ServicesDep,
        gate: AttestGate,
        no: str | None = None,
        error: str | None = None,
    ) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        try:
            seals = attestable_seals(services, gate.who.org_code)
        except SealServiceError as exc:
            return refuse(request, 503, exc.message_zh, exc.code)
        return page(
            request,
            "attest.html",
            gate,
            seals=seals,
            number=(no or "")[:128],
            message=(error or "")[:300],
            is_error=bool(error),
        )

    @router.post("/attest", response_class=HTMLResponse)
    async def attest_submit(request: Request, services: ServicesDep, gate: AttestGate) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        who = gate.who
        form = await request.form()

        def text(name: str) -> str:
            value = form.get(name)
            return value.strip()[:MAX_FIELD] if isinstance(value, str) else ""

        number = text("document_number")[:128]
        upload = form.get("file")
        pdf: bytes | None = None
        if isinstance(upload, UploadFile) and upload.filename:
            limit = services.settings.max_pdf_bytes
            pdf = await upload.read(limit + 1)
            if len(pdf) > limit:
                return _back("PDF 超过大小上限（PDF_TOO_LARGE）")
            if not pdf:
                return _back("上传的文件为空（PDF_EMPTY）")
        if (pdf is None) == (not number):
            return _back("请上传已盖章文书或填写文号（二选一）（ATTEST_DOCUMENT_MISSING）", number)

        def run() -> Attestation:
            data = pdf if pdf is not None else stored_document(services, number)
            return attest_document(
                services,
                seal_id=text("seal_id"),
                unverified_pdf=data,
                operator=operator_of(who.account),
                department_code=who.org_code,
                reason=text("reason"),
            )

        try:
            done = await anyio.to_thread.run_sync(run)
        except SealServiceError as exc:
            codes = exc.details.get("reason_codes") if isinstance(exc.details, dict) else None
            more = f"：{'、'.join(codes[:6])}" if codes else ""
            return _back(f"{exc.message_zh}{more}（{exc.code}）", number)
        return page(request, "attest_done.html", gate, a=done)

    @router.get("/attest/{key}.pdf")
    def attested_pdf(key: str, request: Request, services: ServicesDep, gate: AttestGate) -> Response:
        if gate.refusal is not None:
            return gate.refusal
        if not _KEY.match(key):
            return refuse(request, 404, "没有这份认证文书。", "ATTESTATION_NOT_FOUND")
        from signer import stored_copy

        with transaction(services.sessions) as s:
            found = stored_copy(s, key)
        if found is None:
            return refuse(request, 404, "没有这份认证文书。", "ATTESTATION_NOT_FOUND")
        seal_id, number, data = found.seal_id, found.document_number, found.pdf
        try:
            seal = services.need_seal_registry().get(seal_id)
        except SealServiceError as exc:
            return refuse(request, 404, exc.message_zh, exc.code)
        if seal.department_code != gate.who.org_code or not key.startswith("attest-"):
            return refuse(request, 403, "只能下载本部门的认证文书。", "OTHER_ORGANISATION")
        name = quote(f"{number or key}-认证.pdf")
        return Response(
            data,
            media_type="application/pdf",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
        )

    return router
