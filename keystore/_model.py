"""Frozen values that travel between packages: algorithms, seal kinds and states, seals, lifecycle events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class KeyAlgorithm(StrEnum):
    """Key types the keystore generates inside the token."""

    EC_P256 = "EC_P256"
    RSA_3072 = "RSA_3072"
    ED25519 = "ED25519"


class SealKind(StrEnum):
    """A township's approval seal (行政审批服务专用章) or a department's numbered No. 2 seal (2号章)."""

    TOWNSHIP_APPROVAL = "TOWNSHIP_APPROVAL"
    DEPARTMENT_NO2 = "DEPARTMENT_NO2"


class SealStatus(StrEnum):
    ISSUED = "ISSUED"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    CANCELLED = "CANCELLED"
    RETIRED = "RETIRED"


class SealEventKind(StrEnum):
    ISSUED = "ISSUED"
    ACTIVATED = "ACTIVATED"
    SUSPENDED = "SUSPENDED"
    RESUMED = "RESUMED"
    CHANGED = "CHANGED"
    CANCELLED = "CANCELLED"
    RETIRED = "RETIRED"


class RevocationReason(StrEnum):
    """RFC 5280 CRLReason values this service uses."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key_compromise"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation_of_operation"
    CERTIFICATE_HOLD = "certificate_hold"


@dataclass(frozen=True)
class KeyRef:
    """A key pair inside the token, named by its label (CKA_LABEL) and id (CKA_ID)."""

    label: str
    algorithm: KeyAlgorithm
    key_id: bytes


@dataclass(frozen=True)
class Seal:
    seal_id: str
    name: str
    kind: SealKind
    number: int | None
    county: str
    township: str
    township_code: str
    department: str | None
    status: SealStatus
    key_label: str
    key_algorithm: KeyAlgorithm
    cert_serial: int
    cert_der: bytes
    not_before: datetime
    not_after: datetime
    custodian: str
    department_code: str | None = None


@dataclass(frozen=True)
class SealEvent:
    """One lifecycle transition, as the ledger records it (append-only)."""

    seal_id: str
    event: SealEventKind
    actor: str
    approver: str | None
    reason: str | None
    at: datetime
    cert_serial: int
    requested_by: str | None = None
    previous_cert_serial: int | None = None
    status: SealStatus | None = None
    event_id: int | None = None  # position in the keystore's append-only event table (an idempotency key)


@dataclass(frozen=True)
class CertificateRecord:
    serial: int
    issuer: str
    subject_kind: str
    seal_id: str | None
    cert_der: bytes
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    revocation_reason: RevocationReason | None
