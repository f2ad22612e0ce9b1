"""Fixtures of the reliability suite: a demo county on a fresh PostgreSQL database, built once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._home import DemoHome, drop_pg_database, make_demo, new_pg_database


@pytest.fixture(scope="module")
def pg_demo(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoHome]:
    url = new_pg_database(pg_admin_url)
    try:
        yield make_demo(tmp_path_factory.mktemp("demo") / "home", url)
    finally:
        drop_pg_database(pg_admin_url, url)


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path
