"""A served demo county for the console tests: ``yizhang demo`` then ``yizhang serve`` as subprocesses.

One county per test session (building it seals five documents; about 10 s). The server listens on a free
127.0.0.1 port; the fixture waits for ``/healthz`` and stops the server (by its own pid) afterwards.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]
SHOTS = REPO / "test-output" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class County:
    base: str
    home: Path
    passwords: dict[str, str]
    seals: dict[str, str]  # short name -> seal id ("xj", "glg", "mj", "no2")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("SOFTHSM2_CONF", "YIZHANG_HOME")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def county(tmp_path_factory: pytest.TempPathFactory) -> Iterator[County]:
    yizhang = str(Path(sys.executable).parent / "yizhang")
    home = tmp_path_factory.mktemp("console") / "home"
    built = subprocess.run(
        [yizhang, "demo", "--home", str(home), "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    seals = {}
    for seal in summary["seals"]:
        if seal["kind"] == "DEPARTMENT_NO2":
            seals["no2"] = seal["seal_id"]
        else:
            seals[{"兴江乡": "xj", "古龙岗镇": "glg", "梅窖镇": "mj"}[seal["township"]]] = seal["seal_id"]
    passwords = json.loads((home / "secrets" / "demo-accounts.json").read_text())
    port = _free_port()
    log = (home / "serve.log").open("wb")
    server = subprocess.Popen(
        [yizhang, "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if server.poll() is not None:
                pytest.fail("yizhang serve exited: " + (home / "serve.log").read_text()[-2000:])
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        else:
            pytest.fail("yizhang serve did not answer /healthz")
        yield County(base, home, passwords, seals)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not installed (scripts/test.sh installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    # Module scope on purpose: while sync_playwright() is open, its event loop counts as running in this
    # thread, and every later test that calls pyHanko's sync API (asyncio.run) would fail.
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


#: The console's CSRF token in a page's forms.
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def client(county: County) -> Iterator[httpx.Client]:
    """An HTTP client on the served county (no redirects followed: tests look at them)."""
    with httpx.Client(base_url=county.base, timeout=60, follow_redirects=False) as c:
        yield c


def login(c: httpx.Client, county: County, username: str) -> str:
    """Log ``username`` into the console with the demo password; the CSRF token of the landing page."""
    c.cookies.clear()
    r = c.post("/ui/login", data={"username": username, "password": county.passwords[username]})
    assert r.status_code == 303, r.text
    m = CSRF.search(c.get(r.headers["location"]).text)
    assert m
    return m.group(1)
