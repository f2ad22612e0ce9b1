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
#: Data the tests read (vectors, the foreign PDF corpus), with origins and licences: tests/data/README.md.
TEST_DATA = Path(__file__).resolve().parent / "data"
#: The catalogs shipped as package data (policies/catalogs/README.md).
CATALOGS = Path(__file__).resolve().parents[1] / "policies" / "catalogs"
_pg_skipped: list[str] = []

# Nothing may read beside the checkout (issue 20): not the tests, not a `yizhang` they start. The hook refuses
# any open or listing under REPO/../shared in this process; children get it through PYTHONPATH
# (tests/_standalone/sitecustomize.py). Attempts are logged and fail the session at its end.
REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_DIR = REPO.parent / "shared"
_GUARD_DIR = Path(__file__).resolve().parent / "_standalone"


def _install_standalone_guard() -> Path:
    import importlib.util
    import tempfile

    fd, log = tempfile.mkstemp(prefix="yizhang-outside-reads-", suffix=".log")
    os.close(fd)
    os.environ["YIZHANG_TEST_FORBIDDEN_DIR"] = str(FORBIDDEN_DIR)
    os.environ["YIZHANG_TEST_FORBIDDEN_LOG"] = log
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(_GUARD_DIR) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(_GUARD_DIR), *paths])
    guard = _GUARD_DIR / "sitecustomize.py"
    spec = importlib.util.spec_from_file_location("_yizhang_standalone_guard", guard)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # installs the hook in this process (the variables are set above)
    return Path(log)


OUTSIDE_READS_LOG = _install_standalone_guard()

# The pyHanko/asn1crypto/oscrypto patches, installed the way the service (api.app.create_app) and the CLI
# (api.cli.main) install them; nothing installs them as a side effect of an import (verifier/patches.py).
from verifier import patches as _library_patches  # noqa: E402

_library_patches.install()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    return TEST_DATA


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


def outside_reads() -> list[str]:
    """Attempts (by this session or its children) to read beside the checkout, one line each."""
    try:
        return [line for line in OUTSIDE_READS_LOG.read_text(encoding="utf-8").splitlines() if line]
    except OSError:
        return []


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    if outside_reads() and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_unconfigure(config):  # type: ignore[no-untyped-def]
    OUTSIDE_READS_LOG.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    reads = outside_reads()
    if reads:
        terminalreporter.write_sep("!", "SOMETHING READ BESIDE THE CHECKOUT (issue 20)", red=True, bold=True)
        for line in reads[:20]:
            terminalreporter.write_line(line)
    if _pg_skipped:
        terminalreporter.write_sep("!", "POSTGRESQL TESTS WERE SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_pg_skipped[0])
