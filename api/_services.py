"""The objects a running service holds, built once per process from the settings.

The other areas' objects (keystore, policy store, ledger, signer) are wired when their packages provide
them; until then, or when a deployment has no token, the attribute is ``None`` and the routes that need it
answer ``503 UNAVAILABLE``. Nothing here opens a connection at import time.

A token that cannot be opened at start (wrong PIN, module missing, token absent) does not stop the service:
it starts unready (``readyz`` names the code), and :meth:`Services.heal_token`, called by the app's token
loop, tries again with a bounded backoff and wires the keystore and everything built on it (seal registry,
county PKI, the ledger's token log key, the signer) once it opens. A token that fails later is re-opened by
the keystore itself (``keystore.Keystore``, ``TOKEN_UNAVAILABLE`` meanwhile).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, session_factory
from core.errors import Unavailable
from core.settings import Settings

log = logging.getLogger("yizhang.api")


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keystore: Any | None = None
    seal_registry: Any | None = None
    county_pki: Any | None = None
    policy_store: Any | None = None
    ledger: Any | None = None
    signer: Any | None = None
    problems: dict[str, str] = field(default_factory=dict)
    _closers: list[Any] = field(default_factory=list, repr=False)
    _opener: Any | None = field(default=None, repr=False)  # keystore.KeystoreOpener while not opened
    _wire_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _built: bool = field(default=False, repr=False)
    _tsa: Any | None = field(default=None, repr=False)
    _tsa_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def county_tsa(self) -> Any:
        """The county's RFC 3161 TSA (signer area), its certificate issued on first use."""
        if self._tsa is None:
            with self._tsa_lock:
                if self._tsa is None:
                    if self.signer is not None:
                        self._tsa = self.signer.county_tsa()
                    else:
                        keystore = self.need("keystore")
                        pki = self.need("county_pki")
                        from signer import CountyTsa, ensure_county_tsa

                        self._tsa = CountyTsa(keystore, ensure_county_tsa(self.engine, keystore, pki))
        return self._tsa

    def need(self, name: str) -> Any:
        """The named service, or ``503 UNAVAILABLE`` when this deployment does not have it (yet):
        ``TOKEN_UNAVAILABLE`` when it waits for a token that did not open, else ``SERVICE_UNAVAILABLE``."""
        value = getattr(self, name, None)
        if value is None:
            cause = self.problems.get("keystore")
            if cause is not None and name in NEEDS_TOKEN:
                retry = self._opener.retry_in_s if self._opener is not None else 5.0
                raise Unavailable(
                    "TOKEN_UNAVAILABLE",
                    "the signing token is not available; retry shortly",
                    "签章令牌暂不可用，请稍后重试",
                    details={"service": name, "cause": cause, "retry_after_s": max(1, round(retry))},
                )
            raise Unavailable(
                "SERVICE_UNAVAILABLE",
                f"{name} is not available on this server",
                f"服务器上 {name} 不可用",
                details={"service": name},
            )
        return value

    def token_watched(self) -> bool:
        """A token is configured here: the app's token loop looks after it (see :meth:`heal_token`)."""
        return self.keystore is not None or self._opener is not None

    def token_pending(self) -> bool:
        """A token is configured but its keystore is not open (yet): the token loop keeps trying."""
        return self.keystore is None and self._opener is not None

    def heal_token(self) -> None:
        """One round of the token loop (blocking; run it off the event loop): open the keystore if it did not
        open at start, when the backoff allows; or let a keystore whose token failed re-open its sessions."""
        if self.keystore is None:
            if self._opener is not None and self._opener.due():
                _open_keystore(self)
            return
        if getattr(self.keystore, "unavailable", None) is not None:
            with contextlib.suppress(Exception):  # the keystore records and logs the failure itself
                self.keystore.ping()

    def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer()
        self.engine.dispose()


#: Services built on the token: while the keystore is not open they answer ``TOKEN_UNAVAILABLE``.
NEEDS_TOKEN = frozenset({"keystore", "seal_registry", "county_pki", "signer"})


def _optional_module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def token_configured(settings: Settings) -> bool:
    """A token is configured when a PKCS#11 URI is given, or the embedded SoftHSM home exists."""
    return bool(settings.pkcs11_uri) or settings.softhsm_conf.exists()


def build_services(settings: Settings, *, open_token: bool = True) -> Services:
    engine = make_engine(settings.effective_database_url)
    services = Services(settings=settings, engine=engine, sessions=session_factory(engine))
    keystore_mod = _optional_module("keystore")
    if open_token and keystore_mod is not None and token_configured(settings):
        _wire_keystore(services, keystore_mod)
    _wire_ledger(services)
    policies_mod = _optional_module("policies")
    if policies_mod is not None and hasattr(policies_mod, "PolicyStore"):
        try:
            services.policy_store = policies_mod.PolicyStore(engine)
        except Exception as exc:  # noqa: BLE001 - a missing area must not stop the service
            services.problems["policy_store"] = type(exc).__name__
    _wire_signer(services)
    services._built = True
    return services


def _wire_keystore(services: Services, keystore_mod: Any) -> None:
    services._opener = keystore_mod.KeystoreOpener(services.settings)
    _open_keystore(services)


def _open_keystore(services: Services) -> None:
    """One attempt to open the keystore and wire what is built on it (at start, then from the token loop)."""
    keystore_mod = _optional_module("keystore")
    opener = services._opener
    if keystore_mod is None or opener is None:
        return
    with services._wire_lock:
        if services.keystore is not None:
            return
        try:
            ks = opener.attempt()
        except Exception as exc:  # noqa: BLE001 - logged by code; readyz reports the token as down
            code = str(getattr(exc, "code", type(exc).__name__))
            if services.problems.get("keystore") != code:  # once per code, not once per retry
                log.warning("keystore not opened: %s; retrying by itself", code, extra={"code": code})
            services.problems["keystore"] = code
            return
        services._closers.append(ks.close)
        try:
            registry = keystore_mod.SealRegistry(services.engine, ks, services.settings)
            services.county_pki = registry.pki
            services.seal_registry = registry
            services.problems.pop("seal_registry", None)
        except Exception as exc:  # noqa: BLE001
            services.problems["seal_registry"] = str(getattr(exc, "code", type(exc).__name__))
        services.keystore = ks
        services.problems.pop("keystore", None)
        if services._built:  # opened late: what was built without the token is built again on it
            if not services.settings.log_key_source.startswith("file"):
                services.problems.pop("ledger", None)
                _wire_ledger(services)
            services.problems.pop("signer", None)
            _wire_signer(services)
            log.warning("keystore opened after %d attempts: ready to seal", opener.attempts)
        services._opener = None


#: Label of the ledger's Ed25519 log key when it is held in the token (log_key_source=token).
LOG_KEY_LABEL = "ledger-log-key"


class TokenNoteSigner:
    """The ledger's ``NoteSigner`` over an Ed25519 key in the token (never leaves it)."""

    def __init__(self, keystore: Any, label: str, name: str) -> None:
        from cryptography.hazmat.primitives import serialization

        self._ks = keystore
        self._label = label
        self._name = name
        self._public = keystore.public_key(label).public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> bytes:
        return bytes(self._public)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._ks.sign_ed25519(self._label, message))


def _wire_ledger(services: Services) -> None:
    ledger_mod = _optional_module("ledger")
    if ledger_mod is None or not hasattr(ledger_mod, "Ledger"):
        return
    settings = services.settings
    try:
        signer: Any = None
        if settings.log_key_source.startswith("file"):
            signer = ledger_mod.key_file_signer(settings)
        elif services.keystore is not None and services.keystore.has_key(LOG_KEY_LABEL):
            signer = TokenNoteSigner(services.keystore, LOG_KEY_LABEL, ledger_mod.origin_for(settings))
            ledger_mod.publish_vkey(settings, ledger_mod.NoteVerifier.for_signer(signer))
        if signer is not None:
            services.ledger = ledger_mod.Ledger(services.engine, signer)
        else:
            # A reader: audits and proofs work, checkpoints are not signed here.
            verifiers = []
            vkey = ledger_mod.vkey_path(settings)
            if vkey.is_file():
                verifiers = [
                    ledger_mod.NoteVerifier.from_vkey(line)
                    for line in vkey.read_text(encoding="utf-8").splitlines()
                    if line.strip()
                ]
            services.ledger = ledger_mod.Ledger(
                services.engine, None, origin=ledger_mod.origin_for(settings), verifiers=verifiers
            )
        services._closers.append(services.ledger.close)
    except Exception as exc:  # noqa: BLE001
        services.problems["ledger"] = getattr(exc, "code", type(exc).__name__)
        log.warning("ledger not wired", extra={"code": services.problems["ledger"]})


def _wire_signer(services: Services) -> None:
    """The signer's Sealer, when every collaborator it needs is here (token, registry, policies, ledger)."""
    signer_mod = _optional_module("signer")
    if signer_mod is None or not hasattr(signer_mod, "Sealer"):
        return
    parts = ("keystore", "seal_registry", "county_pki", "policy_store", "ledger")
    if any(getattr(services, p) is None for p in parts):
        return
    try:
        services.signer = signer_mod.Sealer(
            engine=services.engine,
            settings=services.settings,
            keystore=services.keystore,
            registry=services.seal_registry,
            pki=services.county_pki,
            policy_store=services.policy_store,
            ledger=services.ledger,
        )
    except Exception as exc:  # noqa: BLE001
        services.problems["signer"] = getattr(exc, "code", type(exc).__name__)
        log.warning("signer not wired", extra={"code": services.problems["signer"]})
