"""Connections to the state database.

SQLite in WAL mode (readers never block the writer), foreign keys on, a generous busy timeout, and
explicit `BEGIN IMMEDIATE` for every write: the write lock is taken before anything is read that
will be allocated, so parallel `cnet run`s can never pick the same address or port.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from ..errors import CnetError

BUSY_TIMEOUT_MS = 60_000


def db_path(state_dir: Path) -> Path:
    return state_dir / "cnet.db"


def ensure_state_dir(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state_dir, 0o700)
    path = db_path(state_dir)
    if not path.exists():
        # Create the file ourselves so it is 0600 from its first byte (SQLite gives the -wal and
        # -shm files the same mode).
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)


def _on_connect(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN IMMEDIATE / COMMIT ourselves
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA journal_mode = WAL")
    # NORMAL is durable across process crashes in WAL mode (only power loss can drop the last
    # commits, and the journal's recovery copes with that); FULL would fsync every step.
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def _on_connect_ro(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA query_only = ON")
    cur.close()


def make_engine(state_dir: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{db_path(state_dir)}", poolclass=NullPool)
    event.listen(engine, "connect", _on_connect)
    return engine


def make_readonly_engine(state_dir: Path) -> sa.Engine:
    path = db_path(state_dir)
    if not path.exists():
        raise CnetError(f"no cnet database at {path} (nothing has been created yet)")
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=NullPool)
    event.listen(engine, "connect", _on_connect_ro)
    return engine


class Store:
    """One connection for the life of a cnet command; writes are short IMMEDIATE transactions."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def write(self):
        self.conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.exec_driver_sql("ROLLBACK")
            raise
        else:
            self.conn.exec_driver_sql("COMMIT")

    @contextmanager
    def read(self):
        # A deferred transaction: one consistent snapshot for several SELECTs.
        self.conn.exec_driver_sql("BEGIN")
        try:
            yield self.conn
        finally:
            self.conn.exec_driver_sql("COMMIT")
