"""``yizhang serve`` for real: uvicorn with 2 workers on PostgreSQL, a CLI-made admin, real TCP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests._fixtures.api import METRICS_AUTH, metrics_token_source

YIZHANG = str(Path(sys.executable).parent / "yizhang")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.postgres
def test_serve_two_workers_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "YIZHANG_DATABASE_URL": pg_url,
        "YIZHANG_HOME": str(home),
        "YIZHANG_KEEPALIVE_REQUESTS": "5",  # a connection is closed after 5 answers: clients spread out
        "YIZHANG_METRICS_TOKEN_SOURCE": metrics_token_source(tmp_path),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [YIZHANG, "serve", "--home", str(home), "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        else:
            pytest.fail("server never became ready: " + (tmp_path / "serve.log").read_text())
        # The schema was migrated by serve; the first administrator is made from the shell.
        out = subprocess.run(
            [
                YIZHANG,
                "account",
                "create",
                "--username",
                "admin",
                "--role",
                "COUNTY_ADMIN",
                "--org",
                "xingguo",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(out.stdout)["role"] == "COUNTY_ADMIN"
        out = subprocess.run(
            [YIZHANG, "account", "token", "--username", "admin", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        token = json.loads(out.stdout)["token"]
        auth = {"Authorization": f"Bearer {token}"}
        # Many requests over several connections (every 5th answer closes its connection, the client opens
        # a new one, which either worker may accept); all agree on the database.
        closing = []
        with httpx.Client(base_url=base, timeout=10) as client:
            for i in range(20):
                r = client.get("/v1/me", headers=auth)
                assert r.status_code == 200 and r.json()["username"] == "admin"
                if r.headers.get("connection") == "close":
                    closing.append(i)
            assert closing == [4, 9, 14, 19]
            assert client.get("/v1/me").status_code == 401
            metrics = client.get("/metrics", headers=METRICS_AUTH).text
        # The counters of every worker are added up.
        line = next(
            ln
            for ln in metrics.splitlines()
            if ln.startswith('yizhang_http_requests_total{method="GET",route="/v1/me",status="200"}')
        )
        assert float(line.split()[-1]) == 20.0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert token not in text
    # Logs are JSON lines with request ids.
    access = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{") and '"route"' in ln]
    assert access and all(a.get("request_id") for a in access)
