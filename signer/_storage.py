"""ORM rows of the signer area (tables ``sig_*``). Only this package touches them.

* ``sig_tsa_certs``: the county TSA's certificate (its key is in the token).
* ``sig_number_counters``: one row per (sequence, year), locked in the short reservation transaction, so
  document numbers are gap-free and unique (no database sequence: aborted transactions would leave gaps).
* ``sig_document_numbers``: every number ever drawn, with its fate (``RESERVED`` while its signing runs,
  then ``USED`` or ``VOID``).
* ``sig_documents``: sealed output by idempotency key, so a retry returns the same bytes (or the copy
  extended with later archive timestamps: ``signer._ltv``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class TsaCertRow(Base):
    __tablename__ = "sig_tsa_certs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_label: Mapped[str] = mapped_column(String(128), nullable=False)
    cert_der: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class NumberCounterRow(Base):
    __tablename__ = "sig_number_counters"

    sequence: Mapped[str] = mapped_column(String(128), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class DocumentNumberRow(Base):
    __tablename__ = "sig_document_numbers"
    __table_args__ = (
        UniqueConstraint("sequence", "year", "seq", name="uq_sig_document_numbers_seq"),
        UniqueConstraint("number", name="uq_sig_document_numbers_number"),
        Index("ix_sig_document_numbers_key", "idempotency_key"),
        Index("ix_sig_document_numbers_status", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sequence: Mapped[str] = mapped_column(String(128), nullable=False)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    number: Mapped[str] = mapped_column(String(128), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # RESERVED | USED | VOID
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SealedDocumentRow(Base):
    __tablename__ = "sig_documents"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    seal_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    document_number: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    request_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    level: Mapped[str] = mapped_column(String(8), nullable=False)
    ledger_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # notAfter of the TSA certificate of the stored copy's latest timestamp; NULL until signer._ltv reads
    # it. ``sealed`` is replaced by the extended copy on renewal; ``sha256`` stays the digest as sealed.
    archive_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
