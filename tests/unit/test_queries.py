"""Every named statement prepares on a database migrated to head: a misspelt table or column fails
here (the check SQLAlchemy's expressions would give), not when a command first runs it."""

import re
import sqlite3

import pytest

from cnet.db import connection, migrate, queries

STATEMENTS = {name: sql for name, sql in vars(queries).items() if name.isupper() and isinstance(sql, str)}


def parameter_count(sql: str) -> int:
    numbered = [int(n) for n in re.findall(r"\?(\d+)", sql)]
    return max(numbered) if numbered else len(re.findall(r"\?(?!\d)", sql))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    d = tmp_path_factory.mktemp("queries")
    connection.ensure_state_dir(d)
    conn = connection.open_state(d)
    migrate.upgrade(conn)
    yield conn
    conn.close()


def test_there_are_statements():
    assert len(STATEMENTS) > 60


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_statement_prepares(db, name):
    sql = STATEMENTS[name]
    # EXPLAIN compiles the statement against the schema without running it.
    db.all("EXPLAIN " + sql, [None] * parameter_count(sql))


def test_a_typo_fails(db):
    with pytest.raises(sqlite3.OperationalError, match="no such column: bridgee"):
        db.all("EXPLAIN SELECT bridgee FROM networks WHERE id = ?", [None])
