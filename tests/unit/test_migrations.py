"""Schema only through Alembic: an empty database upgrades to head and matches the models exactly."""

import sqlite3

import pytest
import sqlalchemy as sa

from cnet.db import connection, migrate, schema
from cnet.errors import CnetError


@pytest.fixture
def store(tmp_path):
    connection.ensure_state_dir(tmp_path)
    conn = connection.open_state(tmp_path)
    yield conn
    conn.close()


def tables(conn) -> set[str]:
    return {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    }


def views(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}


def test_upgrade_head_has_no_drift(store):
    assert migrate.current_revision(store) is None
    migrate.upgrade(store)
    assert migrate.current_revision(store) == migrate.HEAD_REVISION
    assert migrate.check(store) == []
    assert tables(store) == set(schema.metadata.tables) | {"alembic_version"}


def test_check_detects_drift(store):
    migrate.upgrade(store)
    store.execute("ALTER TABLE networks ADD COLUMN stray INTEGER")
    diffs = migrate.check(store)
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
    migrate.upgrade(store)
    with migrate.SqlalchemyConnection(store) as conn:
        insp = sa.inspect(conn)
        for name, table in schema.metadata.tables.items():
            assert [c["name"] for c in insp.get_columns(name)] == list(table.columns.keys())


def test_views_exist_and_run(store):
    migrate.upgrade(store)
    assert views(store) == set(schema.VIEWS)
    for name in schema.VIEWS:
        store.all(f"SELECT * FROM {name}")


def test_migrated_views_match_schema_views(store):
    """Views are not compared by `alembic check`: the migrated SQL must equal cnet.db.schema.VIEWS
    (the docs and tests use those), so a changed view needs its own migration."""
    migrate.upgrade(store)
    got = {r["name"]: r["sql"] for r in store.all("SELECT name, sql FROM sqlite_master WHERE type = 'view'")}
    assert got == {name: f"CREATE VIEW {name} AS {sql}" for name, sql in schema.VIEWS.items()}


def test_downgrade_to_base_and_upgrade_again(store):
    from alembic import command

    migrate.upgrade(store)
    with migrate.SqlalchemyConnection(store) as conn:
        command.downgrade(migrate.alembic_config(conn), "base")
    assert tables(store) <= {"alembic_version"}
    assert views(store) == set()
    assert migrate.current_revision(store) is None
    migrate.upgrade(store)
    assert migrate.current_revision(store) == migrate.HEAD_REVISION
    assert migrate.check(store) == []
    assert views(store) == set(schema.VIEWS)


def test_ensure_current_runs_once(store):
    assert migrate.ensure_current(store) is True
    assert migrate.ensure_current(store) is False


def test_state_files_are_private(tmp_path):
    d = tmp_path / "state"
    connection.ensure_state_dir(d)
    with connection.open_state(d) as conn:
        migrate.ensure_current(conn)
    assert (d.stat().st_mode & 0o777) == 0o700
    assert (connection.db_path(d).stat().st_mode & 0o777) == 0o600


def test_pragmas(store):
    assert store.scalar("PRAGMA journal_mode") == "wal"
    assert store.scalar("PRAGMA foreign_keys") == 1
    assert store.scalar("PRAGMA busy_timeout") == connection.BUSY_TIMEOUT_MS


def test_readonly_connection_refuses_writes(tmp_path):
    connection.ensure_state_dir(tmp_path)
    with connection.open_state(tmp_path) as conn:
        migrate.upgrade(conn)
    with connection.open_readonly(tmp_path) as ro:
        assert ro.scalar("PRAGMA busy_timeout") == connection.BUSY_TIMEOUT_MS
        with pytest.raises(sqlite3.OperationalError):
            ro.execute("INSERT INTO settings (key, value) VALUES ('a', 'b')")
    raw = sqlite3.connect(connection.db_path(tmp_path))
    assert raw.execute("SELECT count(*) FROM settings").fetchone() == (0,)
    raw.close()


def test_readonly_needs_a_database(tmp_path):
    with pytest.raises(CnetError, match="no cnet database at"):
        connection.open_readonly(tmp_path)


def test_sqlalchemy_wrapper_leaves_the_connection_as_it_was(store, tmp_path):
    """Migrating through SQLAlchemy on the connection must hand it back in autocommit (otherwise
    sqlite3 would open implicit transactions nobody commits, and the next BEGIN fails) and with
    sqlite3.Row rows."""
    migrate.upgrade(store)
    assert store.raw.isolation_level is None
    assert store.raw.row_factory is sqlite3.Row
    store.execute("INSERT INTO settings (key, value) VALUES ('a', 'b')")
    assert not store.raw.in_transaction
    with store.write() as conn:
        conn.execute("UPDATE settings SET value = 'c' WHERE key = 'a'")
    raw = sqlite3.connect(connection.db_path(tmp_path))
    assert raw.execute("SELECT value FROM settings").fetchall() == [("c",)]
    raw.close()


def test_rows_are_sqlite3_rows(store):
    migrate.upgrade(store)
    store.execute("INSERT INTO settings (key, value) VALUES (?, ?)", ("k", "v"))
    row = store.one("SELECT key, value, 7 AS n FROM settings")
    assert isinstance(row, sqlite3.Row)
    assert tuple(row) == ("k", "v", 7) and row[1] == "v" and row["value"] == "v" and row["n"] == 7
    assert dict(zip(row.keys(), row, strict=False)) == {"key": "k", "value": "v", "n": 7}
    with pytest.raises(IndexError):
        row["missing"]
    assert [tuple(r) for r in store.all("SELECT key FROM settings")] == [("k",)]
    assert store.scalar("SELECT count(*) FROM settings") == 1
    assert store.scalar("SELECT key FROM settings WHERE key = 'none'") is None
    assert store.one("SELECT key FROM settings WHERE key = 'none'") is None
    assert store.execute("UPDATE settings SET value = 'w'").rowcount == 1


def test_insert_quotes_identifiers_and_returns_the_rowid(store):
    migrate.upgrade(store)
    assert connection.quote_identifier('we"ird') == '"we""ird"'
    store.execute('CREATE TABLE "odd table" ("select" TEXT, "a""b" INTEGER)')
    rowid = store.insert("odd table", {"select": "x", 'a"b': 2})
    assert rowid == 1
    assert tuple(store.one('SELECT * FROM "odd table"')) == ("x", 2)
    with pytest.raises(sqlite3.OperationalError):
        store.insert("networks; DROP TABLE settings", {"id": "x"})
    assert store.scalar("SELECT count(*) FROM settings") == 0


def test_write_rolls_back_on_error_and_read_sees_one_snapshot(store):
    migrate.upgrade(store)
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute("INSERT INTO settings (key, value) VALUES ('a', 'b')")
        raise RuntimeError
    assert store.scalar("SELECT count(*) FROM settings") == 0
    assert not store.raw.in_transaction
    with store.read() as conn:
        assert conn.raw.in_transaction
    assert not store.raw.in_transaction


def test_one_finishes_the_statement(store, tmp_path):
    """one() closes its cursor: no read snapshot stays open behind the caller's back (an open one
    would keep another connection's checkpoint from resetting the WAL: busy = 1)."""
    migrate.upgrade(store)
    store.execute("INSERT INTO settings (key, value) VALUES ('k', 'v'), ('k2', 'v2')")
    assert store.one("SELECT key FROM settings ORDER BY key")["key"] == "k"
    other = sqlite3.connect(connection.db_path(tmp_path), isolation_level=None, timeout=0)
    try:
        other.execute("INSERT INTO settings (key, value) VALUES ('k3', 'v3')")
        assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    finally:
        other.close()


def test_snapshot_is_an_in_memory_copy(store, tmp_path):
    migrate.upgrade(store)
    store.execute("INSERT INTO settings (key, value) VALUES ('k', 'v')")
    with connection.open_snapshot(tmp_path) as snap:
        assert snap.scalar("SELECT value FROM settings WHERE key = 'k'") == "v"
        assert snap.scalar("PRAGMA foreign_keys") == 1
        snap.execute("DELETE FROM settings")
    assert store.scalar("SELECT count(*) FROM settings") == 1


def test_0004_gives_existing_networks_their_bridge_mac_and_keeps_every_row(store):
    """Upgrading a database with a network, a container and its endpoint: the network gets the MAC
    cnet.naming gives new ones, and nothing else changes (no table copy cascading into rows)."""
    from cnet import naming

    migrate.upgrade(store, "0001_initial")
    store.execute(
        "INSERT INTO networks (id, name, driver, subnet, subnet_first_int, subnet_last_int, prefix_len, gateway,"
        " range_first_int, range_last_int, alloc_cursor_int, bridge, mtu, internal, state, created_at)"
        " VALUES ('0123456789ab', 'web', 'bridge', '10.5.0.0/24', 1, 2, 24, '10.5.0.1', 1, 2, 1,"
        " 'cnet-0123456789', 1500, 0, 'ready', 0)"
    )
    store.execute(
        "INSERT INTO ip_allocations (network_id, address_int, address, kind, allocated_at)"
        " VALUES ('0123456789ab', 1, '10.5.0.1', 'gateway', 0)"
    )
    before = store.all("SELECT * FROM ip_allocations")
    migrate.upgrade(store)
    assert store.scalar("SELECT bridge_mac FROM networks") == naming.bridge_mac("0123456789ab") == "0a:01:23:45:67:89"
    assert [tuple(r) for r in store.all("SELECT * FROM ip_allocations")] == [tuple(r) for r in before]
    assert migrate.check(store) == []
