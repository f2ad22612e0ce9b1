"""ORM rows of the api area (tables ``api_*``). Rows stay here; frozen dataclasses leave."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class AccountRow(Base):
    __tablename__ = "api_accounts"

    account_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(128), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    org_code: Mapped[str] = mapped_column(String(64), nullable=False)
    service_centre: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The natural person behind the account (accounts of one person share it; migration api_0006_person).
    person_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # The OpenID Provider identity bound to the account (migration api_0008_login_guard): the first OIDC
    # login records it, later ones must present the same pair (issue 21, finding 15).
    oidc_issuer: Mapped[str | None] = mapped_column(String(512))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_api_accounts_oidc_identity"),)


class LoginFailureRow(Base):
    """Failed logins per account name or client address (keys are digests), shared by every worker."""

    __tablename__ = "api_login_failures"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TokenRow(Base):
    __tablename__ = "api_tokens"

    token_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("api_accounts.account_id"), nullable=False, index=True
    )
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SessionRow(Base):
    __tablename__ = "api_sessions"

    session_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("api_accounts.account_id"), nullable=False)
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_api_sessions_account_id", "account_id"),)


class SigningRequestRow(Base):
    """One request to apply a seal, from submission through approval to the sealed document."""

    __tablename__ = "api_signing_requests"

    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    submitted_by: Mapped[str] = mapped_column(String(36), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    payload_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    seal_id: Mapped[str] = mapped_column(String(64), nullable=False)
    township_code: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    department_code: Mapped[str | None] = mapped_column(String(64))
    matter_code: Mapped[str] = mapped_column(String(64), nullable=False)
    stage: Mapped[str] = mapped_column(String(16), nullable=False)
    document_kind: Mapped[str] = mapped_column(String(32), nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    # Personal data of the applicant, kept apart from everything logged; erasable.
    applicant: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16), nullable=False)  # upload | template
    template: Mapped[str | None] = mapped_column(String(64))
    template_data: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24), nullable=False, index=True)
    reason_codes: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON list
    requires_approval: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    approver_id: Mapped[str | None] = mapped_column(String(36))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_comment: Mapped[str | None] = mapped_column(String(1000))
    document_number: Mapped[str | None] = mapped_column(String(64), index=True)  # decision status lookups
    ledger_index: Mapped[int | None] = mapped_column(Integer)
    sealed_sha256: Mapped[str | None] = mapped_column(String(64))
    decision_status: Mapped[str] = mapped_column(String(16), nullable=False, default="VALID")
    error_code: Mapped[str | None] = mapped_column(String(64))
    # The submitter's organisation when submitted (migration api_0005_operator_org; None before it). A refusal
    # whose operator is not of the seal's township is filed under this organisation (issue 21, finding 4).
    operator_org: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The rejected or refused request this one replaces, edited (migration api_0009_resubmits): at most one.
    resubmits: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        UniqueConstraint("submitted_by", "idempotency_key", name="uq_api_signing_requests_idem"),
        Index("ix_api_signing_requests_resubmits", "resubmits", unique=True),
    )


class DocumentRow(Base):
    """The PDF submitted (``source``) and the sealed result (``sealed``) of a signing request."""

    __tablename__ = "api_documents"

    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    role: Mapped[str] = mapped_column(String(8), primary_key=True)  # source | sealed
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class OutboxRow(Base):
    """Supervision feed (审管联动): every issued or changed decision, in order; the cursor is ``event_id``."""

    __tablename__ = "api_outbox"

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    request_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)  # a request's history
    supervising_code: Mapped[str | None] = mapped_column(String(64), index=True)
    township_code: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)  # JSON, no personal data
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class WebhookRow(Base):
    """A supervising department's webhook: events are delivered in order, each until acknowledged (2xx)."""

    __tablename__ = "api_webhooks"

    webhook_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    supervising_code: Mapped[str | None] = mapped_column(String(64))  # None: every event (county)
    url: Mapped[str] = mapped_column(String(500), nullable=False)
    secret: Mapped[str] = mapped_column(String(128), nullable=False)  # HMAC key; shown once, never logged
    cursor: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_error: Mapped[str | None] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
