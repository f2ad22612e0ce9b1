"""How a deployment names its log and finds the log key file (the token-held key is wired by the caller)."""

from __future__ import annotations

from pathlib import Path

from core.identity import deployment_identity
from core.settings import Settings
from ledger._note import KeyFileSigner, NoteVerifier


def origin_for(settings: Settings) -> str:
    """The checkpoint origin (and key name), e.g. ``seal.xingguo.gov.cn/ledger``: fixed at ``county init``
    in the deployment row (``core.identity``), so serving under another ``public_base_url`` later never
    changes what checkpoints say; before init, ``<host of public_base_url>/ledger``."""
    return deployment_identity(settings).log_origin


def log_key_path(settings: Settings) -> Path:
    """``file:/path`` from ``log_key_source``, else HOME/secrets/log.key."""
    source = settings.log_key_source
    if source.startswith("file:") and len(source) > 5:
        return Path(source[5:])
    return settings.home_dir / "secrets" / "log.key"


def vkey_path(settings: Settings) -> Path:
    """Where the public verifier key is published for auditors: HOME/ledger/log.vkey."""
    return settings.home_dir / "ledger" / "log.vkey"


def key_file_signer(settings: Settings) -> KeyFileSigner:
    """The file-held log key (made if missing, 0600); also writes the public verifier key beside it."""
    signer = KeyFileSigner.load_or_create(log_key_path(settings), origin_for(settings))
    publish_vkey(settings, NoteVerifier.for_signer(signer))
    return signer


def publish_vkey(settings: Settings, verifier: NoteVerifier) -> Path:
    path = vkey_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8").strip() != verifier.vkey:
        path.write_text(verifier.vkey + "\n", encoding="utf-8")
    return path
