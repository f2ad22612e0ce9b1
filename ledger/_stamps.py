"""Links of evidence chains over checkpoints (docs/ledger-format.md, "Evidence records"; issue 19 item 4b).

The ledger keeps RFC 3161 tokens over its checkpoints as it is given them: opaque bytes, with the genTime and
the TSA certificate's notAfter that the caller read from them. What it checks itself is what it can without
any X.509 or CMS code: that the imprint a link claims is the SHA-256 of what that link must cover.

- a STAMP covers a checkpoint: imprint = SHA-256(signed note of the checkpoint, UTF-8, as stored);
- a RENEWAL covers the previous link and the latest checkpoint then:
  imprint = SHA-256(previous link's token DER ‖ signed note of that checkpoint).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STAMP = "STAMP"
RENEWAL = "RENEWAL"


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def stamp_imprint(note: str) -> bytes:
    """What a STAMP's token covers: SHA-256 of the checkpoint's signed note."""
    return hashlib.sha256(note.encode("utf-8")).digest()


def renewal_imprint(previous_token: bytes, note: str) -> bytes:
    """What a RENEWAL's token covers: SHA-256(previous token DER ‖ signed note of the latest checkpoint)."""
    return hashlib.sha256(previous_token + note.encode("utf-8")).digest()


@dataclass(frozen=True)
class CheckpointStamp:
    """One link: ``kind`` STAMP (the first, over checkpoint ``size``) or RENEWAL (over link ``prev_id``
    and checkpoint ``size``)."""

    id: int
    kind: str
    size: int
    prev_id: int | None
    imprint: bytes
    tst_der: bytes
    validation: bytes  # the caller's validation data current at the link's time (certificates, CRLs)
    gen_time: datetime
    tsa_not_after: datetime
    created_at: datetime

    @classmethod
    def from_row(cls, r: object) -> CheckpointStamp:
        def g(name: str) -> Any:
            return getattr(r, name)

        return cls(
            id=int(g("id")),
            kind=str(g("kind")),
            size=int(g("size")),
            prev_id=int(g("prev_id")) if g("prev_id") is not None else None,
            imprint=bytes(g("imprint")),
            tst_der=bytes(g("tst_der")),
            validation=bytes(g("validation")),
            gen_time=_aware(g("gen_time")),
            tsa_not_after=_aware(g("tsa_not_after")),
            created_at=_aware(g("created_at")),
        )
