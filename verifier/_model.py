"""What a verification says: ETSI EN 319 102-1 style indications, reasons, facts, limits.

Everything here is a frozen dataclass that round-trips through JSON (``to_dict`` / ``from_dict``): the
strict checks run in a sandboxed child process, and its answer crosses the process boundary as JSON, never
as a pickle (the child handled hostile bytes; the parent must not execute what it sends back).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, TypeVar


class Indication(StrEnum):
    """ETSI EN 319 102-1 main status indication."""

    TOTAL_PASSED = "TOTAL_PASSED"
    INDETERMINATE = "INDETERMINATE"
    TOTAL_FAILED = "TOTAL_FAILED"


class SubIndication(StrEnum):
    """ETSI EN 319 102-1 sub-indications used by this verifier (a subset, same spelling)."""

    # TOTAL_FAILED
    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    NOT_YET_VALID = "NOT_YET_VALID"
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    # INDETERMINATE
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"
    REVOKED_NO_POE = "REVOKED_NO_POE"
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
    CERTIFICATE_CHAIN_GENERAL_FAILURE = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    TRY_LATER = "TRY_LATER"
    POLICY_PROCESSING_ERROR = "POLICY_PROCESSING_ERROR"
    GENERIC = "GENERIC"


class Severity(StrEnum):
    """How much a reason weighs in the verdict."""

    FAIL = "fail"  # forces TOTAL_FAILED
    INDETERMINATE = "indeterminate"  # at best INDETERMINATE
    INFO = "info"  # shown, does not lower the verdict


@dataclass(frozen=True)
class Reason:
    code: str
    message_en: str
    message_zh: str
    severity: Severity
    sub_indication: SubIndication | None = None
    signature: str | None = None  # field name when the reason is about one signature
    detail: str | None = None  # library message, offsets …; never shown as the headline


@dataclass(frozen=True)
class SealFacts:
    """What the signing certificate says about the seal (parsed defensively; any field may be None)."""

    subject: str
    issuer: str
    cert_serial_hex: str
    seal_name: str | None = None
    county: str | None = None
    township: str | None = None  # OU: township or department
    seal_id: str | None = None
    kind: str | None = None
    number: int | None = None
    township_code: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    extension: dict[str, str] = field(default_factory=dict)  # the private extension, if readable
    # The issuing CA's key identifier (the certificate's authorityKeyIdentifier, hex): which county's trust
    # this seal belongs to when several counties' CAs share a name.
    issuer_key_id: str | None = None


@dataclass(frozen=True)
class BindingFacts:
    """The policy evidence the signer bound into the signed data."""

    matter: str | None = None
    stage: str | None = None
    document_kind: str | None = None
    document_number: str | None = None
    idempotency_key: str | None = None
    decision_id: str | None = None
    ledger_index: int | None = None
    source: str | None = None  # where it was read from (sig-dict key, CMS attribute)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SignatureReport:
    field_name: str
    kind: str  # "signature" | "doc_timestamp"
    indication: Indication
    sub_indication: SubIndication | None
    reasons: tuple[Reason, ...]
    byte_range: tuple[int, ...] | None
    signed_revision: int | None
    covers_whole_file: bool
    intact: bool | None
    crypto_valid: bool | None
    trusted: bool | None
    cross_check: str | None  # endesive's integrity verdict: "agree", "disagree: …", "unavailable: …"
    signing_time: datetime | None  # from a valid signature timestamp (proof of existence)
    claimed_signing_time: datetime | None  # what the signer says (not proof)
    modification_level: str | None
    md_algorithm: str | None
    seal: SealFacts | None
    binding: BindingFacts | None


@dataclass(frozen=True)
class DocumentFacts:
    """The facts a person wants, drawn from the first seal (the earliest signature)."""

    seal_name: str | None = None
    county: str | None = None
    township: str | None = None
    seal_id: str | None = None
    kind: str | None = None
    number: int | None = None
    matter: str | None = None
    stage: str | None = None
    document_kind: str | None = None
    document_number: str | None = None
    signing_time: datetime | None = None
    signing_time_proven: bool = False  # True: from a valid, trusted timestamp; False: the signer's claim
    attested_by: tuple[str, ...] = ()
    ledger_index: int | None = None
    ledger_verified: bool | None = None
    status: str | None = None  # valid / changed / withdrawn / revoked / cancelled, from the status lookup
    successor_document_number: str | None = None  # 变更: the document that replaces this one


@dataclass(frozen=True)
class VerificationReport:
    indication: Indication
    sub_indication: SubIndication | None
    reasons: tuple[Reason, ...]
    signatures: tuple[SignatureReport, ...]
    facts: DocumentFacts
    unreadable: bool
    file_sha256: str | None
    file_size: int
    revisions: int | None
    verified_at: datetime
    checks: tuple[str, ...]  # which checks ran (qpdf, strict-xref, diff, endesive, trust, ledger …)
    revision_sha256: tuple[str, ...] = ()  # SHA-256 of the file up to the end of each revision, oldest first

    @property
    def passed(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED

    @property
    def codes(self) -> tuple[str, ...]:
        out = [r.code for r in self.reasons]
        for sig in self.signatures:
            out.extend(r.code for r in sig.reasons)
        return tuple(dict.fromkeys(out))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _jsonable(self)  # a dataclass: always a dict
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerificationReport:
        return _from_jsonable(cls, data)


@dataclass(frozen=True)
class VerifyLimits:
    """Bounds on one verification; hostile input must end in an answer, not a hang or an OOM."""

    max_bytes: int = 50 * 1024 * 1024
    timeout_s: float = 20.0
    # Memory a sandboxed verification may add to its forked worker (RLIMIT_DATA above the worker's own
    # private writable mappings at its start, so reserved-but-unused address space — PDFium — is free):
    # a hostile file ends in VERIFY_RESOURCE_LIMIT before it holds more than this much real memory.
    memory_bytes: int = 256 * 1024 * 1024
    max_signatures: int = 32
    max_revisions: int = 64
    # The pre-parse budget (verifier._budget): over any of these → VERIFY_BUDGET_EXCEEDED, unread.
    budget: bool = True
    max_objects: int = 50_000  # object headers + object-stream members; also any declared /Size
    max_xref_entries: int = 200_000  # xref table rows and xref stream entries, all revisions together
    max_structure_bytes: int = 32 * 1024 * 1024  # xref and object streams inflated (the parser keeps them)
    max_expanded_bytes: int = 128 * 1024 * 1024  # every stream inflated, all together
    qpdf: bool = True  # run `qpdf --check` on the file
    qpdf_timeout_s: float = 10.0
    cross_check: bool = True  # endesive as an independent second integrity check
    sandbox: bool = True  # parse in a forked child with RLIMIT_AS and a timeout
    sandbox_mode: str = "pool"  # "pool": pre-forked recycled workers; "fork": a fresh child per document


_T = TypeVar("_T")


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    import typing

    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _from_jsonable(cls: type[_T], data: Any) -> _T:
    """Rebuild a dataclass tree from :func:`_jsonable` output, using the field annotations."""
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


def _convert(tp: Any, value: Any) -> Any:
    import types
    import typing

    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], value)
    if origin is tuple:
        item_type = typing.get_args(tp)[0]
        return tuple(_convert(item_type, v) for v in value)
    if origin is dict:
        return dict(value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if tp is datetime:
        return datetime.fromisoformat(value)
    if isinstance(tp, type) and is_dataclass(tp):
        return _from_jsonable(tp, value)
    return value


__all__ = [
    "BindingFacts",
    "DocumentFacts",
    "Indication",
    "Reason",
    "SealFacts",
    "Severity",
    "SignatureReport",
    "SubIndication",
    "VerificationReport",
    "VerifyLimits",
]
