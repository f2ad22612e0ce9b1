"""The embedded default: a SoftHSM2 token whose config, token directory and PINs live in the home."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import KeystoreError
from core.settings import DEFAULT_SOFTHSM_MODULE, Settings

TOKEN_LABEL = "yizhang"  # noqa: S105 - a token label, not a secret


@dataclass(frozen=True)
class SoftHsmHome:
    conf: Path
    token_dir: Path
    created_token: bool


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")


def _ensure_pin(source: str) -> str:
    kind, _, ref = source.partition(":")
    if kind != "file":
        from core.settings import read_secret

        return read_secret(source)
    path = Path(ref)
    if not path.exists():
        _write_secret(path, secrets.token_urlsafe(24))
    return path.read_text(encoding="utf-8").strip()


def _conf_text(token_dir: Path) -> str:
    return (
        "# SoftHSM2 configuration of this Yizhang home (written by `yizhang county init`). The token\n"
        "# directory is set from the home's own path at every open: a copy never uses another home's token.\n"
        f"directories.tokendir = {token_dir}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )


def home_softhsm_conf(settings: Settings) -> Path:
    """The home's ``softhsm2.conf``, made to name the token directory *of this home*, and its path.

    SoftHSM only takes an absolute ``directories.tokendir`` (a relative one is read against the working
    directory), so the file in a home copied with ``cp -a``, moved, or restored from a backup names the
    original's token: ``seal cancel`` in the copy would destroy the original's key. The directory is
    therefore derived from the home at every open and the line rewritten (atomically) when it differs;
    a copy then uses, and changes, only its own token."""
    conf = settings.softhsm_conf
    token_dir = settings.home_dir / "softhsm" / "tokens"
    try:
        current = conf.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current is None:
        wanted = _conf_text(token_dir)
    else:
        want_line = f"directories.tokendir = {token_dir}"
        lines = current.splitlines()
        found = [i for i, line in enumerate(lines) if line.strip().startswith("directories.tokendir")]
        if len(found) == 1 and lines[found[0]].strip() == want_line:
            return conf
        lines = [line for i, line in enumerate(lines) if i not in found]
        lines.insert(found[0] if found else len(lines), want_line)
        wanted = "\n".join(lines) + "\n"
    tmp = conf.with_name(f".{conf.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        tmp.write_text(wanted, encoding="utf-8")
        os.replace(tmp, conf)  # atomic: a worker opening at the same time reads the old or the new file
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeystoreError(
            "HOME_CONFIG_UNWRITABLE",
            f"{conf} names another home's token directory and cannot be corrected",
            f"{conf} 指向另一目录的令牌，且无法改写",
            details={"conf": str(conf), "token_dir": str(token_dir)},
        ) from exc
    return conf


def _token_exists(conf: Path, label: str) -> bool:
    out = subprocess.run(
        ["softhsm2-util", "--show-slots"],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return any(
        line.split(":", 1)[1].strip() == label
        for line in out.stdout.splitlines()
        if line.strip().startswith("Label:")
    )


# C_InitToken and C_InitPIN through PKCS#11 (PyKCS11), in a child process: the PINs come in on its stdin,
# never on a command line (issue 21: ``softhsm2-util --pin … --so-pin …`` showed both in /proc/PID/cmdline,
# readable by every local user), and the library is loaded and finalised there, apart from the token
# sessions this process keeps (python-pkcs11). Argument: the module path and the label; stdin: JSON PINs.
_INIT_TOKEN = """
import json, sys
import PyKCS11
module, label = sys.argv[1], sys.argv[2]
pins = json.loads(sys.stdin.read())
lib = PyKCS11.PyKCS11Lib()
lib.load(module)
free = [s for s in lib.getSlotList(tokenPresent=True)
        if not lib.getTokenInfo(s).flags & PyKCS11.CKF_TOKEN_INITIALIZED]
if not free:
    sys.exit("no free token slot")
lib.initToken(free[0], pins["so_pin"], label.ljust(32))  # CK_UTF8CHAR[32], blank-padded
slot = next(s for s in lib.getSlotList(tokenPresent=True) if lib.getTokenInfo(s).label.strip() == label)
session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
session.login(pins["so_pin"], PyKCS11.CKU_SO)
session.initPin(pins["pin"])
session.logout()
session.closeSession()
"""  # noqa: S105 - a script; the PINs reach it on stdin


def _init_token(
    conf: Path, label: str, *, so_pin: str, user_pin: str, module: str = DEFAULT_SOFTHSM_MODULE
) -> None:
    """Initialise a free SoftHSM slot as token ``label`` with the SO PIN, then set the user PIN."""
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _INIT_TOKEN, module, label],
        input=json.dumps({"so_pin": so_pin, "pin": user_pin}),
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        raise KeystoreError(
            "TOKEN_INIT_FAILED",
            "initialising the SoftHSM token failed",
            "SoftHSM 令牌初始化失败",
            details={"stderr": proc.stderr.strip()[-500:]},
        )


def init_softhsm_home(settings: Settings, label: str = TOKEN_LABEL) -> SoftHsmHome:
    """Create the home's SoftHSM config, random PINs (0600) and the token, unless already there."""
    home = settings.home_dir
    token_dir = home / "softhsm" / "tokens"
    token_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(token_dir.parent, 0o700)
    conf = home_softhsm_conf(settings)
    user_pin = _ensure_pin(settings.effective_pin_source)
    so_pin = _ensure_pin(settings.effective_so_pin_source)
    if _token_exists(conf, label):
        return SoftHsmHome(conf=conf, token_dir=token_dir, created_token=False)
    _init_token(conf, label, so_pin=so_pin, user_pin=user_pin)
    return SoftHsmHome(conf=conf, token_dir=token_dir, created_token=True)
