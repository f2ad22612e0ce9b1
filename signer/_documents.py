"""The signer's stored sealed copies, as other packages may read them (issue 24).

The console's lookup by document number, its download of an attested copy and the attestation step read
sealed documents through these functions; the rows (:class:`signer._storage.SealedDocumentRow`) stay the
signer's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from signer._storage import SealedDocumentRow


@dataclass(frozen=True, slots=True)
class StoredCopy:
    """One stored sealed copy: ``key`` is the signing's idempotency key (``attest-…`` for an attestation)."""

    key: str
    seal_id: str
    document_number: str | None
    pdf: bytes


def stored_copy(session: Session, key: str) -> StoredCopy | None:
    """The stored copy sealed under ``key``, if any."""
    row = session.get(SealedDocumentRow, key)
    if row is None:
        return None
    return StoredCopy(row.idempotency_key, row.seal_id, row.document_number, bytes(row.sealed))


def latest_copy_pdf(session: Session, document_number: str) -> bytes | None:
    """The latest stored sealed copy of the document with this number (earlier attestations included)."""
    found = session.scalar(
        select(SealedDocumentRow.sealed)
        .where(SealedDocumentRow.document_number == document_number)
        .order_by(SealedDocumentRow.created_at.desc())
        .limit(1)
    )
    return bytes(found) if found is not None else None


def sealed_ledger_indices(
    conn: Connection | Session,
    *,
    idempotency_key: str | None = None,
    sha256s: Sequence[str] = (),
    document_number: str | None = None,
    limit: int | None = None,
) -> list[int | None]:
    """The ledger indices of the sealed copies with this idempotency key, one of these SHA-256s or this
    document number (exactly one criterion), in ledger order, at most ``limit``."""
    docs = SealedDocumentRow
    if idempotency_key is not None:
        where = docs.idempotency_key == idempotency_key
    elif document_number is not None:
        where = docs.document_number == document_number
    else:
        where = docs.sha256.in_(list(sha256s))
    stmt = select(docs.ledger_index).where(where).order_by(docs.ledger_index)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(conn.execute(stmt).scalars())
