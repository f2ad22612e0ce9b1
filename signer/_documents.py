"""The signer's stored sealed copies, as other packages may read them (issue 24).

The console's lookup by document number, its download of an attested copy and the attestation step read
sealed documents through these functions; the rows (:class:`signer._storage.SealedDocumentRow`) stay the
signer's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
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
