"""``yizhang trust add|refresh|list|remove``: other counties' signed trust bundles, kept in HOME/trust.

``yizhang verify`` (without ``--trust``/``--bundle``), ``POST /v1/verify`` and the public page trust the
roots there and judge those counties' documents with their bundles (api/_trust_store.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from api._json import JsonObject
from api.cli._common import HomeOpt, JsonOpt, cli_errors, emit, settings_for
from core.errors import BadInput


def _colons(fingerprint: str) -> str:
    return ":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2)).upper()


def register(app: typer.Typer) -> None:
    trust = typer.Typer(
        help="other counties' trust bundles (the trust store in HOME/trust)", no_args_is_help=True
    )

    @trust.command("add")
    def trust_add(
        source: Annotated[
            str, typer.Argument(help="the county's bundle: https URL (http only to this machine) or file")
        ],
        fingerprint: Annotated[
            str | None,
            typer.Option(
                "--fingerprint",
                help="SHA-256 of the county's root certificate, as the county told you (out of band); "
                "without it the fingerprint is shown and must be confirmed",
            ),
        ] = None,
        name: Annotated[str | None, typer.Option("--name", help="name in the trust store")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Pin a county's root (first use, like SSH known_hosts) and keep its signed bundle."""
        from api import _trust_store as store

        with cli_errors(as_json):
            settings = settings_for(home)
            offer = store.read_offer(source)
            typer.echo(
                f"county 县: {offer.county or '?'}\nroot SHA-256 根证书指纹: {_colons(offer.fingerprint)}",
                err=True,
            )
            if fingerprint is None:
                # Compare with what the county gave you by another channel (phone, letter): this is the pin.
                if not typer.confirm(
                    "Trust this county's root? 是否信任该县根证书?", default=False, err=True
                ):
                    raise BadInput(
                        "TRUST_NOT_CONFIRMED",
                        "not added: the root's fingerprint was not confirmed (pass --fingerprint)",
                        "未添加：根证书指纹未确认（请使用 --fingerprint）",
                    )
                fingerprint = offer.fingerprint
            entry = store.add(
                settings, offer, name=name or store.default_name(offer), fingerprint=fingerprint
            )
        emit(entry.summary(datetime.now(UTC)), as_json)

    @trust.command("refresh")
    def trust_refresh(
        names: Annotated[list[str] | None, typer.Argument(help="names to refresh (default: all)")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Fetch each county's bundle again; kept only when signed by the pinned root and not older."""
        from api import _trust_store as store
        from core.errors import SealServiceError

        results: list[JsonObject] = []
        failed = False
        with cli_errors(as_json):
            settings = settings_for(home)
            wanted = names or [e.name for e in store.entries(settings)]
            for name in wanted:
                try:
                    entry = store.refresh(settings, name)
                    results.append({"name": name, "ok": True, **entry.summary(datetime.now(UTC))})
                except SealServiceError as exc:
                    failed = True
                    results.append({"name": name, "ok": False, "code": exc.code, "message": exc.message})
                    typer.echo(f"error {exc.code}: {name}: {exc.message}", err=True)
        emit(results, as_json)
        if failed:
            raise typer.Exit(1)

    @trust.command("list")
    def trust_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
        """The counties in the trust store, their pins and whether their bundles are stale."""
        from api import _trust_store as store

        with cli_errors(as_json):
            settings = settings_for(home)
            now = datetime.now(UTC)
            out = [e.summary(now) for e in store.entries(settings)]
        emit(out, as_json)

    @trust.command("remove")
    def trust_remove(
        name: Annotated[str, typer.Argument(help="the name shown by `trust list`")],
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Stop trusting a county: its documents are then untrusted here (INDETERMINATE)."""
        from api import _trust_store as store

        with cli_errors(as_json):
            store.remove(settings_for(home), name)
        emit({"removed": name}, as_json)

    app.add_typer(trust, name="trust")
