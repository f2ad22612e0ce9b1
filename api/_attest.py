"""County attestation (书面认证, R12) as a feature: the checks around ``signer.Sealer.attest``.

A county department adds its own seal, as a second incremental signature on a new field, to a document a
township sealed, so that an office in another county recognises it. ``Sealer.attest`` only signs; what may be
attested is decided here, once, for the API route, the console page and ``yizhang attest``:

1. The attesting seal is a county department's own: ``department_code`` set (else
   ``ATTEST_SEAL_NOT_DEPARTMENT``), not a No. 2 seal entrusted to a township (its holder is a township in the
   policy store: ``ATTEST_SEAL_ENTRUSTED``; the township would be vouching for itself), and, for an account,
   of the caller's own department (``ATTEST_SEAL_OTHER_DEPARTMENT``).
2. The document verifies TOTAL_PASSED with this county's trust list and this server's evidence (ledger,
   decision status), exactly as ``POST /v1/verify`` answers it. A decision since 变更/撤回/撤销/注销 is
   refused as such (``ATTEST_DECISION_NOT_IN_FORCE``, 409; the verifier's status and the request rows are
   both asked); any other verdict is ``ATTEST_DOCUMENT_NOT_VERIFIED`` (422) with the verifier's codes.
3. The seal is not on the document already (``ATTEST_ALREADY_ATTESTED``: it sealed it, or attested it).
4. The department is responsible for the matter: the owning (entrusting) or a supervising department of the
   document's matter in the county catalog, for the township that sealed it. A matter the catalog gives no
   county department (a township's own matter) cannot be attested: ``ATTEST_DEPARTMENT_NOT_RESPONSIBLE``.
5. ``Sealer.attest``: the department's seal, no new number (the document keeps its own), a ledger entry
   (stage ``ATTESTATION``). A retry with the same idempotency key answers the stored result.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from api._json import JsonObject, JsonValue
from core.errors import (
    BadInput,
    Conflict,
    NotFound,
    PermissionDenied,
    PolicyDenied,
    Unavailable,
    VerificationError,
)
from ledger import DecisionStatus
from policies import OrgKind

if TYPE_CHECKING:
    from api._accounts import Account
    from api._services import Services
    from keystore import Seal
    from policies import Actor
    from verifier import VerificationReport


#: Decision statuses after which a document may not be attested (变更 too: attest its successor instead).
NOT_IN_FORCE = frozenset(s.value for s in DecisionStatus)
DEFAULT_REASON = "书面认证：本文书经县级部门认证，供县外使用"
_SPLIT = re.compile(r"[、，,；;/\s]+")


@dataclass(frozen=True)
class Attestation:
    """An attested document: the same document number, the department's seal added, its ledger entry."""

    document_number: str | None
    ledger_index: int | None
    sha256: str
    seal_id: str
    seal_name: str
    department_code: str
    matter: str | None
    idempotency_key: str
    replayed: bool
    pdf: bytes


def operator_of(account: Account) -> Actor:
    """The ledger's operator for an account attesting: a county department's act (``DEPARTMENT_OFFICER``)."""
    from policies import Actor, Role

    return Actor(
        user_id=account.account_id,
        role=Role.DEPARTMENT_OFFICER,
        org_code=account.org_code,
        service_centre=account.service_centre,
    )


def check_text(value: str, field: str) -> str:
    """The text, unless it holds a control character or a lone surrogate (``TEXT_INVALID_CHARACTER``): it
    goes into the signature's /Reason and the ledger. Multipart fields pass no middleware that checks it."""
    if any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in value):
        raise BadInput(
            "TEXT_INVALID_CHARACTER",
            f"{field} holds a control character or an invalid code point",
            f"{field} 含有控制字符或无效字符",
            details={"field": field},
        )
    return value


def _denied(code: str, en: str, zh: str, **details: JsonValue) -> PolicyDenied:
    return PolicyDenied(
        code, en, zh, details={"reasons": [{"code": code, "message_en": en, "message_zh": zh}], **details}
    )


def attesting_seal(services: Services, seal_id: str, department_code: str | None) -> Seal:
    """Step 1: the seal, if it may attest for ``department_code`` (``None``: any department's, the CLI)."""
    registry = services.need_seal_registry()
    seal = registry.get(seal_id)
    if not seal.department_code:
        raise _denied(
            "ATTEST_SEAL_NOT_DEPARTMENT",
            "attestation is by a county department's seal",
            "书面认证须使用县级部门印章",
        )
    if department_code is not None and seal.department_code != department_code:
        raise PermissionDenied(
            "ATTEST_SEAL_OTHER_DEPARTMENT",
            "the seal belongs to another department",
            "该印章属于其他部门",
        )
    if _held_by_township(services, seal.township_code):
        raise _denied(
            "ATTEST_SEAL_ENTRUSTED",
            "a No. 2 seal entrusted to a township cannot attest; use the department's own seal",
            "委托乡镇使用的2号章不能用于书面认证，请使用部门自有印章",
        )
    return seal


def attestable_seals(services: Services, department_code: str) -> list[Seal]:
    """The active seals a department may attest with (the console's picker)."""
    registry = services.need_seal_registry()
    out = []
    for seal in registry.list():
        if seal.department_code != department_code or seal.status.value != "ACTIVE":
            continue
        if not _held_by_township(services, seal.township_code):
            out.append(seal)
    return out


def _held_by_township(services: Services, holder_code: str) -> bool:
    store = services.policy_store
    if store is None:
        raise Unavailable("POLICY_STORE_UNAVAILABLE", "the policy store is not configured", "策略库未配置")
    try:
        org = store.organisation(holder_code)
    except NotFound:
        return False  # a department's own seal names the department (or no registered organisation)
    return bool(org.kind is OrgKind.TOWNSHIP)


def stored_document(services: Services, document_number: str) -> bytes:
    """The latest stored sealed copy of a document of this county (earlier attestations included)."""
    check_text(document_number, "document_number")
    from core.db import transaction
    from signer import latest_copy_pdf

    with transaction(services.sessions) as s:
        found = latest_copy_pdf(s, document_number)
    if found is None:
        raise NotFound("DOCUMENT_NOT_FOUND", "no sealed document with this number", "本县没有该文号的文书")
    return found


def verify_for_attestation(services: Services, unverified_pdf: bytes) -> VerificationReport:
    """Step 2: the verifier's report, as ``POST /v1/verify`` makes it (home trust list, server evidence)."""
    from api.routes._public import _evidence
    from verifier import TrustList, VerifyLimits, verify_document

    try:
        trust = TrustList.for_home(services.settings.home_dir)
    except BadInput as exc:
        raise Unavailable("TRUST_NOT_CONFIGURED", exc.message_en, exc.message_zh) from exc
    limits = VerifyLimits(max_bytes=services.settings.max_pdf_bytes)
    return verify_document(
        unverified_pdf, trust, now=datetime.now(UTC), limits=limits, evidence=_evidence(services)
    )


def _decision_statuses(services: Services, document_number: str | None) -> set[str]:
    """The decision statuses of the signing requests with this number (none of them may be out of force)."""
    if not document_number:
        return set()
    from sqlalchemy import select

    from api._storage import SigningRequestRow
    from core.db import transaction

    with transaction(services.sessions) as s:
        rows = s.scalars(
            select(SigningRequestRow.decision_status).where(
                SigningRequestRow.document_number == document_number
            )
        ).all()
    return {str(r).upper() for r in rows}


def _refuse_unless_in_force(services: Services, report: VerificationReport) -> None:
    statuses = _decision_statuses(services, report.facts.document_number)
    if report.facts.status:
        statuses.add(str(report.facts.status).upper())
    out = sorted(statuses & NOT_IN_FORCE)
    if out:
        raise Conflict(
            "ATTEST_DECISION_NOT_IN_FORCE",
            f"the decision is {out[0]}: it cannot be attested",
            "该决定已变更、撤回、撤销或注销，不能认证",
            details={"decision_status": out[0], "document_number": report.facts.document_number},
        )


def responsible_departments(services: Services, township_code: str, matter_code: str | None) -> set[str]:
    """Step 4: the owning and supervising departments of the matter in the township's county catalog."""
    store = services.policy_store
    if store is None or not matter_code:
        return set()
    matter = store.matter_for(township_code, matter_code)
    if matter is None:
        return set()
    found = {matter.department_code or ""}
    # by code (issue 22, leak 16); a matter imported before the codes were kept falls back to its text
    found.update(matter.supervising_codes or _SPLIT.split(matter.supervising_department or ""))
    return {d for d in found if d}


def attest_document(
    services: Services,
    *,
    seal_id: str,
    unverified_pdf: bytes,
    operator: Actor,
    department_code: str | None,
    reason: str = "",
    idempotency_key: str | None = None,
) -> Attestation:
    """Attest a sealed document (steps 1-5 of the module's plan); raises with a stable code otherwise.

    ``operator`` is the ``policies.Actor`` recorded in the ledger; ``department_code`` is the caller's
    department (an account), or ``None`` for the command line (the seal's department)."""
    from signer import AttestRequest

    check_text(reason, "reason")
    check_text(seal_id, "seal_id")
    # 1
    seal = attesting_seal(services, seal_id, department_code)
    # 2
    report = verify_for_attestation(services, unverified_pdf)
    if report.unreadable:
        raise BadInput("PDF_UNREADABLE", "the file is not a readable PDF", "文件不是可读取的PDF")
    _refuse_unless_in_force(services, report)
    if not report.passed:
        codes = list(report.codes)
        raise VerificationError(
            "ATTEST_DOCUMENT_NOT_VERIFIED",
            f"the document does not verify ({report.indication.value}: {', '.join(codes[:8])})",
            "文书未通过验证，不能认证",
            details={"indication": report.indication.value, "reason_codes": codes},
        )
    # 3
    on_document = {s.seal.seal_id for s in report.signatures if s.seal is not None}
    if seal.seal_id in on_document:
        raise Conflict(
            "ATTEST_ALREADY_ATTESTED",
            "this seal is on the document already",
            "该印章已在文书上（已盖章或已认证）",
        )
    # 4
    if not report.facts.seal_id:
        raise BadInput("ATTEST_NOT_SEALED", "the document carries no seal of this county", "文书无本县印章")
    first = services.need_seal_registry().get(report.facts.seal_id)
    responsible = responsible_departments(services, first.township_code, report.facts.matter)
    if seal.department_code not in responsible:
        raise _denied(
            "ATTEST_DEPARTMENT_NOT_RESPONSIBLE",
            "only the matter's owning or supervising county department may attest it",
            "仅该事项的主管或监管县级部门可以认证",
            matter=report.facts.matter,
        )
    # 5
    key = idempotency_key or _derived_key(seal.seal_id, operator, unverified_pdf)
    sealer = services.need_signer()
    done = sealer.attest(
        AttestRequest(
            seal_id=seal.seal_id,
            sealed_pdf=unverified_pdf,
            idempotency_key=key,
            operator=operator,
            reason=_reason(reason),
        )
    )
    return Attestation(
        document_number=done.document_number,
        ledger_index=done.ledger_index,
        sha256=done.sha256,
        seal_id=seal.seal_id,
        seal_name=seal.name,
        department_code=str(seal.department_code),
        matter=report.facts.matter,
        idempotency_key=key,
        replayed=bool(getattr(done, "replayed", False)),
        pdf=done.pdf,
    )


def _derived_key(seal_id: str, operator: Actor, pdf: bytes) -> str:
    """The same officer attesting the same file with the same seal: one attestation (a retry replays)."""
    who = str(getattr(operator, "user_id", ""))
    digest = hashlib.sha256(f"{seal_id}\n{who}\n".encode() + hashlib.sha256(pdf).digest())
    return "attest-" + digest.hexdigest()[:40]


def to_summary(a: Attestation) -> JsonObject:
    """The answer's fields, without the PDF."""
    return {
        "document_number": a.document_number,
        "ledger_index": a.ledger_index,
        "sha256": a.sha256,
        "seal_id": a.seal_id,
        "attested_by": a.seal_name,
        "department_code": a.department_code,
        "matter": a.matter,
        "idempotency_key": a.idempotency_key,
        "replayed": a.replayed,
    }


def _reason(text: str) -> str:
    text = text.strip()
    if not text:
        return DEFAULT_REASON
    return text if text.startswith("书面认证") else f"书面认证：{text}"


__all__ = [
    "Attestation",
    "attest_document",
    "attestable_seals",
    "attesting_seal",
    "operator_of",
    "responsible_departments",
    "stored_document",
    "to_summary",
    "verify_for_attestation",
]
