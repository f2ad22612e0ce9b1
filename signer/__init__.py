"""signer: the red seal's appearance, templates, document numbers, the county TSA, PAdES sealing
(``Sealer.apply_seal``). Verification is the ``verifier`` package (issue 24); the library patches sealing
relies on are installed by ``verifier.patches.install()`` at service and CLI start.
"""

# --- sealing (issue 5) ---
from signer._documents import StoredCopy, latest_copy_pdf, sealed_ledger_indices, stored_copy
from signer._fonts import subset_font
from signer._ledger_anchor import AnchorPolicy, LedgerAnchor, evidence_record, evidence_record_text
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
    "evidence_record",
    "evidence_record_text",
    "LTV_INTERVAL_S",
    "LtvHealth",
    "LtvPolicy",
    "LtvRound",
    "LtvRenewer",
    "StoredCopy",
    "sealed_ledger_indices",
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
]
