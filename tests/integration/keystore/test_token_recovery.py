"""A token that fails under a running keystore, and one that is not there at start, through the real SoftHSM2
module behind the fault-injecting PKCS#11 proxy (``tests/reliability/pkcs11_fault``).

SoftHSM reads its configuration once per process and this process already has one (the shared test token),
so the scenario runs in a child interpreter with a token of its own; it prints one JSON line per step and
the assertions are made here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.pkcs11_fault import build_fault_module

pytestmark = [pytest.mark.softhsm]

CHILD = r"""
import json, sys, time
from pathlib import Path
from core.settings import load_settings
from keystore import KeyAlgorithm, Keystore, KeystoreOpener
import keystore._token as token_mod

token_mod.RECOVERY_MIN_DELAY_S = 0.05
token_mod.RECOVERY_MAX_DELAY_S = 0.2
home, control, pin_file = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
settings = load_settings(home)

def step(name, fn):
    try:
        value = fn()
        out = {"step": name, "ok": True, "value": value}
    except Exception as exc:
        out = {"step": name, "ok": False, "code": getattr(exc, "code", type(exc).__name__),
               "details": getattr(exc, "details", {}), "message": str(exc)}
    print(json.dumps(out, default=str), flush=True)
    return out

# 1. start with the token pulled out: no keystore, a code; then back: the opener opens it
control.write_text("removed")
opener = KeystoreOpener(settings, min_delay_s=0.05, max_delay_s=0.2)
step("start-removed", lambda: opener.attempt() and None)
control.unlink()
time.sleep(0.25)
ks = opener.attempt()
ks.generate_key("k", KeyAlgorithm.EC_P256)
step("signs", lambda: len(ks.sign("k", b"hello")))

# 2. pulled out while running: TOKEN_UNAVAILABLE at once, again without a token call, then back by itself
for mode in ("removed", "error"):
    control.write_text(mode)
    step(f"{mode}-sign", lambda: ks.sign("k", b"x"))
    step(f"{mode}-again", lambda: ks.sign("k", b"x"))
    step(f"{mode}-ping", ks.ping)
    step(f"{mode}-state", lambda: ks.unavailable)
    time.sleep(0.5)  # a few recovery attempts fail while the fault lasts
    step(f"{mode}-still", lambda: ks.sign("k", b"x"))
    control.unlink()
    time.sleep(0.25)
    step(f"{mode}-back", lambda: len(ks.sign("k", b"after")))
    step(f"{mode}-state-after", lambda: ks.unavailable)

# 3. the PIN is rotated on the token, then the token is pulled and re-inserted: the old PIN in the file is
#    refused once and not offered again; the new PIN in the file is picked up by itself
old_pin = pin_file.read_text().strip()
new_pin = old_pin + "-rotated"
with ks._worker("set pin") as w:
    w.session.set_pin(old_pin, new_pin)
step("rotated-still-signs", lambda: len(ks.sign("k", b"x")))  # a login outlives a PIN change
control.write_text("removed")
step("rotated-removed", lambda: ks.sign("k", b"x"))
control.unlink()
time.sleep(0.25)
step("rotated-old-pin", lambda: ks.sign("k", b"x"))
time.sleep(0.25)
step("rotated-old-pin-again", lambda: ks.sign("k", b"x"))
pin_file.write_text(new_pin + "\n")
time.sleep(0.25)
step("rotated-new-pin", lambda: len(ks.sign("k", b"x")))
ks.close()

# 4. at start with the old PIN: refused once, not retried, then the new PIN from the file opens it
pin_file.write_text(old_pin + "\n")
opener = KeystoreOpener(settings, min_delay_s=0.05, max_delay_s=0.2)
step("start-old-pin", lambda: opener.attempt() and None)
time.sleep(0.1)
step("start-old-pin-again", lambda: opener.attempt() and None)
pin_file.write_text(new_pin + "\n")
time.sleep(0.25)
step("start-new-pin", lambda: opener.attempt().close())
print(json.dumps({"pins": [old_pin, new_pin]}), flush=True)
"""


def test_token_failures_are_unavailable_and_recover_by_themselves(tmp_path: Path) -> None:
    module = build_fault_module(tmp_path / "build")
    home = tmp_path / "home"
    tokens = home / "softhsm" / "tokens"
    tokens.mkdir(parents=True)
    conf = home / "softhsm.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    pin_file = home / "secrets" / "user.pin"
    pin_file.parent.mkdir()
    pin_file.write_text("recovery-pin-1234\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIZHANG_")}
    env["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "faulty",
         "--pin", "recovery-pin-1234", "--so-pin", "recovery-so-5678"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    control = tmp_path / "fault"
    env.update(
        {
            "PKCS11_FAULT_FILE": str(control),
            "YIZHANG_PKCS11_URI": f"pkcs11:token=faulty?module-path={module}",
            "YIZHANG_PIN_SOURCE": f"file:{pin_file}",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(home), str(control), str(pin_file)],
        env=env, capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[3],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    pins = lines.pop()["pins"]
    steps = {s["step"]: s for s in lines}

    assert steps["start-removed"]["code"] == "TOKEN_NOT_FOUND"
    assert steps["signs"]["ok"] and steps["signs"]["value"] > 0
    for mode, cause in (("removed", "DeviceRemoved"), ("error", "DeviceError")):
        first = steps[f"{mode}-sign"]
        assert first["code"] == "TOKEN_UNAVAILABLE", first
        assert first["details"]["pkcs11_error"] == cause and first["details"]["retry_after_s"] >= 1
        assert steps[f"{mode}-again"]["code"] == "TOKEN_UNAVAILABLE"
        assert steps[f"{mode}-ping"]["code"] == "TOKEN_UNAVAILABLE"
        assert steps[f"{mode}-state"]["value"] == "TOKEN_UNAVAILABLE"
        assert steps[f"{mode}-still"]["code"] == "TOKEN_UNAVAILABLE"
        assert steps[f"{mode}-back"]["ok"], steps[f"{mode}-back"]
        assert steps[f"{mode}-state-after"]["value"] is None

    assert steps["rotated-still-signs"]["ok"], steps["rotated-still-signs"]
    assert steps["rotated-removed"]["code"] == "TOKEN_UNAVAILABLE"
    assert steps["rotated-old-pin"]["code"] == "TOKEN_PIN_INCORRECT"
    assert steps["rotated-old-pin-again"]["code"] == "TOKEN_PIN_INCORRECT"
    assert steps["rotated-old-pin-again"]["details"].get("retried") is False  # not offered to the token again
    assert steps["rotated-new-pin"]["ok"], steps["rotated-new-pin"]

    assert steps["start-old-pin"]["code"] == "TOKEN_PIN_INCORRECT"
    assert steps["start-old-pin-again"]["code"] == "TOKEN_PIN_INCORRECT"
    assert steps["start-old-pin-again"]["details"].get("retried") is False
    assert steps["start-new-pin"]["ok"], steps["start-new-pin"]

    # No PIN in any error, message or log line.
    for pin in pins:
        assert pin not in proc.stdout.replace(json.dumps({"pins": pins}), "")
        assert pin not in proc.stderr
