"""``yizhang serve`` (the HTTP service under uvicorn, several workers) and ``yizhang account`` (bootstrap and
manage service accounts from the shell, e.g. the first county administrator)."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from api._json import JsonObject
from api.cli._common import HomeOpt, JsonOpt, cli_errors, emit, settings_for

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from core.settings import Settings
    from ledger import Ledger

account_app = typer.Typer(help="service accounts: create, token, disable, list", no_args_is_help=True)


def _cli_actor() -> str:
    """Who acted at the shell, for the ledger entry: the operating-system user (trusted with the home)."""
    import getpass

    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (containers)
        return f"cli:uid-{os.getuid()}"


def _ledger(settings: Settings, engine: Engine) -> Ledger:
    """The ledger as a writer of entries (checkpoints are signed by the service or `yizhang ledger`)."""
    from ledger import Ledger, origin_for

    return Ledger(engine, None, origin=origin_for(settings))


def default_public_base_url(host: str, port: int) -> str:
    """Where a server listening on ``host:port`` is reached when ``YIZHANG_PUBLIC_BASE_URL`` is not set: that
    address itself (every interface: the loopback one). Behind a reverse proxy, set the variable."""
    if host in ("0.0.0.0", "::", "[::]", ""):  # noqa: S104 - naming the wildcard, not binding to it
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


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
        # Links, cookies and (before `county init`) CRL URLs and the log origin follow the port served on.
        if not os.environ.get("YIZHANG_PUBLIC_BASE_URL"):
            os.environ["YIZHANG_PUBLIC_BASE_URL"] = default_public_base_url(host, port)
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
    uvicorn.run(**uvicorn_options(host, port, workers, forwarded_allow_ips, log_level))


#: Seconds a serve worker may take to start or to answer its supervisor before it is replaced.
WORKER_HEALTHCHECK_S = 60


def uvicorn_options(
    host: str, port: int, workers: int, forwarded_allow_ips: str, log_level: str
) -> JsonObject:
    """What ``yizhang serve`` hands to ``uvicorn.run``."""
    return {
        "app": "api.app:app_factory",
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "proxy_headers": True,
        "forwarded_allow_ips": forwarded_allow_ips,
        "access_log": False,  # ours (api._observability) has no query strings and carries request ids
        "log_config": None,
        "log_level": log_level,
        "server_header": False,
        "timeout_graceful_shutdown": 20,
        # uvicorn kills a worker that has not answered its supervisor's ping within this time, *including
        # while it starts* (a spawned worker imports the app and opens the token before its pong thread
        # runs). Its default of 5 s is shorter than a start on a busy 2-core machine: the replacement was
        # killed before it could serve, again and again, and the service ran on one worker (found by
        # bench/bench_verify_served_hostile.py, issue 21).
        "timeout_worker_healthcheck": WORKER_HEALTHCHECK_S,
    }


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
    same_person_as: Annotated[
        str | None, typer.Option(help="username of an account of the same person (clerk + principal)")
    ] = None,
    must_change_password: Annotated[
        bool,
        typer.Option("--must-change-password", help="the password is a temporary one for someone else"),
    ] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an account (the first county administrator is made this way); logged in the ledger."""
    from api._accounts import AccountChange, create_account, get_account_by_username, record_account_change
    from core.db import make_engine, transaction

    with cli_errors(as_json):
        settings = settings_for(home)
        password = sys.stdin.readline().rstrip("\n") if password_stdin else None
        engine = make_engine(settings.effective_database_url)
        try:
            # the ledger's origin is read before the write transaction: on SQLite a second connection
            # reading it inside would wait out the busy timeout (30 s) and fall back to the settings' origin
            ledger = _ledger(settings, engine)
            with transaction(engine) as s:
                person_of = get_account_by_username(s, same_person_as).account_id if same_person_as else None
                account = create_account(
                    s,
                    username=username,
                    display_name=display_name or username,
                    role=role,
                    org_code=org,
                    service_centre=service_centre,
                    password=password,
                    created_by="cli",
                    same_person_as=person_of,
                    must_change_password=must_change_password,
                )
                record_account_change(
                    s,
                    ledger,
                    account,
                    AccountChange.CREATED,
                    actor=_cli_actor(),
                    via="cli",
                    details={
                        "role": account.role.value,
                        "org_code": account.org_code,
                        "linked_to_existing_person": person_of is not None,
                    },
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
    """Issue a bearer token for an account; the secret is printed once and never stored.

    Whoever runs this holds a credential of that account: the shell operator is trusted with the home (and
    so with the database), but the act is said on stderr and logged in the ledger (TOKEN_ISSUED, via cli,
    with the operating-system user). Through the API nobody mints a token for another person's account."""
    from api._accounts import AccountChange, get_account_by_username, issue_token, record_account_change
    from core.db import make_engine, transaction

    with cli_errors(as_json):
        settings = settings_for(home)
        engine = make_engine(settings.effective_database_url)
        try:
            # the ledger's origin is read before the write transaction: on SQLite a second connection
            # reading it inside would wait out the busy timeout (30 s) and fall back to the settings' origin
            ledger = _ledger(settings, engine)
            with transaction(engine) as s:
                account = get_account_by_username(s, username)
                issued = issue_token(s, account.account_id, name=name, ttl=timedelta(days=ttl_days))
                actor = _cli_actor()
                record_account_change(
                    s,
                    ledger,
                    account,
                    AccountChange.TOKEN_ISSUED,
                    actor=actor,
                    via="cli",
                    details={"token_id": issued.token.token_id},
                )
            typer.echo(
                f"note: this token acts as account {username} ({account.role.value}); whoever holds it "
                "acts as that person. Give it only to its owner. "
                f"Logged in the ledger as TOKEN_ISSUED by {actor}.",
                err=True,
            )
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
    """Disable (or re-enable) an account; disabling revokes its sessions and tokens for good (re-enabling
    revives none). Logged in the ledger."""
    from api._accounts import AccountChange, get_account_by_username, record_account_change, set_disabled
    from core.db import make_engine, transaction

    with cli_errors(as_json):
        settings = settings_for(home)
        engine = make_engine(settings.effective_database_url)
        try:
            # the ledger's origin is read before the write transaction: on SQLite a second connection
            # reading it inside would wait out the busy timeout (30 s) and fall back to the settings' origin
            ledger = _ledger(settings, engine)
            with transaction(engine) as s:
                account = set_disabled(s, get_account_by_username(s, username).account_id, not enable)
                record_account_change(
                    s,
                    ledger,
                    account,
                    AccountChange.ENABLED if enable else AccountChange.DISABLED,
                    actor=_cli_actor(),
                    via="cli",
                )
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
