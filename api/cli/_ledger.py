"""``yizhang ledger ...``: audit, checkpoints, receipts, offline checks, export, the usage ledger (台账).

The auditor's commands (audit, export, usage, verify-*) only read: point ``--database-url`` (or
``YIZHANG_DATABASE_URL``) at a SELECT-only role (docs/ledger-format.md shows how) and they work unchanged.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api._json import JsonObject
from api.cli._common import (
    HomeOpt,
    JsonOpt,
    beijing_iso,
    cli_errors,
    emit,
    forward_journal,
    settings_for,
    token_log_signer,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ledger import Ledger, NoteSigner, NoteVerifier

DbOpt = Annotated[
    str | None,
    typer.Option("--database-url", help="database URL (default: the home's); a read-only role is enough"),
]
VkeyOpt = Annotated[
    str | None,
    typer.Option(
        "--vkey", help="the log's verifier key, or a file holding it (default HOME/ledger/log.vkey)"
    ),
]


@contextmanager
def _db_errors() -> Iterator[None]:
    """A database that is missing, locked or read-only is reported, never a stack trace."""
    from sqlalchemy.exc import SQLAlchemyError

    from core.errors import Unavailable

    try:
        yield
    except SQLAlchemyError as exc:
        raise Unavailable(
            "LEDGER_DATABASE_UNAVAILABLE",
            f"the ledger database cannot be used: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
            "台账数据库不可用",
        ) from exc


def _verifiers(vkey: str | None, home: Path | None) -> list[NoteVerifier]:
    from core.errors import BadInput
    from ledger import NoteVerifier, vkey_path

    text = vkey
    if text is None:
        path = vkey_path(settings_for(home))
        if not path.exists():
            raise BadInput(
                "LEDGER_VKEY_MISSING",
                f"no verifier key: pass --vkey or publish {path} (yizhang ledger checkpoint does)",
                "缺少日志验证公钥",
            )
        text = path.read_text(encoding="utf-8")
    elif Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8")
    return [NoteVerifier.from_vkey(line) for line in text.splitlines() if line.strip()]


def _signer(home: Path | None) -> NoteSigner:
    from core.errors import BadInput
    from ledger import key_file_signer

    settings = settings_for(home)
    if settings.log_key_source.startswith("file"):
        return key_file_signer(settings)
    if settings.log_key_source == "token":
        return token_log_signer(settings)
    raise BadInput(
        "LOG_KEY_SOURCE_INVALID",
        "log_key_source must be token or file:/path",
        "日志密钥来源须为 token 或 file:路径",
    )


def _ledger(home: Path | None, database_url: str | None, *, sign: bool, vkey: str | None = None) -> Ledger:
    from core.db import make_engine, migrate
    from ledger import Ledger, origin_for

    settings = settings_for(home)
    url = database_url or settings.effective_database_url
    if sign:
        engine = make_engine(url)
        migrate(engine)
        return Ledger(engine, _signer(home))
    return Ledger(_read_engine(url), None, origin=origin_for(settings), verifiers=_verifiers(vkey, home))


def _read_engine(url: str) -> Engine:
    """The auditor's engine: no migration, no write lock; SQLite URIs (``file:…?mode=ro``) as given."""
    from sqlalchemy import create_engine

    from core.db import make_engine

    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 30})
    return make_engine(url)


def register(app: typer.Typer) -> None:
    ledger_app = typer.Typer(
        help="the signing ledger (使用登记台账): audit, checkpoints, proofs", no_args_is_help=True
    )

    @ledger_app.command("audit")
    def audit(
        from_index: Annotated[
            int, typer.Option("--from", help="start at this index (trusting stored nodes)")
        ] = 0,
        deep: Annotated[bool, typer.Option("--deep", help="also decode every entry canonically")] = False,
        vkey: VkeyOpt = None,
        database_url: DbOpt = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Recompute chain and tree, check every checkpoint; exit 0 only when all is well."""
        with cli_errors(as_json), _db_errors():
            report = _ledger(home, database_url, sign=False, vkey=vkey).audit(from_index, deep=deep)
        out = report.to_dict()
        if as_json:
            emit(out, True)
        else:
            typer.echo(f"ok: {report.ok}  size: {report.size}  root: {report.root}")
            for p in report.problems:
                typer.echo(f"  {p.code} at {p.index}: {p.message}")
        raise typer.Exit(0 if report.ok else 1)

    @ledger_app.command("checkpoint")
    def checkpoint(database_url: DbOpt = None, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
        """Sign the current tree head (C2SP tlog-checkpoint) unless the last checkpoint already is it."""
        with cli_errors(as_json), _db_errors():
            if database_url is None:
                # seal lifecycle and powers/agreement changes first, so the checkpoint covers them
                forward_journal(settings_for(home))
            cp = _ledger(home, database_url, sign=True).checkpoint()
        if as_json:
            emit({"origin": cp.origin, "size": cp.size, "root": cp.root.hex(), "note": cp.note}, True)
        else:
            typer.echo(cp.note, nl=False)

    @ledger_app.command("status-list")
    def status_list(
        force: Annotated[
            bool, typer.Option("--force/--if-due", help="sign even when the published list is current")
        ] = True,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Sign and publish the decision status list (HOME/pki/status.note, served at /pki/status) from the
        records, with the log key. For deployments without ``yizhang serve`` (cron, daily) and by hand."""
        from api._status_list import publish_status_list
        from core.db import make_engine

        with cli_errors(as_json), _db_errors():
            settings = settings_for(home)
            engine = make_engine(settings.effective_database_url)
            try:
                done = publish_status_list(settings, engine, _signer(home), force=force)
            finally:
                engine.dispose()
        out = {
            "path": str(done.path),
            "this_update": beijing_iso(done.this_update),
            "next_update": beijing_iso(done.next_update),
            "entries": done.entries,
            "signed": done.changed,
        }
        if as_json:
            emit(out, True)
        else:
            typer.echo("  ".join(f"{k}={v}" for k, v in out.items()))

    @ledger_app.command("proof")
    def proof(
        index: Annotated[int, typer.Option("--index", help="entry index")],
        out: Annotated[Path | None, typer.Option("--out", help="write the .tlog-proof here")] = None,
        evidence: Annotated[
            bool,
            typer.Option(
                "--evidence",
                help="the evidence record (yizhang-evidence-record/1, JSON) that proves an untouched "
                "original after its certificates expired",
            ),
        ] = False,
        database_url: DbOpt = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """A receipt (C2SP tlog-proof) for one entry against the latest checkpoint; with ``--evidence``
        its evidence record (also ``yizhang ledger receipt``)."""
        if evidence:
            from signer import evidence_record_text

            with cli_errors(as_json), _db_errors():
                record = evidence_record_text(_ledger(home, database_url, sign=False), index)
            if out is not None:
                out.write_text(record, encoding="utf-8")
                typer.echo(f"wrote {out}", err=as_json)
            if as_json or out is None:
                typer.echo(record, nl=False)
            return
        with cli_errors(as_json), _db_errors():
            receipt = _ledger(home, database_url, sign=True).receipt(index)
        text = receipt.to_text()
        if out is not None:
            out.write_text(text, encoding="utf-8")
        if as_json:
            emit(
                {
                    "index": receipt.index,
                    "leaf_hash": receipt.leaf_hash.hex(),
                    "proof": [base64.b64encode(h).decode() for h in receipt.proof],
                    "checkpoint": receipt.checkpoint.note,
                    "tree_size": receipt.checkpoint.size,
                    "tlog_proof": text,
                },
                True,
            )
        elif out is None:
            typer.echo(text, nl=False)
        else:
            typer.echo(f"wrote {out}")

    ledger_app.command("receipt", help="the same as `ledger proof`")(proof)

    @ledger_app.command("verify-proof")
    def verify_proof(
        file: Annotated[Path, typer.Argument(help=".tlog-proof file ('-' for stdin)")],
        vkey: VkeyOpt = None,
        origin: Annotated[str | None, typer.Option("--origin", help="the log origin to insist on")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Check a receipt offline with the county's public log key: no database, no token."""
        from core.errors import BadInput
        from ledger import LedgerEntry, verify_receipt

        with cli_errors(as_json), _db_errors():
            try:
                text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise BadInput("LEDGER_PROOF_UNREADABLE", f"cannot read {file}") from exc
            receipt = verify_receipt(text, _verifiers(vkey, home), origin)
            try:
                entry: JsonObject | None = LedgerEntry.from_encoded(receipt.entry, "").body
            except ValueError:
                entry = None
        emit(
            {
                "ok": True,
                "index": receipt.index,
                "leaf_hash": receipt.leaf_hash.hex(),
                "origin": receipt.checkpoint.origin,
                "tree_size": receipt.checkpoint.size,
                "root": receipt.checkpoint.root.hex(),
                "entry": entry,
            },
            as_json,
        )

    @ledger_app.command("export")
    def export(
        out: Annotated[Path | None, typer.Option("--out", help="directory to write")] = None,
        directory: Annotated[
            Path | None,
            typer.Argument(help="deprecated: the directory as an argument; use --out", show_default=False),
        ] = None,
        vkey: VkeyOpt = None,
        database_url: DbOpt = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Entries, checkpoints and the public key as files in ``--out DIR``; check them with
        `ledger verify-export`. (The directory as a positional argument still works, as before.)"""
        from core.errors import BadInput
        from ledger import export_ledger

        with cli_errors(as_json), _db_errors():
            if out is None and directory is None:
                raise BadInput("ARGUMENTS_MISSING", "give --out DIR", "缺少 --out 目录")
            if out is not None and directory is not None and out != directory:
                raise BadInput(
                    "ARGUMENTS_CONFLICT", "--out and the directory argument differ", "--out 与目录参数不一致"
                )
            target = out if out is not None else directory
            assert target is not None
            result = export_ledger(_ledger(home, database_url, sign=False, vkey=vkey), target)
        emit(result, as_json)

    @ledger_app.command("verify-export")
    def verify_export_cmd(
        directory: Annotated[Path, typer.Argument(help="an export directory")],
        vkey: VkeyOpt = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Check an export offline (chain, tree, signed checkpoints) with the county's public log key."""
        from ledger import verify_export

        with cli_errors(as_json), _db_errors():
            report = verify_export(directory, _verifiers(vkey, home))
        emit(report.to_dict(), as_json)
        raise typer.Exit(0 if report.ok else 1)

    @ledger_app.command("usage")
    def usage(
        seal: Annotated[str, typer.Option("--seal", help="seal id")],
        month: Annotated[str, typer.Option("--month", help="YYYY-MM (China Standard Time)")],
        database_url: DbOpt = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """The usage ledger (使用登记台账) of one seal for one month."""
        from ledger import Ledger, origin_for

        with cli_errors(as_json), _db_errors():
            settings = settings_for(home)
            engine = _read_engine(database_url or settings.effective_database_url)
            rows = Ledger(engine, None, origin=origin_for(settings)).usage(seal, month)
        if as_json:
            emit(rows, True)
            return
        typer.echo(
            "日期 date | 事项 matter | 事由 reason | 批准人 approver | 使用人 user | 数量 count"
            " | 证书编号 cert | 文号 number"
        )
        for r in rows:
            typer.echo(
                f"{r.date} | {r.matter} | {r.reason} | {r.approver} | {r.user} | {r.count} | "
                f"{r.cert_serial} | {r.document_number}"
            )

    @ledger_app.command("vkey")
    def vkey_cmd(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
        """Print (and publish to HOME/ledger/log.vkey) the log's verifier key."""
        from ledger import NoteVerifier

        with cli_errors(as_json), _db_errors():
            v = NoteVerifier.for_signer(_signer(home))
        emit({"vkey": v.vkey, "name": v.name, "key_id": v.key_id.hex()}, as_json, human=lambda d: d["vkey"])

    app.add_typer(ledger_app, name="ledger")
