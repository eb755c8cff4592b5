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
    with migrate.sqlalchemy_connection(store.conn) as conn:
        insp = sa.inspect(conn)
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
    with migrate.sqlalchemy_connection(store.conn) as conn:
        command.downgrade(migrate.alembic_config(conn), "base")
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
        with pytest.raises(sqlite3.OperationalError):
            conn.exec_driver_sql("INSERT INTO settings (key, value) VALUES ('a', 'b')")
    raw = sqlite3.connect(session.db_path(tmp_path))
    assert raw.execute("SELECT count(*) FROM settings").fetchone() == (0,)
    raw.close()


def test_sqlalchemy_wrapper_leaves_the_adapter_in_autocommit(store):
    """Migrating through SQLAlchemy on the adapter's connection must hand it back in autocommit:
    otherwise sqlite3 would open implicit transactions nobody commits (and the next BEGIN fails)."""
    migrate.upgrade(store.conn)
    assert store.conn.dbapi.isolation_level is None
    store.conn.exec_driver_sql("INSERT INTO settings (key, value) VALUES ('a', 'b')")
    assert not store.conn.dbapi.in_transaction
    with store.write() as conn:
        conn.exec_driver_sql("UPDATE settings SET value = 'c' WHERE key = 'a'")
    raw = sqlite3.connect(session.db_path(store.engine.path.parent))
    assert raw.execute("SELECT value FROM settings").fetchall() == [("c",)]
    raw.close()


def test_rows_behave_like_sqlalchemy_rows(store):
    migrate.upgrade(store.conn)
    conn = store.conn
    conn.exec_driver_sql("INSERT INTO settings (key, value) VALUES (?, ?)", ("k", "v"))
    row = conn.exec_driver_sql("SELECT key, value, 7 AS n FROM settings").first()
    assert row == ("k", "v", 7) and row[1] == "v" and row.value == "v" and row.n == 7
    assert dict(row._mapping) == {"key": "k", "value": "v", "n": 7}
    with pytest.raises(AttributeError):
        row.missing
    assert [tuple(r) for r in conn.exec_driver_sql("SELECT key FROM settings")] == [("k",)]
    assert conn.exec_driver_sql("SELECT count(*) FROM settings").scalar() == 1
    assert conn.exec_driver_sql("SELECT key FROM settings WHERE key = 'none'").first() is None
    assert conn.exec_driver_sql("UPDATE settings SET value = 'w'").rowcount == 1
    # first() finishes the statement: no read snapshot stays open behind the caller's back
    # (an open one would keep another connection's checkpoint from resetting the WAL: busy = 1).
    conn.exec_driver_sql("INSERT INTO settings (key, value) VALUES ('k2', 'v2')")
    kept = conn.exec_driver_sql("SELECT key FROM settings")
    assert kept.first() == ("k",)
    other = sqlite3.connect(session.db_path(store.engine.path.parent), isolation_level=None, timeout=0)
    try:
        other.execute("INSERT INTO settings (key, value) VALUES ('k3', 'v3')")
        assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    finally:
        other.close()
