"""docs/schema.md is generated from cnet/db/schema.py by scripts/schema-doc and must not go stale."""

import subprocess
import sys
from pathlib import Path

from cnet.db import connection, migrate, schema

REPO = Path(__file__).resolve().parents[2]


def generated() -> str:
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "schema-doc")], capture_output=True, text=True, check=True, timeout=60
    )
    return res.stdout


def test_committed_schema_doc_is_current():
    assert (REPO / "docs" / "schema.md").read_text() == generated(), "run scripts/schema-doc --write"


def test_schema_doc_describes_every_table_column_and_view():
    doc = generated()
    for table in schema.metadata.tables.values():
        assert f"## `{table.name}`" in doc
        assert table.comment in doc
        for col in table.columns:
            row = next(
                ln
                for ln in doc.splitlines()
                if ln.startswith(f"| `{col.name}` |") and col.comment.replace("|", "\\|") in ln
            )
            assert row
    for name in schema.VIEWS:
        assert f"CREATE VIEW {name} AS" in doc


def test_check_mode():
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "schema-doc"), "--check"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr


def test_empty_state_sql_builds_what_the_migrations_build():
    """Read-only commands on a state without a database read cnet/db/empty_state.sql's schema:
    it must be what `upgrade head` makes (every table, index, view and trigger, with the same SQL
    but for the order of a table's constraints, and the head revision), or a query could differ
    from one on a fresh database."""
    migrated = connection.open_snapshot(REPO / "no-such-state")
    migrate.upgrade(migrated)
    empty = connection.open_snapshot(REPO / "no-such-state")
    migrate.create_empty(empty)
    assert migrate.schema_objects(empty) == migrate.schema_objects(migrated), "run scripts/schema-doc --write"
    assert len(migrate.schema_objects(empty)) > 30
    assert migrate.current_revision(empty) == migrate.HEAD_REVISION == migrate.current_revision(migrated)
    assert migrate.check(empty) == []


def test_a_stale_empty_state_is_found(tmp_path, monkeypatch):
    """The comparison sees a missing column (the test above can fail)."""
    sql = Path(migrate.EMPTY_STATE).read_text().replace("\tmanually_stopped INTEGER DEFAULT '0' NOT NULL, \n", "", 1)
    assert sql != Path(migrate.EMPTY_STATE).read_text()
    (tmp_path / "empty_state.sql").write_text(sql)
    monkeypatch.setattr(migrate, "EMPTY_STATE", str(tmp_path / "empty_state.sql"))
    empty = connection.open_snapshot(tmp_path)
    migrate.create_empty(empty)
    migrated = connection.open_snapshot(tmp_path)
    migrate.upgrade(migrated)
    assert migrate.schema_objects(empty) != migrate.schema_objects(migrated)
