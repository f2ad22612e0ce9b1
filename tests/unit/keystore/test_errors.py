"""Every python-pkcs11 failure maps to a keystore error with a stable code (SoftHSM cannot lock a PIN, so
the locked-PIN mapping is checked here on the exception type itself)."""

from __future__ import annotations

import pytest
from pkcs11 import exceptions as p11e

from core.errors import KeystoreError, Unavailable
from keystore import translate_pkcs11_error


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (p11e.PinIncorrect(), "TOKEN_PIN_INCORRECT"),
        (p11e.PinLocked(), "TOKEN_PIN_LOCKED"),
        (p11e.NoSuchToken(), "TOKEN_NOT_FOUND"),
        (p11e.TokenNotPresent(), "TOKEN_UNAVAILABLE"),
        (p11e.SlotIDInvalid(), "TOKEN_NOT_FOUND"),
        (p11e.MultipleTokensReturned(), "TOKEN_AMBIGUOUS"),
        (p11e.UserPinNotInitialized(), "TOKEN_NOT_INITIALIZED"),
        (p11e.NoSuchKey(), "KEY_NOT_FOUND"),
        (p11e.MechanismInvalid(), "TOKEN_ERROR"),
        (p11e.FunctionFailed(), "TOKEN_ERROR"),
        # the token, or the module's hold on it, is gone: retry later, the keystore re-opens it
        (p11e.DeviceError(), "TOKEN_UNAVAILABLE"),
        (p11e.DeviceRemoved(), "TOKEN_UNAVAILABLE"),
        (p11e.GeneralError(), "TOKEN_UNAVAILABLE"),
        (p11e.SessionHandleInvalid(), "TOKEN_UNAVAILABLE"),
        (p11e.SessionClosed(), "TOKEN_UNAVAILABLE"),
        (p11e.UserNotLoggedIn(), "TOKEN_UNAVAILABLE"),
        (
            p11e.PKCS11Error("Initialisation error (not initialized). Should never see this."),
            "TOKEN_UNAVAILABLE",
        ),
    ],
)
def test_pkcs11_errors_translate_to_codes(exc: Exception, code: str) -> None:
    err = translate_pkcs11_error(exc, "sign")
    assert isinstance(err, KeystoreError)
    assert err.code == code
    details = dict(err.details)
    if code == "TOKEN_UNAVAILABLE":
        # a retry-later: HTTP 503 with Retry-After (core.errors.Unavailable)
        assert isinstance(err, Unavailable) and details.pop("retry_after_s") >= 1
    assert details == {"operation": "sign", "pkcs11_error": type(exc).__name__}
