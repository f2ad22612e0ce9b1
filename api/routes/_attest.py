"""County attestation (书面认证) over HTTP: a county department officer attests a township's sealed document.

The rules are :mod:`api._attest`'s (the console page and ``yizhang attest`` use the same function).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from api._attest import attest_document, operator_of, stored_document, to_summary
from api._authz import Permission, Principal, ServicesDep, require
from core.errors import BadInput
from core.settings import Settings

if TYPE_CHECKING:
    from api._services import Services


Attester = Annotated[Principal, Depends(require(Permission.ATTEST))]
_KEY = r"^[A-Za-z0-9._:-]+$"


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["attestation"])

    @router.post(
        "/attestations",
        responses={200: {"content": {"application/json": {}, "application/pdf": {}}}},
    )
    def attest(
        request: Request,
        services: ServicesDep,
        principal: Attester,
        seal_id: Annotated[str, Form(min_length=1, max_length=64)],
        reason: Annotated[str, Form(max_length=500)] = "",
        document_number: Annotated[str | None, Form(max_length=128)] = None,
        idempotency_key: Annotated[str | None, Form(min_length=8, max_length=128, pattern=_KEY)] = None,
        file: Annotated[UploadFile | None, File(description="the sealed PDF to attest")] = None,
    ) -> Response:
        """Attest a sealed document with the caller's department seal (书面认证, for use outside the county).

        Give the sealed PDF (``file``) or the number of a document of this county (``document_number``).
        Refused with a stable code when the document does not verify TOTAL_PASSED here
        (``ATTEST_DOCUMENT_NOT_VERIFIED``, 422), its decision was changed, withdrawn, revoked or cancelled
        (``ATTEST_DECISION_NOT_IN_FORCE``, 409), the seal is not a department's own
        (``ATTEST_SEAL_NOT_DEPARTMENT``, ``ATTEST_SEAL_ENTRUSTED``, 403) or not the caller's department's
        (``ATTEST_SEAL_OTHER_DEPARTMENT``, 403), or the department neither owns nor supervises the matter
        (``ATTEST_DEPARTMENT_NOT_RESPONSIBLE``, 403). The answer: JSON with the attested PDF
        (``pdf_base64``), its unchanged document number and the ledger index of the attestation; with
        ``Accept: application/pdf`` the PDF itself, the rest in ``X-Yizhang-*`` headers."""
        pdf = _document(services, file, document_number)
        done = attest_document(
            services,
            seal_id=seal_id.strip(),
            unverified_pdf=pdf,
            operator=operator_of(principal.account),
            department_code=principal.org_code,
            reason=reason,
            idempotency_key=idempotency_key,
        )
        summary = to_summary(done)
        accept = request.headers.get("accept", "")
        if "application/pdf" in accept and "application/json" not in accept:
            name = quote(f"{done.document_number or done.sha256[:16]}-认证.pdf")
            return Response(
                done.pdf,
                media_type="application/pdf",
                headers={
                    "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
                    "X-Yizhang-Ledger-Index": str(done.ledger_index),
                    "X-Yizhang-Sha256": done.sha256,
                    "X-Yizhang-Document-Number": quote(done.document_number or ""),
                },
            )
        return JSONResponse({**summary, "pdf_base64": base64.b64encode(done.pdf).decode("ascii")})

    return router


def _document(services: Services, file: UploadFile | None, document_number: str | None) -> bytes:
    number = (document_number or "").strip()
    if (file is None) == (not number):
        raise BadInput(
            "ATTEST_DOCUMENT_MISSING",
            "give the sealed PDF (file) or a document number, not both",
            "请上传已盖章文书或填写文号（二选一）",
        )
    if file is None:
        return stored_document(services, number)
    limit = services.settings.max_pdf_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise BadInput("PDF_TOO_LARGE", "the PDF is over the size limit", "PDF 超过大小上限")
    if not data:
        raise BadInput("PDF_EMPTY", "the uploaded file is empty", "上传的文件为空")
    return data
