"""The CLI as an operator runs it.

A fresh home on the embedded default (its own SoftHSM config) needs its own process, since SoftHSM reads
its config once per process: ``county init`` and the real-token wrong-PIN path run as subprocesses. The
lifecycle runs in-process through typer's CliRunner on a home pointed at the shared session token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from typer.testing import CliRunner

from api.cli import app
from tests._fixtures.keystore import shared_token_env

YIZHANG = [sys.executable, "-c", "from api.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[3]


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("YIZHANG_", "SOFTHSM2_CONF"))}
    full_env.update(env or {})
    return subprocess.run(
        [*YIZHANG, *args, "--home", str(home)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full_env,
        timeout=120,
        check=False,
    )


def ok_json(home: Path, *args: str) -> Any:
    res = run(home, *args, "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


runner = CliRunner()


@pytest.fixture
def shared_home(tmp_path: Path, softhsm_token: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose keys live in the shared session token (as with a real HSM), initialised in-process."""
    for key, value in shared_token_env(softhsm_token).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("YIZHANG_DATABASE_URL", raising=False)
    home = tmp_path / "shared-home"
    res = runner.invoke(
        app,
        [
            "county",
            "init",
            "--county-code",
            "360732",
            "--county-name",
            "兴国县",
            "--home",
            str(home),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["token_created"] is False
    return home


def inproc(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, [*args, "--home", str(home)], env=env)


def inproc_json(home: Path, *args: str) -> Any:
    res = inproc(home, *args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-home")
    first = ok_json(home, "county", "init", "--county-code", "360732", "--county-name", "兴国县")
    assert first["token_created"] is True and first["pki_created"] is True
    return home


def test_county_init_makes_the_home_and_a_second_run_is_harmless(home: Path) -> None:
    assert (home / "softhsm2.conf").is_file()
    assert f"directories.tokendir = {home}" in (home / "softhsm2.conf").read_text()
    for pin in ("token.pin", "token.so-pin"):
        assert (home / "secrets" / pin).stat().st_mode & 0o777 == 0o600
    assert (home / "pki" / "crl" / "issuing.crl").is_file() and (home / "pki" / "root.crt").is_file()
    root_before = (home / "pki" / "root.crt").read_bytes()
    crl_before = (home / "pki" / "crl" / "issuing.crl").read_bytes()
    again = ok_json(home, "county", "init", "--county-code", "360732", "--county-name", "兴国县")
    assert again["token_created"] is False and again["pki_created"] is False
    assert (home / "pki" / "root.crt").read_bytes() == root_before
    assert (home / "pki" / "crl" / "issuing.crl").read_bytes() == crl_before
    other = run(home, "county", "init", "--county-code", "360700", "--county-name", "赣州市")
    assert other.returncode == 1 and "COUNTY_MISMATCH" in other.stderr


def test_seal_lifecycle_through_the_cli(shared_home: Path) -> None:
    home = shared_home
    # a seal is made only for a registered township, under its registered name (issue 22)
    for args in (
        ("org", "add-county", "360732", "兴国县"),
        (
            "org",
            "add-township",
            "360732100",
            "兴江乡",
            "--county",
            "360732",
            "--service-centre",
            "360732100-B",
        ),
        ("org", "add-department", "县民政局", "兴国县民政局", "--county", "360732"),
    ):
        assert inproc(home, *args, "--actor", "admin").exit_code == 0
    seal = inproc_json(
        home,
        "seal",
        "issue",
        "--name",
        "兴国县民政局行政审批专用章（11）",
        "--kind",
        "DEPARTMENT_NO2",
        "--number",
        "11",
        "--department",
        "兴国县民政局",
        "--department-code",
        "县民政局",
        "--township",
        "兴江乡",
        "--township-code",
        "360732100",
        "--custodian",
        "李保管",
        "--requested-by",
        "兴国县民政局",
        "--approved-by",
        "王局长",
        "--actor",
        "张三",
    )
    sid = seal["seal_id"]
    assert seal["status"] == "ISSUED" and seal["number"] == 11
    assert (
        inproc_json(home, "seal", "activate", sid, "--actor", "张三", "--approved-by", "王局长")["status"]
        == "ACTIVE"
    )
    assert (
        inproc_json(home, "seal", "suspend", sid, "--actor", "张三", "--reason", "检查")["status"]
        == "SUSPENDED"
    )
    assert inproc_json(home, "seal", "resume", sid, "--actor", "张三")["status"] == "ACTIVE"
    changed = inproc_json(
        home,
        "seal",
        "change",
        sid,
        "--actor",
        "张三",
        "--approved-by",
        "王局长",
        "--requested-by",
        "兴国县民政局",
        "--reason",
        "换发",
    )
    assert changed["event"] == "CHANGED" and changed["cert_serial"] != seal["cert_serial"]
    shown = inproc_json(home, "seal", "show", sid)
    assert [e["event"] for e in shown["events"]] == ["ISSUED", "ACTIVATED", "SUSPENDED", "RESUMED", "CHANGED"]
    listed = inproc_json(home, "seal", "list", "--status", "ACTIVE")
    assert [s["seal_id"] for s in listed] == [sid]
    human = inproc(home, "seal", "show", sid)
    assert human.exit_code == 0 and "兴国县民政局行政审批专用章（11）" in human.stdout

    # Illegal transition: exit 1 with the code; the JSON error names it too.
    bad = inproc(home, "seal", "activate", sid, "--actor", "张三", "--approved-by", "王", "--json")
    assert bad.exit_code == 1 and "SEAL_TRANSITION_INVALID" in bad.stderr
    assert json.loads(bad.stdout)["error"]["details"]["from"] == "ACTIVE"

    assert (
        inproc_json(
            home, "seal", "cancel", sid, "--actor", "张三", "--approved-by", "王局长", "--reason", "撤销委托"
        )["status"]
        == "CANCELLED"
    )
    assert (
        inproc_json(home, "seal", "retire", sid, "--actor", "张三", "--reason", "封存")["status"] == "RETIRED"
    )
    published = inproc_json(home, "crl", "publish")
    crl = x509.load_der_x509_crl(Path(published["issuing_crl"]).read_bytes())
    revoked = {r.serial_number for r in crl}
    assert int(seal["cert_serial"], 16) in revoked and int(changed["cert_serial"], 16) in revoked


def test_commands_before_county_init(tmp_path: Path) -> None:
    res = run(tmp_path / "empty-home", "seal", "list")
    assert res.returncode == 2 and "HOME_NOT_INITIALIZED" in res.stderr


def test_errors_exit_codes(shared_home: Path, softhsm_token: Any) -> None:
    home = shared_home
    missing = inproc(home, "seal", "show", "no-such-seal")
    assert missing.exit_code == 2 and "SEAL_NOT_FOUND" in missing.stderr
    no_consent = inproc(home, "seal", "activate", "x", "--actor", "a")
    assert no_consent.exit_code == 2 and "FIELD_REQUIRED" in no_consent.stderr
    uri = inproc(home, "seal", "list", env={"YIZHANG_PKCS11_URI": "pkcs11:token=yizhang;nonsense=1"})
    assert uri.exit_code == 2 and "PKCS11_URI_INVALID" in uri.stderr
    module = inproc(
        home,
        "seal",
        "list",
        env={"YIZHANG_PKCS11_URI": "pkcs11:token=yizhang?module-path=/nonexistent/libp11.so"},
    )
    assert module.exit_code == 1 and "PKCS11_MODULE_NOT_FOUND" in module.stderr
    for res in (missing, no_consent, uri, module):
        assert res.exception is None or isinstance(res.exception, SystemExit)


def test_wrong_pin_on_a_fresh_process(home: Path) -> None:
    """The real token's answer to a wrong PIN (in a process of its own: no login to share)."""
    wrong = run(home, "seal", "list", env={"YIZHANG_PIN_SOURCE": "env:YZ_PIN", "YZ_PIN": "wrong-pin-123"})
    assert wrong.returncode == 1 and "TOKEN_PIN_INCORRECT" in wrong.stderr
    assert "wrong-pin-123" not in wrong.stderr + wrong.stdout
    assert "Traceback" not in wrong.stderr


def test_two_homes_do_not_interfere(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    ok_json(other, "county", "init", "--county-code", "360781", "--county-name", "瑞金市")
    assert ok_json(other, "seal", "list") == []
    assert ok_json(home, "seal", "list") == []  # seals issued in other homes do not show here
    root_a = x509.load_der_x509_certificate((home / "pki" / "root.crt").read_bytes())
    root_b = x509.load_der_x509_certificate((other / "pki" / "root.crt").read_bytes())
    assert root_a.subject != root_b.subject and root_a.public_key() != root_b.public_key()
