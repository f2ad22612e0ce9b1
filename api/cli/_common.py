"""What every CLI command shares: the home, the settings, JSON or human output, and error exits."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from api._json import JsonValue
from core.errors import SealServiceError
from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from api._services import TokenNoteSigner

_T = TypeVar("_T")


HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", envvar="YIZHANG_HOME", help="deployment home (default ./var)", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON output")]

EXIT_ERROR = 1
EXIT_BAD_INPUT = 2


def settings_for(home: Path | None) -> Settings:
    return load_settings(home)


#: The county's clock: what the CLI prints (the console shows the same), as ISO 8601 with ``+08:00``.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def beijing_iso(at: datetime) -> str:
    """An aware time as Beijing time in ISO 8601 (``2026-12-06T14:05:00+08:00``); naive times as they are."""
    return at.astimezone(BEIJING).isoformat() if at.tzinfo is not None else at.isoformat()


def to_jsonable(value: object, tz: tzinfo | None = None) -> JsonValue:
    """Plain JSON values; aware datetimes in ``tz`` when given (the CLI passes Beijing time)."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value), tz)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, tz) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v, tz) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime) and tz is not None and value.tzinfo is not None:
        return value.astimezone(tz).isoformat()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Path):
        return str(value)
    return value


def emit(value: _T, as_json: bool, human: Callable[[_T], str] | None = None) -> None:
    """Print ``value`` as JSON or as lines; times in Beijing time either way (issue 23)."""
    if as_json:
        typer.echo(json.dumps(to_jsonable(value, BEIJING), ensure_ascii=False, indent=2, sort_keys=True))
    elif human is not None:
        typer.echo(human(value))
    else:
        data = to_jsonable(value, BEIJING)
        if isinstance(data, dict):
            for k, v in data.items():
                typer.echo(f"{k}: {v}")
        elif isinstance(data, list):
            for item in data:
                typer.echo(
                    item if not isinstance(item, dict) else "  ".join(f"{k}={v}" for k, v in item.items())
                )
        else:
            typer.echo(str(data))


@contextmanager
def cli_errors(as_json: bool = False) -> Iterator[None]:
    """Turn service errors into a message and a non-zero exit; never a stack trace for bad input."""
    try:
        yield
    except SealServiceError as exc:
        if as_json:
            typer.echo(json.dumps({"error": exc.to_dict()}, ensure_ascii=False), err=False)
        typer.echo(f"error {exc.code}: {exc.message}", err=True)
        code = EXIT_BAD_INPUT if exc.family in {"bad_input", "not_found"} else EXIT_ERROR
        sys.stdout.flush()
        raise typer.Exit(code) from None


def ensure_log_key(settings: Settings) -> None:
    """Make the ledger's Ed25519 log key in the token if it is not there (``log_key_source=token``)."""
    if settings.log_key_source != "token":
        return
    from api._services import LOG_KEY_LABEL
    from keystore import KeyAlgorithm, Keystore

    with Keystore.open(settings) as ks:
        if not ks.has_key(LOG_KEY_LABEL):
            ks.generate_key(LOG_KEY_LABEL, KeyAlgorithm.ED25519)


def token_log_signer(settings: Settings) -> TokenNoteSigner:
    """The ledger's note signer over the token-held log key; the keystore stays open for this process."""
    from api._services import LOG_KEY_LABEL, TokenNoteSigner
    from keystore import Keystore
    from ledger import NoteVerifier, origin_for, publish_vkey

    ks = Keystore.open(settings)
    if not ks.has_key(LOG_KEY_LABEL):
        from core.errors import KeystoreError

        ks.close()
        raise KeystoreError(
            "LEDGER_LOG_KEY_MISSING",
            "the token holds no ledger log key (yizhang county init makes it)",
            "令牌中没有台账日志密钥（yizhang county init 会生成）",
        )
    signer = TokenNoteSigner(ks, LOG_KEY_LABEL, origin_for(settings))
    publish_vkey(settings, NoteVerifier.for_signer(signer))
    return signer


def forward_journal(settings: Settings) -> int:
    """Copy seal lifecycle events and powers/agreement changes into the ledger (idempotent)."""
    from api._journal import forward
    from api._services import build_services

    services = build_services(settings)
    try:
        services.need_ledger()
        return forward(services)
    finally:
        services.close()
