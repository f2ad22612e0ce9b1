"""Hostile PDFs that pass the opening checks but break while pyHanko writes, stamps or pre-validates them.

Found by the upload fuzz (tests/reliability/test_upload_fuzz.py): a page tree without ``/Count`` (the
corpus's signature-wrapping sample), an xref pointing at the wrong object, an earlier signature that is not
DER — each reached the client as a 500. Now each is ``PDF_MALFORMED`` (bad input), its drawn number is
voided, nothing else is written, and the ledger still audits.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.softhsm

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "foreign"


def _corpus() -> list[str]:
    with (CORPUS / "manifest.csv").open(encoding="utf-8") as f:
        return [row["file"] for row in csv.DictReader(f)]


def test_every_foreign_pdf_is_sealed_or_refused_as_bad_input(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any
) -> None:
    from core.errors import BadInput
    from signer import SealRequest

    outcomes: dict[str, str] = {}
    for i, name in enumerate(_corpus()):
        request = SealRequest(
            seal_id=xingjiang_seal.seal_id,
            matter_code="SX-002",
            stage="受理",
            document_kind="受理通知书",
            idempotency_key=f"hostile-{i:03d}",
            operator=xingjiang_clerk,
            reason="受理临时救助申请",
            unverified_pdf=(CORPUS / name).read_bytes(),
            level="B-LTA",  # the service's default: the failures came after the signature, at the timestamp
        )
        try:
            sealer.apply_seal(request)
            outcomes[name] = "SEALED"
        except BadInput as exc:  # anything else (KeyError, PdfReadError, ValueError …) fails the test
            outcomes[name] = exc.code
    # the ones that used to escape as internal errors
    # a page tree without /Count: refused by the structure check (its /Size is too small) or as malformed
    assert outcomes["siwa.pdf"] in ("PDF_MALFORMED", "PDF_STRUCTURE_INVALID"), outcomes
    assert set(outcomes.values()) <= {
        "SEALED",
        "PDF_MALFORMED",
        "PDF_ENCRYPTED",
        "QR_ON_SIGNED_PDF",
        # the sealing gate (issue 18): what a viewer could show differently is refused before a number
        "PDF_STRUCTURE_INVALID",
        "PDF_EMPTY_SIGNATURE_FIELD",
        "PDF_ACTIVE_CONTENT",
        "PDF_OPTIONAL_CONTENT",
        "PDF_NEEDS_APPEARANCES",
        "PDF_TOO_COMPLEX",
        # its own signatures already fail verification (issue 21): the sealed copy would fail too
        "PDF_SIGNATURE_INVALID",
    }, outcomes
    assert outcomes["BadEncodedCMS.pdf"] == outcomes["pdf-with-empty-sig.pdf"] == "PDF_SIGNATURE_INVALID"
    assert ledger.audit().ok
