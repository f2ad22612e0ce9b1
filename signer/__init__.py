"""signer: the red seal's appearance, templates, document numbers, the county TSA, PAdES sealing
(``Sealer.apply_seal``), and verification (issue 7).
"""

# --- sealing (issue 5) ---
from signer._numbers import DEFAULT_FORMAT as DEFAULT_NUMBER_FORMAT
from signer._preview import PagePicture, SealPreview, preview_seal, qr_fits, render_pages
from signer._seal import Placement, SignatureLevel, read_binding
from signer._service import AttestRequest, SealedDocument, Sealer, SealRequest, apply_seal
from signer._stamp import SealFace, SealStampStyle
from signer._templates import render_template, template_names
from signer._tsa import CountyTimeStamper, CountyTsa, HttpTimeStamper, ensure_county_tsa
from verifier import _pdffast
from verifier._evidence import (  # noqa: E402
    Evidence,
    LedgerAnswer,
    LedgerFinding,
    LedgerQuery,
    LedgerReceipt,
)
from verifier._model import (  # noqa: E402
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
from verifier._status import (  # noqa: E402
    STATUS_LIST_HEADER,
    DecisionState,
    StatusAnswer,
    StatusList,
    StatusListError,
    status_list_body,
)
from verifier._trust import TrustList  # noqa: E402

# --- verification (issue 7) ---
from verifier._verify import verify_document  # noqa: E402

__all__ = [
    # sealing
    "DEFAULT_NUMBER_FORMAT",
    "PagePicture",
    "SealPreview",
    "preview_seal",
    "qr_fits",
    "render_pages",
    "AttestRequest",
    "CountyTimeStamper",
    "CountyTsa",
    "HttpTimeStamper",
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
