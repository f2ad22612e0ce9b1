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
