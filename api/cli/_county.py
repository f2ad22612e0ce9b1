"""``yizhang county init`` (home, token, county PKI) and ``yizhang crl publish``."""

from __future__ import annotations

from typing import Annotated

import typer

from api._json import JsonObject
from api.cli._common import HomeOpt, JsonOpt, cli_errors, emit, ensure_log_key, settings_for


def register(app: typer.Typer) -> None:
    county = typer.Typer(help="the county's deployment: home, token, PKI", no_args_is_help=True)
    crl = typer.Typer(help="certificate revocation lists", no_args_is_help=True)

    @county.command("init")
    def county_init(
        county_code: Annotated[str, typer.Option("--county-code", help="administrative code, e.g. 360732")],
        county_name: Annotated[str, typer.Option("--county-name", help="e.g. 兴国县")],
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Create the home (SoftHSM token, random PINs, database), the county root and issuing CA, the CRLs.

        Running it again is harmless: nothing is re-created.
        """
        from keystore import init_county

        with cli_errors(as_json):
            settings = settings_for(home)
            setup = init_county(settings, county_code.strip(), county_name.strip())
            ensure_log_key(settings)
        out: JsonObject = {
            "county_code": setup.county_code,
            "county_name": setup.county_name,
            "home": setup.home,
            "token_created": setup.token_created,
            "pki_created": setup.pki_created,
            "root_cert": setup.published.root_cert,
            "issuing_cert": setup.published.issuing_cert,
            "issuing_crl": setup.published.issuing_crl,
        }
        emit(out, as_json)

    @crl.command("publish")
    def crl_publish(
        home: HomeOpt = None,
        as_json: JsonOpt = False,
        if_due: Annotated[
            bool,
            typer.Option(
                "--if-due",
                help="only when the published CRLs are due (older than YIZHANG_CRL_REPUBLISH_S, or a seal "
                "change could not publish): for cron",
            ),
        ] = False,
    ) -> None:
        """Sign fresh CRLs (issuing CA and root) and write them to HOME/pki/crl/.

        `yizhang serve` does this by itself (at start, on its schedule, on every seal change); a deployment
        without it runs this from cron (docs/operations.md)."""
        from keystore import open_registry

        with cli_errors(as_json):
            with open_registry(settings_for(home)) as registry:
                published = (
                    registry.pki.ensure_current_crls() if if_due else registry.pki.publish_crl()
                ) or registry.pki.published()
        emit(published, as_json)

    app.add_typer(county, name="county")
    app.add_typer(crl, name="crl")
