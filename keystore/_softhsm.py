"""The embedded default: a SoftHSM2 token whose config, token directory and PINs live in the home."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.errors import KeystoreError
from core.settings import Settings

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


def init_softhsm_home(settings: Settings, label: str = TOKEN_LABEL) -> SoftHsmHome:
    """Create the home's SoftHSM config, random PINs (0600) and the token, unless already there."""
    home = settings.home_dir
    token_dir = home / "softhsm" / "tokens"
    token_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(token_dir.parent, 0o700)
    conf = settings.softhsm_conf
    if not conf.exists():
        conf.write_text(
            "# SoftHSM2 configuration of this Yizhang home (written by `yizhang county init`)\n"
            f"directories.tokendir = {token_dir}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n",
            encoding="utf-8",
        )
    user_pin = _ensure_pin(settings.effective_pin_source)
    so_pin = _ensure_pin(settings.effective_so_pin_source)
    if _token_exists(conf, label):
        return SoftHsmHome(conf=conf, token_dir=token_dir, created_token=False)
    tool = shutil.which("softhsm2-util")
    if tool is None:
        raise KeystoreError("SOFTHSM_NOT_INSTALLED", "softhsm2-util is not installed", "未安装 softhsm2-util")
    # softhsm2-util takes PINs only as arguments; the process is short-lived and local to the home's owner.
    proc = subprocess.run(
        [tool, "--init-token", "--free", "--label", label, "--pin", user_pin, "--so-pin", so_pin],
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
    return SoftHsmHome(conf=conf, token_dir=token_dir, created_token=True)
