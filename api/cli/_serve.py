"""``yizhang serve`` (the HTTP service under uvicorn, several workers) and ``yizhang account`` (bootstrap and
manage service accounts from the shell, e.g. the first county administrator)."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import timedelta
from typing import Annotated

import typer

from api.cli._common import HomeOpt, JsonOpt, cli_errors, emit, settings_for

account_app = typer.Typer(help="service accounts: create, token, disable, list", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(account_app, name="account")


def serve(
    home: HomeOpt = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 2,
    forwarded_allow_ips: Annotated[
        str, typer.Option(help="proxies whose X-Forwarded-For/Proto are trusted (the TLS terminator)")
    ] = "127.0.0.1",
    migrate_db: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="upgrade the schema first")
    ] = True,
    log_level: Annotated[str, typer.Option(help="debug | info | warning")] = "info",
) -> None:
    """Run the HTTP service (uvicorn, WORKERS processes) on the deployment in HOME."""
    import uvicorn

    from api._observability import configure_logging
    from core.db import migrate

    with cli_errors():
        settings = settings_for(home)
        # The workers build their own settings from the environment: hand the home down explicitly.
        os.environ["YIZHANG_HOME"] = str(settings.home_dir)
        configure_logging(log_level.upper())
        if migrate_db:
            migrate(settings.effective_database_url)
        if workers > 1:
            # Prometheus counters from every worker, added up at /metrics.
            metrics_dir = settings.home_dir / "run" / "prometheus"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True, exist_ok=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "api.app:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        access_log=False,  # ours (api._observability) has no query strings and carries request ids
        log_config=None,
        log_level=log_level,
        server_header=False,
        timeout_graceful_shutdown=20,
    )


@account_app.command("create")
def account_create(
    username: Annotated[str, typer.Option(help="login name (lower case)")],
    role: Annotated[str, typer.Option(help="COUNTY_ADMIN, DEPARTMENT_OFFICER, TOWNSHIP_CLERK, ...")],
    org: Annotated[str, typer.Option(help="organisation code: county, department or township")],
    display_name: Annotated[str | None, typer.Option(help="person's name")] = None,
    service_centre: Annotated[str | None, typer.Option(help="service centre code (window staff)")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read a password from stdin")
    ] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an account (the first county administrator is made this way)."""
    from api._accounts import create_account
    from core.db import make_engine, transaction

    with cli_errors(as_json):
        settings = settings_for(home)
        password = sys.stdin.readline().rstrip("\n") if password_stdin else None
        engine = make_engine(settings.effective_database_url)
        try:
            with transaction(engine) as s:
                account = create_account(
                    s,
                    username=username,
                    display_name=display_name or username,
                    role=role,
                    org_code=org,
                    service_centre=service_centre,
                    password=password,
                    created_by="cli",
                )
        finally:
            engine.dispose()
        emit(account, as_json)


@account_app.command("token")
def account_token(
    username: Annotated[str, typer.Option(help="the account")],
    name: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    ttl_days: Annotated[float, typer.Option(help="lifetime in days (max 366)")] = 90,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a bearer token; the secret is printed once and never stored."""
    from api._accounts import get_account_by_username, issue_token
    from core.db import make_engine, transaction

    with cli_errors(as_json):
        settings = settings_for(home)
        engine = make_engine(settings.effective_database_url)
        try:
            with transaction(engine) as s:
                account = get_account_by_username(s, username)
                issued = issue_token(s, account.account_id, name=name, ttl=timedelta(days=ttl_days))
        finally:
            engine.dispose()
        emit(
            {
                "token_id": issued.token.token_id,
                "expires_at": issued.token.expires_at,
                "token": issued.secret,
            },
            as_json,
        )


@account_app.command("disable")
def account_disable(
    username: Annotated[str, typer.Option(help="the account")],
    enable: Annotated[bool, typer.Option("--enable", help="re-enable instead")] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Disable (or re-enable) an account; its tokens stop working at once."""
    from api._accounts import get_account_by_username, set_disabled
    from core.db import make_engine, transaction

    with cli_errors(as_json):
        settings = settings_for(home)
        engine = make_engine(settings.effective_database_url)
        try:
            with transaction(engine) as s:
                account = set_disabled(s, get_account_by_username(s, username).account_id, not enable)
        finally:
            engine.dispose()
        emit(account, as_json)


@account_app.command("list")
def account_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """All accounts (no secrets)."""
    from api._accounts import list_accounts
    from core.db import make_engine, transaction

    with cli_errors(as_json):
        settings = settings_for(home)
        engine = make_engine(settings.effective_database_url)
        try:
            with transaction(engine) as s:
                accounts = list_accounts(s)
        finally:
            engine.dispose()
        emit(accounts, as_json)
