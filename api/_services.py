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
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, session_factory
from core.errors import Unavailable
from core.settings import Settings

if TYPE_CHECKING:  # imported when wired: the signer loads pyHanko, the keystore the PKCS#11 module
    from keystore import CountyPKI, Keystore, KeystoreOpener, SealRegistry
    from ledger import Ledger, NoteSigner
    from policies import PolicyStore
    from signer import CountyTsa, Sealer

log = logging.getLogger("yizhang.api")

_T = TypeVar("_T")


@dataclass
class TokenParts:
    """What is built on the token, filled in when the keystore opens (at start, or later from the token
    loop): the one mutable part of :class:`Services`, written only under ``Services.wire_lock``."""

    keystore: Keystore | None = None
    seal_registry: SealRegistry | None = None
    county_pki: CountyPKI | None = None
    ledger: Ledger | None = None  # a signing ledger once the token's log key is there, else a reader
    signer: Sealer | None = None
    opener: KeystoreOpener | None = None  # while a configured token is not open
    tsa: CountyTsa | None = None  # the county TSA, issued on first use


@dataclass(frozen=True)
class Services:
    """The service's collaborators, typed; built once per process by :func:`build_services`.

    ``policy_store`` is fixed at start; the token's parts (``keystore``, ``seal_registry``, ``county_pki``,
    ``ledger``, ``signer``) may arrive later (:meth:`heal_token`): each reads as ``None`` until then, and
    its ``need_*`` form answers ``503`` instead (``TOKEN_UNAVAILABLE`` while the token is awaited, else
    ``SERVICE_UNAVAILABLE``)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    policy_store: PolicyStore | None = None
    problems: dict[str, str] = field(default_factory=dict)
    wired: TokenParts = field(default_factory=TokenParts, repr=False)
    closers: list[Callable[[], object]] = field(default_factory=list, repr=False)
    wire_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tsa_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- the token's parts, ``None`` while not wired ------------------------------------------------------
    @property
    def keystore(self) -> Keystore | None:
        return self.wired.keystore

    @property
    def seal_registry(self) -> SealRegistry | None:
        return self.wired.seal_registry

    @property
    def county_pki(self) -> CountyPKI | None:
        return self.wired.county_pki

    @property
    def ledger(self) -> Ledger | None:
        return self.wired.ledger

    @property
    def signer(self) -> Sealer | None:
        return self.wired.signer

    # -- the same, or ``503 UNAVAILABLE`` --------------------------------------------------------------
    def need_keystore(self) -> Keystore:
        return self._need(self.wired.keystore, "keystore", token=True)

    def need_seal_registry(self) -> SealRegistry:
        return self._need(self.wired.seal_registry, "seal_registry", token=True)

    def need_county_pki(self) -> CountyPKI:
        return self._need(self.wired.county_pki, "county_pki", token=True)

    def need_signer(self) -> Sealer:
        return self._need(self.wired.signer, "signer", token=True)

    def need_ledger(self) -> Ledger:
        return self._need(self.wired.ledger, "ledger", token=False)

    def need_policy_store(self) -> PolicyStore:
        return self._need(self.policy_store, "policy_store", token=False)

    def _need(self, value: _T | None, name: str, *, token: bool) -> _T:
        """``value``, or the ``503`` naming ``name`` (the service's name in the error's details)."""
        if value is not None:
            return value
        cause = self.problems.get("keystore")
        if cause is not None and token:
            opener = self.wired.opener
            retry = opener.retry_in_s if opener is not None else 5.0
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

    def county_tsa(self) -> CountyTsa:
        """The county's RFC 3161 TSA (signer area), its certificate issued on first use."""
        if self.wired.tsa is None:
            with self._tsa_lock:
                if self.wired.tsa is None:
                    signer = self.wired.signer
                    if signer is not None:
                        self.wired.tsa = signer.county_tsa()
                    else:
                        keystore = self.need_keystore()
                        pki = self.need_county_pki()
                        from signer import CountyTsa, ensure_county_tsa

                        self.wired.tsa = CountyTsa(keystore, ensure_county_tsa(self.engine, keystore, pki))
        return self.wired.tsa

    def token_watched(self) -> bool:
        """A token is configured here: the app's token loop looks after it (see :meth:`heal_token`)."""
        return self.wired.keystore is not None or self.wired.opener is not None

    def token_pending(self) -> bool:
        """A token is configured but its keystore is not open (yet): the token loop keeps trying."""
        return self.wired.keystore is None and self.wired.opener is not None

    def heal_token(self) -> None:
        """One round of the token loop (blocking; run it off the event loop): open the keystore if it did not
        open at start, when the backoff allows; or let a keystore whose token failed re-open its sessions."""
        keystore = self.wired.keystore
        if keystore is None:
            opener = self.wired.opener
            if opener is not None and opener.due():
                _open_keystore(self, built=True)
            return
        if keystore.unavailable is not None:
            with contextlib.suppress(Exception):  # the keystore records and logs the failure itself
                keystore.ping()

    def close(self) -> None:
        for closer in reversed(self.closers):
            with contextlib.suppress(Exception):
                closer()
        self.engine.dispose()


def token_configured(settings: Settings) -> bool:
    """A token is configured when a PKCS#11 URI is given, or the embedded SoftHSM home exists."""
    return bool(settings.pkcs11_uri) or settings.softhsm_conf.exists()


def build_services(settings: Settings, *, open_token: bool = True) -> Services:
    from policies import PolicyStore

    engine = make_engine(settings.effective_database_url)
    problems: dict[str, str] = {}
    policy_store: PolicyStore | None = None
    try:
        policy_store = PolicyStore(engine)
    except Exception as exc:  # noqa: BLE001 - a missing area must not stop the service
        problems["policy_store"] = type(exc).__name__
    services = Services(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        policy_store=policy_store,
        problems=problems,
    )
    if open_token and token_configured(settings):
        from keystore import KeystoreOpener

        services.wired.opener = KeystoreOpener(settings)
        _open_keystore(services, built=False)
    _wire_ledger(services)
    _wire_signer(services)
    return services


def _open_keystore(services: Services, *, built: bool) -> None:
    """One attempt to open the keystore and wire what is built on it (at start, then from the token loop;
    ``built``: the rest of the services was built without the token, and is built again on it)."""
    from keystore import SealRegistry

    wired = services.wired
    opener = wired.opener
    if opener is None:
        return
    with services.wire_lock:
        if wired.keystore is not None:
            return
        try:
            ks = opener.attempt()
        except Exception as exc:  # noqa: BLE001 - logged by code; readyz reports the token as down
            code = str(getattr(exc, "code", type(exc).__name__))
            if services.problems.get("keystore") != code:  # once per code, not once per retry
                log.warning("keystore not opened: %s; retrying by itself", code, extra={"code": code})
            services.problems["keystore"] = code
            return
        services.closers.append(ks.close)
        try:
            registry = SealRegistry(services.engine, ks, services.settings)
            wired.county_pki = registry.pki
            wired.seal_registry = registry
            services.problems.pop("seal_registry", None)
        except Exception as exc:  # noqa: BLE001
            services.problems["seal_registry"] = str(getattr(exc, "code", type(exc).__name__))
        wired.keystore = ks
        services.problems.pop("keystore", None)
        if built:  # opened late: what was built without the token is built again on it
            if not services.settings.log_key_source.startswith("file"):
                services.problems.pop("ledger", None)
                _wire_ledger(services)
            services.problems.pop("signer", None)
            _wire_signer(services)
            log.warning("keystore opened after %d attempts: ready to seal", opener.attempts)
        wired.opener = None


#: Label of the ledger's Ed25519 log key when it is held in the token (log_key_source=token).
LOG_KEY_LABEL = "ledger-log-key"


class TokenNoteSigner:
    """The ledger's ``NoteSigner`` over an Ed25519 key in the token (never leaves it)."""

    def __init__(self, keystore: Keystore, label: str, name: str) -> None:
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
    import ledger as ledger_mod

    settings = services.settings
    keystore = services.wired.keystore
    try:
        signer: NoteSigner | None = None
        if settings.log_key_source.startswith("file"):
            signer = ledger_mod.key_file_signer(settings)
        elif keystore is not None and keystore.has_key(LOG_KEY_LABEL):
            signer = TokenNoteSigner(keystore, LOG_KEY_LABEL, ledger_mod.origin_for(settings))
            ledger_mod.publish_vkey(settings, ledger_mod.NoteVerifier.for_signer(signer))
        if signer is not None:
            wired = ledger_mod.Ledger(services.engine, signer)
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
            wired = ledger_mod.Ledger(
                services.engine, None, origin=ledger_mod.origin_for(settings), verifiers=verifiers
            )
        services.wired.ledger = wired
        services.closers.append(wired.close)
    except Exception as exc:  # noqa: BLE001
        services.problems["ledger"] = str(getattr(exc, "code", type(exc).__name__))
        log.warning("ledger not wired", extra={"code": services.problems["ledger"]})


def _wire_signer(services: Services) -> None:
    """The signer's Sealer, when every collaborator it needs is here (token, registry, policies, ledger)."""
    w = services.wired
    keystore, registry, pki, policies, ledger = (
        w.keystore,
        w.seal_registry,
        w.county_pki,
        services.policy_store,
        w.ledger,
    )
    if keystore is None or registry is None or pki is None or policies is None or ledger is None:
        return
    from signer import Sealer

    try:
        w.signer = Sealer(
            engine=services.engine,
            settings=services.settings,
            keystore=keystore,
            registry=registry,
            pki=pki,
            policy_store=policies,
            ledger=ledger,
        )
    except Exception as exc:  # noqa: BLE001
        services.problems["signer"] = str(getattr(exc, "code", type(exc).__name__))
        log.warning("signer not wired", extra={"code": services.problems["signer"]})
