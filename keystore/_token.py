"""The keystore: a PKCS#11 token reached through python-pkcs11, with a small pool of sessions.

Private keys are generated inside the token (CKA_SENSITIVE true, CKA_EXTRACTABLE false, CKA_TOKEN true) and
only ever used through the token's signing mechanisms. One login per keystore: an anchor session holds the
user login (PKCS#11 login state is per application), worker sessions inherit it and are never logged out
one by one. Waiting for a worker session is bounded by ``token_timeout_s`` (``TOKEN_BUSY``), never a hang.

Calls into one module are serialised by a process-wide lock: python-pkcs11 0.9 calls ``C_Initialize(NULL)``,
which by the standard tells the module the application will not call it from several threads at once, and
SoftHSM then runs without its own locks (concurrent signing crashes it). The pool still keeps each
operation on its own session; anything else in the process that calls the same module must go through the
keystore.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeAlias, TypedDict, cast

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass, Session, SignMixin, Token
from pkcs11 import exceptions as p11e
from pkcs11.util.ec import encode_named_curve_parameters

from core.errors import BadInput, Conflict, KeystoreError, NotFound, SealServiceError, Unavailable
from core.settings import DEFAULT_SOFTHSM_MODULE, Settings, read_secret
from keystore._model import KeyAlgorithm, KeyRef
from keystore._softhsm import home_softhsm_conf
from keystore._uri import Pkcs11Uri

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Pkcs11Lib  # what pkcs11.lib() returns (a Cython class)

log = logging.getLogger(__name__)

#: A token key's public half as ``cryptography`` objects (see :meth:`Keystore.public_key`).
TokenPublicKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_P256_OID = "1.2.840.10045.3.1.7"
_ED25519_OID_DER = bytes.fromhex("06032b6570")  # OBJECT IDENTIFIER 1.3.101.112
# DigestInfo prefixes (RFC 8017 section 9.2, note 1) for PKCS#1 v1.5 over a precomputed digest.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_DIGEST_BY_LEN = {32: "sha256", 48: "sha384", 64: "sha512"}
_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
# Failures that say the token, or the module's hold on it, is gone -- not that the request was wrong: the
# keystore drops its sessions, answers TOKEN_UNAVAILABLE and re-opens them by itself (``_recover_locked``).
_TOKEN_GONE = (
    p11e.SessionHandleInvalid,
    p11e.SessionClosed,
    p11e.DeviceRemoved,
    p11e.DeviceError,
    p11e.DeviceMemory,
    p11e.TokenNotPresent,
    p11e.TokenNotRecognised,
    p11e.UserNotLoggedIn,
    p11e.GeneralError,
)
# Bounds of the wait between two attempts to re-open a failed token (doubling from the first).
RECOVERY_MIN_DELAY_S = 0.5
RECOVERY_MAX_DELAY_S = 5.0
_PIN_CODES = frozenset({"TOKEN_PIN_INCORRECT", "TOKEN_PIN_LOCKED"})


def _not_initialized(exc: BaseException) -> bool:
    """CKR_CRYPTOKI_NOT_INITIALIZED has no class of its own in python-pkcs11 0.9."""
    return type(exc) is p11e.PKCS11Error and "not initialized" in str(exc)


def token_gone(exc: BaseException) -> bool:
    """True for a PKCS#11 failure that means the token is unavailable rather than the request invalid."""
    return isinstance(exc, _TOKEN_GONE) or _not_initialized(exc)


# One SoftHSM configuration per process: SoftHSM reads SOFTHSM2_CONF at C_Initialize only.
_LIB_LOCK = threading.Lock()


class _LibState(TypedDict):
    lib: Pkcs11Lib
    conf: str | None  # the SOFTHSM2_CONF it was initialised with
    users: int  # keystores open on it


_LIB_STATE: dict[str, _LibState] = {}
# PKCS#11 login state is per application and token: one login per token per process, shared by keystores.
_LOGINS: dict[tuple[str, str], _Login] = {}
_PIN_SALT = os.urandom(16)
_CALL_LOCKS: dict[str, threading.RLock] = {}


def _call_lock(module_path: str) -> threading.RLock:
    with _LIB_LOCK:
        return _CALL_LOCKS.setdefault(module_path, threading.RLock())


@dataclass
class _Login:
    anchor: Session  # the session that holds the login; closed (logged out) when the last keystore closes
    pin_mac: bytes  # to refuse a second keystore with another PIN; the PIN itself is not kept
    users: int = 1
    epoch: int = 0  # bumped by each re-login after a token failure: sessions of an older epoch are dead


def _pin_mac(pin: str) -> bytes:
    return hmac.new(_PIN_SALT, pin.encode("utf-8"), hashlib.sha256).digest()


def _login(module_path: str, token: Token, pin: str) -> tuple[str, str]:
    key = (module_path, f"{token.manufacturer_id}/{token.model}/{token.serial!r}/{token.label}")
    with _LIB_LOCK:
        login = _LOGINS.get(key)
        if login is not None:
            if not hmac.compare_digest(login.pin_mac, _pin_mac(pin)):
                raise KeystoreError(
                    "TOKEN_PIN_INCORRECT",
                    "the token PIN is incorrect",
                    "令牌口令错误",
                    details={"operation": "login"},
                )
            login.users += 1
            return key
        try:
            anchor = token.open(rw=True, user_pin=pin)
        except p11e.UserAlreadyLoggedIn:
            # Logged in by other code in this process (not a keystore): share that login.
            anchor = token.open(rw=True)
        except p11e.PKCS11Error as exc:
            raise translate_pkcs11_error(exc, "login") from exc
        _LOGINS[key] = _Login(anchor=anchor, pin_mac=_pin_mac(pin))
        return key


def _logout(key: tuple[str, str]) -> None:
    with _LIB_LOCK:
        login = _LOGINS.get(key)
        if login is None:
            return
        login.users -= 1
        if login.users > 0:
            return
        del _LOGINS[key]
    try:
        login.anchor.close()
    except p11e.PKCS11Error as exc:
        log.warning("closing the login session failed: %s", type(exc).__name__)


def translate_pkcs11_error(exc: BaseException, operation: str) -> SealServiceError:
    """Map a python-pkcs11 error to a keystore error with a stable code (the caller raises it ``from``)."""
    name = type(exc).__name__
    details = {"operation": operation, "pkcs11_error": name}
    if isinstance(exc, p11e.PinIncorrect):
        return KeystoreError(
            "TOKEN_PIN_INCORRECT", "the token PIN is incorrect", "令牌口令错误", details=details
        )
    if isinstance(exc, p11e.PinLocked):
        return KeystoreError("TOKEN_PIN_LOCKED", "the token PIN is locked", "令牌口令已锁定", details=details)
    if isinstance(exc, p11e.NoSuchToken | p11e.SlotIDInvalid):
        return KeystoreError("TOKEN_NOT_FOUND", "the token was not found", "未找到令牌", details=details)
    if token_gone(exc):
        return token_unavailable(operation, name)
    if isinstance(exc, p11e.MultipleTokensReturned):
        return KeystoreError(
            "TOKEN_AMBIGUOUS", "the URI matches more than one token", "URI 匹配多个令牌", details=details
        )
    if isinstance(exc, p11e.UserPinNotInitialized):
        return KeystoreError(
            "TOKEN_NOT_INITIALIZED",
            "the token's user PIN is not initialised",
            "令牌未初始化",
            details=details,
        )
    if isinstance(exc, p11e.NoSuchKey):
        return KeystoreError("KEY_NOT_FOUND", "no such key in the token", "令牌中无此密钥", details=details)
    return KeystoreError(
        "TOKEN_ERROR",
        f"the token failed during {operation}: {name}",
        f"令牌操作失败：{operation}",
        details=details,
    )


class TokenUnavailable(KeystoreError, Unavailable):
    """``TOKEN_UNAVAILABLE``: a keystore error that is also a retry-later (HTTP 503 with Retry-After)."""

    family = "keystore"
    default_code = "TOKEN_UNAVAILABLE"


def token_unavailable(operation: str, cause: str, retry_after_s: float | None = None) -> KeystoreError:
    """The token is gone for now (removed, failing, its sessions lost); the keystore re-opens it by itself."""
    details: dict[str, object] = {"operation": operation, "pkcs11_error": cause}
    details["retry_after_s"] = max(1, round(retry_after_s if retry_after_s is not None else 1))
    return TokenUnavailable(
        "TOKEN_UNAVAILABLE",
        "the signing token is not available; retry shortly",
        "签章令牌暂不可用，请稍后重试",
        details=details,
    )


@dataclass
class _Worker:
    session: Session
    private_keys: dict[str, SignMixin] = field(default_factory=dict)
    generation: int = 0
    epoch: int = 0  # the login epoch the session was opened in


def _load_library(module_path: str, softhsm_conf: Path | None) -> Pkcs11Lib:
    """Load (once per process) and initialise the module; SoftHSM gets the home's config first."""
    with _LIB_LOCK:
        state = _LIB_STATE.get(module_path)
        wanted_conf = str(softhsm_conf) if softhsm_conf is not None else None
        if state is not None and state["users"] > 0:
            if wanted_conf is not None and state["conf"] not in (None, wanted_conf):
                raise KeystoreError(
                    "TOKEN_CONFIG_CONFLICT",
                    "this process already uses SoftHSM with another configuration",
                    "本进程已使用另一 SoftHSM 配置",
                    details={"in_use": state["conf"], "wanted": wanted_conf},
                )
            state["users"] += 1
            return state["lib"]
        if not Path(module_path).is_file():
            raise KeystoreError(
                "PKCS11_MODULE_NOT_FOUND",
                f"PKCS#11 module not found: {module_path}",
                f"未找到 PKCS#11 模块：{module_path}",
                details={"module_path": module_path},
            )
        if wanted_conf is not None:
            os.environ["SOFTHSM2_CONF"] = wanted_conf
        try:
            lib = pkcs11.lib(module_path)
            if state is not None and wanted_conf is not None and state["conf"] != wanted_conf:
                # Idle since the last keystore closed: start afresh so SoftHSM re-reads its config.
                lib.reinitialize()
        except p11e.PKCS11Error as exc:
            if "loading" in str(exc):
                raise KeystoreError(
                    "PKCS11_MODULE_NOT_FOUND",
                    f"PKCS#11 module cannot be loaded: {module_path}",
                    f"无法加载 PKCS#11 模块：{module_path}",
                    details={"module_path": module_path},
                ) from exc
            raise translate_pkcs11_error(exc, "initialize") from exc
        conf = wanted_conf or (state["conf"] if state else None) or os.environ.get("SOFTHSM2_CONF")
        _LIB_STATE[module_path] = {"lib": lib, "conf": conf, "users": 1}
        return lib


class _KeyPairOptions(TypedDict):
    """The keyword arguments every key pair generation passes to python-pkcs11."""

    store: bool
    label: str
    id: bytes
    capabilities: MechanismFlag
    public_template: dict[Attribute, bool]
    private_template: dict[Attribute, bool]


#: Opening attempts before a missing or uninitialised token is believed (see ``Keystore._open``).
TOKEN_OPEN_ATTEMPTS = 6
#: What a torn read of SoftHSM's token file looks like from another process.
TORN_READ_CODES = frozenset({"TOKEN_NOT_FOUND", "TOKEN_NOT_INITIALIZED", "TOKEN_UNAVAILABLE"})


def _rescan_if_alone(module_path: str) -> bool:
    """Finalise and initialise the module again, if the caller is its only user in this process (nothing
    else has sessions or a login to lose). Whether it did."""
    with _LIB_LOCK:
        state = _LIB_STATE.get(module_path)
        if state is None or state["users"] != 1:
            return False
        try:
            state["lib"].reinitialize()
        except p11e.PKCS11Error:
            return False
        return True


def _release_library(module_path: str) -> None:
    with _LIB_LOCK:
        state = _LIB_STATE.get(module_path)
        if state is not None:
            state["users"] = max(0, state["users"] - 1)


def _pin_source_of(settings: Settings) -> str:
    if settings.pkcs11_uri is None and not settings.softhsm_conf.is_file():
        raise NotFound(
            "HOME_NOT_INITIALIZED",
            f"no token in {settings.home_dir}: run `yizhang county init` (or configure a PKCS#11 URI)",
            f"{settings.home_dir} 中尚无令牌：请先运行 yizhang county init（或配置 PKCS#11 URI）",
            details={"home": str(settings.home_dir)},
        )
    uri = Pkcs11Uri.parse(settings.effective_pkcs11_uri)
    return settings.pin_source or uri.pin_source or settings.effective_pin_source


class Keystore:
    """Signing keys in a PKCS#11 token. Build with :meth:`open`; thread-safe; use as a context manager."""

    def __init__(
        self,
        *,
        lib: Pkcs11Lib,
        token: Token,
        pin: str,
        module_path: str,
        uri: Pkcs11Uri,
        pool_size: int,
        timeout_s: float,
        pin_source: str | None = None,
    ) -> None:
        self._lib = lib
        self._token = token
        self._module_path = module_path
        self.uri = uri
        self._timeout_s = timeout_s
        self._pool_size = pool_size
        self._pin_source = pin_source  # where the PIN is re-read from to log in again (never the PIN)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._created = 0  # sessions open, idle or in use (changed under the call lock)
        self._generation = 0  # bumped when keys are destroyed: cached handles go stale
        self._public_cache: dict[str, TokenPublicKey] = {}
        self._closed = False
        self._call = _call_lock(module_path)
        # Token failure state (changed under the call lock): the error that took the token down, when the
        # next attempt to re-open it is due, the current wait, and a PIN the token refused on re-login.
        self._down: KeystoreError | None = None
        self._retry_at = 0.0
        self._delay = RECOVERY_MIN_DELAY_S
        self._failed_attempts = 0
        self._reinit_next = False
        self._refused_pin: bytes | None = None
        with self._call:
            self._login_key = _login(module_path, token, pin)
            self._login = _LOGINS[self._login_key]
            self._epoch = self._login.epoch

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings) -> Keystore:
        pin_source = _pin_source_of(settings)
        return cls._open(settings, pin_source, read_secret(pin_source))

    @classmethod
    def _open(cls, settings: Settings, pin_source: str, pin: str) -> Keystore:
        uri = Pkcs11Uri.parse(settings.effective_pkcs11_uri)
        module_path = uri.module_path(DEFAULT_SOFTHSM_MODULE)
        softhsm_conf = None
        if "softhsm" in Path(module_path).name.lower() and settings.softhsm_conf.is_file():
            softhsm_conf = home_softhsm_conf(settings)  # this home's token, even in a copy of another home
        lib = _load_library(module_path, softhsm_conf)
        try:
            for attempt in range(TOKEN_OPEN_ATTEMPTS):
                try:
                    with _call_lock(module_path):
                        token = cls._find_token(lib, uri)
                    return cls(
                        lib=lib,
                        token=token,
                        pin=pin,
                        module_path=module_path,
                        uri=uri,
                        pool_size=settings.session_pool_size,
                        timeout_s=settings.token_timeout_s,
                        pin_source=pin_source,
                    )
                except KeystoreError as exc:
                    # SoftHSM rewrites a token's ``token.object`` on every login (it resets the PIN-count
                    # flags), truncating it first. Another process that scans the token directory
                    # (``C_Initialize``), refreshes the token or logs in at that instant reads a short file:
                    # the token is missing from the scan (TOKEN_NOT_FOUND), looks uninitialised
                    # (TOKEN_NOT_INITIALIZED) or the call fails (CKR_GENERAL_ERROR: TOKEN_UNAVAILABLE). Two
                    # serve workers starting together, or a CLI command while a worker logs in, hit it. When
                    # this process has nothing else open on the module, it is initialised again (a fresh
                    # scan) and the lookup and login repeated, a few times over ~0.5 s; a token that is really
                    # absent or uninitialised is still reported, late. A refused PIN is never tried again.
                    if (
                        exc.code not in TORN_READ_CODES
                        or attempt == TOKEN_OPEN_ATTEMPTS - 1
                        or not _rescan_if_alone(module_path)
                    ):
                        raise
                    log.info("opening the token failed (%s); scanning the token directory again", exc.code)
                    time.sleep(0.025 * (attempt + 1))
            raise AssertionError("unreachable")
        except BaseException:
            _release_library(module_path)
            raise

    @staticmethod
    def _find_token(lib: Pkcs11Lib, uri: Pkcs11Uri) -> Token:
        """The one token matching every token attribute the URI gives (RFC 7512 section 2.3)."""

        def matches(token: Token) -> bool:
            wanted = {
                "token": token.label,
                "serial": token.serial.decode() if isinstance(token.serial, bytes) else token.serial,
                "manufacturer": token.manufacturer_id,
                "model": token.model,
            }
            return all(uri.path[k].strip() == str(v).strip() for k, v in wanted.items() if k in uri.path)

        try:
            found = [
                slot.get_token()
                for slot in lib.get_slots(token_present=True)
                if uri.slot_id is None or slot.slot_id == uri.slot_id
            ]
            found = [t for t in found if matches(t)]
            if not found:
                raise p11e.NoSuchToken("no token matches the URI")
            if len(found) > 1:
                raise p11e.MultipleTokensReturned("more than one token matches the URI")
            return found[0]
        except p11e.PKCS11Error as exc:
            raise translate_pkcs11_error(exc, "find token") from exc

    def __repr__(self) -> str:
        return f"<Keystore {self.uri.describe()} pool={self._pool_size}>"

    def __enter__(self) -> Keystore:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with self._call:
            while self._idle:
                self._close_quietly(self._idle.pop().session)
            _logout(self._login_key)  # the login goes last, with the last keystore on this token
        _release_library(self._module_path)

    @staticmethod
    def _close_quietly(session: Session) -> None:
        try:
            session.close()
        except p11e.PKCS11Error as exc:  # closing a dead session: nothing left to release
            log.warning("closing a token session failed: %s", type(exc).__name__)

    # -- the pool ----------------------------------------------------------------------------------
    # Sessions are taken and returned under the module's call lock (see the module docstring), so the idle
    # list needs no lock of its own and the wait for the token is one bounded lock acquisition.
    def _acquire(self, operation: str) -> _Worker:
        if self._closed:
            raise KeystoreError("KEYSTORE_CLOSED", "the keystore is closed", "密钥库已关闭")
        if not self._call.acquire(timeout=self._timeout_s):
            raise self._busy(operation)
        try:
            if self._login.epoch != self._epoch:  # another keystore on this token logged in again
                self._drop_idle()
                self._epoch = self._login.epoch
            if self._down is not None:
                self._recover_locked(operation)
            if self._idle:
                worker = self._idle.pop()
            elif self._created < self._pool_size:
                worker = _Worker(self._token.open(rw=True), epoch=self._epoch)
                self._created += 1
            else:  # every session is held by this thread's enclosing operations
                raise self._busy(operation)
            if worker.generation != self._generation:
                worker.private_keys.clear()
                worker.generation = self._generation
            return worker
        except p11e.PKCS11Error as exc:
            try:
                raise self._failed(exc, "open session") from exc
            finally:
                self._call.release()
        except BaseException:
            self._call.release()
            raise

    def _release(self, worker: _Worker, healthy: bool) -> None:
        try:
            if worker.epoch != self._epoch:
                # Opened before the token was re-opened: its handle is dead (and may since name a new
                # session), so it is forgotten, not closed.
                self._created -= 1
            elif healthy and not self._closed:
                self._idle.append(worker)
            else:
                self._created -= 1
                self._close_quietly(worker.session)
        finally:
            self._call.release()

    def _failed(self, exc: p11e.PKCS11Error, operation: str) -> SealServiceError:
        """The keystore error for ``exc`` (call lock held); a token failure takes the keystore down."""
        if not token_gone(exc):
            return translate_pkcs11_error(exc, operation)
        if self._down is None:
            log.warning(
                "token unavailable during %s (%s): sessions dropped, re-opening it",
                operation,
                type(exc).__name__,
            )
            self._delay = RECOVERY_MIN_DELAY_S
            self._retry_at = time.monotonic() + self._delay
            self._failed_attempts = 0
        err = token_unavailable(operation, type(exc).__name__, self._delay)
        self._down = err
        return err

    @contextmanager
    def _worker(self, operation: str) -> Iterator[_Worker]:
        worker = self._acquire(operation)
        healthy = True
        try:
            yield worker
        except p11e.PKCS11Error as exc:
            if token_gone(exc):
                healthy = False
                raise self._failed(exc, operation) from exc
            raise translate_pkcs11_error(exc, operation) from exc
        finally:
            self._release(worker, healthy)

    def _sign_raw(self, label: str, data: bytes, mechanism: Mechanism) -> bytes:
        """The hot path: one token signature, without the generator-based context manager."""
        worker = self._acquire("sign")
        healthy = True
        try:
            key = worker.private_keys.get(label)
            if key is None:
                key = self._private_key(worker, label)
            return bytes(key.sign(data, mechanism=mechanism))
        except p11e.PKCS11Error as exc:
            if token_gone(exc):
                healthy = False
                raise self._failed(exc, "sign") from exc
            raise translate_pkcs11_error(exc, "sign") from exc
        finally:
            self._release(worker, healthy)

    # -- recovery ----------------------------------------------------------------------------------
    @property
    def unavailable(self) -> str | None:
        """The code of the failure the token is down with (``None`` while it works)."""
        down = self._down
        return down.code if down is not None else None

    def _drop_idle(self) -> None:
        while self._idle:
            self._created -= 1
            self._close_quietly(self._idle.pop().session)

    def _recover_locked(self, operation: str) -> None:
        """Re-open a failed token (call lock held): drop the sessions, log in again, prove it with one call.

        Attempts are spaced by a doubling wait (``RECOVERY_MIN_DELAY_S`` .. ``RECOVERY_MAX_DELAY_S``); in
        between, callers get ``TOKEN_UNAVAILABLE`` at once, without touching the token. Every third failed
        attempt finalises and re-initialises the module first (C_Finalize / C_Initialize), which some
        modules need after a device error. A PIN the token refused is not offered again until the PIN source
        holds another one (a real HSM locks the PIN after a few wrong tries).
        """
        down = self._down
        assert down is not None
        now = time.monotonic()
        if now < self._retry_at:
            if down.code in _PIN_CODES:
                raise down
            raise token_unavailable(
                operation, str(down.details.get("pkcs11_error", down.code)), self._retry_at - now
            )
        try:
            self._reopen_locked()
        except SealServiceError as exc:
            self._failed_attempts += 1
            if self._failed_attempts % 3 == 0:
                self._reinit_next = True
            self._delay = min(RECOVERY_MAX_DELAY_S, self._delay * 2)
            self._retry_at = time.monotonic() + self._delay
            if isinstance(exc, KeystoreError) and exc.code in _PIN_CODES:
                self._down = exc
                log.warning("token re-login refused: %s", exc.code)
                raise
            cause = str(exc.details.get("pkcs11_error", exc.code))
            self._down = token_unavailable(operation, cause, self._delay)
            raise self._down from exc
        self._down = None
        self._delay = RECOVERY_MIN_DELAY_S
        self._failed_attempts = 0
        log.warning("token available again: logged in afresh (login epoch %d)", self._epoch)

    def _reopen_locked(self) -> None:
        self._drop_idle()
        with self._lock:
            self._generation += 1  # key handles found on the old sessions are dead
        login = self._login
        if login.epoch == self._epoch:  # nobody logged in again since this keystore's sessions died
            self._relogin_locked(login)
        self._epoch = login.epoch
        try:
            session = self._token.open(rw=True)
            session.generate_random(16)
        except p11e.PKCS11Error as exc:
            raise translate_pkcs11_error(exc, "reopen") from exc
        self._idle.append(_Worker(session, generation=self._generation, epoch=self._epoch))
        self._created += 1

    def _relogin_locked(self, login: _Login) -> None:
        if self._pin_source is None:
            raise TokenUnavailable(
                "TOKEN_UNAVAILABLE", "the keystore cannot log in again (no PIN source)", "密钥库无法重新登录"
            )
        pin = read_secret(self._pin_source)
        mac = _pin_mac(pin)
        if self._refused_pin is not None and hmac.compare_digest(self._refused_pin, mac):
            raise KeystoreError(
                "TOKEN_PIN_INCORRECT",
                "the token refused the configured PIN; it is not offered again until the PIN source changes",
                "令牌拒绝了所配置的口令；口令来源更改前不再重试",
                details={"operation": "login", "retried": False},
            )
        with _LIB_LOCK:
            self._close_quietly(login.anchor)
        try:
            if self._reinit_next:
                self._reinit_next = False
                log.warning("re-initialising the PKCS#11 module (C_Finalize, C_Initialize)")
                self._lib.reinitialize()
            self._token = self._find_token(self._lib, self.uri)
            try:
                anchor = self._token.open(rw=True, user_pin=pin)
            except p11e.UserAlreadyLoggedIn:
                anchor = self._token.open(rw=True)
        except p11e.PKCS11Error as exc:
            if isinstance(exc, p11e.PinIncorrect | p11e.PinLocked):
                self._refused_pin = mac
            elif _not_initialized(exc):
                self._reinit_next = True
            raise translate_pkcs11_error(exc, "login") from exc
        self._refused_pin = None
        with _LIB_LOCK:
            login.anchor = anchor
            login.pin_mac = mac
            login.epoch += 1

    def _busy(self, operation: str) -> KeystoreError:
        return KeystoreError(
            "TOKEN_BUSY",
            f"the token was not free within {self._timeout_s:g}s",
            "令牌繁忙，请稍后重试",
            details={"operation": operation, "timeout_s": self._timeout_s},
        )

    def ping(self) -> None:
        """Readiness probe: one round trip to the token on a pooled session (raises a KeystoreError)."""
        with self._worker("ping") as w:
            w.session.generate_random(64)

    # -- keys --------------------------------------------------------------------------------------
    def has_key(self, label: str) -> bool:
        with self._worker("find key") as w:
            return any(True for _ in w.session.get_objects({Attribute.LABEL: label}))

    def key_labels(self, prefix: str = "") -> list[str]:
        """Labels of the private keys in the token (public keys share them)."""
        with self._worker("list keys") as w:
            labels = {
                str(obj[Attribute.LABEL])
                for obj in w.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            }
        return sorted(label for label in labels if label.startswith(prefix))

    def generate_key(self, label: str, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> KeyRef:
        """Generate a key pair inside the token; the private half never leaves it."""
        if not label or len(label) > 128:
            raise BadInput(
                "KEY_LABEL_INVALID", "a key label is 1..128 characters", "密钥标签须为1至128个字符"
            )
        key_id = hashlib.sha256(label.encode()).digest()[:16]
        private_template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        public_template = {
            Attribute.TOKEN: True,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.WRAP: False,
        }
        common: _KeyPairOptions = {
            "store": True,
            "label": label,
            "id": key_id,
            "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
            "public_template": public_template,
            "private_template": private_template,
        }
        with self._worker("generate key") as w:
            s = w.session
            if any(True for _ in s.get_objects({Attribute.LABEL: label})):
                raise Conflict(
                    "KEY_LABEL_EXISTS",
                    f"a key labelled {label} exists",
                    "密钥标签已存在",
                    details={"label": label},
                )
            if algorithm is KeyAlgorithm.EC_P256:
                params = s.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(_P256_OID)}, local=True
                )
                params.generate_keypair(mechanism=Mechanism.EC_KEY_PAIR_GEN, **common)
            elif algorithm is KeyAlgorithm.RSA_3072:
                s.generate_keypair(KeyType.RSA, 3072, mechanism=Mechanism.RSA_PKCS_KEY_PAIR_GEN, **common)
            elif algorithm is KeyAlgorithm.ED25519:
                params = s.create_domain_parameters(
                    KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: _ED25519_OID_DER}, local=True
                )
                params.generate_keypair(mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, **common)
            else:  # pragma: no cover - exhaustive enum
                raise BadInput("KEY_ALGORITHM_INVALID", f"unsupported algorithm {algorithm}")
        log.info("generated %s key %s in the token", algorithm.value, label)
        return KeyRef(label=label, algorithm=algorithm, key_id=key_id)

    def destroy_key(self, label: str, *, private_only: bool = False) -> None:
        """Destroy the key pair (or only its private half, so the public key stays for the record)."""
        query: dict[Attribute, object] = {Attribute.LABEL: label}
        if private_only:
            query[Attribute.CLASS] = ObjectClass.PRIVATE_KEY
        with self._lock:
            self._generation += 1
            if not private_only:
                self._public_cache.pop(label, None)
        with self._worker("destroy key") as w:
            for obj in list(w.session.get_objects(query)):
                obj.destroy()
        log.info("destroyed %s key %s", "private" if private_only else "", label)

    def key_attributes(self, label: str) -> dict[str, bool]:
        """Security attributes of the private key, read back from the token."""
        with self._worker("read attributes") as w:
            key = self._private_key(w, label)
            return {
                "sensitive": bool(key[Attribute.SENSITIVE]),
                "extractable": bool(key[Attribute.EXTRACTABLE]),
                "token": bool(key[Attribute.TOKEN]),
                "private": bool(key[Attribute.PRIVATE]),
                "always_sensitive": bool(key[Attribute.ALWAYS_SENSITIVE]),
                "never_extractable": bool(key[Attribute.NEVER_EXTRACTABLE]),
                "local": bool(key[Attribute.LOCAL]),
            }

    def public_key(self, label: str) -> TokenPublicKey:
        """The public key as a ``cryptography`` object (EC, RSA or Ed25519)."""
        cached = self._public_cache.get(label)
        if cached is not None:
            return cached
        with self._worker("read public key") as w:
            objs = list(
                w.session.get_objects({Attribute.LABEL: label, Attribute.CLASS: ObjectClass.PUBLIC_KEY})
            )
            if not objs:
                raise KeystoreError(
                    "KEY_NOT_FOUND",
                    f"no public key labelled {label}",
                    "令牌中无此公钥",
                    details={"label": label},
                )
            obj = objs[0]
            key_type = obj[Attribute.KEY_TYPE]
            if key_type == KeyType.RSA:
                pub: TokenPublicKey = rsa.RSAPublicNumbers(
                    int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big"),
                    int.from_bytes(obj[Attribute.MODULUS], "big"),
                ).public_key()
            elif key_type == KeyType.EC:
                pub = ec.EllipticCurvePublicKey.from_encoded_point(
                    ec.SECP256R1(), _octet_string(obj[Attribute.EC_POINT])
                )
            elif key_type == KeyType.EC_EDWARDS:
                pub = ed25519.Ed25519PublicKey.from_public_bytes(_octet_string(obj[Attribute.EC_POINT]))
            else:
                raise KeystoreError("KEY_ALGORITHM_INVALID", f"unsupported key type {key_type}")
        self._public_cache[label] = pub
        return pub

    def _private_key(self, w: _Worker, label: str) -> SignMixin:
        key = w.private_keys.get(label)
        if key is None:
            try:
                # python-pkcs11 mixes SignMixin into a key's class at run time when CKA_SIGN is set (every key
                # generate_key makes); its stubs can only say Key.
                key = cast(SignMixin, w.session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label))
            except p11e.NoSuchKey as exc:
                raise KeystoreError(
                    "KEY_NOT_FOUND",
                    f"no private key labelled {label}",
                    "令牌中无此私钥",
                    details={"label": label},
                ) from exc
            w.private_keys[label] = key
        return key

    # -- signing -----------------------------------------------------------------------------------
    def sign(
        self,
        label: str,
        data: bytes,
        algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
        hash_alg: str = "sha256",
    ) -> bytes:
        """DER ECDSA or PKCS#1 v1.5 RSA over ``hash_alg(data)``, hashed here (not in the token)."""
        if algorithm is KeyAlgorithm.ED25519:
            return self.sign_ed25519(label, data)
        if hash_alg not in _DIGEST_INFO:
            raise BadInput("HASH_ALGORITHM_INVALID", f"unsupported hash {hash_alg}", "不支持的摘要算法")
        return self.sign_digest(label, _HASHES[hash_alg](data).digest(), algorithm)

    def sign_digest(self, label: str, digest: bytes, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> bytes:
        hash_alg = _DIGEST_BY_LEN.get(len(digest))
        if hash_alg is None:
            raise BadInput("DIGEST_INVALID", "a digest is 32, 48 or 64 bytes", "摘要长度须为32、48或64字节")
        if algorithm is KeyAlgorithm.EC_P256:
            # SoftHSM has no CKM_ECDSA_SHA256: raw ECDSA over the digest, r||s turned into DER.
            raw = self._sign_raw(label, digest, Mechanism.ECDSA)
            half = len(raw) // 2
            return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
        if algorithm is KeyAlgorithm.RSA_3072:
            return self._sign_raw(label, _DIGEST_INFO[hash_alg] + digest, Mechanism.RSA_PKCS)
        raise BadInput(
            "KEY_ALGORITHM_INVALID",
            "Ed25519 signs messages, not digests (use sign_ed25519)",
            "Ed25519 不对摘要签名",
        )

    def sign_ed25519(self, label: str, message: bytes) -> bytes:
        """Pure Ed25519 (CKM_EDDSA) over the message: 64 bytes."""
        return self._sign_raw(label, message, Mechanism.EDDSA)


class KeystoreOpener:
    """Opens the keystore for a long-running service that must come up by itself once the token does.

    ``attempt()`` opens it or raises the keystore error (``TOKEN_PIN_INCORRECT``, ``TOKEN_NOT_FOUND``,
    ``TOKEN_UNAVAILABLE``, ``PKCS11_MODULE_NOT_FOUND`` ...); ``due()`` says whether the doubling wait since
    the last failure (``min_delay_s`` .. ``max_delay_s``) is over. The PIN is read from its source at every
    attempt, so a corrected PIN file is picked up without a restart; a PIN the token refused is not offered
    again (the attempt fails at once with ``TOKEN_PIN_INCORRECT``, ``retried: false``) until the source holds
    another one, so the retries cannot lock the PIN of a real HSM.
    """

    def __init__(self, settings: Settings, *, min_delay_s: float = 1.0, max_delay_s: float = 10.0) -> None:
        self._settings = settings
        self._min = min_delay_s
        self._max = max_delay_s
        self._delay = 0.0
        self._retry_at = 0.0
        self._refused_pin: bytes | None = None
        self.attempts = 0

    def due(self) -> bool:
        return time.monotonic() >= self._retry_at

    @property
    def retry_in_s(self) -> float:
        return max(0.0, self._retry_at - time.monotonic())

    def attempt(self) -> Keystore:
        self.attempts += 1
        try:
            pin_source = _pin_source_of(self._settings)
            pin = read_secret(pin_source)
            mac = _pin_mac(pin)
            if self._refused_pin is not None and hmac.compare_digest(self._refused_pin, mac):
                raise KeystoreError(
                    "TOKEN_PIN_INCORRECT",
                    "the token refused the configured PIN; it is not offered again until the PIN source "
                    "changes",
                    "令牌拒绝了所配置的口令；口令来源更改前不再重试",
                    details={"operation": "login", "retried": False},
                )
            try:
                ks = Keystore._open(self._settings, pin_source, pin)
            except KeystoreError as exc:
                if exc.code in _PIN_CODES:
                    self._refused_pin = mac
                raise
        except Exception:
            self._delay = min(self._max, max(self._min, self._delay * 2))
            self._retry_at = time.monotonic() + self._delay
            raise
        self._delay = 0.0
        self._refused_pin = None
        return ks


def _octet_string(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING (SoftHSM, most HSMs); some modules return the bare point."""
    value = bytes(value)
    if value[:1] == b"\x04" and len(value) >= 2:
        length = value[1]
        if length < 0x80 and length == len(value) - 2:
            return value[2:]
        if length == 0x81 and len(value) >= 3 and value[2] == len(value) - 3:
            return value[3:]
    return value
