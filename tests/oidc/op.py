"""Runs the test OpenID Provider (``provider.mjs``, panva/oidc-provider) and acts as the person at it.

``OpenIdProvider`` starts node on a free 127.0.0.1 port and waits for its ``READY`` line; ``restart()``
starts it again on the same port with a new signing key (key rotation); ``stop()`` ends it (by its own pid).
``sign_in(authorize_url, login)`` plays the browser at the provider: follows the redirects, posts the login
form, and returns the URL the provider sends the browser back to (the relying party's callback), unfollowed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "provider.mjs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OpenIdProvider:
    workdir: Path
    clients: list[dict[str, Any]]
    users: list[dict[str, Any]]
    key_type: str = "RSA"
    port: int = field(default_factory=free_port)
    generation: int = 0
    _proc: subprocess.Popen[str] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OpenIdProvider:
        node = shutil.which("node")
        if node is None or not (HERE / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError("node or tests/oidc/node_modules missing: run bash scripts/setup.sh")
        self.generation += 1
        config = self.workdir / f"op-{self.port}-{self.generation}.json"
        config.write_text(
            json.dumps(
                {
                    "port": self.port,
                    "issuer": self.issuer,
                    "kid": f"key-{self.generation}",
                    "key_type": self.key_type,
                    "clients": self.clients,
                    "users": self.users,
                }
            )
        )
        log = (self.workdir / f"op-{self.port}.log").open("a")
        self._proc = subprocess.Popen(
            [node, str(SCRIPT), str(config)],
            cwd=HERE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={"PATH": "/usr/bin:/bin", "NODE_ENV": "test"},
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # blocks until READY or exit
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(
                "test OpenID Provider did not start: " + (self.workdir / f"op-{self.port}.log").read_text()
            )
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    def restart(self) -> None:
        """The same issuer and port with a new signing key (new ``kid``): a key rotation."""
        self.stop()
        for _ in range(50):  # the port is ours again once the old process is gone
            try:
                self.start()
                return
            except RuntimeError:
                time.sleep(0.1)
        raise RuntimeError("test OpenID Provider did not restart")


def sign_in(authorize_url: str, login: str, *, browser: httpx.Client | None = None) -> str:
    """Signs ``login`` in at the provider; returns the callback URL the provider redirects to."""
    own = browser is None
    browser = browser or httpx.Client(follow_redirects=False, trust_env=False, timeout=10)
    try:
        url = authorize_url
        response = browser.get(url)
        hops = 0
        while response.status_code in (302, 303) and "/interaction/" not in response.headers["location"]:
            url = urljoin(url, response.headers["location"])
            if "/ui/login/oidc/callback" in url:
                return url
            response = browser.get(url)
            hops += 1
            assert hops < 10, "too many redirects at the provider"
        assert response.status_code in (302, 303), response.text[:500]
        interaction = urljoin(url, response.headers["location"])
        form = browser.get(interaction)
        assert form.status_code == 200, form.text[:500]
        response = browser.post(interaction, data={"login": login})
        url = interaction
        for _ in range(10):
            assert response.status_code in (302, 303), response.text[:500]
            url = urljoin(url, response.headers["location"])
            if "/ui/login/oidc/callback" in url:
                return url
            response = browser.get(url)
        raise AssertionError("the provider never redirected back to the callback")
    finally:
        if own:
            browser.close()
