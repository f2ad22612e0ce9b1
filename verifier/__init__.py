"""verifier: is this sealed PDF what a county sealed, unchanged, by a seal it trusted then? (issue 7)

A package of its own (issue 24): an out-of-county verifier is a different product with a different threat
model from the sealer. It may import ``core``, ``keystore``'s models, ``ledger``'s proofs and decision
statuses, pyHanko and the PDF/crypto libraries; never ``signer`` or ``api`` (an import-linter contract in
pyproject.toml).
``signer`` may import it (the sealing gate reuses its PDF walk and budget; the post-seal self-check runs
it). The library patches both use are installed by :func:`verifier.patches.install`.

``verify_document(pdf, trust, *, now, limits=None, evidence=None) -> VerificationReport``:
docs/verification.md.

This module is the package's only door (with :mod:`verifier.patches`): no other package imports a
``verifier._name`` module (an import-linter contract). The PDF walk (``scan_graph`` and its budget) and
PDFium (``PDFIUM_LOCK``, ``render_page``, the page texts) are loaded on first use, as they were when the
signer imported them from their modules: ``import verifier`` loads neither pyHanko nor PDFium.
"""

from typing import TYPE_CHECKING, Any

from verifier._archive import EvidenceRecord, verify_record
from verifier._budget import check_budget
from verifier._core import QpdfJob
from verifier._counties import EvidenceRouter, ForeignCounty
from verifier._evidence import (
    Evidence,
    LedgerAnswer,
    LedgerFinding,
    LedgerQuery,
    LedgerReceipt,
    entry_mismatch,
)
from verifier._model import (
    BindingFacts,
    DocumentFacts,
    Indication,
    Reason,
    SealFacts,
    SignatureReport,
    SubIndication,
    VerificationReport,
    VerifyLimits,
)
from verifier._status import (
    STATUS_LIST_HEADER,
    STATUS_WIRE,
    StatusAnswer,
    StatusList,
    StatusListError,
    read_decision_status,
    status_list_body,
)
from verifier._trust import (
    BUNDLE_SIGNATURE_ALG,
    TrustList,
    bundle_signed_bytes,
    bundle_signing_root,
    check_bundle_signature,
    fetch_trust,
    key_id_of,
    normalise_fingerprint,
    root_fingerprint,
)
from verifier._verify import verify_document

if TYPE_CHECKING:
    from verifier._pdfgraph import DEFAULT_MAX_NODES, GraphBudgetExceeded, GraphFindings, scan_graph
    from verifier._visual import (
        PDFIUM_LOCK,
        conflicting_numbers,
        page_texts,
        pdfium_document,
        render_page,
        visible_changes,
    )

#: Names whose modules load on first use (pyHanko, PDFium): name -> module.
_LAZY = {
    "DEFAULT_MAX_NODES": "verifier._pdfgraph",
    "GraphBudgetExceeded": "verifier._pdfgraph",
    "GraphFindings": "verifier._pdfgraph",
    "scan_graph": "verifier._pdfgraph",
    "PDFIUM_LOCK": "verifier._visual",
    "conflicting_numbers": "verifier._visual",
    "page_texts": "verifier._visual",
    "pdfium_document": "verifier._visual",
    "render_page": "verifier._visual",
    "visible_changes": "verifier._visual",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'verifier' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "EvidenceRecord",
    "verify_record",
    # verification
    "STATUS_LIST_HEADER",
    "STATUS_WIRE",
    "BindingFacts",
    "DocumentFacts",
    "Evidence",
    "entry_mismatch",
    "Indication",
    "LedgerAnswer",
    "LedgerFinding",
    "LedgerQuery",
    "LedgerReceipt",
    "Reason",
    "SealFacts",
    "SignatureReport",
    "StatusAnswer",
    "StatusList",
    "StatusListError",
    "SubIndication",
    "TrustList",
    "VerificationReport",
    "VerifyLimits",
    "read_decision_status",
    "status_list_body",
    "verify_document",
    # the checks the sealer shares (signer): pre-parse budget, PDF walk, qpdf --check, PDFium
    "DEFAULT_MAX_NODES",
    "GraphBudgetExceeded",
    "GraphFindings",
    "PDFIUM_LOCK",
    "QpdfJob",
    "check_budget",
    "conflicting_numbers",
    "page_texts",
    "pdfium_document",
    "render_page",
    "scan_graph",
    "visible_changes",
    # other counties' trust: bundles and their routing
    "BUNDLE_SIGNATURE_ALG",
    "EvidenceRouter",
    "ForeignCounty",
    "bundle_signed_bytes",
    "bundle_signing_root",
    "check_bundle_signature",
    "fetch_trust",
    "key_id_of",
    "normalise_fingerprint",
    "root_fingerprint",
]
