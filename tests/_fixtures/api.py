"""Fixtures for the api package's tests (owned by that area).

``api_client`` is real HTTP through the ASGI app (Starlette's TestClient runs the lifespan, so the
services are built from the settings as in production) on each database of ``db_url``. ``county_accounts``
makes one account per role, plus clerks of two townships, each with a bearer token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "correct horse battery staple 9"  # test-only; a test greps the logs for it
#: The Prometheus scraper's bearer token in the test apps (``YIZHANG_METRICS_TOKEN_SOURCE``; issue 21).
METRICS_TOKEN = "metrics-scraper-token-for-tests"  # test-only
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def metrics_token_source(directory: Path) -> str:
    """A ``file:`` source holding :data:`METRICS_TOKEN`, written in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "metrics.token"
    path.write_text(METRICS_TOKEN + "\n", encoding="utf-8")
    return f"file:{path}"


@dataclass(frozen=True)
class Caller:
    username: str
    account_id: str
    token: str
    role: str
    org_code: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def loopback_only_resolve(host: str, port: int) -> list[str]:
    """The tests' webhook resolver: IP literals as they are, ``localhost`` as 127.0.0.1, no other name
    (no DNS query ever leaves a test, whatever URL a test or a fuzzer registers)."""
    import ipaddress
    import socket

    if host.rstrip(".").lower() == "localhost":
        return ["127.0.0.1"]
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        raise socket.gaierror(socket.EAI_NONAME, "tests resolve no names") from None


@pytest.fixture(autouse=True)
def _no_webhook_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    import api._webhook_guard as guard

    monkeypatch.setattr(guard, "RESOLVE", loopback_only_resolve)


@pytest.fixture
def api_settings(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from core.settings import Settings

    return Settings(
        home=tmp_path / "home",
        database_url=db_url,
        max_pdf_bytes=256 * 1024,
        metrics_token_source=metrics_token_source(tmp_path),
    )


@pytest.fixture
def sqlite_api_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """For tests whose subject does not depend on the database kind (error shapes, limits)."""
    from core.db import migrate
    from core.settings import Settings

    url = f"sqlite:///{tmp_path / 'api.db'}"
    migrate(url)
    return Settings(
        home=tmp_path / "home",
        database_url=url,
        max_pdf_bytes=256 * 1024,
        metrics_token_source=metrics_token_source(tmp_path),
    )


@pytest.fixture
def sqlite_api_client(sqlite_api_settings) -> Iterator:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(sqlite_api_settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def api_app(api_settings):  # type: ignore[no-untyped-def]
    from api.app import create_app

    return create_app(api_settings)


@pytest.fixture
def api_client(api_app) -> Iterator:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    with TestClient(api_app, raise_server_exceptions=False) as client:
        yield client


# Only these log in with a password in the tests (argon2 is slow on purpose).
WITH_PASSWORD = frozenset({"xj.clerk", "xj.principal"})
# (username, role, org_code, service_centre)
COUNTY_PEOPLE = (
    ("admin", "COUNTY_ADMIN", "xingguo", None),
    ("auditor", "AUDITOR", "xingguo", None),
    ("health.officer", "DEPARTMENT_OFFICER", "xg-health", None),
    ("xj.clerk", "TOWNSHIP_CLERK", "xingjiang", "xingjiang-centre"),
    ("xj.principal", "TOWNSHIP_PRINCIPAL", "xingjiang", "xingjiang-centre"),
    ("xj.custodian", "SEAL_CUSTODIAN", "xingjiang", None),
    ("mj.clerk", "TOWNSHIP_CLERK", "meijiao", "meijiao-centre"),
    ("mj.principal", "TOWNSHIP_PRINCIPAL", "meijiao", "meijiao-centre"),
)


@pytest.fixture
def county_accounts(api_client) -> dict[str, Caller]:  # type: ignore[no-untyped-def]
    """One account per role (兴江乡 and 梅窖镇 township staff), each with a token; made by the library."""
    return make_county_accounts(api_client)


@pytest.fixture
def county_accounts_sqlite(sqlite_api_settings) -> Iterator:  # type: ignore[no-untyped-def]
    """(client, accounts) on SQLite, with a generous rate limit, for sweeps over every route."""
    from starlette.testclient import TestClient

    from api.app import create_app

    app = create_app(sqlite_api_settings, account_rate=(1000.0, 10_000), webhook_interval_s=None)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, make_county_accounts(client)


def make_county_accounts(api_client) -> dict[str, Caller]:  # type: ignore[no-untyped-def]
    from api._accounts import create_account, issue_token
    from core.db import transaction

    services = api_client.app.state.services
    out: dict[str, Caller] = {}
    with transaction(services.sessions) as s:
        for username, role, org, centre in COUNTY_PEOPLE:
            account = create_account(
                s,
                username=username,
                display_name=username,
                role=role,
                org_code=org,
                service_centre=centre,
                password=PASSWORD,
                created_by="fixture",
            )
            issued = issue_token(s, account.account_id, name="test")
            out[username] = Caller(username, account.account_id, issued.secret, role, org)
    return out


@pytest.fixture
def registered_orgs(api_client) -> None:  # type: ignore[no-untyped-def]
    """The organisations of COUNTY_PEOPLE (and 古龙岗), registered in the policies area."""
    store = api_client.app.state.services.policy_store
    store.register_county("xingguo", "兴国县", actor="fixture")
    store.register_department("xg-health", "县卫健委", county_code="xingguo", actor="fixture")
    for code, name in (("xingjiang", "兴江乡"), ("meijiao", "梅窖镇"), ("gulonggang", "古龙岗镇")):
        store.register_township(
            code, name, county_code="xingguo", service_centre=f"{code}-centre", actor="fixture"
        )
