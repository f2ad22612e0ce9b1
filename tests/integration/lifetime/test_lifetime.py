"""A sealed document over its life, as a verifier meets it (issue 19): real processes, the clock moved by
libfaketime.

The home is built in its own process with its own SoftHSM token (``_home``): a B-LTA acceptance notice sealed
through the service's wiring, the journal forwarded, a checkpoint signed.

- Ten days later the issuing CA's CRL of the sealing day (nextUpdate 7 days) is stale; before issue 19
  nothing republished it and ``yizhang verify --home`` answered INDETERMINATE (TIMESTAMP_UNTRUSTED, TRY_LATER)
  although ``yizhang serve`` had run. Now serve publishes at start: after it ran at +10 d, TOTAL_PASSED.
- The log origin, CRL URLs and verification links are fixed at ``county init``: serving, sealing and
  checkpointing under another ``YIZHANG_PUBLIC_BASE_URL`` leaves every document TOTAL_PASSED (before: the
  log's origin, and its key name with it, followed the setting; serve re-published the log key under the
  new name and every earlier document failed CHECKPOINT_INVALID).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

pytestmark = pytest.mark.softhsm

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
OTHER_BASE_URL = "https://seal.example.test"


def _env(**extra: str) -> dict[str, str]:
    """The environment of a separate deployment: nothing of the test session's token or home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YIZHANG_", "SOFTHSM2_CONF"))}
    env.update(extra)
    return env


def _build(home: Path, out: Path, key: str, **env: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "tests.integration.lifetime._home", str(home), str(out), key],
        cwd=ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def _faketime() -> str:
    found = shutil.which("faketime")
    if found is None:
        pytest.fail("faketime (libfaketime) is missing: scripts/setup.sh installs it")
    return found


def _verify(doc: Path, home: Path, *, offset: str | None = None, **env: str) -> dict[str, Any]:
    cmd = [str(BIN / "yizhang"), "verify", str(doc), "--home", str(home), "--json"]
    if offset is not None:
        cmd = [_faketime(), "-f", offset, *cmd]
    res = subprocess.run(cmd, env=_env(**env), capture_output=True, text=True, timeout=300)
    report: dict[str, Any] = json.loads(res.stdout)
    return report


def _codes(report: dict[str, Any]) -> set[str]:
    codes = {r["code"] for r in report["reasons"]}
    for sig in report["signatures"]:
        codes |= {r["code"] for r in sig["reasons"]}
    return codes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _crl_this_update(home: Path) -> Any:
    try:
        return x509.load_der_x509_crl((home / "pki" / "crl" / "issuing.crl").read_bytes()).last_update_utc
    except (OSError, ValueError):
        return None  # being replaced (atomic rename) or not there yet


def _serve_a_moment(
    home: Path, until: Callable[[int], bool], *, offset: str | None = None, **env: str
) -> None:
    """Run ``yizhang serve`` (one worker) on the home until ``until(port)`` holds, then stop it."""
    port = _free_port()
    cmd = [str(BIN / "yizhang"), "serve", "--home", str(home), "--port", str(port), "--workers", "1"]
    if offset is not None:
        cmd = [_faketime(), "-f", offset, *cmd]
    serve = subprocess.Popen(
        [*cmd, "--log-level", "warning"],
        env=_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # its own process group: faketime runs serve as a child, and terminating faketime alone left that
        # serve (and its workers) running after the test
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if until(port):
                return
            if serve.poll() is not None:
                pytest.fail(f"serve ended: {serve.stderr.read() if serve.stderr else ''}")
            time.sleep(0.5)
        pytest.fail("serve did not get there in 120 s")
    finally:
        _stop_group(serve)


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the whole process group (faketime, serve, its workers), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            os.killpg(proc.pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
        time.sleep(0.5)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:  # noqa: S310 - loopback
            return bool(r.status == 200)
    except OSError:
        return False


def test_b_lta_document_passes_ten_days_later_once_serve_ran(tmp_path: Path) -> None:
    home, doc = tmp_path / "home", tmp_path / "permit.pdf"
    _build(home, doc, "lifetime-10d")
    sealed_day = _crl_this_update(home)
    assert sealed_day is not None

    # `yizhang serve` for a moment, ten days on: it publishes fresh CRLs as it starts
    def republished(_port: int) -> bool:
        now_crl = _crl_this_update(home)
        return now_crl is not None and now_crl >= sealed_day + timedelta(days=9)

    _serve_a_moment(home, republished, offset="+10d")
    report = _verify(doc, home, offset="+10d")
    assert report["indication"] == "TOTAL_PASSED", _codes(report)


def test_another_public_base_url_after_init_changes_nothing_signed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first, second = tmp_path / "first.pdf", tmp_path / "second.pdf"
    _build(home, first, "base-url-1")
    # the same deployment served under another address (before: the log key was re-published under the
    # new origin, and every document failed CHECKPOINT_INVALID)
    _serve_a_moment(home, _ready, YIZHANG_PUBLIC_BASE_URL=OTHER_BASE_URL)
    report = _verify(first, home)
    assert report["indication"] == "TOTAL_PASSED", _codes(report)
    # it seals, forwards and signs a checkpoint there; both documents verify, under either setting
    _build(home, second, "base-url-2", YIZHANG_PUBLIC_BASE_URL=OTHER_BASE_URL)
    for doc, env in ((first, {"YIZHANG_PUBLIC_BASE_URL": OTHER_BASE_URL}), (second, {})):
        report = _verify(doc, home, **env)
        assert report["indication"] == "TOTAL_PASSED", (doc.name, env, _codes(report))
    # the log kept its name: the published key and the checkpoints name the origin fixed at init
    vkey = (home / "ledger" / "log.vkey").read_text().strip()
    assert vkey.startswith("127.0.0.1:8000/ledger+")
    # and the second document's verification link (printed under its QR code) names the address fixed at
    # init, not the new one
    # (the label is a form XObject whose strings pyHanko writes with escapes: read its text, not its bytes)
    plain = tmp_path / "second.qdf.pdf"
    subprocess.run(["qpdf", "--qdf", "--object-streams=disable", str(second), str(plain)], check=True)
    text = subprocess.run(["pdftotext", str(second), "-"], capture_output=True, text=True, check=True).stdout
    assert "http://127.0.0.1:8000/verify" in text
    assert "seal.example.test" not in text
    assert b"seal.example.test" not in plain.read_bytes()
