"""``yizhang backup`` and ``yizhang restore``: a consistent copy of a home, and a new home made from one.

A command rather than a shell script: it reads the home's settings the way the service does (the database
URL, SQLite or PostgreSQL; whether the token is the embedded SoftHSM one), it ships with the program (a county
that installed the package has no ``scripts/``), and its refusals carry stable codes like every other command.

Backup, in this order (so the copy never names a key its token copy lacks: a key made between the two steps
is at worst an unused extra key in the token copy):

1. the database: SQLite through its online backup API (a consistent snapshot while the service runs), or
   ``pg_dump -Fc`` for PostgreSQL (connection details in libpq's variables, never on its command line);
2. the rest of the home as files: the SoftHSM token directory (its key objects are encrypted under the user
   PIN: keys never leave the token in clear), ``secrets/`` (the PINs: the backup holds the token *and* its
   PIN, so keep it encrypted at rest), ``pki/``, ``ledger/``, ``trust/``, sealed files; not lock files;
3. ``manifest.json``: what was copied, each file's SHA-256, the ledger's size and chain head at the copy.

Restore checks every file against the manifest, builds the new home beside its destination and renames it
into place (nothing half-written), loads the database (SQLite: ``HOME/yizhang.db``; PostgreSQL: an empty
database named by ``--database-url``), and points the home's ``softhsm2.conf`` at its own token directory.
Neither command overwrites anything: an existing backup folder or a non-empty home is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import typer

from api._json import JsonObject
from api.cli._common import HomeOpt, JsonOpt, cli_errors, emit, settings_for
from core.errors import BadInput, Conflict, SealServiceError
from core.settings import Settings, load_settings

FORMAT = "yizhang-backup/1"
MANIFEST = "manifest.json"
HOME_DIR = "home"
SQLITE_FILE = "database.sqlite"
PG_DUMP_FILE = "database.dump"
#: Never copied: locks (held by a running service) and the live SQLite files (copied by the backup API).
SKIPPED_SUFFIXES = (".lock", "-wal", "-shm", "-journal")
SHANGHAI = ZoneInfo("Asia/Shanghai")


class BackupError(SealServiceError):
    family = "backup"
    default_code = "BACKUP_FAILED"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sqlite_path(url: str) -> Path | None:
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            return Path(url.removeprefix(prefix))
    return None


def _libpq_env(url: str) -> dict[str, str]:
    """libpq's variables for a postgresql:// URL: pg_dump and pg_restore get no password on a command line."""
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise BadInput("DATABASE_URL_UNSUPPORTED", f"not a PostgreSQL database URL: {parts.scheme}://…")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGDATABASE"] = unquote(parts.path.lstrip("/"))
    for var, value in (
        ("PGHOST", parts.hostname),
        ("PGPORT", str(parts.port) if parts.port else None),
        ("PGUSER", unquote(parts.username) if parts.username else None),
        ("PGPASSWORD", unquote(parts.password) if parts.password else None),
    ):
        if value:
            env[var] = value
    return env


def _pg_tool(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=3600, check=False)
    except FileNotFoundError as exc:
        raise BackupError(
            "PG_TOOLS_MISSING", f"{args[0]} not found (Debian: postgresql-client)", f"找不到 {args[0]}"
        ) from exc
    if done.returncode != 0:
        raise BackupError(
            "DATABASE_COPY_FAILED",
            f"{what} failed: {done.stderr.strip()[-500:]}",
            f"{what} 失败",
        )


def _ledger_head(url: str) -> JsonObject | None:
    """The ledger's size and last entry hash, for the manifest (what a restored home starts from)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT size, last_hash FROM ledger_head")).first()
    except Exception:  # noqa: BLE001 - a home without a ledger yet: nothing to note
        return None
    finally:
        engine.dispose()
    if row is None:
        return None
    return {"size": int(row[0]), "last_hash": bytes(row[1]).hex()}


def _copy_home_files(home: Path, dest: Path, skip: set[Path]) -> None:
    for dirpath, dirnames, filenames in os.walk(home):
        rel_dir = Path(dirpath).relative_to(home)
        (dest / rel_dir).mkdir(mode=0o700, exist_ok=True)
        dirnames.sort()
        for name in sorted(filenames):
            src = Path(dirpath) / name
            if name.endswith(SKIPPED_SUFFIXES) or src.resolve() in skip or src.is_symlink():
                continue
            shutil.copy2(src, dest / rel_dir / name)


def backup_home(settings: Settings, dest: Path) -> JsonObject:
    home = settings.home_dir
    if not (home / "softhsm2.conf").exists() and not (home / "pki").is_dir():
        raise BadInput("HOME_NOT_INITIALISED", f"{home} is not a Yizhang home", f"{home} 不是一章部署目录")
    dest = dest.absolute()
    if dest.exists() or dest.is_symlink():
        raise Conflict(
            "BACKUP_DESTINATION_EXISTS",
            f"{dest} exists: a backup never overwrites",
            f"{dest} 已存在，备份不覆盖",
        )
    if dest == home or home in dest.parents:
        raise BadInput("BACKUP_INSIDE_HOME", "the backup must be outside the home", "备份不能放在部署目录内")
    url = settings.effective_database_url
    partial = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o700, parents=True)
    try:
        # 1. the database first (see the module's note on order)
        sqlite_src = _sqlite_path(url)
        skip: set[Path] = set()
        if sqlite_src is not None:
            src = sqlite3.connect(f"file:{sqlite_src}?mode=ro", uri=True)
            dst = sqlite3.connect(partial / SQLITE_FILE)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
            skip.add(sqlite_src.resolve())
            database = {"kind": "sqlite", "file": SQLITE_FILE}
        else:
            _pg_tool(
                ["pg_dump", "--format=custom", "--no-owner", "--file", str(partial / PG_DUMP_FILE)],
                _libpq_env(url),
                "pg_dump",
            )
            database = {"kind": "postgresql", "file": PG_DUMP_FILE}
        # 2. the home's files: token directory, secrets, pki, ledger, trust, sealed files
        _copy_home_files(home, partial / HOME_DIR, skip)
        files = {str(p.relative_to(partial)): _sha256(p) for p in sorted(partial.rglob("*")) if p.is_file()}
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(SHANGHAI).isoformat(timespec="seconds"),
            "source_home": str(home),
            "database": database,
            "token": "softhsm-files" if (home / "softhsm").is_dir() else "external-hsm",
            "ledger": _ledger_head(url),
            "files": files,
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True))
        partial.rename(dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return {
        "backup": str(dest),
        "database": database["kind"],
        "token": manifest["token"],
        "files": len(files),
        "ledger": manifest["ledger"],
    }


def _read_manifest(backup: Path) -> JsonObject:
    try:
        manifest = json.loads((backup / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput(
            "BACKUP_INVALID", f"{backup} has no readable {MANIFEST}", f"{backup} 不是备份"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadInput("BACKUP_INVALID", f"{backup} is not a {FORMAT} backup", f"{backup} 不是一章备份")
    for rel, digest in manifest["files"].items():
        path = backup / rel
        if ".." in Path(rel).parts or not path.is_file() or _sha256(path) != digest:
            raise BadInput(
                "BACKUP_CORRUPT",
                f"{rel} is missing or differs from the manifest",
                f"备份文件 {rel} 缺失或与清单不符",
                details={"file": rel},
            )
    return manifest


def _pg_is_empty(url: str) -> bool:
    import psycopg

    env = _libpq_env(url)
    with psycopg.connect(
        dbname=env["PGDATABASE"],
        host=env.get("PGHOST"),
        port=env.get("PGPORT"),
        user=env.get("PGUSER"),
        password=env.get("PGPASSWORD"),
        connect_timeout=10,
    ) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    return row is not None and int(row[0]) == 0


def restore_home(backup: Path, into: Path, database_url: str | None) -> JsonObject:
    manifest = _read_manifest(backup)
    into = into.absolute()
    if into.is_symlink() or (into.exists() and (not into.is_dir() or any(into.iterdir()))):
        raise Conflict(
            "RESTORE_TARGET_EXISTS", f"{into} exists and is not empty: a restore never overwrites",
            f"{into} 已存在且非空，恢复不覆盖",
        )  # fmt: skip
    kind = manifest["database"]["kind"]
    if kind == "postgresql":
        if not database_url:
            raise BadInput(
                "RESTORE_DATABASE_REQUIRED",
                "a PostgreSQL backup needs --database-url: a new, empty database",
                "PostgreSQL 备份需要 --database-url 指定一个新的空数据库",
            )
        if not _pg_is_empty(database_url):
            raise Conflict(
                "RESTORE_DATABASE_NOT_EMPTY", "the target database has tables: a restore never overwrites",
                "目标数据库已有数据表，恢复不覆盖",
            )  # fmt: skip
    elif database_url:
        raise BadInput("RESTORE_DATABASE_UNUSED", "a SQLite backup is restored into HOME/yizhang.db")
    partial = into.with_name(f".{into.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    into.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(backup / HOME_DIR, partial, copy_function=shutil.copy2)
        for dirpath, _, filenames in os.walk(partial):
            os.chmod(dirpath, 0o700)
            for name in filenames:
                os.chmod(Path(dirpath) / name, 0o600)
        if kind == "sqlite":
            shutil.copy2(backup / manifest["database"]["file"], partial / "yizhang.db")
            os.chmod(partial / "yizhang.db", 0o600)
        if into.exists():
            into.rmdir()  # empty (checked above)
        partial.rename(into)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if kind == "postgresql":
        assert database_url is not None
        pg_env = _libpq_env(database_url)  # the database's name on the command line, never a password
        try:
            _pg_tool(
                ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                 "--dbname", pg_env["PGDATABASE"], str(backup / manifest["database"]["file"])],
                pg_env, "pg_restore",
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(into, ignore_errors=True)  # the home is only usable with its database
            raise
    settings = load_settings(into)
    if settings.softhsm_conf.exists():
        from keystore import home_softhsm_conf

        home_softhsm_conf(settings)  # this home's own token directory, before anything opens it
    return {
        "home": str(into),
        "database": kind,
        "database_url": database_url or f"sqlite:///{into / 'yizhang.db'}",
        "token": manifest["token"],
        "backup_created_at": manifest["created_at"],
        "ledger": manifest["ledger"],
    }


def register(app: typer.Typer) -> None:
    @app.command("backup")
    def backup(
        dest: Annotated[Path, typer.Argument(help="a new folder for the backup (refused if it exists)")],
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Back up a home: the database (SQLite online backup or pg_dump), then the token directory, PINs,
        CA files, ledger key and sealed files, with a manifest of checksums. Keep it encrypted at rest."""
        with cli_errors(as_json):
            out = backup_home(settings_for(home), dest)
            emit(out, as_json)

    @app.command("restore")
    def restore(
        backup_dir: Annotated[Path, typer.Argument(help="a folder made by `yizhang backup`")],
        into: Annotated[
            Path, typer.Option("--into", help="the new home: a path that does not exist or is empty")
        ],
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", help="PostgreSQL backups: a new, empty database to load"),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Make a new home from a backup: files checked against the manifest, database loaded, the
        token configuration pointed at the new home's own token. Never overwrites."""
        with cli_errors(as_json):
            out = restore_home(backup_dir, into, database_url)
            emit(out, as_json)
