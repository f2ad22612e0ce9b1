"""signer: the red seal's appearance, templates, document numbers, the county TSA, PAdES sealing
(``Sealer.apply_seal``). Verification is the ``verifier`` package (issue 24); the library patches sealing
relies on are installed by ``verifier.patches.install()`` at service and CLI start.
"""

# --- sealing (issue 5) ---
from signer._numbers import DEFAULT_FORMAT as DEFAULT_NUMBER_FORMAT
from signer._preview import PagePicture, SealPreview, preview_seal, qr_fits, render_pages
from signer._seal import Placement, SignatureLevel, read_binding
from signer._service import AttestRequest, SealedDocument, Sealer, SealRequest, apply_seal
from signer._stamp import SealFace, SealStampStyle
from signer._templates import render_template, template_names
from signer._tsa import CountyTimeStamper, CountyTsa, HttpTimeStamper, ensure_county_tsa

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
]
