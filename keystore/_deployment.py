"""Setting up and opening one deployment's keystore side: token, database, county PKI, registry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from core.db import make_engine, migrate
from core.settings import Settings
from keystore._pki import PublishedCrls
from keystore._registry import SealRegistry
from keystore._softhsm import init_softhsm_home
from keystore._token import Keystore


@dataclass(frozen=True)
class CountySetup:
    county_code: str
    county_name: str
    home: Path
    token_created: bool
    pki_created: bool
    published: PublishedCrls


def init_county(
    settings: Settings, county_code: str, county_name: str, now: datetime | None = None
) -> CountySetup:
    """``yizhang county init``: idempotent; a second run changes nothing but re-publishing the CRLs."""
    home = settings.home_dir
    home.mkdir(parents=True, exist_ok=True)
    token_created = False
    if settings.pkcs11_uri is None:
        # The embedded default only; a configured (real) HSM is set up by its own operators.
        token_created = init_softhsm_home(settings).created_token
    migrate(settings.effective_database_url)
    with open_registry(settings) as registry:
        pki_created = registry.pki.initialize(county_code, county_name, now=now)
        published = None if pki_created else registry.pki.published()
        if published is None:
            published = registry.pki.publish_crl(now=now)
    return CountySetup(
        county_code=county_code,
        county_name=county_name,
        home=home,
        token_created=token_created,
        pki_created=pki_created,
        published=published,
    )


@contextmanager
def open_registry(settings: Settings, engine: Engine | None = None) -> Iterator[SealRegistry]:
    """The registry with its keystore and engine, closed afterwards (engine only if made here)."""
    own_engine = engine is None
    eng = engine or make_engine(settings.effective_database_url)
    try:
        with Keystore.open(settings) as ks:
            yield SealRegistry(eng, ks, settings)
    finally:
        if own_engine:
            eng.dispose()
