"""What a deployment's signed artefacts name, fixed at ``county init`` (issue 19).

Certificates carry CRL distribution points, sealed pages carry a verification link, and every checkpoint
of the ledger carries the log's origin (also its key's name: the key hash of a C2SP note covers it). Once
something is signed with one of these names it cannot change, so they are stored in the ``deployment`` row
when the county is set up and read from there afterwards. ``YIZHANG_PUBLIC_BASE_URL`` then only says where
this server is reached (cookies, the OpenID Connect callback); changing it later changes nothing that was,
or will be, signed.

A deployment made before the names were stored is filled in by the migration from what it had already
signed (the issuing CA's CRL distribution point, the latest checkpoint's origin).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.settings import Settings


@dataclass(frozen=True)
class DeploymentIdentity:
    base_url: str  # CRL distribution points and verification links are made under it (no trailing slash)
    log_origin: str  # the ledger's checkpoint origin and log key name, e.g. seal.xingguo.gov.cn/ledger

    def crl_url(self, issuer: str) -> str:
        return f"{self.base_url}/pki/crl/{issuer}.crl"


def origin_from(base_url: str) -> str:
    """The checkpoint origin for a base URL: ``<host><path>/ledger``, e.g. ``seal.xingguo.gov.cn/ledger``."""
    parts = urlsplit(base_url)
    host = (parts.netloc or "localhost") + parts.path.rstrip("/")
    return f"{host}/ledger"


def identity_from_settings(settings: Settings) -> DeploymentIdentity:
    """The names a deployment would get if it were set up now, from ``public_base_url``."""
    base = settings.public_base_url.rstrip("/")
    return DeploymentIdentity(base_url=base, log_origin=origin_from(base))


_SELECT = text("SELECT public_base_url, log_origin FROM deployment WHERE id = 1")


def read_identity(conn: Session | Engine) -> DeploymentIdentity | None:
    """The stored names, or None when the county is not set up (or its schema predates them)."""
    try:
        if isinstance(conn, Engine):
            with conn.connect() as c:
                row = c.execute(_SELECT).first()
        else:
            row = conn.execute(_SELECT).first()
    except SQLAlchemyError:
        return None
    if row is None or not row[0] or not row[1]:
        return None
    return DeploymentIdentity(base_url=str(row[0]), log_origin=str(row[1]))


def store_identity(session: Session, identity: DeploymentIdentity) -> DeploymentIdentity:
    """Fix the names in the deployment row (inside the caller's transaction) unless they are already fixed;
    returns what is stored. Never overwrites: what was signed keeps its names."""
    stored = read_identity(session)
    if stored is not None:
        return stored
    session.execute(
        text("UPDATE deployment SET public_base_url = :u, log_origin = :o WHERE id = 1"),
        {"u": identity.base_url, "o": identity.log_origin},
    )
    return identity


_cache: dict[str, DeploymentIdentity] = {}
_cache_lock = threading.Lock()


def deployment_identity(settings: Settings, engine: Engine | None = None) -> DeploymentIdentity:
    """The deployment's fixed names; before ``county init`` stored them, those of the settings.

    Read once per database and process (they never change once stored).
    """
    url = settings.effective_database_url
    found = _cache.get(url)
    if found is not None:
        return found
    if engine is not None:
        found = read_identity(engine)
    elif url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///").split("?", 1)[0]).is_file():
        found = None  # no database yet: do not create one by looking
    else:
        from core.db import make_engine

        eng = make_engine(url)
        try:
            found = read_identity(eng)
        finally:
            eng.dispose()
    if found is None:
        return identity_from_settings(settings)
    with _cache_lock:
        _cache[url] = found
    return found


def forget_identity(settings: Settings) -> None:
    """Drop the cached names of this deployment's database (a test that re-creates a database)."""
    with _cache_lock:
        _cache.pop(settings.effective_database_url, None)
