"""Database wiring: one declarative ``Base``, engines for SQLite and PostgreSQL, migrations by Alembic.

Each package keeps its ORM tables in its own private storage module and registers them on :data:`Base`.
The schema is only ever made by :func:`migrate` (Alembic), as in production.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Engine, MetaData, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.sql import ClauseElement, Executable

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def is_sqlite(url_or_engine: str | Engine) -> bool:
    if isinstance(url_or_engine, Engine):  # asked on hot paths: the dialect's name, not the URL made text
        return url_or_engine.dialect.name == "sqlite"
    return url_or_engine.startswith("sqlite")


def _owner_only(path: Path) -> None:
    """Take group and other bits off a file of ours that exists (another owner's file, or none: left)."""
    try:
        st = path.stat()
        if path.is_file() and st.st_uid == os.geteuid() and st.st_mode & 0o077:
            os.chmod(path, st.st_mode & 0o700)
    except OSError:
        pass  # a read-only mount: the operator's choice


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine with the pragmas the embedded default needs (WAL, FKs, a busy timeout)."""
    if is_sqlite(url):
        path = url.removeprefix("sqlite:///").split("?", 1)[0]
        private: Path | None = None
        if url.startswith("sqlite:///") and path != ":memory:" and not path.startswith("file:"):
            private = Path(path)
            if not private.parent.exists():
                private.parent.mkdir(parents=True, mode=0o700)
            # Applicant names, ID numbers and webhook secrets live here: the owner's alone, whatever the
            # umask (issue 21: the file was created 0644). Made before SQLite opens it, so it never is not.
            try:
                os.close(os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                _owner_only(private)
        # hide_parameters: a failed statement's values (applicant names, ID numbers) never reach an
        # exception message or a log line.
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
            # Autocommit at the driver level: SQLAlchemy emits BEGIN itself (below), so a write
            # transaction can take the database lock up front with BEGIN IMMEDIATE.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            if private is not None:  # the WAL and shared-memory files appear with the first connection
                for suffix in ("", "-wal", "-shm"):
                    _owner_only(Path(f"{private}{suffix}"))

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Writers serialise at BEGIN, never half-way through (no SQLITE_BUSY upgrade deadlocks).
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True)
    _ping_when_idle(engine)
    return engine


#: A pooled connection idle longer than this is pinged before it is handed out (seconds).
PING_AFTER_IDLE_S = 2.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, but only for connections that sat idle a while.

    ``pool_pre_ping`` costs one round trip per checkout, and a signing checks out a connection a dozen
    times within a few milliseconds. A connection returned to the pool less than ``PING_AFTER_IDLE_S`` ago
    is handed out as it is: if the server went away in that window, the statement fails, the request gets
    503 ``DATABASE_UNAVAILABLE`` (:func:`database_unavailable`) and SQLAlchemy invalidates the pool, so
    the next checkouts connect afresh. An older one is pinged first and silently replaced if dead.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(
        dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SELECT 1")
            finally:
                cur.close()
            dbapi_conn.rollback()
        except Exception as exc:  # noqa: BLE001 - any failure: the pool discards it and connects anew
            raise sa_exc.DisconnectionError("pooled connection is dead") from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


#: Database errors that mean "not reachable right now" rather than "this request is wrong": the connection
#: was refused or dropped (server restarting), the server is shutting down, SQLite is busy or locked, a
#: connection was already closed, or no pooled connection came free in time. The API answers them with
#: 503 DATABASE_UNAVAILABLE; a signing that meets one rolls back whole (its number draw included).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
)


def database_unavailable(exc: BaseException | None) -> bool:
    """True when ``exc`` or an exception it was raised from is one of :data:`UNAVAILABLE_ERRORS` or a
    DBAPI error that invalidated its connection."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, UNAVAILABLE_ERRORS):
            return True
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextmanager
def transaction(engine_or_factory: Engine | sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    factory = (
        session_factory(engine_or_factory) if isinstance(engine_or_factory, Engine) else engine_or_factory
    )
    with factory() as session, session.begin():
        yield session


@contextmanager
def reading(engine_or_factory: Engine | sessionmaker[Session]) -> Iterator[Session]:
    """A read-only unit of work on a hot path: no BEGIN/COMMIT round trips on PostgreSQL.

    Each statement sees the database as of its own start (autocommit), so use it only where the reads
    need no common snapshot: one row by key, or rows of immutable revisions read by revision number.
    Writing through it is a mistake (nothing would be atomic). On SQLite it is :func:`transaction`.
    """
    engine = engine_or_factory if isinstance(engine_or_factory, Engine) else engine_or_factory.kw["bind"]
    if is_sqlite(engine):
        with transaction(engine_or_factory) as session:
            yield session
        return
    with reading_connection(engine) as conn, Session(bind=conn, expire_on_commit=False) as session:
        yield session


@contextmanager
def reading_connection(engine: Engine) -> Iterator[Connection]:
    """:func:`reading` for Core statements: a Connection, not an ORM Session, on the same terms.

    For the hottest reads (a statement built once with :func:`sqlalchemy.bindparam`, its rows read as
    they are): the Session's identity map and unit of work cost more CPU than the round trip. On PostgreSQL
    each statement autocommits; on SQLite the connection holds one transaction (``BEGIN IMMEDIATE``, as
    :func:`transaction`), committed at the end.
    """
    with _each_statement_committed(engine) as conn:
        yield conn


#: A statement built once (its bind parameters named: :func:`sqlalchemy.bindparam`) and the values of one
#: execution. Built once, its cache key is computed once (SQLAlchemy memoizes it on the object), where a
#: statement built per call with ``.values(...)`` pays for building and for walking its whole tree each time.
BoundStatement = tuple[Executable, Mapping[str, object]]


def execute_alone(engine: Engine, statement: Executable, params: Mapping[str, object] | None = None) -> None:
    """Run one write that is a unit of work by itself (a single statement, data-modifying CTEs included).

    On PostgreSQL in autocommit: a statement is atomic on its own, and the BEGIN and COMMIT round trips a
    transaction adds are spared. On SQLite between ``BEGIN IMMEDIATE`` and COMMIT, as :func:`transaction`.
    An error is raised as SQLAlchemy's (``IntegrityError``, ...), and nothing of the statement is written.
    """
    with _each_statement_committed(engine) as conn:
        conn.execute(statement, params)


@contextmanager
def _each_statement_committed(engine: Engine) -> Iterator[Connection]:
    """A pooled connection of ``engine`` whose statements need no BEGIN/COMMIT round trips: autocommit on
    PostgreSQL; on SQLite one transaction (``BEGIN IMMEDIATE``), committed at the end."""
    if is_sqlite(engine):
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def fetch_in_one_round_trip(
    session: Session, statements: Sequence[BoundStatement]
) -> list[list[tuple[Any, ...]]] | None:
    """Run ``statements`` (each with its named bind values) in ``session``'s transaction in one round
    trip and return each one's rows (PostgreSQL, psycopg's pipeline mode); None where that is not possible
    (SQLite, another driver): the caller then runs them one by one.

    The server still runs them in order, each with a snapshot taken when it starts: a statement that
    follows one waiting on a row lock sees what was committed while it waited. For a transaction that holds
    a hot lock: the statements after the one that takes it cost no further round trip, and no wait for
    this thread to be scheduled again (behind the GIL) while everyone queued on the lock waits too. Each
    statement is compiled once per dialect (its bind parameters named, :func:`sqlalchemy.bindparam`).
    An error is raised as SQLAlchemy's, as in :func:`execute_and_commit`.
    """
    found = _pipelining(session)
    if found is None:
        return None
    connection, raw = found
    sql = [_compiled(statement, connection.dialect) for statement, _ in statements]
    with _as_sqlalchemy_error(raw, sql[0]):
        with raw.pipeline():
            cursors = []
            for text_, (_, values) in zip(sql, statements, strict=True):
                cursor = raw.cursor()
                cursor.execute(text_, dict(values))
                cursors.append(cursor)
        return [[tuple(row) for row in cursor.fetchall()] for cursor in cursors]


def _pipelining(session: Session) -> tuple[Connection, Any] | None:
    """``session``'s connection and its psycopg connection, when it can pipeline (PostgreSQL, psycopg)."""
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    if connection.dialect.name != "postgresql" or raw is None or getattr(raw, "pipeline", None) is None:
        return None
    return connection, raw


@contextmanager
def _as_sqlalchemy_error(raw: Any, statement: object) -> Iterator[None]:
    """psycopg's errors out of a pipeline raised as SQLAlchemy's (``IntegrityError``, ...), as
    ``session.execute`` raises them. ``statement`` is made text only then (compiling it costs)."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise sa_exc.DBAPIError.instance(
            str(statement), None, exc, psycopg.Error, connection_invalidated=raw.closed
        ) from exc


# statement (kept, so that its id is not reused) and its SQL, per statement object and dialect
_COMPILED: dict[tuple[int, str], tuple[Executable, str]] = {}


def _compiled(statement: Executable, dialect: Any) -> str:
    key = (id(statement), dialect.name)
    found = _COMPILED.get(key)
    if found is None:
        found = _COMPILED[key] = (statement, str(cast(ClauseElement, statement).compile(dialect=dialect)))
    return found[1]


def execute_and_commit(session: Session, *statements: Executable | BoundStatement) -> bool:
    """Run the last writes of ``session``'s transaction and its COMMIT in one round trip (PostgreSQL).

    For a transaction that holds a hot row lock until it ends: sent apart, the COMMIT waits for this
    thread to be scheduled again (behind the GIL, among CPU-bound signings) while everyone queued on the
    lock waits too. psycopg's pipeline mode sends them all and reads every answer at once, so the lock is
    released as soon as the server has committed. Each of ``statements`` is a statement or a
    :data:`BoundStatement`, and reads nothing back: no RETURNING (an INSERT into a table whose key the
    database generates is ``.inline()``, or SQLAlchemy asks for the key). Nothing may be written in the
    session after it (the transaction is over; the session's own commit then finds nothing to do). An
    error of any is raised as SQLAlchemy's (``IntegrityError``, ``OperationalError``, ...): the server has
    then aborted the transaction, nothing of it is committed, and the caller rolls back as usual.

    Returns False, having only executed the statements, where that is not possible (SQLite, another
    driver): the caller's commit then ends the transaction.
    """
    found = _pipelining(session)
    if found is None:
        for statement in statements:
            _execute(session, statement)
        return False
    _, raw = found
    first = statements[0]
    with _as_sqlalchemy_error(raw, first[0] if isinstance(first, tuple) else first), raw.pipeline():
        for statement in statements:
            _execute(session, statement)
        raw.commit()
    return True


def _execute(session: Session, statement: Executable | BoundStatement) -> None:
    if isinstance(statement, tuple):
        session.execute(statement[0], dict(statement[1]))
    else:
        session.execute(statement)


def migrate(url_or_engine: str | Engine, revision: str = "heads") -> None:
    """Bring the schema to ``revision`` with Alembic (every package's branch by default)."""
    from alembic import command
    from alembic.config import Config

    import migrations

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if isinstance(url_or_engine, Engine):
        with url_or_engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    else:
        engine = make_engine(url_or_engine)
        try:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        finally:
            engine.dispose()
