"""Shared fixtures: real databases (SQLite file, PostgreSQL server), schema made by migrations.

PostgreSQL is found at ``YIZHANG_TEST_PG_URL`` (default postgresql://postgres@127.0.0.1:5432/postgres). Each
test that needs it gets a fresh database, dropped afterwards. Where no server answers, PostgreSQL tests are
skipped *loudly* on a developer machine and fail in CI (``CI=true``): CI must never skip them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests._fixtures.keystore",
    "tests._fixtures.policies",
    "tests._fixtures.ledger",
    "tests._fixtures.signer",
    "tests._fixtures.api",
]

PG_ADMIN_URL = os.environ.get("YIZHANG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
_pg_skipped: list[str] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        msg = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"
        if _in_ci():
            pytest.fail(msg + " (CI must not skip PostgreSQL tests)")
        _pg_skipped.append(msg)
        pytest.skip(msg)
    return PG_ADMIN_URL


def _sa_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (SQLAlchemy URL), dropped after the test."""
    import psycopg

    name = f"yz_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_admin_url.rsplit("/", 1)[0]
    try:
        yield _sa_url(f"{base}/{name}")
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'yizhang.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of each kind; tests using it run once on SQLite and once on PostgreSQL."""
    from core.db import migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'yizhang.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    migrate(url)
    return url


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    from core.db import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if _pg_skipped:
        terminalreporter.write_sep("!", "POSTGRESQL TESTS WERE SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_pg_skipped[0])
