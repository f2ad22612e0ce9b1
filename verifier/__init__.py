"""verifier: is this sealed PDF what a county sealed, unchanged, by a seal it trusted then? (issue 7)

A package of its own (issue 24): an out-of-county verifier is a different product with a different threat
model from the sealer. It may import ``core``, ``keystore``'s models, ``ledger``'s proofs, pyHanko and
the PDF/crypto libraries; never ``signer`` or ``api`` (an import-linter contract in pyproject.toml).
``signer`` may import it (the sealing gate reuses its PDF walk and budget; the post-seal self-check runs
it). The library patches both use are installed by :func:`verifier.patches.install`.

``verify_document(pdf, trust, *, now, limits=None, evidence=None) -> VerificationReport``:
docs/verification.md.
"""

from verifier._archive import EvidenceRecord, verify_record
from verifier._counties import EvidenceRouter, ForeignCounty
from verifier._evidence import Evidence, LedgerAnswer, LedgerFinding, LedgerQuery, LedgerReceipt
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
    DecisionState,
    StatusAnswer,
    StatusList,
    StatusListError,
    status_list_body,
)
from verifier._trust import (
    BUNDLE_SIGNATURE_ALG,
    TrustList,
    bundle_signed_bytes,
    bundle_signing_root,
    check_bundle_signature,
    fetch_trust,
    normalise_fingerprint,
    root_fingerprint,
)
from verifier._verify import verify_document

__all__ = [
    "EvidenceRecord",
    "verify_record",
    # verification
    "STATUS_LIST_HEADER",
    "BindingFacts",
    "DecisionState",
    "DocumentFacts",
    "Evidence",
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
    "status_list_body",
    "verify_document",
    # other counties' trust: bundles and their routing
    "BUNDLE_SIGNATURE_ALG",
    "EvidenceRouter",
    "ForeignCounty",
    "bundle_signed_bytes",
    "bundle_signing_root",
    "check_bundle_signature",
    "fetch_trust",
    "normalise_fingerprint",
    "root_fingerprint",
]
