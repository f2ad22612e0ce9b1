"""One county's working day, as the county runs it: ``yizhang`` commands in a fresh home (separate
processes, as an administrator types them), then ``yizhang serve`` and the HTTP API as the window clerks,
principals, departments and auditors use it. Nothing here reaches into the product's internals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

YIZHANG = str(Path(sys.executable).parent / "yizhang")
CATALOGS = Path(__file__).resolve().parents[2] / "policies" / "catalogs"  # shipped as package data
TOKEN_COMMANDS = frozenset({"county", "seal", "serve", "sign", "verify", "ledger"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CountyDay:
    """A county's deployment home and the commands its administrator runs on it."""

    home: Path
    actor: str
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    timings: list[tuple[str, float]] = field(default_factory=list)  # (command, seconds), for the report

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("SOFTHSM2_CONF", "PROMETHEUS_MULTIPROC_DIR")}
        env.update(YIZHANG_HOME=str(self.home), YIZHANG_ACTOR=self.actor)
        return env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        try:
            return self._run(*args)
        finally:
            self.timings.append((" ".join(args[:2]), round(time.monotonic() - started, 2)))
            (self.home.parent / "timings.json").write_text(json.dumps(self.timings, ensure_ascii=False))

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``yizhang ARGS``. Commands that open the county's token (``county``, ``seal``, ``ledger``,
        ``verify``) run as their own process, as typed at a shell (the PKCS#11 library is loaded once per
        process, for one token configuration); the register, catalog and account commands, which read and
        write only the database, run in this process through Typer's runner: the same command, without a
        Python start-up each (a day has twenty of them)."""
        if args[0] in TOKEN_COMMANDS:
            return subprocess.run([YIZHANG, *args], capture_output=True, text=True, env=self.env, timeout=300)
        from typer.testing import CliRunner

        from api.cli import app

        env = {"YIZHANG_HOME": str(self.home), "YIZHANG_ACTOR": self.actor}
        res = CliRunner().invoke(app, list(args), env=env)
        return subprocess.CompletedProcess(["yizhang", *args], res.exit_code, res.stdout, res.stderr)

    def ok(self, *args: str) -> Any:
        """Run a command that must succeed; its ``--json`` answer."""
        r = self.run(*args, "--json")
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return json.loads(r.stdout) if r.stdout.strip() else None

    def refused(self, *args: str, exit_code: int = 2) -> dict[str, Any]:
        """Run a command that must be refused (exit 2: bad input; 1: a conflict); its error."""
        r = self.run(*args, "--json")
        assert r.returncode == exit_code, (args, r.returncode, r.stdout, r.stderr)
        return dict(json.loads(r.stdout)["error"])

    def seal(self, name: str, township: str, code: str, custodian: str, head: str) -> str:
        """刻制 and 启用 a township approval seal, with the township government's consent (000 （二）)."""
        made = self.ok(
            "seal", "issue", "--name", name, "--township", township, "--township-code", code,
            "--custodian", custodian, "--requested-by", f"{township}人民政府", "--approved-by", head,
            "--actor", self.actor,
        )  # fmt: skip
        self.ok("seal", "activate", made["seal_id"], "--approved-by", head, "--actor", self.actor)
        return str(made["seal_id"])

    def account(self, username: str, role: str, org: str, centre: str | None = None, name: str = "") -> None:
        args = ["account", "create", "--username", username, "--role", role, "--org", org]
        if centre:
            args += ["--service-centre", centre]
        if name:
            args += ["--display-name", name]
        self.ok(*args)
        token = self.ok("account", "token", "--username", username)["token"]
        self.tokens[username] = {"Authorization": f"Bearer {token}"}

    @contextmanager
    def serve(self, log: Path) -> Iterator[httpx.Client]:
        port = _free_port()
        env = {**self.env, "YIZHANG_PORT": str(port)}
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [YIZHANG, "serve", "--port", str(port), "--workers", "1"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            base = f"http://127.0.0.1:{port}"
            try:
                for _ in range(1200):
                    try:
                        if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert proc.poll() is None, log.read_text()
                    time.sleep(0.1)
                else:
                    raise AssertionError("server never became ready: " + log.read_text())
                with httpx.Client(base_url=base, timeout=60) as client:
                    yield client
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def submit(
    client: httpx.Client,
    headers: dict[str, str],
    *,
    seal: str,
    matter: str,
    stage: str,
    kind: str,
    template: str,
    data: dict[str, Any],
    key: str,
    reason: str = "办理",
    applicant: str = "刘某某",
) -> httpx.Response:
    """A window clerk's request to seal a document made from a template (the clerk's own words)."""
    return client.post(
        "/v1/signing-requests/from-template",
        json={
            "seal_id": seal,
            "matter_code": matter,
            "stage": stage,
            "document_kind": kind,
            "reason": reason,
            "idempotency_key": key,
            "applicant": applicant,
            "template": template,
            "data": data,
        },
        headers=headers,
    )


def reasons(r: httpx.Response) -> dict[str, dict[str, Any]]:
    """A policy refusal's reasons by code (403 POLICY_DENIED)."""
    assert r.status_code == 403 and r.json()["code"] == "POLICY_DENIED", r.text
    return {x["code"]: x for x in r.json()["reasons"]}
