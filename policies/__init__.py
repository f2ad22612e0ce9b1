"""Delegation policies: the matter catalog, township powers, No. 2 seal agreements, and the decision.

The core (:mod:`policies._model`, :mod:`policies._engine`, :mod:`policies._tables`) is pure standard
library: ``decide(request, facts, now) -> Decision``. :class:`PolicyStore` keeps the versioned facts in the
database and builds :class:`PolicyFacts` for a request.
"""

from typing import TYPE_CHECKING

from policies._catalogs import BundledCatalog, bundled_catalog
from policies._engine import MESSAGES, RULES, approval_required, decide, reason
from policies._model import (
    ALL_STAGES,
    CHINA_TZ,
    DEFAULT_APPROVAL_STAGES,
    MODE_STAGES,
    ROLE_ORG_KIND,
    STAGE_ORDER,
    Actor,
    Agreement,
    AgreementStatus,
    Decision,
    DecisionVersions,
    DocumentKind,
    HandlingMode,
    Matter,
    NumberFamily,
    OrgKind,
    PolicyFacts,
    PowerType,
    Reason,
    Role,
    SealFacts,
    SealKindFact,
    SealStatusFact,
    SigningRequest,
    Stage,
    TownshipPower,
    mode_from_scope,
    normalise_code,
    number_family,
)
from policies._tables import default_stage_kinds, parse_stage_kinds, stage_kinds_to_json

__all__ = [
    "ALL_STAGES",
    "STAGE_ORDER",
    "CHINA_TZ",
    "DEFAULT_APPROVAL_STAGES",
    "MESSAGES",
    "MODE_STAGES",
    "RULES",
    "ROLE_ORG_KIND",
    "Actor",
    "Agreement",
    "AgreementStatus",
    "BundledCatalog",
    "Decision",
    "DecisionVersions",
    "DocumentKind",
    "HandlingMode",
    "Matter",
    "NumberFamily",
    "OrgKind",
    "PolicyFacts",
    "PolicyStore",
    "TownshipRecord",
    "PowerType",
    "Reason",
    "Role",
    "SealFacts",
    "SealKindFact",
    "SealStatusFact",
    "SigningRequest",
    "Stage",
    "TownshipPower",
    "approval_required",
    "bundled_catalog",
    "decide",
    "default_stage_kinds",
    "mode_from_scope",
    "normalise_code",
    "number_family",
    "stage_kinds_to_json",
    "parse_stage_kinds",
    "reason",
]

if TYPE_CHECKING:
    from policies._storage import PolicyStore, TownshipRecord


def __getattr__(name: str) -> object:
    # The store pulls in SQLAlchemy and core; the pure engine stays importable without them.
    if name in ("PolicyStore", "TownshipRecord"):
        from policies import _storage

        return getattr(_storage, name)
    raise AttributeError(name)
