import pytest

from cnet.db import connection, migrate


@pytest.fixture
def store(tmp_path):
    """A real state database in tmp_path, migrated to head (a cnet.db.connection.Connection)."""
    connection.ensure_state_dir(tmp_path)
    conn = connection.open_state(tmp_path)
    migrate.upgrade(conn)
    yield conn
    conn.close()
