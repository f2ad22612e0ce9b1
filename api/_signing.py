"""The signing workflow: submit → policy pre-check → principal's approval → seal → download + receipt.

Library functions over the api tables; HTTP lives in ``api.routes._signing``. The signer is entered by one
door: ``signer.precheck`` (the seal's record and the policy's decision, nothing written) and
``Sealer.seal`` (which takes that pre-check as the signing's one decision); the policy request and the
seal's facts are built only there. This module sequences them, records the request, and logs refusals and
status changes in the ledger.

Order of work, so nothing nests a transaction (SQLite writers serialise at BEGIN):
  1. read: the signer's pre-check (the seal's record, the policy's decision), in one read scope;
  2. write: one transaction with the request row, its document and any ledger entry;
  3. seal (signer) — it commits the sealed document's ledger entry in its own transaction;
  4. write: the result on the request row and an outbox event for the supervisor.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, TypeAlias, cast

from sqlalchemy import Connection, Insert, Row, Table, bindparam, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api._accounts import Account, aware, get_account
from api._authz import Principal
from api._json import JsonObject
from api._limits import check_text, walk_text
from api._refusals import check_refusal_budget, is_foreign_refusal, of_organisation
from api._services import Services
from api._storage import DocumentRow, OutboxRow, SigningRequestRow
from core.db import BoundStatement, execute_alone, is_sqlite, reading, transaction
from core.errors import BadInput, Conflict, NotFound, PermissionDenied, PolicyDenied, SealServiceError
from core.scope import read_scope
from ledger import FINAL_DECISION_STATUSES, DecisionStatus
from policies import Role

if TYPE_CHECKING:  # the signer is imported when first used (it loads pyHanko)
    from api._observability import Metrics
    from policies import Actor
    from signer import Precheck, SealedDocument


# Core statements on the signing path: the ORM's bulk-insert and unit-of-work layers cost more CPU than the
# round trip (an ORM insert of one row ~170 us, the table's ~105 us on these machines).
_requests_t = cast(Table, SigningRequestRow.__table__)
_documents_t = cast(Table, DocumentRow.__table__)
_outbox_t = cast(Table, OutboxRow.__table__)
# Written in the signer's settle, with the ledger entry: built once (bind parameters), SQLAlchemy computes a
# statement's cache key once per object.
_MARK_SEALED = (
    update(_requests_t)
    .where(_requests_t.c.request_id == bindparam("rq_id"))
    .values(
        {
            c: bindparam(c)
            for c in (
                "status",
                "document_number",
                "ledger_index",
                "sealed_sha256",
                "error_code",
                "updated_at",
            )
        }
    )
)
# inline: no RETURNING of the generated event_id (nothing is read back in the settle's pipeline).
_OUTBOX_INSERT = (
    insert(_outbox_t)
    .inline()
    .values(
        {
            c: bindparam(c)
            for c in ("event", "request_id", "supervising_code", "township_code", "payload", "created_at")
        }
    )
)


#: A request row's column values: an ORM row, a ``RETURNING`` result, or a namespace of the columns.
RequestColumns: TypeAlias = "SigningRequestRow | Row[tuple[object, ...]] | SimpleNamespace"


class Status:
    PENDING_APPROVAL = "PENDING_APPROVAL"  # waiting in the principal's queue
    APPROVED = "APPROVED"  # allowed (and approved where needed); not sealed yet
    SEALED = "SEALED"
    DENIED = "DENIED"  # the policy refused it
    REJECTED = "REJECTED"  # the principal refused it
    FAILED = "FAILED"  # sealing failed for good (see error_code)


DECISION_STATUSES = tuple(s.value for s in DecisionStatus)  # 变更、撤回、撤销、注销: the ledger's vocabulary
# Reasons that only say "a principal must approve": the request goes to the queue instead of being refused.
APPROVAL_ONLY = frozenset({"APPROVAL_MISSING"})
# Reasons about the approver alone: the approval is refused, the request stays in the queue.
APPROVER_REASONS = frozenset({"SELF_APPROVAL", "APPROVER_NOT_PRINCIPAL"})


@dataclass(frozen=True)
class Submission:
    seal_id: str
    matter_code: str
    stage: str
    document_kind: str
    reason: str
    idempotency_key: str
    applicant: str | None = None
    template: str | None = None
    template_data: JsonObject | None = None
    #: the rejected or refused request this one replaces (edited and submitted again), if any
    resubmits: str | None = None


@dataclass(frozen=True)
class SigningRequestView:
    request_id: str
    status: str
    seal_id: str
    township_code: str
    department_code: str | None
    matter_code: str
    stage: str
    document_kind: str
    reason: str
    source: str
    requires_approval: bool
    reasons: list[dict[str, str]] = field(default_factory=list)
    submitted_by: str = ""
    approver_id: str | None = None
    decided_at: datetime | None = None
    decision_comment: str | None = None
    document_number: str | None = None
    ledger_index: int | None = None
    sealed_sha256: str | None = None
    decision_status: str = "VALID"
    error_code: str | None = None
    created_at: datetime | None = None
    resubmits: str | None = None

    @classmethod
    def from_row(cls, row: RequestColumns) -> SigningRequestView:
        """From an ORM row, a ``RETURNING`` result or a namespace of the request table's column names."""
        return cls(
            request_id=row.request_id,
            status=row.status,
            seal_id=row.seal_id,
            township_code=row.township_code,
            department_code=row.department_code,
            matter_code=row.matter_code,
            stage=row.stage,
            document_kind=row.document_kind,
            reason=row.reason,
            source=row.source,
            requires_approval=row.requires_approval,
            reasons=json.loads(row.reason_codes or "[]"),
            submitted_by=row.submitted_by,
            approver_id=row.approver_id,
            decided_at=aware(row.decided_at) if row.decided_at else None,
            decision_comment=row.decision_comment,
            document_number=row.document_number,
            ledger_index=row.ledger_index,
            sealed_sha256=row.sealed_sha256,
            decision_status=row.decision_status,
            error_code=row.error_code,
            created_at=aware(row.created_at),
            resubmits=getattr(row, "resubmits", None),
        )


@dataclass(frozen=True)
class DecisionEvent:
    """One step in the life of an issued decision: ``ISSUED`` (sealed) or a status change; with the index of
    the ledger entry that records it (``None`` only for changes recorded before that index was kept)."""

    status: str  # ISSUED | CHANGED | WITHDRAWN | REVOKED | CANCELLED
    at: datetime
    ledger_index: int | None
    actor: str | None = None
    reason: str | None = None


def signer_key(request_id: str) -> str:
    """The signer's idempotency key of a signing request: a retry never seals twice."""
    return f"api:{request_id}"


def _now() -> datetime:
    return datetime.now(UTC)


def _same_person(s: Session, account_id: str, other: Account) -> bool:
    """Whether an account belongs to the same person as ``other`` (issue 21: two accounts, one person)."""
    return bool(other.person_id) and get_account(s, account_id).person_id == other.person_id


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _reasons(checked: Precheck) -> list[dict[str, str]]:
    return [{"code": r.code, "message_en": r.message_en, "message_zh": r.message_zh} for r in checked.reasons]


def _refuse_loose_kind(document_kind: str) -> None:
    """The API takes a document kind exactly as its label or member name (the signer also reads one with
    spaces around it or in lower case): what the request row records is then always one of those."""
    from policies import DocumentKind

    if document_kind in DocumentKind.__members__ or document_kind in {k.value for k in DocumentKind}:
        return
    raise BadInput("DOCUMENT_KIND_UNKNOWN", f"unknown document kind {document_kind!r}", "未知的文书种类")


def _denied(reasons: list[dict[str, str]], request_id: str | None) -> PolicyDenied:
    return PolicyDenied(
        "POLICY_DENIED",
        "the policy refused this use of the seal",
        "用章申请未通过策略审查",
        details={"reasons": reasons, "request_id": request_id},
    )


class SigningWorkflow:
    def __init__(self, services: Services, metrics: Metrics | None = None) -> None:
        self.services = services
        self.metrics = metrics

    # -- policy -----------------------------------------------------------------------------------------
    def _actor(self, account: Account) -> Actor:
        from policies import Actor

        return Actor(
            user_id=account.account_id,
            role=account.role,
            org_code=account.org_code,
            service_centre=account.service_centre,
            person_id=account.person_id or None,
            active=not account.disabled,  # as it is now: checked again at approval and at sealing
        )

    def _precheck(self, sub: Submission, operator: Account, approver: Account | None) -> Precheck:
        """The signer's pre-check of this use of the seal (its policy decision; nothing written)."""
        from signer import SealRequest, precheck

        registry = self.services.need_seal_registry()
        store = self.services.need_policy_store()
        request = SealRequest(
            seal_id=sub.seal_id,
            matter_code=sub.matter_code,
            stage=sub.stage,
            document_kind=sub.document_kind,
            idempotency_key=sub.idempotency_key,  # not read by the pre-check
            operator=self._actor(operator),
            approver=self._actor(approver) if approver is not None else None,
        )
        checked = precheck(request, seals=registry, policies=store)
        _refuse_loose_kind(sub.document_kind)
        return checked

    def _count_denials(self, reasons: list[dict[str, str]]) -> None:
        if self.metrics is not None:
            for r in reasons:
                self.metrics.denials.labels(r["code"]).inc()

    def _log_refusal(
        self, s: Session, row: SigningRequestRow, operator: str, codes: list[str], key: str
    ) -> None:
        from ledger import EntryFields, EntryKind

        ledger = self.services.ledger
        if ledger is None:
            return
        ledger.append(
            s,
            EntryFields(
                kind=EntryKind.SIGNING_REFUSED,
                at=_now(),
                body={
                    "seal_id": row.seal_id,
                    "matter": row.matter_code,
                    "stage": row.stage,
                    "document_kind": row.document_kind,
                    "operator": operator,
                    # Whose record the refusal is (issue 21): the operator's organisation, and the seal's.
                    "operator_org": row.operator_org or row.township_code,
                    "township": row.township_code,
                    "reason_codes": codes,
                    "request_id": row.request_id,
                },
            ),
            key,
        )

    # -- submit -----------------------------------------------------------------------------------------
    def submit(
        self, principal: Principal, sub: Submission, pdf: bytes | None
    ) -> tuple[SigningRequestView, bool]:
        """A new request (or the one already made with this idempotency key). Returns (view, created).

        One read scope: the pre-check and the signer's decision read the seal and the policy revision once.
        """
        with read_scope():
            return self._submit(principal, sub, pdf)

    def _submit(
        self, principal: Principal, sub: Submission, pdf: bytes | None
    ) -> tuple[SigningRequestView, bool]:
        if pdf is None and sub.template is None:
            raise BadInput("DOCUMENT_REQUIRED", "upload a PDF or name a template", "请上传 PDF 或选择模板")
        # Multipart form fields pass no body guard (api/_limits.py): control characters and lone
        # surrogates are refused here for every way in (issue 21: "\ud800" in template data was a 500).
        for name, value in vars(sub).items():
            for path, text in walk_text(value, name):
                check_text(text, path)
        if pdf is not None and not pdf.startswith(b"%PDF-"):
            raise BadInput("NOT_A_PDF", "the upload is not a PDF", "上传的文件不是 PDF")
        payload = json.dumps(
            {
                "seal": sub.seal_id,
                "matter": sub.matter_code,
                "stage": sub.stage,
                "kind": sub.document_kind,
                "reason": sub.reason,
                "template": sub.template,
                "data": sub.template_data,
                "pdf": _sha256(pdf) if pdf is not None else None,
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        if sub.resubmits is not None:
            payload += "\nresubmits:" + sub.resubmits  # a retry of the same resubmission is the same payload
        payload_sha = _sha256(payload.encode())
        account = principal.account
        if sub.resubmits is not None:
            self._check_resubmission(principal, sub.resubmits)
        # A retry with a known idempotency key is found by the unique index when the row is inserted (see
        # below), not by a lookup first: a new request, the common case, costs no extra round trip, and a
        # retry's pre-check is rolled back with its insert (nothing logged, nothing counted twice).
        checked = self._precheck(sub, account, None)
        seal = checked.seal
        reasons = _reasons(checked)
        codes = {r["code"] for r in reasons}
        if checked.allowed:
            status = Status.APPROVED
        elif codes and codes <= APPROVAL_ONLY:
            status = Status.PENDING_APPROVAL
        else:
            status = Status.DENIED
        now = _now()
        if status == Status.DENIED:
            check_refusal_budget(self.services, account.account_id, now)  # 429, nothing written
        row = SigningRequestRow(
            request_id=str(uuid.uuid4()),
            submitted_by=account.account_id,
            idempotency_key=sub.idempotency_key,
            payload_sha256=payload_sha,
            seal_id=seal.seal_id,
            township_code=seal.township_code,
            department_code=seal.department_code,
            matter_code=sub.matter_code,
            stage=sub.stage,
            document_kind=sub.document_kind,
            reason=sub.reason,
            applicant=sub.applicant,
            source="upload" if pdf is not None else "template",
            template=sub.template,
            template_data=json.dumps(sub.template_data, ensure_ascii=False) if sub.template_data else None,
            status=status,
            reason_codes=json.dumps(reasons, ensure_ascii=False),
            requires_approval=bool(checked.requires_approval or status == Status.PENDING_APPROVAL),
            decision_status="VALID",
            operator_org=account.org_code,
            created_at=now,
            updated_at=now,
            resubmits=sub.resubmits,
        )
        try:
            self._insert(row, pdf, now, status, account.username, codes)
        except IntegrityError:
            # A concurrent retry with the same idempotency key got there first: answer as it did.
            return self._existing(account.account_id, sub.idempotency_key, payload_sha)
        if status == Status.DENIED:
            self._count_denials(reasons)
            raise _denied(reasons, row.request_id)
        if status == Status.APPROVED:
            return self._seal(row.request_id, account, None, held=(row, pdf), checked=checked), True
        return SigningRequestView.from_row(row), True

    def _check_resubmission(self, principal: Principal, old_id: str) -> None:
        """A request edited and submitted again names the one it replaces: of the caller's organisation,
        rejected by the principal or refused by the policy, and not resubmitted already. Raises before
        anything is written (and before a number could be drawn)."""
        old = self.get(principal, old_id)  # NOT_FOUND / OTHER_ORGANISATION as for reading it
        if old.status not in (Status.REJECTED, Status.DENIED):
            raise Conflict(
                "RESUBMIT_NOT_REFUSED",
                "only a rejected or refused request can be resubmitted",
                "只有被驳回或未通过策略审查的申请才能修改后重新提交",
                details={"request_id": old.request_id, "status": old.status},
            )
        with transaction(self.services.sessions) as s:
            newer = s.scalar(
                select(SigningRequestRow.request_id).where(SigningRequestRow.resubmits == old.request_id)
            )
        if newer is not None:
            raise Conflict(
                "RESUBMIT_ALREADY",
                "this request was already resubmitted",
                "该申请已修改后重新提交过",
                details={"request_id": old.request_id, "resubmitted_as": newer},
            )

    def resubmission_of(self, principal: Principal, request_id: str) -> str | None:
        """The request that replaced ``request_id`` (edited and submitted again), if any."""
        self.get(principal, request_id)
        with transaction(self.services.sessions) as s:
            return s.scalar(
                select(SigningRequestRow.request_id).where(SigningRequestRow.resubmits == request_id)
            )

    def _existing(self, account_id: str, key: str, payload_sha: str) -> tuple[SigningRequestView, bool]:
        with transaction(self.services.sessions) as s:
            existing = s.scalar(
                select(SigningRequestRow).where(
                    SigningRequestRow.submitted_by == account_id, SigningRequestRow.idempotency_key == key
                )
            )
            if existing is None:
                raise Conflict("IDEMPOTENCY_RACE", "retry the request", "请重试")
            if existing.payload_sha256 != payload_sha:
                raise Conflict(
                    "IDEMPOTENCY_KEY_REUSED",
                    "this idempotency key was used for a different request",
                    "该幂等键已用于另一申请",
                    details={"request_id": existing.request_id},
                )
            view = SigningRequestView.from_row(existing)
            if view.status == Status.APPROVED:
                operator = get_account(s, existing.submitted_by)
                approver = get_account(s, existing.approver_id) if existing.approver_id else None
        if view.status == Status.DENIED:
            raise _denied(view.reasons, view.request_id)
        if view.status == Status.APPROVED:
            # Approved but not sealed: the first attempt was cut off (its worker died, the token or the
            # database was down). The client's retry finishes it; the signer's idempotency key makes a
            # twin still running harmless (one settles, the other gets the same document back).
            return self._seal(view.request_id, operator, approver), False
        return view, False

    def _insert(
        self,
        row: SigningRequestRow,
        pdf: bytes | None,
        now: datetime,
        status: str,
        operator: str,
        codes: set[str],
    ) -> None:
        # Plain INSERTs on a Connection, not the ORM's unit of work or even a Session (their bookkeeping
        # cost more CPU than the round trips on this path); ``row`` stays a detached value the caller reads
        # from. The unique idempotency key is checked by the first statement, before anything else is
        # written.
        if status == Status.DENIED:
            # Refusals are evidence too: logged with the request, in the same transaction (the ledger
            # writes through a Session).
            with transaction(self.services.sessions) as s:
                _insert_request(s.connection(), row, pdf, now)
                self._log_refusal(s, row, operator, sorted(codes), f"refused:{row.request_id}")
            return
        engine = self.services.engine
        if is_sqlite(engine):
            with engine.begin() as conn:
                _insert_request(conn, row, pdf, now)
            return
        # PostgreSQL: one statement (the document as a data-modifying CTE of the request's INSERT), atomic by
        # itself, in autocommit: no BEGIN and COMMIT round trips.
        values = {f"r_{name}": value for name, value in _columns(row).items()}
        if pdf is not None:
            values.update(d_sha256=_sha256(pdf), d_data=pdf, d_created_at=now)
        execute_alone(engine, _request_insert(tuple(values), pdf is not None), values)

    # -- approval ---------------------------------------------------------------------------------------
    def _load(self, s: Session, principal: Principal, request_id: str) -> SigningRequestRow:
        row = s.get(SigningRequestRow, request_id)
        if row is None:
            raise NotFound("SIGNING_REQUEST_NOT_FOUND", "no such signing request", "用章申请不存在")
        if not (is_foreign_refusal(row) and principal.in_scope(org_code=row.operator_org)):
            # The seal's side sees it too: a refusal from outside is an attempt on its seal.
            principal.ensure_scope(township_code=row.township_code, department_code=row.department_code)
        return row

    def get(self, principal: Principal, request_id: str) -> SigningRequestView:
        with transaction(self.services.sessions) as s:
            return SigningRequestView.from_row(self._load(s, principal, request_id))

    def list(
        self, principal: Principal, *, status: str | None = None, limit: int = 100, before: str | None = None
    ) -> list[SigningRequestView]:
        stmt = select(SigningRequestRow).order_by(SigningRequestRow.created_at.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(SigningRequestRow.status == status)
        if not principal.county_wide:
            # A refusal from outside is filed under the operator's organisation (api._refusals).
            own = (
                SigningRequestRow.department_code
                if principal.role is Role.DEPARTMENT_OFFICER
                else SigningRequestRow.township_code
            )
            stmt = stmt.where(of_organisation(principal.org_code, own))
        with transaction(self.services.sessions) as s:
            rows = s.scalars(stmt).all()
            return [SigningRequestView.from_row(r) for r in rows]

    def approve(self, principal: Principal, request_id: str, comment: str) -> SigningRequestView:
        """The principal's approval: the signer's pre-check with the approver, then the sealing, which
        takes that pre-check as its decision (one read scope: one seal record, one policy revision)."""
        with read_scope():
            return self._approve(principal, request_id, comment)

    def _approve(self, principal: Principal, request_id: str, comment: str) -> SigningRequestView:
        with transaction(self.services.sessions) as s:
            row = self._load(s, principal, request_id)
            if row.status != Status.PENDING_APPROVAL:
                raise Conflict("NOT_PENDING", f"the request is {row.status}", "该申请不在待审批状态")
            operator = get_account(s, row.submitted_by)
            sub = Submission(
                row.seal_id, row.matter_code, row.stage, row.document_kind, row.reason, row.idempotency_key
            )
        checked = self._precheck(sub, operator, principal.account)
        reasons = _reasons(checked)
        codes = {r["code"] for r in reasons}
        if not checked.allowed and codes & APPROVER_REASONS:
            # The approver may not approve this one (self-approval, not a principal): the request waits.
            self._count_denials(reasons)
            raise _denied(reasons, request_id)
        now = _now()
        with transaction(self.services.sessions) as s:
            row = self._load(s, principal, request_id)
            if row.status != Status.PENDING_APPROVAL:
                raise Conflict("NOT_PENDING", f"the request is {row.status}", "该申请不在待审批状态")
            row.approver_id = principal.account.account_id
            row.decided_at = now
            row.decision_comment = comment
            row.reason_codes = json.dumps(reasons, ensure_ascii=False)
            row.updated_at = now
            if checked.allowed:
                row.status = Status.APPROVED
            else:
                row.status = Status.DENIED
                self._log_refusal(s, row, operator.username, sorted(codes), f"refused:{row.request_id}")
        if not checked.allowed:
            self._count_denials(reasons)
            raise _denied(reasons, request_id)
        return self._seal(request_id, operator, principal.account, checked=checked)

    def reject(self, principal: Principal, request_id: str, comment: str) -> SigningRequestView:
        if not comment.strip():
            raise BadInput("COMMENT_REQUIRED", "a rejection needs a comment", "驳回须填写意见")
        now = _now()
        with transaction(self.services.sessions) as s:
            row = self._load(s, principal, request_id)
            if row.status != Status.PENDING_APPROVAL:
                raise Conflict("NOT_PENDING", f"the request is {row.status}", "该申请不在待审批状态")
            if row.submitted_by == principal.account.account_id or _same_person(
                s, row.submitted_by, principal.account
            ):
                raise PermissionDenied(
                    "SELF_APPROVAL", "one cannot decide one's own request", "不得审批本人的申请"
                )
            row.status = Status.REJECTED
            row.reason_codes = json.dumps(
                [
                    {
                        "code": "REJECTED_BY_PRINCIPAL",
                        "message_en": "rejected by the principal",
                        "message_zh": "主要负责人驳回",
                    }
                ],
                ensure_ascii=False,
            )
            row.approver_id = principal.account.account_id
            row.decided_at = now
            row.decision_comment = comment
            row.updated_at = now
            operator = get_account(s, row.submitted_by)
            self._log_refusal(
                s, row, operator.username, ["REJECTED_BY_PRINCIPAL"], f"rejected:{row.request_id}"
            )
            view = SigningRequestView.from_row(row)
        self._count_denials([{"code": "REJECTED_BY_PRINCIPAL"}])
        return view

    # -- sealing ----------------------------------------------------------------------------------------
    def retry_seal(self, principal: Principal, request_id: str) -> SigningRequestView:
        with transaction(self.services.sessions) as s:
            row = self._load(s, principal, request_id)
            if row.status != Status.APPROVED:
                raise Conflict("NOT_APPROVED", f"the request is {row.status}", "该申请未处于已批准待用印状态")
            operator = get_account(s, row.submitted_by)
            approver = get_account(s, row.approver_id) if row.approver_id else None
        return self._seal(request_id, operator, approver)

    def _seal(
        self,
        request_id: str,
        operator: Account,
        approver: Account | None,
        held: tuple[SigningRequestRow, bytes | None] | None = None,
        checked: Precheck | None = None,
    ) -> SigningRequestView:
        """Apply the seal through the signer area (policy again, number, stamp, token, timestamp, ledger).

        The signer's idempotency key is derived from the request id, so a retry never seals twice. A
        token or TSA outage leaves the request APPROVED (retry with POST .../seal); bad input fails it.
        ``held`` is the row just committed by this call and its source PDF: a submission approved at once
        seals from them instead of reading both back (one round trip and the whole upload fewer).
        ``checked`` is the pre-check just made for this request, in this read scope: the signer takes it
        as the signing's decision (one decision per signing).
        """
        sealer = self.services.signer
        if sealer is None:
            with transaction(self.services.sessions) as s:
                row = s.get(SigningRequestRow, request_id)
                assert row is not None
                row.error_code = "SEALING_UNAVAILABLE"
                row.updated_at = _now()
                return SigningRequestView.from_row(row)
        from signer import SealRequest

        if held is not None:
            row, source_pdf = held
        else:
            with reading(self.services.sessions) as s:  # one row and its source document, by key
                found = s.get(SigningRequestRow, request_id)
                assert found is not None
                row = found
                source = s.get(DocumentRow, (request_id, "source"))
                source_pdf = bytes(source.data) if source is not None else None
        request = SealRequest(
            seal_id=row.seal_id,
            matter_code=row.matter_code,
            stage=row.stage,
            document_kind=row.document_kind,
            idempotency_key=signer_key(row.request_id),
            operator=self._actor(operator),
            approver=self._actor(approver) if approver is not None else None,
            reason=row.reason,
            unverified_pdf=source_pdf,
            template=row.template,
            template_data=json.loads(row.template_data)
            if row.template_data
            else ({} if row.template else None),
            personal={"applicant_name": row.applicant} if row.applicant else {},
            # on templates; on an upload where it fits, decided on the signer's one parse of the PDF
            verify_qr="if_blank" if self.services.settings.verify_qr else False,
            fresh_key=held is not None,  # the request was inserted by this call: its key is unused
        )
        supervisor = self._supervisor_of(request.matter_code, row.township_code, row.department_code)
        marked: list[SigningRequestView] = []

        def on_settled(sealed: SealedDocument) -> list[BoundStatement]:
            # Written by the signer's settle, with the ledger's statement: the request is SEALED with its
            # number, ledger entry and stored document, or none of them is written. Only the signing that
            # settles the number calls this, once: the request cannot be SEALED already.
            now = _now()
            values = _sealed_values(sealed, now)
            after = SimpleNamespace(**{**_current(row), **values})
            marked.append(SigningRequestView.from_row(after))
            return [
                (_MARK_SEALED, {"rq_id": request_id, **values}),
                *_outbox_events(after, "DECISION_ISSUED", now, supervisor),
            ]

        try:
            sealed = sealer.seal(request, checked=checked, on_settled=on_settled)
        except PolicyDenied as exc:
            # The signer logged the refusal; the facts changed since the pre-check (or approval).
            self._finish(request_id, Status.DENIED, exc.code, reasons=exc.details.get("reasons"))
            self._count_denials(list(exc.details.get("reasons", [])))
            raise _denied(list(exc.details.get("reasons", [])), request_id) from exc
        except BadInput as exc:
            self._finish(request_id, Status.FAILED, exc.code)
            raise
        except SealServiceError as exc:
            self._finish(request_id, Status.APPROVED, exc.code)  # retriable: token, TSA, database
            raise
        view: SigningRequestView | None
        if marked:  # recorded with the settle
            view = marked[0]
        else:  # a replay of an earlier signing (a retry after a lost answer): record it now, or read it
            with transaction(self.services.sessions) as s:
                view = self._mark_sealed(s, request_id, sealed, supervisor, _now())
        if view is None:  # a twin recorded it first
            with reading(self.services.sessions) as s:
                found = s.get(SigningRequestRow, request_id)
                assert found is not None
                return SigningRequestView.from_row(found)
        if self.metrics is not None and not sealed.replayed:
            self.metrics.signings.labels(view.seal_id, view.matter_code).inc()
        return view

    def wants_qr(self, source_pdf: bytes | None) -> bool:
        """The verification QR code (settings.verify_qr): on every template document; on an upload only
        when it is unsigned and blank where the code goes (the same bytes always get the same answer)."""
        if not self.services.settings.verify_qr:
            return False
        if source_pdf is None:
            return True
        from signer import qr_fits

        return bool(qr_fits(source_pdf, max_bytes=self.services.settings.max_pdf_bytes))

    def _mark_sealed(
        self, s: Session, request_id: str, sealed: SealedDocument, supervisor: SupervisionRoute, now: datetime
    ) -> SigningRequestView | None:
        """One guarded UPDATE; ``None`` if the request is already SEALED.

        A twin (the client's retry while this attempt still ran) may finish at the same time; the row lock
        makes the second wait, and then its condition no longer holds: the first records the document and
        publishes the decision, the second reads. The sealed bytes are kept once, by the signer under the
        request's idempotency key (see ``document``); rows sealed before that change also have a copy in
        api_documents.
        """
        marked = s.execute(
            update(_requests_t)
            .where(_requests_t.c.request_id == request_id, _requests_t.c.status != Status.SEALED)
            .values(**_sealed_values(sealed, now))
            .returning(*_requests_t.c)
        ).one_or_none()
        if marked is None:
            return None
        _publish(s, marked, "DECISION_ISSUED", now, supervisor)
        return SigningRequestView.from_row(marked)

    def _finish(
        self, request_id: str, status: str, code: str, reasons: Sequence[JsonObject] | None = None
    ) -> None:
        with transaction(self.services.sessions) as s:
            row = s.get(SigningRequestRow, request_id, with_for_update=True)
            assert row is not None
            if row.status == Status.SEALED:
                return  # a twin attempt sealed it meanwhile: its failure changes nothing
            row.status = status
            row.error_code = code
            if reasons is not None:
                row.reason_codes = json.dumps(list(reasons), ensure_ascii=False)
            row.updated_at = _now()

    # -- after sealing ----------------------------------------------------------------------------------
    def document(self, principal: Principal, request_id: str, role: str = "sealed") -> bytes:
        with transaction(self.services.sessions) as s:
            row = self._load(s, principal, request_id)
            status = row.status
            doc = s.get(DocumentRow, (request_id, role))
            if doc is not None:
                return bytes(doc.data)
        sealer = self.services.signer
        data = (
            sealer.sealed_pdf(signer_key(request_id))
            if role == "sealed" and status == Status.SEALED and sealer is not None
            else None
        )
        if data is None:
            raise Conflict("NOT_SEALED", f"the request is {status}: no sealed document", "该申请尚未用印")
        return data

    def receipt(self, principal: Principal, request_id: str) -> str:
        view = self.get(principal, request_id)
        if view.ledger_index is None:
            raise Conflict("NOT_SEALED", "no ledger entry yet", "尚无台账记录")
        return str(self.services.need_ledger().receipt(view.ledger_index).to_text())

    # -- the decision's lifecycle (变更、撤回、撤销、注销) -----------------------------------------------
    @staticmethod
    def _ensure_lifecycle_allowed(
        principal: Principal, target: SigningRequestRow | SigningRequestView
    ) -> None:
        """Raises unless ``principal`` may change the status of this decision now: a role holding
        DECISION_LIFECYCLE, the decision's organisation in scope, an issued decision not yet final.
        The API route, the console's actions and the console's pages all go through here."""
        from api._authz import Permission

        if not principal.may(Permission.DECISION_LIFECYCLE):
            raise PermissionDenied(
                "ROLE_FORBIDDEN",
                f"role {principal.role.value} may not change a decision's status",
                f"角色 {principal.role.value} 无权变更文书效力",
            )
        principal.ensure_scope(township_code=target.township_code, department_code=target.department_code)
        if target.status != Status.SEALED or not target.document_number:
            raise Conflict(
                "NOT_SEALED",
                "only an issued (sealed) decision can change status",
                "仅已用印的决定可变更状态",
            )
        if target.decision_status in FINAL_DECISION_STATUSES:
            raise Conflict(
                "DECISION_FINAL", f"the decision is already {target.decision_status}", "该决定已失效"
            )

    def lifecycle_actions(self, principal: Principal, view: SigningRequestView) -> tuple[str, ...]:
        """The statuses ``principal`` may give this decision now; empty when none (deny by default)."""
        try:
            self._ensure_lifecycle_allowed(principal, view)
        except SealServiceError:
            return ()
        return DECISION_STATUSES

    def check_decision_status(
        self, principal: Principal, request_id: str, status: str, reason: str, successor: str | None = None
    ) -> SigningRequestView:
        """Every check of :meth:`change_decision_status`, without writing (the console's confirmation)."""
        if status not in DECISION_STATUSES:
            raise BadInput(
                "DECISION_STATUS_INVALID", f"status must be one of {DECISION_STATUSES}", "状态无效"
            )
        if not reason.strip():
            raise BadInput("REASON_REQUIRED", "a status change needs a reason", "须填写理由")
        current = self.get(principal, request_id)
        self._ensure_lifecycle_allowed(principal, current)
        if successor is not None:
            self._check_successor(status, successor, current)
        return current

    def _check_successor(self, status: str, successor: str, current: SigningRequestView) -> None:
        """A successor (the document that replaces a changed decision) is named only for 变更, and is a
        document this county issued: verifiers everywhere will send holders to it."""
        if status != "CHANGED":
            raise BadInput(
                "DECISION_SUCCESSOR_INVALID",
                "only a change (CHANGED) names a successor",
                "仅变更可指定新文书",
            )
        if successor == current.document_number:
            raise BadInput(
                "DECISION_SUCCESSOR_INVALID", "a decision cannot succeed itself", "新文书不能是原文书本身"
            )
        with transaction(self.services.sessions) as s:
            issued = s.scalar(
                select(SigningRequestRow.request_id)
                .where(
                    SigningRequestRow.document_number == successor,
                    SigningRequestRow.status == Status.SEALED,
                )
                .limit(1)
            )
        if issued is None:
            raise BadInput(
                "DECISION_SUCCESSOR_UNKNOWN",
                f"no document numbered {successor!r} was issued here",
                f"本县未出具文号为 {successor} 的文书",
            )

    def change_decision_status(
        self, principal: Principal, request_id: str, status: str, reason: str, successor: str | None = None
    ) -> SigningRequestView:
        """变更、撤回、撤销、注销 an issued decision: a ledger entry, the request's status, a feed event."""
        return self.record_decision_status(principal, request_id, status, reason, successor)[0]

    def record_decision_status(
        self, principal: Principal, request_id: str, status: str, reason: str, successor: str | None = None
    ) -> tuple[SigningRequestView, DecisionEvent]:
        """As :meth:`change_decision_status`, also returning the event with its ledger entry's index. The
        county's signed status list is published again at once (verifiers elsewhere read it)."""
        from api._status_list import publish_quietly

        result = self._record_decision_status(principal, request_id, status, reason, successor)
        publish_quietly(self.services)
        return result

    def _record_decision_status(
        self, principal: Principal, request_id: str, status: str, reason: str, successor: str | None
    ) -> tuple[SigningRequestView, DecisionEvent]:
        from ledger import EntryFields, EntryKind

        current = self.check_decision_status(principal, request_id, status, reason, successor)
        supervisor = self._supervisor_of(current.matter_code, current.township_code, current.department_code)
        now = _now()
        with transaction(self.services.sessions) as s:
            row = self._load(s, principal, request_id)
            self._ensure_lifecycle_allowed(principal, row)  # again: the state may have moved since the read
            entry = self.services.need_ledger().append(
                s,
                EntryFields(
                    kind=EntryKind.DECISION_STATUS_CHANGED,
                    at=now,
                    body={
                        "document_number": row.document_number,
                        "status": status,
                        "reason": reason,
                        "actor": principal.account.username,
                        "request_id": row.request_id,
                        **({"successor": successor} if successor else {}),
                    },
                ),
                f"status:{row.request_id}:{status}:{_sha256(reason.encode())[:16]}",
            )
            row.decision_status = status
            row.updated_at = now
            extra: JsonObject = {"status_ledger_index": entry.index}
            if successor:
                extra["successor"] = successor
            _publish(s, row, "DECISION_STATUS_CHANGED", now, supervisor, extra)
            event = DecisionEvent(status, entry.at, entry.index, principal.account.username, reason)
            return SigningRequestView.from_row(row), event

    def decision_history(self, principal: Principal, request_id: str) -> tuple[DecisionEvent, ...]:
        """The decision's life, oldest first: issued, then each status change as its ledger entry says.

        The outbox (one event per issue and change, never pruned) says which ledger entries belong to the
        request; what each change was, by whom and why is read back from the ledger entry itself."""
        from ledger import EntryKind

        with transaction(self.services.sessions) as s:
            self._load(s, principal, request_id)
            rows = s.scalars(
                select(OutboxRow).where(OutboxRow.request_id == request_id).order_by(OutboxRow.event_id)
            ).all()
            events = [(r.event, json.loads(r.payload), aware(r.created_at)) for r in rows]
        ledger = self.services.ledger
        history: list[DecisionEvent] = []
        seen: set[int] = set()
        issued = False
        for kind, payload, at in events:
            if kind == "DECISION_ISSUED":
                if issued:  # one event per supervising department (issue 22, leak 16): one issue
                    continue
                issued = True
                index = payload.get("ledger_index")
                history.append(DecisionEvent("ISSUED", at, index if isinstance(index, int) else None))
                continue
            index = payload.get("status_ledger_index")
            if not isinstance(index, int) or ledger is None:
                history.append(DecisionEvent(str(payload.get("decision_status")), at, None))
                continue
            if index in seen:  # a retried change (same status and reason) is one ledger entry
                continue
            seen.add(index)
            entry = ledger.get(index)
            body = ledger.opened([entry])[0]  # actor and reason are salted in the entry (issue 21)
            if entry.kind is not EntryKind.DECISION_STATUS_CHANGED or body.get("request_id") != request_id:
                raise Conflict(
                    "LEDGER_REFERENCE_MISMATCH",
                    f"ledger entry {index} is not this request's status change",
                    "台账记录与该申请不符",
                )
            history.append(
                DecisionEvent(
                    str(body["status"]),
                    entry.at,
                    index,
                    str(body.get("actor", "")),
                    str(body.get("reason", "")),
                )
            )
        return tuple(history)

    def _supervisor_of(
        self, matter_code: str, township_code: str, department_code: str | None
    ) -> SupervisionRoute:
        """Who the decision is pushed to (审管联动, 000 四（六）, 003), read before any write transaction.

        By department *code*, never by the catalog's text (issue 22, leak 16), in this order:
        1. the matter's supervising departments (each gets its own event: a four-department cell reaches
           four departments);
        2. else its entrusting department;
        3. else the seal's department (a No. 2 seal);
        4. else the township's county: a matter whose catalog names no department goes to the county
           (its administrators and the county-wide feed), said so in the event, never to no one."""
        store = self.services.policy_store
        if store is None:  # no catalog: nothing can be decided either; the seal's department, if any
            return SupervisionRoute((department_code,), "SEAL_DEPARTMENT") if department_code else _UNROUTED
        try:
            m = store.matter_for(township_code, matter_code)  # one query, cached per policy revision
        except SealServiceError:  # the feed entry still goes out
            m = None
        if m is not None and m.supervising_codes:
            return SupervisionRoute(m.supervising_codes, "SUPERVISING_DEPARTMENT")
        if m is not None and m.department_code:
            return SupervisionRoute((m.department_code,), "ENTRUSTING_DEPARTMENT")
        if department_code:
            return SupervisionRoute((department_code,), "SEAL_DEPARTMENT")
        try:
            county = store.organisation(township_code).county_code
        except SealServiceError:
            county = None
        return SupervisionRoute((county,), "COUNTY") if county else _UNROUTED


@dataclass(frozen=True, slots=True)
class SupervisionRoute:
    """The organisations a decision's events go to, and why (``routing`` in each event)."""

    codes: tuple[str, ...]
    routing: str  # SUPERVISING_DEPARTMENT | ENTRUSTING_DEPARTMENT | SEAL_DEPARTMENT | COUNTY | UNROUTED


#: Only without a policy store (no catalog, no township registry): one event, for county-wide readers.
_UNROUTED = SupervisionRoute((), "UNROUTED")


# A new request and its uploaded document, built once: a Core INSERT without VALUES takes its columns from
# the bind values' names, and is compiled once per set of names (a request leaves its unset columns out).
_INSERT_REQUEST = insert(_requests_t)
_INSERT_DOCUMENT = insert(_documents_t)


@functools.lru_cache(maxsize=64)
def _request_insert(names: tuple[str, ...], with_document: bool) -> Insert:
    """PostgreSQL's one-statement form of :func:`_insert_request`, built once per shape: ``names`` are its
    bind values' (``r_<column>`` for each column the request sets), ``with_document`` adds the source
    document (``d_sha256``, ``d_data``, ``d_created_at``) as a data-modifying CTE."""
    statement = insert(_requests_t).values(
        {name.removeprefix("r_"): bindparam(name) for name in names if name.startswith("r_")}
    )
    if with_document:
        document = insert(_documents_t).values(
            request_id=bindparam("r_request_id"),
            role=literal("source"),
            sha256=bindparam("d_sha256"),
            data=bindparam("d_data"),
            created_at=bindparam("d_created_at"),
        )
        statement = statement.add_cte(document.cte("source_document"))
    return statement


def _insert_request(conn: Connection, row: SigningRequestRow, pdf: bytes | None, now: datetime) -> None:
    """A new request's row, and its uploaded PDF as its source document, in ``conn``'s transaction."""
    conn.execute(_INSERT_REQUEST, _columns(row))
    if pdf is not None:
        conn.execute(
            _INSERT_DOCUMENT,
            {
                "request_id": row.request_id,
                "role": "source",
                "sha256": _sha256(pdf),
                "data": pdf,
                "created_at": now,
            },
        )


def _columns(row: SigningRequestRow) -> JsonObject:
    """The values set on a new (transient) row, for a plain INSERT; unset columns keep their defaults."""
    values = {c.key: getattr(row, c.key) for c in _requests_t.c}
    return {k: v for k, v in values.items() if v is not None}


def _sealed_values(sealed: SealedDocument, now: datetime) -> JsonObject:
    """What a request row holds once its document is sealed."""
    return {
        "status": Status.SEALED,
        "document_number": sealed.document_number,
        "ledger_index": sealed.ledger_index,
        "sealed_sha256": sealed.sha256,
        "error_code": None,
        "updated_at": now,
    }


def _current(row: SigningRequestRow) -> JsonObject:
    """A request row's column values, with the table's defaults where a new row left them unset."""
    out = {}
    for c in _requests_t.c:
        value = getattr(row, c.key)
        if value is None and c.default is not None and c.default.is_scalar:
            value = c.default.arg  # type: ignore[attr-defined]
        out[c.key] = value
    return out


def _outbox_events(
    row: RequestColumns, event: str, now: datetime, route: SupervisionRoute, extra: JsonObject | None = None
) -> list[BoundStatement]:
    """The outbox events for the supervision feed, one per organisation the route names: no personal data,
    only what a supervisor needs.

    ``row`` has a request row's column names (an ORM row, a ``RETURNING`` result, a namespace)."""
    payload = json.dumps(
        {
            "request_id": row.request_id,
            "document_number": row.document_number,
            "seal_id": row.seal_id,
            "matter": row.matter_code,
            "stage": row.stage,
            "document_kind": row.document_kind,
            "township_code": row.township_code,
            "decision_status": row.decision_status,
            "ledger_index": row.ledger_index,
            "sealed_sha256": row.sealed_sha256,
            "at": now.isoformat(),
            "routing": route.routing,
            "supervising_codes": list(route.codes),
            **(extra or {}),
        },
        ensure_ascii=False,
    )
    return [
        (
            _OUTBOX_INSERT,
            {
                "event": event,
                "request_id": row.request_id,
                "supervising_code": code,
                "township_code": row.township_code,
                "payload": payload,
                "created_at": now,
            },
        )
        for code in (route.codes or (None,))
    ]


def _publish(
    s: Session,
    row: RequestColumns,
    event: str,
    now: datetime,
    supervisor: SupervisionRoute,
    extra: JsonObject | None = None,
) -> None:
    """Queue the outbox events (see :func:`_outbox_events`) in ``s``'s transaction."""
    for statement, values in _outbox_events(row, event, now, supervisor, extra):
        s.execute(statement, dict(values))


def feed(services: Services, principal: Principal, cursor: int, limit: int) -> tuple[list[JsonObject], int]:
    """Outbox events after ``cursor``, oldest first, in the caller's scope: (events, next cursor)."""
    stmt = select(OutboxRow).where(OutboxRow.event_id > cursor).order_by(OutboxRow.event_id).limit(limit)
    if not principal.county_wide:
        stmt = stmt.where(OutboxRow.supervising_code == principal.org_code)
    with transaction(services.sessions) as s:
        rows = s.scalars(stmt).all()
        events = [
            {
                "event_id": r.event_id,
                "event": r.event,
                "supervising_code": r.supervising_code,
                **json.loads(r.payload),
            }
            for r in rows
        ]
    return events, (events[-1]["event_id"] if events else cursor)
