"""ORM rows of the keystore area (tables ``ks_*``). Only this package touches them; dataclasses leave it.

Serial numbers are up to 159 bits (RFC 5280 allows 20 octets), more than a BIGINT: they are stored as
decimal strings.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class CaRow(Base):
    __tablename__ = "ks_cas"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # root | issuing
    key_label: Mapped[str] = mapped_column(String(128), nullable=False)
    key_algorithm: Mapped[str] = mapped_column(String(16), nullable=False)
    cert_serial: Mapped[str] = mapped_column(String(64), nullable=False)
    cert_der: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    crl_number: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class CertificateRow(Base):
    __tablename__ = "ks_certificates"

    serial: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(64), nullable=False)  # the CaRow.name that signed it
    subject_kind: Mapped[str] = mapped_column(String(16), nullable=False)  # ca | seal | tsa
    seal_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    key_label: Mapped[str] = mapped_column(String(128), nullable=False)
    cert_der: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    not_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_ks_certificates_issuer_revoked", "issuer", "revoked_at"),)


class SealRow(Base):
    __tablename__ = "ks_seals"

    seal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # The name while the seal is live (issued/active/suspended), NULL once cancelled or retired: the unique
    # constraint below then forbids two live seals of one name in a township on SQLite and PostgreSQL alike.
    live_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    county: Mapped[str] = mapped_column(String(128), nullable=False)
    township: Mapped[str] = mapped_column(String(128), nullable=False)
    township_code: Mapped[str] = mapped_column(String(32), nullable=False)
    department: Mapped[str | None] = mapped_column(String(128), nullable=True)
    department_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    key_label: Mapped[str] = mapped_column(String(128), nullable=False)
    key_algorithm: Mapped[str] = mapped_column(String(16), nullable=False)
    key_generation: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    cert_serial: Mapped[str] = mapped_column(String(64), ForeignKey("ks_certificates.serial"), nullable=False)
    custodian: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (UniqueConstraint("township_code", "live_name", name="uq_ks_seals_live_name"),)


class SealEventRow(Base):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "ks_seal_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seal_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("ks_seals.seal_id"), nullable=False, index=True
    )
    event: Mapped[str] = mapped_column(String(16), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16), nullable=False)
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    requested_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    approver: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    cert_serial: Mapped[str] = mapped_column(String(64), nullable=False)
    previous_cert_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


def known_seal_id(conn: Connection, seal_id: str) -> str | None:
    """``seal_id`` when it is one of this county's seals (a row of the seal register), else None."""
    found = conn.execute(select(SealRow.seal_id).where(SealRow.seal_id == seal_id)).scalar_one_or_none()
    return str(found) if found is not None else None
