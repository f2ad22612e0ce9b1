"""The public verification page (no login): drop a PDF, or follow a document's QR code.

``POST /verify`` runs the same strict verification as ``POST /v1/verify`` (``verifier.verify_document`` with
this county's trust list and the server's ledger evidence, :func:`api.routes._public._evidence`) and shows
the verdict in Chinese: 通过 (TOTAL_PASSED), 无法确定 (INDETERMINATE), 未通过 (TOTAL_FAILED), 无法读取
(unreadable). ``GET /verify?no=…&h=…`` — what the QR code printed on a sealed page points to — finds the
sealed document by its number in the local sealed-document store, checks that the QR's hash is the one
bound into that document's seal, and verifies the stored copy (so its status is today's: valid, revoked …).

The seal picture is the stamp area of the signed page (:mod:`api.console._picture`), shown inline as a
``data:`` URI; only for a document that did not fail.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from api._authz import ServicesDep, public
from api._errors import RateLimited
from api._json import JsonObject
from api.console._picture import seal_picture
from api.console._render import page
from core.db import transaction
from core.errors import BadInput, SealServiceError
from core.settings import Settings

if TYPE_CHECKING:
    from api._services import Services
    from verifier import DocumentFacts, VerificationReport


VERDICTS = {
    "TOTAL_PASSED": ("通过", "pass"),
    "INDETERMINATE": ("无法确定", "indeterminate"),
    "TOTAL_FAILED": ("未通过", "fail"),
}
DOC_STATUS = {
    "valid": "有效",
    "changed": "已变更",
    "withdrawn": "已撤回",
    "revoked": "已撤销",
    "cancelled": "已注销",
}
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def _verify(services: Services, data: bytes, request: Request | None = None) -> VerificationReport:
    from api._verify_gate import PUBLIC_TIMEOUT_S, client_of, gate_of
    from api.routes._public import trust_and_evidence
    from verifier import VerifyLimits, verify_document

    limits = VerifyLimits(max_bytes=services.settings.max_pdf_bytes, timeout_s=PUBLIC_TIMEOUT_S)
    trust, evidence = trust_and_evidence(services)  # this county and its trust store's counties
    if request is None:  # a lookup by number and hash: the stored document, not an upload
        return verify_document(data, trust, now=datetime.now(UTC), limits=limits, evidence=evidence)
    with gate_of(request.app).admit(client_of(request)):
        return verify_document(data, trust, now=datetime.now(UTC), limits=limits, evidence=evidence)


def _reasons(report: VerificationReport) -> list[dict[str, str]]:
    seen: dict[str, dict[str, str]] = {}
    for r in list(report.reasons) + [r for sig in report.signatures for r in sig.reasons]:
        if r.code not in seen:
            seen[r.code] = {"code": r.code, "zh": r.message_zh, "severity": r.severity.value}
    order = {"fail": 0, "indeterminate": 1, "info": 2}
    return sorted(seen.values(), key=lambda x: order.get(x["severity"], 3))


def _doc_status(facts: DocumentFacts, indication: str) -> str:
    if facts.status:
        shown = DOC_STATUS.get(facts.status, facts.status)
        if facts.successor_document_number:  # 变更: where the holder's decision now lives
            shown += f"（新文书：{facts.successor_document_number}）"
        return shown
    if indication != "TOTAL_FAILED" and facts.document_number:
        return "未查到变更、撤回、撤销、注销记录"
    return "—"


def _result_context(report: VerificationReport, data: bytes) -> JsonObject:
    indication = report.indication.value
    label, css = VERDICTS.get(indication, ("未通过", "fail"))
    if report.unreadable:
        label, css = "无法读取", "fail"
    picture = None
    if not report.unreadable and indication != "TOTAL_FAILED":
        first_seal = next((s.field_name for s in report.signatures if s.kind == "signature"), None)
        png = seal_picture(data, first_seal)
        if png is not None:
            picture = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    facts = report.facts
    return {
        "verdict": label,
        "verdict_css": css,
        "indication": indication,
        "sub_indication": report.sub_indication.value if report.sub_indication else "",
        "reasons": _reasons(report),
        "facts": facts,
        "doc_status": _doc_status(facts, indication),
        "unreadable": report.unreadable,
        "picture": picture,
        "file_sha256": report.file_sha256,
        "file_size": report.file_size,
        "signatures": report.signatures,
    }


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["console"], include_in_schema=False)

    @router.get("/verify", dependencies=[Depends(public(rate_limited=True))], response_class=HTMLResponse)
    async def verify_page(
        request: Request, services: ServicesDep, no: str | None = None, h: str | None = None
    ) -> Response:
        if no is None and h is None:
            return page(request, "verify.html", None)
        number = (no or "").strip()[:128]
        if not number or not h or not _SHA256.match(h):
            return page(
                request,
                "verify_lookup.html",
                None,
                status_code=400,
                verdict="无法确定",
                verdict_css="indeterminate",
                problem="二维码中的文号或校验值不完整，请上传文书文件进行验证。",
                number=number,
            )

        def lookup() -> bytes | None:
            from signer import latest_copy_pdf

            with transaction(services.sessions) as s:
                return latest_copy_pdf(s, number)

        stored = await anyio.to_thread.run_sync(lookup)
        if stored is None:
            return page(
                request,
                "verify_lookup.html",
                None,
                status_code=404,
                verdict="未通过",
                verdict_css="fail",
                problem="本县用印登记中没有这个文号的文书。请核对文号，或上传文书文件进行验证。",
                number=number,
            )
        try:
            report = await anyio.to_thread.run_sync(lambda: _verify(services, stored))
        except BadInput:
            return page(request, "verify_lookup.html", None, status_code=503, verdict="无法确定",
                        verdict_css="indeterminate", problem="本服务未配置信任根，暂时无法验证。",
                        number=number)  # fmt: skip
        context = _result_context(report, stored)
        bound = {
            (sig.binding.extra or {}).get("source_sha256")
            for sig in report.signatures
            if sig.binding is not None
        }
        context["qr_matches"] = h.lower() in bound
        if not context["qr_matches"]:
            # the registered document may well pass; the paper in hand is not it. The verdict line says
            # why instead of the stored copy's TOTAL_PASSED, and its seal picture is not shown beside 未通过.
            context.update(verdict="未通过", verdict_css="fail", indication="QR_HASH_MISMATCH")
            context.update(sub_indication="", picture=None)
            context["reasons"].insert(
                0,
                {
                    "code": "QR_HASH_MISMATCH",
                    "zh": "二维码中的校验值与登记的文书不符：手中的文书可能不是本县盖章的原件。",
                    "severity": "fail",
                },
            )
        return page(request, "verify_result.html", None, source="qr", number=number, **context)

    @router.post("/verify", dependencies=[Depends(public(rate_limited=True))], response_class=HTMLResponse)
    async def verify_upload(request: Request, services: ServicesDep) -> Response:
        limit = services.settings.max_pdf_bytes
        try:
            form = await request.form()
        except Exception:  # noqa: BLE001 - a malformed multipart body is the client's, answered as a page
            form = None
        upload = form.get("file") if form is not None else None
        if not isinstance(upload, UploadFile):
            return page(request, "verify.html", None, status_code=400,
                        message="请选择要验证的 PDF 文件。", is_error=True)  # fmt: skip
        data = await upload.read(limit + 1)
        if len(data) > limit:
            return page(request, "verify.html", None, status_code=413,
                        message=f"文件超过 {limit // (1024 * 1024)} MB 上限。", is_error=True)  # fmt: skip
        if not data:
            return page(request, "verify.html", None, status_code=400,
                        message="上传的文件是空的。", is_error=True)  # fmt: skip
        try:
            report = await anyio.to_thread.run_sync(lambda: _verify(services, data, request))
        except RateLimited as exc:  # this address already has a verification running
            return page(request, "verify.html", None, status_code=429,
                        message=f"请稍候再试：{exc.message_zh}", is_error=True)  # fmt: skip
        except SealServiceError as exc:
            return page(request, "verify.html", None, status_code=503,
                        message=f"暂时无法验证：{exc.message_zh}", is_error=True)  # fmt: skip
        context = _result_context(report, data)
        name = (upload.filename or "")[:120]
        return page(request, "verify_result.html", None, source="upload", filename=name, **context)

    return router
