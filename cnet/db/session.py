"""Connections to the state database.

SQLite in WAL mode (readers never block the writer), foreign keys on, a generous busy timeout, and
explicit `BEGIN IMMEDIATE` for every write: the write lock is taken before anything is read that
will be allocated, so parallel `cnet run`s can never pick the same address or port.

Commands talk to SQLite through the stdlib `sqlite3` module behind a small adapter with the subset
of SQLAlchemy's Connection/Result/Row surface cnet uses (`exec_driver_sql` with `?` placeholders,
`first`, `fetchall`, `scalar`, iteration, `lastrowid`, `rowcount`, `row.column`, `row._mapping`):
importing SQLAlchemy costs ~130 ms, half of a typical command. SQLAlchemy remains the schema's
definition (cnet.db.schema) and is imported only to migrate or check it (cnet.db.migrate).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path

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


# --- rows and results ----------------------------------------------------------------------------


class Row(tuple):
    """A result row: a tuple, with columns also readable as attributes and through `_mapping`
    (as SQLAlchemy's Row). One subclass per column list carries the names (see _row_class)."""

    __slots__ = ()
    _keys: tuple[str, ...] = ()
    _index: dict[str, int] = {}

    def __getattr__(self, name: str):
        try:
            return self[self._index[name]]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict:
        return dict(zip(self._keys, self))

    def _asdict(self) -> dict:
        return dict(zip(self._keys, self))


_ROW_CLASSES: dict[tuple[str, ...], type[Row]] = {}


def _row_class(description) -> type[Row]:
    keys = tuple(d[0] for d in description)
    cls = _ROW_CLASSES.get(keys)
    if cls is None:
        cls = type("Row", (Row,), {"__slots__": (), "_keys": keys, "_index": {k: i for i, k in enumerate(keys)}})
        _ROW_CLASSES[keys] = cls
    return cls


class Result:
    """What `exec_driver_sql` returns: the cursor, its rows wrapped in Row on the way out."""

    __slots__ = ("_cur",)

    def __init__(self, cur: sqlite3.Cursor):
        self._cur = cur

    @property
    def lastrowid(self) -> int | None:
        return self._cur.lastrowid

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def first(self) -> Row | None:
        """The first row or None; the rest is discarded (an unfinished SELECT would keep its read
        snapshot of the WAL open)."""
        cur = self._cur
        if cur.description is None:
            return None
        row = cur.fetchone()
        cur.close()
        return None if row is None else _row_class(cur.description)(row)

    fetchone = first

    def scalar(self):
        row = self.first()
        return None if row is None else row[0]

    def fetchall(self) -> list[Row]:
        cur = self._cur
        if cur.description is None:
            return []
        return list(map(_row_class(cur.description), cur.fetchall()))

    all = fetchall

    def __iter__(self):
        cur = self._cur
        if cur.description is None:
            return iter(())
        return map(_row_class(cur.description), cur)


# --- connections ---------------------------------------------------------------------------------


class Connection:
    """One sqlite3 connection in autocommit mode (cnet issues BEGIN IMMEDIATE / COMMIT itself)."""

    __slots__ = ("dbapi",)

    def __init__(self, dbapi: sqlite3.Connection):
        self.dbapi = dbapi

    def exec_driver_sql(self, sql: str, params=()) -> Result:
        return Result(self.dbapi.execute(sql, params))

    def close(self) -> None:
        self.dbapi.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connect(path: Path) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    raw.execute("PRAGMA foreign_keys = ON")
    raw.execute("PRAGMA journal_mode = WAL")
    # NORMAL is durable across process crashes in WAL mode (only power loss can drop the last
    # commits, and the journal's recovery copes with that); FULL would fsync every step.
    raw.execute("PRAGMA synchronous = NORMAL")
    return raw


def _connect_ro(path: Path) -> sqlite3.Connection:
    raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    raw.execute("PRAGMA query_only = ON")
    return raw


class Database:
    """Where connections come from (what a SQLAlchemy Engine was here): `connect()` opens one."""

    def __init__(self, path: Path, readonly: bool = False):
        self.path = path
        self.readonly = readonly

    def connect(self) -> Connection:
        return Connection(_connect_ro(self.path) if self.readonly else _connect(self.path))


def make_engine(state_dir: Path) -> Database:
    return Database(db_path(state_dir))


def make_readonly_engine(state_dir: Path) -> Database:
    path = db_path(state_dir)
    if not path.exists():
        raise CnetError(f"no cnet database at {path} (nothing has been created yet)")
    return Database(path, readonly=True)


class Store:
    """One connection for the life of a cnet command; writes are short IMMEDIATE transactions.

    Built from a Database (`make_engine`), or around an already open Connection (the in-memory
    copy --dry-run plans against)."""

    def __init__(self, engine: Database | None = None, *, conn: Connection | None = None):
        self.engine = engine
        self.conn = conn if conn is not None else engine.connect()

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
