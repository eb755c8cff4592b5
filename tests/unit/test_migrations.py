"""Schema only through Alembic: an empty database upgrades to head and matches the models exactly."""

import sqlite3

import pytest
import sqlalchemy as sa

from cnet.db import migrate, schema, session


@pytest.fixture
def store(tmp_path):
    session.ensure_state_dir(tmp_path)
    st = session.Store(session.make_engine(tmp_path))
    yield st
    st.close()


def tables(conn) -> set[str]:
    return {
        r[0]
        for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }


def views(conn) -> set[str]:
    return {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'view'")}


def test_upgrade_head_has_no_drift(store):
    assert migrate.current_revision(store.conn) is None
    migrate.upgrade(store.conn)
    assert migrate.current_revision(store.conn) == migrate.HEAD_REVISION
    assert migrate.check(store.conn) == []
    assert tables(store.conn) == set(schema.metadata.tables) | {"alembic_version"}


def test_check_detects_drift(store):
    migrate.upgrade(store.conn)
    store.conn.exec_driver_sql("ALTER TABLE networks ADD COLUMN stray INTEGER")
    diffs = migrate.check(store.conn)
    assert diffs and any("stray" in d for d in diffs)


def test_head_revision_matches_alembic_script_head():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_heads() == [migrate.HEAD_REVISION]


def test_every_table_and_column_has_a_comment():
    for table in schema.metadata.tables.values():
        assert table.comment, f"table {table.name} has no comment"
        for col in table.columns:
            assert col.comment and col.comment.strip(), f"column {table.name}.{col.name} has no comment"


def test_migrated_columns_match_models(store):
    migrate.upgrade(store.conn)
    insp = sa.inspect(store.conn)
    for name, table in schema.metadata.tables.items():
        assert [c["name"] for c in insp.get_columns(name)] == list(table.columns.keys())


def test_views_exist_and_run(store):
    migrate.upgrade(store.conn)
    assert views(store.conn) == set(schema.VIEWS)
    for name in schema.VIEWS:
        store.conn.exec_driver_sql(f"SELECT * FROM {name}").fetchall()


def test_migrated_views_match_schema_views(store):
    """Views are not compared by `alembic check`: the migrated SQL must equal cnet.db.schema.VIEWS
    (the docs and tests use those), so a changed view needs its own migration."""
    migrate.upgrade(store.conn)
    got = dict(store.conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'view'").fetchall())
    assert got == {name: f"CREATE VIEW {name} AS {sql}" for name, sql in schema.VIEWS.items()}


def test_downgrade_to_base_and_upgrade_again(store):
    from alembic import command

    migrate.upgrade(store.conn)
    command.downgrade(migrate.alembic_config(store.conn), "base")
    assert tables(store.conn) <= {"alembic_version"}
    assert views(store.conn) == set()
    assert migrate.current_revision(store.conn) is None
    migrate.upgrade(store.conn)
    assert migrate.current_revision(store.conn) == migrate.HEAD_REVISION
    assert migrate.check(store.conn) == []
    assert views(store.conn) == set(schema.VIEWS)


def test_ensure_current_runs_once(store):
    assert migrate.ensure_current(store.conn) is True
    assert migrate.ensure_current(store.conn) is False


def test_state_files_are_private(tmp_path):
    d = tmp_path / "state"
    session.ensure_state_dir(d)
    st = session.Store(session.make_engine(d))
    try:
        migrate.ensure_current(st.conn)
    finally:
        st.close()
    assert (d.stat().st_mode & 0o777) == 0o700
    assert (session.db_path(d).stat().st_mode & 0o777) == 0o600


def test_pragmas(store):
    assert store.conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert store.conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert store.conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == session.BUSY_TIMEOUT_MS


def test_readonly_engine_refuses_writes(tmp_path):
    session.ensure_state_dir(tmp_path)
    st = session.Store(session.make_engine(tmp_path))
    migrate.upgrade(st.conn)
    st.close()
    ro = session.make_readonly_engine(tmp_path)
    with ro.connect() as conn:
        with pytest.raises(sa.exc.OperationalError):
            conn.exec_driver_sql("INSERT INTO settings (key, value) VALUES ('a', 'b')")
    raw = sqlite3.connect(session.db_path(tmp_path))
    assert raw.execute("SELECT count(*) FROM settings").fetchone() == (0,)
    raw.close()
