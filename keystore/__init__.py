"""keystore: PKCS#11 tokens and keys, the county PKI (root + issuing CA, certificates, CRLs), seal lifecycle.

Exports the contract other packages code against (docs/contributing.md).
"""

from keystore._deployment import CountySetup, init_county, open_registry
from keystore._model import (
    CertificateRecord,
    KeyAlgorithm,
    KeyRef,
    RevocationReason,
    Seal,
    SealEvent,
    SealEventKind,
    SealKind,
    SealStatus,
)
from keystore._pki import (
    SEAL_INFO_OID,
    YIZHANG_ARC,
    CountyPKI,
    PublishedCrls,
    SealInfo,
    token_private_key,
)
from keystore._registry import LIFECYCLE, TRANSITIONS, LifecycleStep, SealRegistry, check_township_code
from keystore._softhsm import TOKEN_LABEL, SoftHsmHome, home_softhsm_conf, init_softhsm_home
from keystore._storage import known_seal_id
from keystore._token import (
    Keystore,
    KeystoreOpener,
    TokenUnavailable,
    token_gone,
    translate_pkcs11_error,
)
from keystore._uri import Pkcs11Uri

__all__ = [
    "known_seal_id",
    "LIFECYCLE",
    "LifecycleStep",
    "CertificateRecord",
    "CountyPKI",
    "CountySetup",
    "init_county",
    "check_township_code",
    "open_registry",
    "KeyAlgorithm",
    "KeyRef",
    "Keystore",
    "KeystoreOpener",
    "Pkcs11Uri",
    "PublishedCrls",
    "RevocationReason",
    "SEAL_INFO_OID",
    "Seal",
    "SealEvent",
    "SealEventKind",
    "SealInfo",
    "SealKind",
    "SealRegistry",
    "SealStatus",
    "SoftHsmHome",
    "TOKEN_LABEL",
    "TokenUnavailable",
    "TRANSITIONS",
    "YIZHANG_ARC",
    "home_softhsm_conf",
    "init_softhsm_home",
    "token_gone",
    "token_private_key",
    "translate_pkcs11_error",
]
