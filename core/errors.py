"""The error root and its families.

Every error carries a stable machine ``code`` and a bilingual human message. Only ``api/`` maps these to
HTTP status codes; below it nothing knows about HTTP.
"""

from __future__ import annotations

from typing import Any


class SealServiceError(Exception):
    """Root of every error this service raises on purpose."""

    family = "error"
    default_code = "INTERNAL"

    def __init__(
        self,
        code: str | None = None,
        message_en: str = "",
        message_zh: str = "",
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.code = code or self.default_code
        self.message_en = message_en or self.code
        self.message_zh = message_zh or self.message_en
        self.details = dict(details or {})
        super().__init__(f"[{self.code}] {self.message_en}")

    @property
    def message(self) -> str:
        """Both languages, as a clerk or a verifier reads it."""
        if self.message_zh and self.message_zh != self.message_en:
            return f"{self.message_zh} / {self.message_en}"
        return self.message_en

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "family": self.family,
            "message": self.message,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
        }
        if self.details:
            out["details"] = self.details
        return out


class BadInput(SealServiceError):
    """The caller sent something malformed or unknown."""

    family = "bad_input"
    default_code = "BAD_INPUT"


class NotFound(BadInput):
    family = "not_found"
    default_code = "NOT_FOUND"


class Conflict(SealServiceError):
    """The request is well-formed but clashes with the current state (duplicate, illegal transition)."""

    family = "conflict"
    default_code = "CONFLICT"


class PolicyDenied(SealServiceError):
    """A policy decision refused the request; ``details['reasons']`` lists every reason."""

    family = "policy_denied"
    default_code = "POLICY_DENIED"


class PermissionDenied(SealServiceError):
    """The caller's role or organisation does not allow this action."""

    family = "permission_denied"
    default_code = "FORBIDDEN"


class KeystoreError(SealServiceError):
    """The PKCS#11 token, its keys or the county PKI failed."""

    family = "keystore"
    default_code = "KEYSTORE_ERROR"


class SigningError(SealServiceError):
    family = "signing"
    default_code = "SIGNING_FAILED"


class LedgerIntegrityError(SealServiceError):
    family = "ledger_integrity"
    default_code = "LEDGER_INTEGRITY"


class VerificationError(SealServiceError):
    family = "verification"
    default_code = "VERIFICATION_FAILED"


class Unavailable(SealServiceError):
    """A dependency (token, database, TSA) is down; retrying later may succeed."""

    family = "unavailable"
    default_code = "UNAVAILABLE"
