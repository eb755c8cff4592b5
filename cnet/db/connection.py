"""The state database: stdlib `sqlite3`, under its own names.

SQLite in WAL mode (readers never block the writer), foreign keys on, a generous busy timeout, and
explicit `BEGIN IMMEDIATE` for every write (`Connection.write()`): the write lock is taken before
anything is read that will be allocated, so parallel `cnet run`s can never pick the same address
or port. Rows are `sqlite3.Row`s (by name or index); `cnet.records` turns them into typed values
at the store boundary (cnet.db.store). Every statement is a named constant in cnet.db.queries.

Why not SQLAlchemy at run time: importing it would double the start-up of every command
(`scripts/bench`, tests/unit/test_startup_imports.py). It remains the schema's definition
(cnet.db.schema) and Alembic's engine (cnet.db.migrate), imported only to migrate or check.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat

from ..errors import CnetError, StateError

# Neither typing nor pathlib is imported: `cnet ps` loads this module (tests/unit/test_startup_imports.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from typing import Any

    Params = Sequence[Any] | Mapping[str, Any]

BUSY_TIMEOUT_MS = 60_000


def db_path(state_dir: Path) -> Path:
    return state_dir / "cnet.db"


def check_state_dir(state_dir: Path) -> None:
    """The state dir, if it exists, must be a directory owned by root (or by whoever runs a
    non-root --dry-run) and writable by nobody else: another user able to write there could swap
    the database under cnet, which runs kernel commands as root from what it reads."""
    try:
        st = os.stat(state_dir)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(state_error(exc, state_dir)) from None
    problem = state_dir_problem(st, state_dir)
    if problem is not None:
        raise StateError(problem)


def state_dir_problem(st: os.stat_result, state_dir: Path | str) -> str | None:
    """What is wrong with an existing state dir (its os.stat), as check_state_dir says it."""
    if not stat.S_ISDIR(st.st_mode):
        return f"the state dir {state_dir} is not a directory"
    if st.st_uid not in (0, os.geteuid()):
        return (
            f"the state dir {state_dir} is owned by uid {st.st_uid}, not root: "
            f"check who made it, then `chown root:root {state_dir}` (or use another --state-dir)"
        )
    if st.st_mode & 0o022:
        return (
            f"the state dir {state_dir} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"`chmod 0700 {state_dir}`"
        )
    return None


def ensure_state_dir(state_dir: Path) -> None:
    check_state_dir(state_dir)
    try:
        if not state_dir.exists():
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(state_dir, 0o700)  # whatever the umask
        path = db_path(state_dir)
        if not path.exists():
            # Create the file ourselves so it is 0600 from its first byte (SQLite gives the -wal and
            # -shm files the same mode).
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
    except OSError as exc:
        raise StateError(state_error(exc, state_dir)) from None


def state_error(exc: BaseException, state_dir: Path | None) -> str:
    """One line for a failure of the state dir or database (OSError or sqlite3.Error)."""
    where = f"the state dir {state_dir}" if state_dir else "the state dir"
    db = f"the state database {db_path(state_dir)}" if state_dir else "the state database"
    text = str(exc)
    # errno and SQLite's result codes overlap (EACCES and SQLITE_FULL are both 13): kept apart.
    code = exc.errno if isinstance(exc, OSError) else None
    sqlite_code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.Error) else None
    lowered = text.lower()
    # SQLite often says only "disk I/O error" or "unable to open database file": ask the file
    # system what is wrong with it.
    full = readonly = False
    if state_dir is not None:
        try:
            fs = os.statvfs(state_dir)
            full = fs.f_bavail == 0
            readonly = bool(fs.f_flag & os.ST_RDONLY)
        except OSError:
            pass
    if readonly:
        code = errno.EROFS
    elif full and ("i/o error" in lowered or "unable to open" in lowered):
        code = errno.ENOSPC
    if code == errno.ENOSPC or "disk is full" in lowered or sqlite_code == sqlite3.SQLITE_FULL:
        return f"no space left for {where} (disk full): free some space; nothing was changed"
    if code == errno.EROFS or "readonly" in lowered or "read-only" in lowered:
        return f"{where} is read-only: cnet needs to write there (remount it read-write, or use another --state-dir)"
    if code in (errno.EACCES, errno.EPERM):
        if os.geteuid() != 0:
            return f"cannot read {where}: cnet needs root"
        return f"cannot read or write {where}: permission denied (check its owner and mode)"
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return (
            f"{db} is damaged ({text}): move it away to start with an empty state (then `cnet gc` "
            "reports and cleans what the kernel still holds) or restore a copy"
        )
    if "unable to open" in lowered:
        hint = ": run as root" if os.geteuid() != 0 else ""
        return f"cannot open {db}{hint}"
    return f"{db}: {text}"


def quote_identifier(name: str) -> str:
    """A table or column name as a SQL identifier (double quotes, inner quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


class Connection:
    """One sqlite3 connection in autocommit mode: cnet opens its transactions itself, with
    `write()` (BEGIN IMMEDIATE) and `read()` (BEGIN, one snapshot for several SELECTs)."""

    __slots__ = ("raw",)

    def __init__(self, raw: sqlite3.Connection):
        raw.row_factory = sqlite3.Row
        self.raw = raw

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, params)

    def one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """The first row or None. The cursor is closed at once: an unfinished SELECT would keep
        its read snapshot of the WAL open."""
        cur = self.raw.execute(sql, params)
        try:
            row: sqlite3.Row | None = cur.fetchone()
            return row
        finally:
            cur.close()

    def all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return self.raw.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: Params = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    def insert(self, table: str, values: Mapping[str, Any]) -> int:
        """INSERT one row given as {column: value}; returns its rowid. Identifiers are quoted, and
        the names come from code (records' columns()), never from user input."""
        cols = ", ".join(quote_identifier(c) for c in values)
        marks = ", ".join("?" * len(values))
        cur = self.raw.execute(
            f"INSERT INTO {quote_identifier(table)} ({cols}) VALUES ({marks})", tuple(values.values())
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def write(self) -> Transaction:
        """`with conn.write():` one write transaction (BEGIN IMMEDIATE), committed when the block
        ends, rolled back when it raises (any exception, Ctrl-C included)."""
        return Transaction(self, "BEGIN IMMEDIATE", rollback=True)

    def read(self) -> Transaction:
        """`with conn.read():` one read snapshot (BEGIN ... COMMIT)."""
        return Transaction(self, "BEGIN", rollback=False)

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transaction:
    """Connection.write() and read(). A class rather than contextlib.contextmanager: `cnet ps`
    loads this module, and contextlib (with the functools it imports) is not on its path
    (tests/unit/test_startup_imports.py)."""

    __slots__ = ("begin", "conn", "rollback")

    def __init__(self, conn: Connection, begin: str, *, rollback: bool):
        self.conn, self.begin, self.rollback = conn, begin, rollback

    def __enter__(self) -> Connection:
        self.conn.raw.execute(self.begin)
        return self.conn

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.conn.raw.execute("ROLLBACK" if exc_type is not None and self.rollback else "COMMIT")


def _pragmas(raw: sqlite3.Connection) -> None:
    # The busy timeout is sqlite3.connect(timeout=...), the same setting as PRAGMA busy_timeout.
    raw.execute("PRAGMA foreign_keys = ON")
    raw.execute("PRAGMA journal_mode = WAL")
    # NORMAL is durable across process crashes in WAL mode (only power loss can drop the last
    # commits, and the journal's recovery copes with that); FULL would fsync every step.
    raw.execute("PRAGMA synchronous = NORMAL")


def open_state(state_dir: Path) -> Connection:
    """The state database, read-write (the caller has run ensure_state_dir and migrates it)."""
    return open_database(db_path(state_dir))


def open_database(path: Path | str) -> Connection:
    """open_state() given the database file: `cnet ps` opens it by name (cnet/db/reading.py)."""
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        _pragmas(raw)
    except BaseException:
        raw.close()
        raise
    return Connection(raw)


def open_readonly(state_dir: Path) -> Connection:
    """The state database, read-only (`cnet sql`): mode=ro and query_only."""
    path = db_path(state_dir)
    if not path.exists():
        raise CnetError(f"no cnet database at {path} (nothing has been created yet)")
    raw = sqlite3.connect(
        f"file:{path}?mode=ro",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    raw.execute("PRAGMA query_only = ON")
    return Connection(raw)


def open_snapshot(state_dir: Path) -> Connection:
    """An in-memory copy of the state (empty if there is none), for --dry-run: the very same code
    path as a real run (same validation, same allocation), and nothing it does can reach the real
    database. The caller migrates it (a missing or older database pays for Alembic there)."""
    mem = open_memory()
    path = db_path(state_dir)
    if path.exists():
        try:
            _copy_readonly(path, mem.raw)
        except sqlite3.Error as exc:
            raise CnetError(f"cannot read the state database {path}: {exc}") from None
    return mem


def open_memory() -> Connection:
    """An empty in-memory database (open_snapshot's, or the empty state cnet/db/reading.py builds)."""
    mem = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    mem.execute("PRAGMA foreign_keys = ON")
    return Connection(mem)


def _copy_readonly(path: Path, dest: sqlite3.Connection) -> None:
    """Copy the database into `dest` without writing anything next to it. Opened read-only, a WAL
    database still gets -wal and -shm files created beside it (and a user who may only read the
    state dir, a non-root --dry-run, cannot create them at all). When no -wal file exists, no
    connection is open and every commit is in the main file, so reading it as immutable is exact
    and leaves no trace; otherwise the files exist already and a plain read-only open works."""
    from pathlib import Path

    mode = "ro" if Path(f"{path}-wal").exists() else "ro&immutable=1"
    src = sqlite3.connect(f"file:{path}?mode={mode}", uri=True)
    try:
        src.backup(dest)
    finally:
        src.close()
