"""``yizhang attest``: county attestation (书面认证) of a township's sealed PDF with a department's seal.

The same checks as ``POST /v1/attestations`` (:mod:`api._attest`): the file must verify TOTAL_PASSED with this
deployment's trust list and ledger, its decision must be in force, the seal must be a county department's own,
and that department must own or supervise the document's matter. Exit codes as every command: 0 attested;
2 bad input (unreadable file, unknown seal or number); 1 refused (not verified, decision not in force, seal or
department not allowed) or the token/TSA unavailable.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from api.cli._common import HomeOpt, JsonOpt, cli_errors, emit, settings_for
from core.errors import BadInput


def register(app: typer.Typer) -> None:
    @app.command("attest")
    def attest(
        file: Annotated[Path, typer.Argument(help="the sealed PDF to attest")],
        seal: Annotated[str, typer.Option("--seal", help="id of the department's own seal")],
        out: Annotated[Path, typer.Option("--out", help="where to write the attested PDF")],
        reason: Annotated[str, typer.Option("--reason", help="事由, e.g. 供外县办理")] = "",
        operator: Annotated[
            str | None,
            typer.Option("--operator", help="who attests, for the ledger (default: the login name)"),
        ] = None,
        key: Annotated[
            str | None,
            typer.Option("--idempotency-key", help="default: hash of seal, operator and file"),
        ] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Attest a sealed PDF (书面认证): verify it, then add the department's seal; same document number."""
        from api._attest import attest_document, to_summary
        from api._services import build_services
        from policies import Actor, Role

        with cli_errors(as_json):
            try:
                pdf = file.read_bytes()
            except OSError as exc:
                raise BadInput("FILE_UNREADABLE", f"cannot read {file}", f"无法读取 {file}") from exc
            if key is not None and not 8 <= len(key) <= 128:
                raise BadInput(
                    "IDEMPOTENCY_KEY_INVALID", "a key is 8-128 characters", "幂等键须为8-128个字符"
                )
            services = build_services(settings_for(home))
            try:
                the_seal = services.need_seal_registry().get(seal)
                actor = Actor(
                    user_id=operator or _login_name(),
                    role=Role.DEPARTMENT_OFFICER,
                    org_code=the_seal.department_code or the_seal.township_code,
                )
                done = attest_document(
                    services,
                    seal_id=seal,
                    unverified_pdf=pdf,
                    operator=actor,
                    department_code=None,
                    reason=reason,
                    idempotency_key=key,
                )
            finally:
                services.close()
                services.engine.dispose()
            try:
                out.write_bytes(done.pdf)
            except OSError as exc:
                raise BadInput("OUTPUT_UNWRITABLE", f"cannot write {out}", f"无法写入 {out}") from exc
            emit({**to_summary(done), "out": str(out)}, as_json)


def _login_name() -> str:
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli"
