"""Secrets and keys: a representative flow with every log captured leaks no PIN, token, password or key.

The flow: ``yizhang demo`` on PostgreSQL, a bearer token issued by the CLI, ``yizhang serve --workers 2``
with its stderr captured, API calls with the token (read, seal from a template, refused and bad requests),
console logins (right and wrong password), a wrong token. Then the demo's and the server's logs, every
response body and header (but the one response that hands out the token) are searched for the token PIN,
the SO PIN, the API token secret, the console session cookie, every demo password and PEM private-key
markers. The private keys in the demo token are read back: CKA_SENSITIVE true, CKA_EXTRACTABLE false.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.reliability._home import ROOT, YIZHANG, DemoHome, free_port, wait_ready

pytestmark = [pytest.mark.postgres, pytest.mark.softhsm]

PEM_MARKERS = ("PRIVATE KEY", "BEGIN EC PRIVATE", "BEGIN RSA PRIVATE", "BEGIN OPENSSH PRIVATE")


def test_no_secret_in_logs_errors_or_responses(pg_demo: DemoHome, work_dir: Path) -> None:
    demo = pg_demo
    secrets_dir = demo.home / "secrets"
    pin = (secrets_dir / "token.pin").read_text().strip()
    so_pin = (secrets_dir / "token.so-pin").read_text().strip()
    passwords = json.loads((secrets_dir / "demo-accounts.json").read_text())
    assert len(pin) >= 4 and len(so_pin) >= 4 and passwords

    issued = json.loads(
        demo.run("account", "token", "--username", "xj.clerk", "--ttl-days", "1", "--json").stdout
    )
    token = next(v for v in issued.values() if isinstance(v, str) and v.startswith("yz_"))
    auth = {"Authorization": f"Bearer {token}"}

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work_dir / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [YIZHANG, "serve", "--home", str(demo.home), "--port", str(port), "--workers", "2",
             "--log-level", "debug"],
            env=demo.env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    seen: list[str] = []  # every response (status line, headers, body) the clients got
    session_cookie = ""
    try:
        wait_ready(base, proc, log)
        with httpx.Client(base_url=base, timeout=120) as client:

            def call(method: str, url: str, **kw: object) -> httpx.Response:
                r = client.request(method, url, **kw)  # type: ignore[arg-type]
                seen.append(f"{r.status_code} {dict(r.headers)}\n{r.content.decode('latin-1')}")
                return r

            seal_id = demo.seals["兴江乡"]["seal_id"]
            assert call("GET", "/v1/seals", headers=auth).status_code == 200
            sealed = call(
                "POST", "/v1/signing-requests/from-template", headers=auth,
                json={
                    "seal_id": seal_id, "matter_code": "SX-002", "stage": "受理",
                    "document_kind": "受理通知书",
                    "reason": "secrets test", "idempotency_key": "secrets-1", "template": "acceptance_notice",
                    "data": {"applicant": "刘某某", "submitted_date": "2026年3月1日", "date": "2026年3月5日",
                             "matter_name": "临时救助", "issuer": "兴国县兴江乡人民政府"},
                },
            )  # fmt: skip
            assert sealed.status_code in (200, 201), sealed.text
            request_id = (
                sealed.json()["request_id"] if "request_id" in sealed.json() else sealed.json().get("id")
            )
            assert call("GET", f"/v1/signing-requests/{request_id}/document", headers=auth).status_code == 200
            # Refusals and bad input: the secret in a query string, a wrong token, a forged token.
            assert call("GET", f"/v1/seals?pin={pin}&password={so_pin}", headers=auth).status_code in (
                200,
                400,
                422,
            )
            assert call("GET", "/v1/seals", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
            assert call("GET", "/v1/seals", headers={"Authorization": f"Bearer {pin}"}).status_code == 401
            assert call("GET", "/v1/signing-requests/nope", headers=auth).status_code == 404
            assert call("POST", "/v1/seals", headers=auth, json={"pin": pin}).status_code in (403, 422)
            # Console: a wrong password, then the right one.
            bad = call("POST", "/ui/login", data={"username": "xj.clerk", "password": so_pin},
                       follow_redirects=False)  # fmt: skip
            assert bad.status_code in (303, 401, 403) and "yz_session" not in bad.headers.get(
                "set-cookie", ""
            )
            good = call("POST", "/ui/login", data={"username": "xj.clerk", "password": passwords["xj.clerk"]},
                        follow_redirects=False)  # fmt: skip
            assert good.status_code == 303
            session_cookie = next(iter(good.cookies.values()), "")
            login_response = seen.pop()  # the one place the cookie belongs: its own Set-Cookie
            assert login_response.count(session_cookie) == 1
            assert session_cookie
            assert call("GET", "/ui/", follow_redirects=True).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=60)

    server_log = log.read_text(errors="replace")
    assert "GET" in server_log or "route" in server_log, "the access log was not captured"
    secrets = {"token PIN": pin, "SO PIN": so_pin, "API token": token, "session cookie": session_cookie}
    secrets.update({f"password of {u}": p for u, p in passwords.items()})
    places = {"server log": server_log, "demo output": demo.log, "responses": "\n".join(seen)}
    leaks = [
        f"{what} in {where}"
        for where, text in places.items()
        for what, value in secrets.items()
        if value and value in text
    ]
    leaks += [f"{m!r} in {where}" for where, text in places.items() for m in PEM_MARKERS if m in text]
    assert leaks == [], leaks


_READ_KEYS = r"""
import json, sys
from pathlib import Path
from pkcs11 import Attribute, ObjectClass
from api.cli._common import settings_for
from keystore import Keystore
out = []
with Keystore.open(settings_for(Path(sys.argv[1]))) as ks:
    with ks._worker("read attributes") as w:
        for key in w.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
            out.append({"label": str(key[Attribute.LABEL]), "sensitive": bool(key[Attribute.SENSITIVE]),
                        "extractable": bool(key[Attribute.EXTRACTABLE]),
                        "always_sensitive": bool(key[Attribute.ALWAYS_SENSITIVE]),
                        "never_extractable": bool(key[Attribute.NEVER_EXTRACTABLE])})
print(json.dumps(out))
"""


def test_private_keys_in_the_demo_token_are_not_extractable(pg_demo: DemoHome) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _READ_KEYS, str(pg_demo.home)],
        env={**pg_demo.env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    keys = json.loads(proc.stdout)
    labels = {k["label"] for k in keys}
    assert len(keys) >= 5, labels  # county root and issuing CA, four seals, the log key, the TSA
    bad = [k for k in keys if not (k["sensitive"] and not k["extractable"] and k["always_sensitive"]
                                    and k["never_extractable"])]  # fmt: skip
    assert bad == []


def test_git_tracked_files_hold_no_private_key_or_pin() -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.split(b"\0")
    offenders = []
    for name in filter(None, files):
        path = ROOT / os.fsdecode(name)
        lowered = os.fsdecode(name).lower()
        if lowered.endswith((".pin", ".so-pin", ".key", ".p12", ".pfx")) or "/secrets/" in lowered:
            offenders.append(f"{lowered}: secret-shaped file name")
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        data = path.read_bytes()
        for kind in (b"", b"EC ", b"RSA ", b"ENCRYPTED ", b"OPENSSH "):
            marker = b"-----BEGIN " + kind + b"PRIVATE KEY-----"  # built here so this file does not match
            if marker in data:
                offenders.append(f"{lowered}: {marker.decode()}")
    assert offenders == [], offenders
