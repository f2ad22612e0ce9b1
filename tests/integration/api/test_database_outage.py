"""The database going away is a deliberate 503, never a 500, and the service comes back by itself.

A real PostgreSQL database of this test is closed to new connections (``ALLOW_CONNECTIONS false``) and its
sessions terminated, behind the service's back; then opened again. (The load test in tests/reliability
does the same with the whole server stopped, under load.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient


@pytest.fixture
def pg_client(pg_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    from api.app import create_app
    from core.db import migrate
    from core.settings import Settings

    migrate(pg_url)
    settings = Settings(home=tmp_path / "home", database_url=pg_url, checkpoint_interval_s=0)
    with TestClient(create_app(settings, webhook_interval_s=None), raise_server_exceptions=False) as c:
        yield c, pg_url


def _set_open(admin_url: str, db: str, allow: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{db}" WITH ALLOW_CONNECTIONS {"true" if allow else "false"}')
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid()",
                (db,),
            )


def test_database_gone_is_503_and_recovery_is_automatic(pg_client, pg_admin_url: str) -> None:
    from tests._fixtures.api import make_county_accounts

    c, url = pg_client
    db = url.rsplit("/", 1)[1]
    accounts = make_county_accounts(c)
    auditor = accounts["auditor"].headers
    assert c.get("/readyz").status_code == 200
    assert c.get("/v1/ledger/size", headers=auditor).status_code == 200

    _set_open(pg_admin_url, db, False)
    try:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["database"] != "ok", r.text
        for path in ("/v1/ledger/size", "/v1/seals", "/v1/signing-requests"):
            r = c.get(path, headers=auditor)
            assert r.status_code == 503, (path, r.status_code, r.text)
            body = r.json()
            assert body["code"] == "DATABASE_UNAVAILABLE" and body["message_zh"], body
            assert r.headers["Retry-After"] == "2"
            assert "psycopg" not in r.text and "Traceback" not in r.text
    finally:
        _set_open(pg_admin_url, db, True)

    # Back by itself: the dead pooled connections are replaced (pre-ping), no restart.
    assert c.get("/readyz").status_code == 200
    r = c.get("/v1/ledger/size", headers=auditor)
    assert r.status_code == 200 and r.json() == {"size": 0}, r.text
