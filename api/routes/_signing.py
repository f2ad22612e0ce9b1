"""The signing workflow over HTTP, the supervision feed, and the reports (台账, monthly report)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import and_, or_, select

from api._authz import Permission, Principal, ServicesDep, require
from api._csv import write_rows
from api._json import JsonObject
from api._limits import Code
from api._refusals import OrgColumn, filed_under, foreign_refusal, is_foreign_refusal, of_organisation
from api._signing import SigningRequestView, SigningWorkflow, Submission, feed
from api._storage import SigningRequestRow
from api._views import MONTH, jsonable, month_bounds
from core.db import transaction
from core.errors import BadInput, SealServiceError
from core.settings import Settings

Submitter = Annotated[Principal, Depends(require(Permission.SIGNING_SUBMIT))]
Approver = Annotated[Principal, Depends(require(Permission.SIGNING_APPROVE))]
Reader = Annotated[Principal, Depends(require(Permission.SIGNING_READ))]
Lifecycle = Annotated[Principal, Depends(require(Permission.DECISION_LIFECYCLE))]
Supervisor = Annotated[Principal, Depends(require(Permission.SUPERVISION_READ))]
Reports = Annotated[Principal, Depends(require(Permission.REPORTS_READ))]

MAX_BATCH = 50


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SubmissionIn(_In):
    seal_id: Code
    matter_code: Code
    stage: str = Field(min_length=1, max_length=16)
    document_kind: str = Field(min_length=1, max_length=32)
    reason: str = Field(min_length=1, max_length=500)
    idempotency_key: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    applicant: str | None = Field(default=None, max_length=200)


#: Template data (issue 21: a 5,000,000-character ``matter_name`` was rendered and sealed after 184 s):
#: at most this many fields, each name a template placeholder's shape, each text this long.
MAX_TEMPLATE_FIELDS = 64
MAX_TEMPLATE_TEXT = 2000
MAX_TEMPLATE_LIST = 100
TemplateText = Annotated[str, Field(max_length=MAX_TEMPLATE_TEXT)]
TemplateValue = TemplateText | int | float | list[TemplateText] | None
TemplateKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_][a-z0-9_]*$")]


class TemplateSubmissionIn(SubmissionIn):
    template: str = Field(min_length=1, max_length=64)
    # the rejected or refused request this one replaces, edited (issue 23)
    resubmits: str | None = Field(default=None, min_length=1, max_length=36)
    data: dict[TemplateKey, TemplateValue] = Field(default_factory=dict, max_length=MAX_TEMPLATE_FIELDS)

    @field_validator("data")
    @classmethod
    def _lists_bounded(cls, data: JsonObject) -> JsonObject:
        for key, value in data.items():
            if isinstance(value, list) and len(value) > MAX_TEMPLATE_LIST:
                raise ValueError(f"{key}: at most {MAX_TEMPLATE_LIST} items")
        return data


class CommentIn(_In):
    comment: str = Field(default="", max_length=1000)


class StatusIn(_In):
    status: Literal["CHANGED", "WITHDRAWN", "REVOKED", "CANCELLED"]
    reason: str = Field(min_length=1, max_length=1000)
    # 变更: the document number of the decision that replaces this one (issued here); verifiers name it.
    successor: str | None = Field(default=None, min_length=1, max_length=64)


def _view(v: SigningRequestView) -> JsonObject:
    return dict(jsonable(asdict(v)))


async def _workflow(request: Request, services: ServicesDep) -> SigningWorkflow:
    return SigningWorkflow(services, request.app.state.metrics)


#: The signing workflow over the app's services, injected: ``workflow: Workflow``.
Workflow = Annotated[SigningWorkflow, Depends(_workflow)]


def _read_pdf(file: UploadFile, limit: int) -> bytes:
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise BadInput("PDF_TOO_LARGE", "the PDF is over the size limit", "PDF 超过大小上限")
    return data


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["signing"])

    @router.post("/signing-requests", status_code=201)
    def submit(
        workflow: Workflow,
        principal: Submitter,
        file: Annotated[UploadFile, File(description="the PDF to seal")],
        seal_id: Annotated[Code, Form()],
        matter_code: Annotated[Code, Form()],
        stage: Annotated[str, Form(min_length=1, max_length=16)],
        document_kind: Annotated[str, Form(min_length=1, max_length=32)],
        reason: Annotated[str, Form(min_length=1, max_length=500)],
        idempotency_key: Annotated[str, Form(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")],
        applicant: Annotated[str | None, Form(max_length=200)] = None,
    ) -> JSONResponse:
        """Submit a PDF for sealing: the policy decides at once (403 with every reason when it refuses);
        a use that needs the principal's approval waits in the queue (status PENDING_APPROVAL)."""
        pdf = _read_pdf(file, workflow.services.settings.max_pdf_bytes)
        sub = Submission(seal_id, matter_code, stage, document_kind, reason, idempotency_key, applicant)
        view, created = workflow.submit(principal, sub, pdf)
        return JSONResponse(_view(view), status_code=201 if created else 200)

    @router.post("/signing-requests/from-template", status_code=201)
    def submit_template(body: TemplateSubmissionIn, workflow: Workflow, principal: Submitter) -> JSONResponse:
        """Submit a document to be rendered from one of the centre's templates and sealed."""
        sub = Submission(
            body.seal_id,
            body.matter_code,
            body.stage,
            body.document_kind,
            body.reason,
            body.idempotency_key,
            body.applicant,
            body.template,
            body.data,
            body.resubmits,
        )
        view, created = workflow.submit(principal, sub, None)
        return JSONResponse(_view(view), status_code=201 if created else 200)

    @router.post("/signing-requests/batch")
    def submit_batch(
        workflow: Workflow,
        principal: Submitter,
        files: Annotated[list[UploadFile], File(description="the PDFs, in the order of items")],
        items: Annotated[str, Form(description="JSON list of submissions, one per file", max_length=200_000)],
    ) -> JsonObject:
        """Many documents at once; each item is decided and answered on its own."""
        try:
            raw = json.loads(items)
        except ValueError:
            raise BadInput(
                "BATCH_ITEMS_INVALID", "items must be a JSON list", "items 须为 JSON 列表"
            ) from None
        if not isinstance(raw, list) or len(raw) != len(files) or not 1 <= len(raw) <= MAX_BATCH:
            raise BadInput(
                "BATCH_ITEMS_INVALID",
                f"items must list 1..{MAX_BATCH} submissions, one per file",
                f"items 须列出 1..{MAX_BATCH} 项，与文件一一对应",
            )
        limit = workflow.services.settings.max_pdf_bytes
        results: list[JsonObject] = []
        for i, (item, upload) in enumerate(zip(raw, files, strict=True)):
            try:
                parsed = SubmissionIn.model_validate(item)
                sub = Submission(
                    parsed.seal_id,
                    parsed.matter_code,
                    parsed.stage,
                    parsed.document_kind,
                    parsed.reason,
                    parsed.idempotency_key,
                    parsed.applicant,
                )
                view, created = workflow.submit(principal, sub, _read_pdf(upload, limit))
                results.append({"index": i, "status": 201 if created else 200, "request": _view(view)})
            except SealServiceError as exc:
                from api._errors import status_for

                err = exc.to_dict()
                if exc.family == "policy_denied":
                    err["reasons"] = exc.details.get("reasons", [])
                results.append({"index": i, "status": status_for(exc), "error": err})
            except ValueError as exc:  # pydantic's ValidationError
                results.append(
                    {
                        "index": i,
                        "status": 422,
                        "error": {"code": "VALIDATION_FAILED", "message": str(exc)[:500]},
                    }
                )
        return {"results": results}

    @router.get("/signing-requests")
    def queue(
        workflow: Workflow,
        principal: Reader,
        status: Annotated[str | None, Query(max_length=24)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[JsonObject]:
        """Requests of the caller's organisation, newest first; ``status=PENDING_APPROVAL`` is the queue."""
        return [_view(v) for v in workflow.list(principal, status=status, limit=limit)]

    @router.get("/signing-requests/{request_id}")
    def get_request(request_id: str, workflow: Workflow, principal: Reader) -> JsonObject:
        return _view(workflow.get(principal, request_id))

    @router.post("/signing-requests/{request_id}/approve")
    def approve(request_id: str, body: CommentIn, workflow: Workflow, principal: Approver) -> JsonObject:
        return _view(workflow.approve(principal, request_id, body.comment))

    @router.post("/signing-requests/{request_id}/reject")
    def reject(request_id: str, body: CommentIn, workflow: Workflow, principal: Approver) -> JsonObject:
        return _view(workflow.reject(principal, request_id, body.comment))

    @router.post("/signing-requests/{request_id}/seal")
    def seal_again(request_id: str, workflow: Workflow, principal: Submitter) -> JsonObject:
        """Retry sealing an approved request (after the token or TSA was unavailable)."""
        return _view(workflow.retry_seal(principal, request_id))

    @router.get("/signing-requests/{request_id}/document", response_class=Response)
    def document(request_id: str, workflow: Workflow, principal: Reader) -> Response:
        data = workflow.document(principal, request_id)
        return Response(
            data,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{request_id}.pdf"'},
        )

    @router.get("/signing-requests/{request_id}/receipt", response_class=Response)
    def receipt(request_id: str, workflow: Workflow, principal: Reader) -> Response:
        """The ledger receipt (C2SP tlog-proof) of the sealed document."""
        return Response(workflow.receipt(principal, request_id), media_type="text/plain; charset=utf-8")

    @router.post("/signing-requests/{request_id}/status")
    def change_status(
        request_id: str, body: StatusIn, workflow: Workflow, principal: Lifecycle
    ) -> JsonObject:
        """变更、撤回、撤销、注销 an issued decision (a ledger entry; verifiers then report it). The answer is
        the request, with ``status_ledger_index``: the index of the ledger entry recording the change."""
        view, event = workflow.record_decision_status(
            principal, request_id, body.status, body.reason, body.successor
        )
        return {**_view(view), "status_ledger_index": event.ledger_index}

    @router.get("/signing-requests/{request_id}/history")
    def decision_history(request_id: str, workflow: Workflow, principal: Reader) -> list[JsonObject]:
        """The decision's life, oldest first: ``ISSUED``, then each status change with its ledger index."""
        history = workflow.decision_history(principal, request_id)
        return [dict(jsonable(asdict(e))) for e in history]

    @router.get("/supervision/feed")
    def supervision_feed(
        services: ServicesDep,
        principal: Supervisor,
        cursor: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JsonObject:
        """审管联动: issued and changed decisions after ``cursor``, for the caller's department."""
        events, next_cursor = feed(services, principal, cursor, limit)
        return {"events": events, "next_cursor": next_cursor}

    @router.get(
        "/reports/monthly",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}, "application/pdf": {}}}},
    )
    def monthly_report(
        request: Request,
        services: ServicesDep,
        principal: Reports,
        month: Annotated[str, Query(pattern=MONTH)],
        department_code: Annotated[str | None, Query(max_length=64)] = None,
        township_code: Annotated[str | None, Query(max_length=64)] = None,
        format: Annotated[Literal["csv", "pdf"] | None, Query()] = None,  # noqa: A002 - the query name
    ) -> Response:
        """The monthly report: matters handled and seal uses per township, matter and status. CSV, or the
        A4 Chinese PDF form with ``format=pdf`` or ``Accept: application/pdf`` (``format`` wins)."""
        principal.ensure_scope(department_code=department_code, township_code=township_code)
        from api._reports import CSV_HEADER, build_monthly_report

        # the county's month (Asia/Shanghai) as the 台账 reads it: 01-01 03:00 Beijing is January's
        report = build_monthly_report(
            services, month, township_code=township_code, department_code=department_code
        )
        accept = request.headers.get("accept", "")
        if format == "pdf" or (format is None and "application/pdf" in accept and "text/csv" not in accept):
            from api._report_pdf import render_monthly_report

            return Response(
                render_monthly_report(report),
                media_type="application/pdf",
                headers={"Content-Disposition": f'attachment; filename="report-{month}.pdf"'},
            )
        return Response(
            "\ufeff" + write_rows(CSV_HEADER, report.csv_rows()),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="report-{month}.csv"'},
        )

    @router.get("/reports/anomalies")
    def anomalies(
        services: ServicesDep,
        principal: Reports,
        month: Annotated[str, Query(pattern=MONTH)],
        township_code: Annotated[str | None, Query(max_length=64)] = None,
    ) -> JsonObject:
        """What is worth a look in a month: refused attempts, uses outside office hours (Beijing time,
        08:00–18:00 Mon–Fri), and days with more than three times the month's median daily volume.

        A refusal is counted under the organisation whose records hold it (``api._refusals``): one whose
        operator is not of the seal's township counts for the operator's organisation, and is listed for
        the seal's township under ``attempts_from_outside`` instead of among its refusals."""
        from datetime import timedelta, timezone

        principal.ensure_scope(township_code=township_code, org_code=township_code)
        beijing = timezone(timedelta(hours=8))
        start, end = month_bounds(month, beijing)
        stmt = select(SigningRequestRow).where(
            SigningRequestRow.created_at >= start, SigningRequestRow.created_at < end
        )
        attempts_on: OrgColumn = SigningRequestRow.township_code
        if township_code is not None:
            ours = of_organisation(township_code, SigningRequestRow.township_code)
            stmt = stmt.where(or_(ours, attempts_on == township_code))
        elif not principal.county_wide:
            attempts_on = SigningRequestRow.department_code
            stmt = stmt.where(
                or_(
                    of_organisation(principal.org_code, SigningRequestRow.department_code),
                    and_(foreign_refusal(), attempts_on == principal.org_code),
                )
            )
        refused: dict[str, int] = {}
        attempts: list[JsonObject] = []
        mine = township_code or (None if principal.county_wide else principal.org_code)
        off_hours: list[JsonObject] = []
        per_day: dict[tuple[str, str], int] = {}
        with transaction(services.sessions) as s:
            for r in s.scalars(stmt):
                at = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
                local = at.astimezone(beijing)
                codes = sorted({x.get("code", "") for x in json.loads(r.reason_codes or "[]")} or {r.status})
                foreign = is_foreign_refusal(r)
                if foreign and r.operator_org != mine:  # on these seals, from another organisation
                    attempts.append(
                        {
                            "request_id": r.request_id,
                            "seal_id": r.seal_id,
                            "township_code": r.township_code,
                            "operator_org": r.operator_org,
                            "at": local.isoformat(),
                            "reason_codes": codes,
                        }
                    )
                    if mine is not None and r.operator_org != mine:
                        continue  # an attempt on our seals from outside: listed, not counted as ours
                owner = filed_under(r)
                if r.status in {"DENIED", "REJECTED"}:
                    for code in codes:
                        refused[f"{owner}:{code}"] = refused.get(f"{owner}:{code}", 0) + 1
                if r.status == "SEALED" and (local.weekday() >= 5 or not 8 <= local.hour < 18):
                    off_hours.append(
                        {
                            "request_id": r.request_id,
                            "township_code": r.township_code,
                            "at": local.isoformat(),
                        }
                    )
                key = (owner, local.date().isoformat())
                per_day[key] = per_day.get(key, 0) + 1
        volumes = sorted(per_day.values())
        median = volumes[len(volumes) // 2] if volumes else 0
        spikes = [
            {"township_code": t, "date": d, "count": n}
            for (t, d), n in sorted(per_day.items())
            if median and n > 3 * median and n >= 5
        ]
        return {
            "month": month,
            "refused": refused,
            "attempts_from_outside": attempts,
            "outside_office_hours": off_hours,
            "volume_spikes": spikes,
        }

    @router.get("/reports/usage", response_class=Response)
    def usage_report(
        services: ServicesDep,
        principal: Reports,
        seal_id: Annotated[str, Query(min_length=1, max_length=64)],
        month: Annotated[str, Query(pattern=MONTH)],
    ) -> Response:
        """The usage ledger (使用登记台账) of one seal for one month, as CSV, from the ledger's entries:
        Chinese headers, matters by name, people by display name, dates in Beijing time. Lines as far as
        the caller may read them (``api._usage_scope``: a department reads the matters it answers for)."""
        from api._reports import USAGE_HEADER, usage_rows
        from api._usage_scope import usage_in_scope

        rows = usage_rows(services, usage_in_scope(services, principal, seal_id, month))
        return Response(
            "\ufeff" + write_rows(USAGE_HEADER, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="usage-{month}.csv"'},
        )

    return router
