"""Trust across counties: this county's signed trust bundle, and the trust store of other counties' bundles.

Publishing. The verify bundle (``yizhang-verify-bundle/1``: roots, intermediates, CRLs, log key, latest
checkpoint, decision status list) gains ``county``, ``url`` (where a fresh one is), ``next_update`` (the
earliest nextUpdate of what it carries) and ``signature``: ECDSA P-256 / SHA-256 by the **county root** over
the bundle without its signature as canonical JSON. Why the root: it is what another county pins (the
fingerprint an officer reads out on the phone), and its signature covers the log key, CRLs and status list
with it, so one pin vouches for all of them; the root already signs the root CRL from the same token on the
same schedule, so the bundle adds no new use of a new key. The log key could not do it: it is *in* the
bundle, and a pin on the root would not cover it. ``GET /pki/trust-bundle.json`` serves the bundle, signed
again when it is older than :data:`BUNDLE_REFRESH` or its CRLs or status list changed.

The store. ``HOME/trust/<name>.json`` holds one county each: where it came from (URL or file), the pinned
root (SHA-256 of its DER; set on ``trust add``, like SSH's known_hosts, and never followed when it changes),
when it was added and refreshed, and the bundle. ``yizhang verify``, ``POST /v1/verify`` and the public page
trust those roots and judge those counties' documents with their bundles' evidence
(:class:`verifier.EvidenceRouter`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from api._json import JsonObject
from core.errors import BadInput, Conflict, NotFound, SealServiceError, Unavailable
from core.settings import Settings

if TYPE_CHECKING:
    from api._services import Services
    from keystore import CountyPKI
    from verifier import Evidence, EvidenceRouter, ForeignCounty, TrustList


log = logging.getLogger("yizhang.api")

BUNDLE_FORMAT = "yizhang-verify-bundle/1"
TRUST_BUNDLE_ROUTE = "/pki/trust-bundle.json"
BUNDLE_REFRESH = timedelta(hours=1)  # the published bundle is signed again at least this often
FETCH_TIMEOUT_S = 10.0
MAX_BUNDLE_BYTES = 4 * 1024 * 1024
_NAME = re.compile(r"[\w][\w.-]{0,63}")


# -- publishing ----------------------------------------------------------------------------------------------


def bundle_url(settings: Settings) -> str:
    """Where other counties fetch this county's bundle (this server as reached now; the bundle is signed
    again every hour, so it may follow ``YIZHANG_PUBLIC_BASE_URL``: nothing old names it)."""
    return settings.public_base_url.rstrip("/") + TRUST_BUNDLE_ROUTE


def bundle_path(settings: Settings) -> Path:
    return settings.home_dir / "pki" / "trust-bundle.json"


def make_bundle(
    settings: Settings,
    *,
    status_list: str | None,
    checkpoint: tuple[str | None, datetime | None],
    now: datetime | None = None,
) -> JsonObject:
    """The bundle as published, unsigned: this county's trust (``HOME/pki``), log key, the checkpoint given
    (note, signing time), the status list given, and its own dates."""
    from verifier import TrustList

    now = now or datetime.now(UTC)
    trust = TrustList.for_home(settings.home_dir)
    bundle: JsonObject = {"format": BUNDLE_FORMAT, "created_at": now.isoformat()}
    bundle.update(trust.to_bundle())
    vkey = settings.home_dir / "ledger" / "log.vkey"
    bundle["log_vkey"] = vkey.read_text(encoding="utf-8").strip() if vkey.is_file() else None
    bundle["checkpoint"], checkpoint_at = checkpoint
    bundle["checkpoint_at"] = checkpoint_at.isoformat() if checkpoint_at is not None else None
    bundle["status_list"] = status_list
    bundle["county"] = _county_of(trust.roots[0], settings)
    bundle["url"] = bundle_url(settings)
    bundle["next_update"] = _next_update(trust, status_list, now, settings).isoformat()
    return bundle


def _county_of(root_der: bytes, settings: Settings) -> dict[str, str | None]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    names = x509.load_der_x509_certificate(root_der).subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return {"name": str(names[0].value) if names else None, "code": _county_code(settings)}


def _county_code(settings: Settings) -> str | None:
    """The code stored at ``county init`` (the deployment row), else the configured one."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from core.db import make_engine

    url = settings.effective_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///").split("?", 1)[0]).is_file():
        return settings.county_code or None
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT county_code FROM deployment WHERE id = 1")).first()
    except SQLAlchemyError:
        row = None
    finally:
        engine.dispose()
    return str(row[0]) if row is not None else (settings.county_code or None)


def _next_update(trust: TrustList, status_list: str | None, now: datetime, settings: Settings) -> datetime:
    """The earliest nextUpdate of the CRLs and the status list in the bundle, and never later than one CRL
    validity from now: past it the bundle cannot vouch that nothing was revoked since."""
    from cryptography import x509

    dates = [now + timedelta(days=settings.crl_validity_days)]
    for der in trust.crls:
        nu = x509.load_der_x509_crl(der).next_update_utc
        if nu is not None:
            dates.append(nu)
    if status_list:
        from verifier import StatusList

        try:
            dates.append(StatusList.parse_body(status_list.partition("\n\n")[0] + "\n").next_update)
        except (ValueError, KeyError, TypeError):
            pass
    return min(dates)


def sign_bundle(bundle: JsonObject, pki: CountyPKI) -> JsonObject:
    """The bundle with its ``signature`` by the county root (``pki``: the keystore's CountyPKI)."""
    import base64

    from cryptography.hazmat.primitives import serialization

    from verifier import BUNDLE_SIGNATURE_ALG, bundle_signed_bytes, root_fingerprint

    root_der = pki.root_certificate.public_bytes(serialization.Encoding.DER)
    body = {k: v for k, v in bundle.items() if k != "signature"}
    value = pki.sign_with_root(bundle_signed_bytes(body))
    body["signature"] = {
        "alg": BUNDLE_SIGNATURE_ALG,
        "root_sha256": root_fingerprint(root_der),
        "value": base64.b64encode(value).decode(),
    }
    return body


def sign_with_home_token(settings: Settings, bundle: JsonObject) -> tuple[JsonObject, str | None]:
    """``yizhang verify-bundle``: sign with the home's token (its PIN source). Without the token the bundle
    stays unsigned (``verify --bundle`` takes it; ``trust add`` does not): the second value says why."""
    from keystore import open_registry

    url = settings.effective_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///").split("?", 1)[0]).is_file():
        return bundle, "NO_COUNTY_HERE"  # a home with published PKI files only: nothing to sign with
    try:
        with open_registry(settings) as registry:
            return sign_bundle(bundle, registry.pki), None
    except (SealServiceError, OSError) as exc:
        return bundle, str(getattr(exc, "code", type(exc).__name__))


_publish_lock = threading.Lock()


def current_for_serving(services: Services) -> bytes:
    """The bundle for ``GET /pki/trust-bundle.json``: the published one while it is current (younger than
    :data:`BUNDLE_REFRESH`, and its CRLs and status list not replaced since), else made and signed now.
    Without the token, what was published last (the verifier judges its age by ``next_update``)."""
    path = bundle_path(services.settings)
    if _due(services.settings, path):
        with _publish_lock:
            if _due(services.settings, path):
                try:
                    _publish(services, path)
                except SealServiceError as exc:
                    log.warning("trust bundle not signed: %s", exc.code, extra={"code": exc.code})
    try:
        return path.read_bytes()
    except OSError:
        raise Unavailable(
            "TRUST_BUNDLE_UNAVAILABLE",
            "the trust bundle is not published yet (the token is not at hand)",
            "信任包尚未发布（签章令牌不可用）",
        ) from None


def _due(settings: Settings, path: Path) -> bool:
    try:
        made = path.stat().st_mtime
    except OSError:
        return True
    if datetime.now(UTC).timestamp() - made >= BUNDLE_REFRESH.total_seconds():
        return True
    pki = settings.home_dir / "pki"
    for dep in (pki / "crl" / "issuing.crl", pki / "crl" / "root.crl", pki / "status.note"):
        try:
            if dep.stat().st_mtime > made:
                return True
        except OSError:
            continue
    return False


def _publish(services: Services, path: Path) -> None:
    pki = services.need_county_pki()
    pki.ensure_current_crls()
    status = None
    try:
        from api._status_list import current_for_serving as status_for_serving

        status = status_for_serving(services).decode("utf-8")
    except (SealServiceError, ImportError, UnicodeDecodeError):
        status = None
    checkpoint: tuple[str | None, datetime | None] = (None, None)
    ledger = services.ledger
    if ledger is not None:
        from api.cli._verify import _latest_checkpoint

        checkpoint = _latest_checkpoint(services.settings)
    bundle = sign_bundle(make_bundle(services.settings, status_list=status, checkpoint=checkpoint), pki)
    _atomic_write(path, json.dumps(bundle, ensure_ascii=False, indent=2).encode("utf-8"))
    log.info("trust bundle published", extra={"code": "TRUST_BUNDLE_PUBLISHED"})


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# -- the store -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A bundle read from a URL or file whose signature verifies under the root it names (not yet pinned)."""

    bundle: JsonObject
    fingerprint: str  # SHA-256 of the signing root, hex
    county: str | None
    source: str


@dataclass(frozen=True)
class StoredCounty:
    name: str
    source: str
    root_sha256: str
    added_at: str
    refreshed_at: str
    bundle: JsonObject

    @property
    def next_update(self) -> datetime | None:
        return _time(self.bundle.get("next_update"))

    @property
    def created_at(self) -> datetime | None:
        return _time(self.bundle.get("created_at"))

    def summary(self, now: datetime) -> JsonObject:
        nu = self.next_update
        found = self.bundle.get("county")
        county: JsonObject = found if isinstance(found, dict) else {}
        return {
            "name": self.name,
            "county": county.get("name"),
            "county_code": county.get("code"),
            "source": self.source,
            "root_sha256": self.root_sha256,
            "bundle_created_at": self.bundle.get("created_at"),
            "next_update": self.bundle.get("next_update"),
            "stale": nu is not None and now > nu,
            "added_at": self.added_at,
            "refreshed_at": self.refreshed_at,
        }


def store_dir(settings: Settings) -> Path:
    return settings.home_dir / "trust"


def _time(value: object) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def read_offer(source: str) -> Offer:
    """Read a bundle from ``source`` (``https://`` or loopback ``http://`` URL, or a file) and check that it
    is signed by the root it names. Who that root is, is for the person adding it to confirm."""
    from verifier import bundle_signing_root, check_bundle_signature, fetch_trust, root_fingerprint

    if source.startswith(("http://", "https://")):
        data = fetch_trust(source, timeout_s=FETCH_TIMEOUT_S, max_bytes=MAX_BUNDLE_BYTES)
    else:
        path = Path(source)
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_BUNDLE_BYTES + 1)
        except OSError as exc:
            raise BadInput("TRUST_FILE_UNREADABLE", f"cannot read {path}", f"无法读取 {path}") from exc
        if len(data) > MAX_BUNDLE_BYTES:
            raise BadInput("TRUST_TOO_LARGE", "trust document too large", "信任文件过大")
    try:
        bundle = json.loads(data)
    except ValueError as exc:
        raise BadInput("BUNDLE_INVALID", "not a yizhang verify bundle (JSON)", "不是一章验证包") from exc
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise BadInput("BUNDLE_INVALID", "not a yizhang verify bundle", "不是一章验证包")
    fingerprint = root_fingerprint(bundle_signing_root(bundle))
    check_bundle_signature(bundle, fingerprint)
    _evidence_of(bundle)  # a bundle whose log key or checkpoint time cannot be read is refused now
    county = bundle.get("county")
    return Offer(
        bundle=bundle,
        fingerprint=fingerprint,
        county=str(county.get("name")) if isinstance(county, dict) and county.get("name") else None,
        source=source,
    )


def default_name(offer: Offer) -> str:
    county = offer.bundle.get("county")
    code = county.get("code") if isinstance(county, dict) else None
    if isinstance(code, str) and _NAME.fullmatch(code):
        return f"{code}-{offer.fingerprint[:8]}"
    return offer.fingerprint[:16]


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise BadInput(
            "TRUST_NAME_INVALID",
            "a trust store name is 1-64 letters, digits, '.', '_' or '-'",
            "信任库名称须为1-64个字母、数字或 . _ -",
        )
    return name


def entries(settings: Settings) -> list[StoredCounty]:
    out = []
    folder = store_dir(settings)
    if not folder.is_dir():
        return []
    for path in sorted(folder.glob("*.json")):
        try:
            out.append(_read_entry(path))
        except BadInput as exc:
            log.warning("trust store entry %s unreadable: %s", path.name, exc.code, extra={"code": exc.code})
    return out


def _read_entry(path: Path) -> StoredCounty:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return StoredCounty(
            name=str(raw["name"]),
            source=str(raw["source"]),
            root_sha256=str(raw["root_sha256"]),
            added_at=str(raw["added_at"]),
            refreshed_at=str(raw["refreshed_at"]),
            bundle=dict(raw["bundle"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(
            "TRUST_STORE_INVALID",
            f"trust store entry {path.name} is unreadable",
            f"信任库条目 {path.name} 无法读取",
        ) from exc


def get(settings: Settings, name: str) -> StoredCounty:
    path = store_dir(settings) / f"{check_name(name)}.json"
    if not path.is_file():
        raise NotFound(
            "TRUST_NOT_FOUND", f"no county named {name} in the trust store", f"信任库中没有 {name}"
        )
    return _read_entry(path)


def _write_entry(settings: Settings, entry: StoredCounty) -> None:
    data = {
        "name": entry.name,
        "source": entry.source,
        "root_sha256": entry.root_sha256,
        "added_at": entry.added_at,
        "refreshed_at": entry.refreshed_at,
        "bundle": entry.bundle,
    }
    _atomic_write(
        store_dir(settings) / f"{entry.name}.json",
        json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"),
    )


def add(settings: Settings, offer: Offer, *, name: str, fingerprint: str) -> StoredCounty:
    """Pin ``offer``'s root under ``name``. ``fingerprint`` is what the person confirmed (``--fingerprint``
    or the prompt); it must be the offer's. Refused: another fingerprint (``TRUST_FINGERPRINT_MISMATCH``),
    this county's own root (``TRUST_SELF``), a root already stored under another name or a name already
    pinned to another root (``TRUST_EXISTS``)."""
    from verifier import normalise_fingerprint, root_fingerprint

    name = check_name(name)
    if normalise_fingerprint(fingerprint) != offer.fingerprint:
        raise BadInput(
            "TRUST_FINGERPRINT_MISMATCH",
            "the bundle's root is not the one whose fingerprint was given",
            "验证包的根证书指纹与所给指纹不符",
            details={"offered": offer.fingerprint},
        )
    own = settings.home_dir / "pki" / "root.crt"
    if own.is_file() and root_fingerprint(own.read_bytes()) == offer.fingerprint:
        raise BadInput("TRUST_SELF", "this is this county's own root", "这是本县自己的根证书")
    for other in entries(settings):
        if other.root_sha256 == offer.fingerprint and other.name != name:
            raise Conflict(
                "TRUST_EXISTS",
                f"this county is already in the trust store as {other.name}",
                f"该县已在信任库中，名称为 {other.name}",
            )
        if other.name == name and other.root_sha256 != offer.fingerprint:
            raise Conflict(
                "TRUST_EXISTS",
                f"{name} is pinned to another root; remove it first to pin a new one",
                f"{name} 已固定为另一根证书；如需更换请先删除",
            )
    now = datetime.now(UTC).isoformat()
    entry = StoredCounty(name, offer.source, offer.fingerprint, now, now, offer.bundle)
    _write_entry(settings, entry)
    return entry


def refresh(settings: Settings, name: str) -> StoredCounty:
    """Fetch the county's bundle again from where it came from (or the URL its bundle names, for a bundle
    added from a file that no longer exists) and keep it when it is signed by the pinned root and not older
    than the one held (``TRUST_BUNDLE_ROLLBACK``: an old bundle could hide a revocation)."""
    from verifier import check_bundle_signature

    entry = get(settings, name)
    source = entry.source
    if not source.startswith(("http://", "https://")) and not Path(source).is_file():
        source = str(entry.bundle.get("url") or source)
    offer = read_offer(source)
    check_bundle_signature(offer.bundle, entry.root_sha256)
    held, offered = entry.created_at, _time(offer.bundle.get("created_at"))
    if held is not None and (offered is None or offered < held):
        raise Conflict(
            "TRUST_BUNDLE_ROLLBACK",
            "the bundle offered is older than the one held",
            "所获取的验证包早于已保存的验证包",
            details={"held": entry.bundle.get("created_at"), "offered": offer.bundle.get("created_at")},
        )
    updated = StoredCounty(
        entry.name,
        entry.source,
        entry.root_sha256,
        entry.added_at,
        datetime.now(UTC).isoformat(),
        offer.bundle,
    )
    _write_entry(settings, updated)
    return updated


def remove(settings: Settings, name: str) -> None:
    get(settings, name)
    (store_dir(settings) / f"{name}.json").unlink()


# -- for verifiers -------------------------------------------------------------------------------------------


def _evidence_of(bundle: JsonObject) -> Evidence:
    """The bundle's ledger and status evidence, read as ``verify --bundle`` reads it."""
    from api.cli._verify import _bundle_evidence

    return _bundle_evidence(bundle)


_cache_lock = threading.Lock()
_cache: dict[str, tuple[tuple[tuple[str, int, int], ...], tuple[ForeignCounty, ...]]] = {}


def foreign_counties(settings: Settings) -> tuple[ForeignCounty, ...]:
    """The trust store as verifiers use it (``ForeignCounty`` each), each bundle checked again against its
    pin; read again only when a file in the store changed. An entry that does not check is left out (its
    documents are then untrusted, never judged by a bundle that was not verified) and logged."""
    folder = store_dir(settings)
    try:
        stamp = _stamp(folder)
    except OSError:
        stamp = ()
    key = str(folder)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None and found[0] == stamp:
            return found[1]
    counties = tuple(_load(settings))
    with _cache_lock:
        _cache[key] = (stamp, counties)
    return counties


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, mtime and size of each entry of the store (the files ``entries`` reads): one ``scandir`` and
    one ``stat`` per file, on every verification."""
    found = []
    with os.scandir(folder) as it:
        for e in it:
            if e.name.endswith(".json") and not e.name.startswith(".") and e.is_file():
                st = e.stat()
                found.append((e.name, st.st_mtime_ns, st.st_size))
    return tuple(sorted(found))


def _load(settings: Settings) -> list[ForeignCounty]:
    from verifier import ForeignCounty, TrustList, check_bundle_signature

    out = []
    for entry in entries(settings):
        try:
            check_bundle_signature(entry.bundle, entry.root_sha256)
            out.append(
                ForeignCounty(
                    name=entry.name,
                    trust=TrustList.from_bundle(entry.bundle),
                    evidence=_evidence_of(entry.bundle),
                    next_update=entry.next_update,
                    source=entry.source,
                    created_at=entry.created_at,
                )
            )
        except BadInput as exc:
            log.warning("trust store entry %s left out: %s", entry.name, exc.code, extra={"code": exc.code})
    return out


def evidence_router(settings: Settings, home_evidence: Evidence) -> EvidenceRouter:
    """This county's evidence and the trust store's, for ``verify_document(evidence=...)``."""
    from verifier import EvidenceRouter

    return EvidenceRouter(home=home_evidence, counties=foreign_counties(settings))
