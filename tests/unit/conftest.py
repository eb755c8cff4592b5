import pytest

from cnet.db import migrate, session


@pytest.fixture
def store(tmp_path):
    """A real state database in tmp_path, migrated to head."""
    session.ensure_state_dir(tmp_path)
    st = session.Store(session.make_engine(tmp_path))
    migrate.upgrade(st.conn)
    yield st
    st.close()
