"""Fixtures for the keystore package's tests, reused by the signer and ledger areas.

SoftHSM reads its configuration once per process (at C_Initialize), so there is one SoftHSM home, one token,
per pytest process: ``softhsm_token`` (session). ``keystore`` is a session-wide open :class:`Keystore` on it.
Per-test deployments share the token (every CA and seal key has a unique label) and get their own home and
database: ``ks_settings`` / ``county_pki`` / ``seal_registry`` build on the ``db_url`` fixture (SQLite and
PostgreSQL).

Another home in this process must not get its own SoftHSM config (``county init`` on the embedded default
would write one, and the keystore refuses a second config with ``TOKEN_CONFIG_CONFLICT``). Point it at the
shared token instead, as a deployment on a real HSM would be: :func:`shared_token_settings` (or, for the
CLI in-process, the environment from :func:`shared_token_env`). Then ``keystore.init_county`` skips the
SoftHSM set-up and makes the county's CAs in the shared token.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

COUNTY_CODE = "360732"
COUNTY_NAME = "兴国县"
FIXED_NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SoftHsmToken:
    home: Path
    settings: Any  # core.settings.Settings of the token's home (embedded defaults: pin file, softhsm2.conf)
    conf: Path
    module_path: str


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> SoftHsmToken:
    from core.settings import DEFAULT_SOFTHSM_MODULE, load_settings
    from keystore import init_softhsm_home

    if not Path(DEFAULT_SOFTHSM_MODULE).is_file():
        pytest.fail(f"SoftHSM2 module missing at {DEFAULT_SOFTHSM_MODULE} (run scripts/setup.sh)")
    home = tmp_path_factory.mktemp("softhsm-home")
    settings = load_settings(home)
    made = init_softhsm_home(settings)
    # Everything in this process talks to this token: SoftHSM only reads its config once.
    os.environ["SOFTHSM2_CONF"] = str(made.conf)
    return SoftHsmToken(home=home, settings=settings, conf=made.conf, module_path=DEFAULT_SOFTHSM_MODULE)


@pytest.fixture(scope="session")
def keystore(softhsm_token: SoftHsmToken) -> Iterator[Any]:
    from keystore import Keystore

    with Keystore.open(softhsm_token.settings) as ks:
        yield ks


def shared_token_env(token: SoftHsmToken) -> dict[str, str]:
    """YIZHANG_* variables that point any home at the shared session token."""
    return {
        "YIZHANG_PKCS11_URI": f"pkcs11:token=yizhang?module-path={token.module_path}",
        "YIZHANG_PIN_SOURCE": f"file:{token.home / 'secrets' / 'token.pin'}",
    }


def shared_token_settings(token: SoftHsmToken, home: Path, database_url: str | None = None) -> Any:
    """Settings of a deployment in ``home`` whose keys live in the shared session token."""
    from core.settings import load_settings

    env = shared_token_env(token)
    return load_settings(
        home,
        pkcs11_uri=env["YIZHANG_PKCS11_URI"],
        pin_source=env["YIZHANG_PIN_SOURCE"],
        database_url=database_url,
    )


@pytest.fixture
def ks_settings(softhsm_token: SoftHsmToken, db_url: str, tmp_path: Path) -> Any:
    """Settings of a per-test deployment: its own home and database, the shared token."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return shared_token_settings(softhsm_token, home, db_url)


@pytest.fixture
def county_pki(engine: Any, keystore: Any, ks_settings: Any) -> Any:
    from keystore import CountyPKI

    pki = CountyPKI(engine, keystore, ks_settings)
    pki.initialize(COUNTY_CODE, COUNTY_NAME, now=FIXED_NOW)
    return pki


@pytest.fixture
def seal_registry(engine: Any, keystore: Any, ks_settings: Any, county_pki: Any) -> Any:
    from keystore import SealRegistry

    return SealRegistry(engine, keystore, ks_settings, pki=county_pki)


def issue_township_seal(registry: Any, township: str = "兴江乡", code: str = "360732100", **kw: Any) -> Any:
    """Issue and return a township approval seal (test helper for every area)."""
    from keystore import SealKind

    args: dict[str, Any] = {
        "name": f"{COUNTY_NAME}{township}人民政府行政审批服务专用章",
        "kind": SealKind.TOWNSHIP_APPROVAL,
        "township": township,
        "township_code": code,
        "custodian": "李保管",
        "requested_by": f"{township}人民政府",
        "approved_by": "王乡长",
        "actor": "县行政审批局-张三",
        "now": FIXED_NOW,
    }
    args.update(kw)
    event = registry.issue_seal(**args)
    return registry.get(event.seal_id)
