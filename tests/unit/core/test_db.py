from sqlalchemy import inspect, text

from core.db import make_engine


def test_migrations_create_schema(engine) -> None:
    names = set(inspect(engine).get_table_names())
    assert {"deployment", "alembic_version"} <= names
    with engine.connect() as conn:
        heads = {r[0] for r in conn.execute(text("select version_num from alembic_version"))}
    assert "0001_base" in heads or heads  # every branch head recorded


def test_migrate_twice_is_harmless(db_url: str) -> None:
    from core.db import migrate

    migrate(db_url)
    eng = make_engine(db_url)
    try:
        assert "deployment" in inspect(eng).get_table_names()
    finally:
        eng.dispose()


def test_failed_statement_does_not_echo_its_parameters(engine) -> None:
    import pytest
    from sqlalchemy.exc import SQLAlchemyError

    with pytest.raises(SQLAlchemyError) as ei, engine.begin() as conn:
        conn.execute(text("insert into no_such_table (x) values (:v)"), {"v": "身份证号 110101199001011234"})
    assert "110101199001011234" not in str(ei.value)


def test_read_only_uri_makes_no_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    eng = make_engine(f"sqlite:///file:{tmp_path / 'x.db'}?mode=rwc&uri=true")
    eng.dispose()
    assert not (tmp_path / "file:").exists()


def test_dead_pooled_connection_replaced_after_idling_reported_when_fresh(pg_url, monkeypatch) -> None:
    """The server drops our connection (restart, idle kill): an idle one is pinged and replaced silently;
    one used again at once fails with an error the API answers 503, and the next checkout connects anew."""
    import psycopg
    import pytest
    from sqlalchemy.exc import SQLAlchemyError

    import core.db as db
    from core.db import database_unavailable, transaction

    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.2)
    eng = make_engine(pg_url, pool_size=1)
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://")

    def backend() -> int:
        with transaction(eng) as s:
            return int(s.execute(text("select pg_backend_pid()")).scalar_one())

    def kill(pid: int) -> None:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute("select pg_terminate_backend(%s)", (pid,))

    try:
        first = backend()
        kill(first)
        import time

        time.sleep(0.5)  # idle longer than PING_AFTER_IDLE_S: pinged, found dead, replaced
        second = backend()
        assert second != first
        kill(second)  # used again at once: not pinged, the statement fails
        with pytest.raises(SQLAlchemyError) as err:
            backend()
        assert database_unavailable(err.value)
        assert backend() not in (first, second)  # the pool was invalidated: a new connection
    finally:
        eng.dispose()
