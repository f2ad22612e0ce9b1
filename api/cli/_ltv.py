"""``yizhang ltv``: long-term validation by hand (``yizhang serve`` runs the same round by itself)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from api._json import JsonObject
from api.cli._common import HomeOpt, JsonOpt, cli_errors, emit, settings_for

ltv_app = typer.Typer(
    help="long-term validation: TSA rotation, archive timestamp renewal", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(ltv_app, name="ltv")


def _human(out: JsonObject) -> str:
    r, h = out["round"], out["health"]
    lines = [
        f"TSA rotated to {r['rotated_to']}" if r["rotated_to"] else "TSA: no rotation due",
        f"renewed {len(r['renewed'])} document(s)" + (f": {', '.join(r['renewed'])}" if r["renewed"] else ""),
    ]
    lines += [f"not renewed: {f['document']} ({f['code']})" for f in r["failed"]]
    if r["skipped_no_successor"]:
        lines.append(f"{r['skipped_no_successor']} document(s) due, no TSA that outlives them")
    lines.append(f"status: {h['status']} (TSA until {h['tsa_not_after']}, {h['documents_due']} due)")
    return "\n".join(lines)


@ltv_app.command("renew")
def renew(
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    due_within: Annotated[
        float | None,
        typer.Option(
            "--due-within",
            min=0,
            help="renew documents whose archive timestamp ends within DAYS (default YIZHANG_LTV_RENEW_DAYS)",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="at most this many documents (default YIZHANG_LTV_BATCH)")
    ] = None,
) -> None:
    """One round: rotate the county TSA if due, renew the archive timestamps of stored documents that are
    due, stamp today's checkpoint and renew the ledger's evidence chains that are due. Exit 1 when a
    problem remains (see /readyz)."""
    from api._ltv import anchor_for, health, renew_round
    from api._services import build_services
    from core.db import migrate

    with cli_errors(as_json):
        settings = settings_for(home)
        migrate(settings.effective_database_url)  # as `yizhang serve` does: the column the round needs
        services = build_services(settings)
        try:
            within = timedelta(days=due_within) if due_within is not None else None
            result = renew_round(services, due_within=within, limit=limit)
            out = {"round": result.to_dict(), "health": health(services).to_dict()}
            if services.ledger is not None and services.ledger.signer is not None:
                # the ledger's evidence chains: today's checkpoint stamp, renewals due (issue 19 item 4b)
                out["evidence"] = anchor_for(services).run_round().to_dict()
                out["health"] = health(services).to_dict()
        finally:
            services.close()
    emit(out, as_json, _human)
    if out["health"]["problems"] or out["round"]["failed"] or (out.get("evidence") or {}).get("failed"):
        raise typer.Exit(1)
