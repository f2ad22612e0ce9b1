"""signer: the red seal's appearance, templates, document numbers, the county TSA, PAdES sealing
(``Sealer.apply_seal``), and verification (issue 7).
"""

from signer import _pdffast

# --- sealing (issue 5) ---
from signer._documents import StoredCopy, latest_copy_pdf, stored_copy
from signer._fonts import subset_font
from signer._ledger_anchor import AnchorPolicy, LedgerAnchor, evidence_record_text
from signer._ltv import (
    LTV_INTERVAL_S,
    LtvHealth,
    LtvPolicy,
    LtvRenewer,
    LtvRound,
    ltv_health,
    tsa_identity_row,
)
from signer._numbers import DEFAULT_FORMAT as DEFAULT_NUMBER_FORMAT
from signer._preview import PagePicture, SealPreview, preview_seal, qr_fits, render_pages
from signer._seal import Placement, SignatureLevel, read_binding
from signer._service import (
    AttestRequest,
    Precheck,
    SealedDocument,
    Sealer,
    SealRequest,
    apply_seal,
    precheck,
)
from signer._stamp import SealFace, SealStampStyle
from signer._templates import Template, load_template, render_template, template_names
from signer._tsa import CountyTimeStamper, CountyTsa, HttpTimeStamper, ensure_county_tsa

# --- verification (issue 7) ---
from signer._verify import verify_document  # noqa: E402
from signer._verify_evidence import (  # noqa: E402
    Evidence,
    LedgerAnswer,
    LedgerFinding,
    LedgerQuery,
    LedgerReceipt,
)
from signer._verify_model import (  # noqa: E402
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
from signer._verify_status import (  # noqa: E402
    STATUS_LIST_HEADER,
    DecisionState,
    StatusAnswer,
    StatusList,
    StatusListError,
    status_list_body,
)
from signer._verify_trust import TrustList  # noqa: E402

__all__ = [
    # sealing
    "DEFAULT_NUMBER_FORMAT",
    "PagePicture",
    "Precheck",
    "precheck",
    "SealPreview",
    "preview_seal",
    "qr_fits",
    "render_pages",
    "AttestRequest",
    "CountyTimeStamper",
    "CountyTsa",
    "HttpTimeStamper",
    # what the API reads (issue 24: no package imports another's private modules)
    "AnchorPolicy",
    "LedgerAnchor",
    "evidence_record_text",
    "LTV_INTERVAL_S",
    "LtvHealth",
    "LtvPolicy",
    "LtvRound",
    "LtvRenewer",
    "StoredCopy",
    "latest_copy_pdf",
    "load_template",
    "ltv_health",
    "stored_copy",
    "subset_font",
    "tsa_identity_row",
    "Placement",
    "SealFace",
    "SealRequest",
    "SealStampStyle",
    "SealedDocument",
    "Sealer",
    "SignatureLevel",
    "apply_seal",
    "ensure_county_tsa",
    "read_binding",
    "render_template",
    "Template",
    "template_names",
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
]

_pdffast.install()  # pyHanko's hex-string reader: the same result, without a Python call per byte
