"""Shared plumbing: settings, database wiring, the error root. Imports nothing from the other packages."""

from core.db import Base, make_engine, migrate, session_factory, transaction
from core.errors import (
    BadInput,
    Conflict,
    KeystoreError,
    LedgerIntegrityError,
    NotFound,
    PermissionDenied,
    PolicyDenied,
    SealServiceError,
    SigningError,
    Unavailable,
    VerificationError,
)
from core.settings import Settings, load_settings, read_secret

__all__ = [
    "Base",
    "make_engine",
    "migrate",
    "session_factory",
    "transaction",
    "BadInput",
    "Conflict",
    "KeystoreError",
    "LedgerIntegrityError",
    "NotFound",
    "PermissionDenied",
    "PolicyDenied",
    "SealServiceError",
    "SigningError",
    "Unavailable",
    "VerificationError",
    "Settings",
    "load_settings",
    "read_secret",
]
