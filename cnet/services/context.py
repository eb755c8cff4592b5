"""Per-command context: state dir, modes, and lazily opened store/runner/journal."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import CnetError, PermissionDenied

DEFAULT_STATE_DIR = "/var/lib/cnet"


def state_dir_from_env(option: str | None) -> Path:
    return Path(option or os.environ.get("CNET_STATE_DIR") or DEFAULT_STATE_DIR)


@dataclass
class Context:
    state_dir: Path
    dry_run: bool = False
    verbose: bool = False
    # Output is the CLI's business: it passes these in (one line to the user; -v command echo).
    say: Callable[[str], None] = field(default=lambda msg: None)
    echo: Callable[[str], None] | None = None
    # Set by read-only commands: a missing database is an empty state, not one to create.
    readonly: bool = False
    _store: object = None
    _runner: object = None
    _journal: object = None

    # --- lazily built pieces (each import paid only by commands that need it) -----------------
    @property
    def runner(self):
        if self._runner is None:
            from ..runner import ShellRunner

            self._runner = ShellRunner(echo=self.echo if self.verbose else None)
        return self._runner

    @property
    def store(self):
        if self._store is None:
            self._store = self._open_store()
        return self._store

    @property
    def journal(self):
        if self._journal is None:
            from ..journal import Journal

            self._journal = Journal(self.store, self.runner, self.say)
        return self._journal

    def _open_store(self):
        from ..db import migrate, session

        if self.dry_run or (self.readonly and not session.db_path(self.state_dir).exists()):
            # A mistyped --state-dir on `ps` must not create a database somewhere.
            return _snapshot_store(self.state_dir)
        try:
            session.ensure_state_dir(self.state_dir)
        except PermissionError:
            raise PermissionDenied(f"cannot write the state dir {self.state_dir}: run as root (or use --dry-run)") from None
        store = session.Store(session.make_engine(self.state_dir))
        migrate.ensure_current(store.conn, lock_path=self.state_dir / "migrate.lock")
        return store

    def require_root(self) -> None:
        if self.dry_run:
            return
        if os.geteuid() != 0:
            raise PermissionDenied("this command changes the kernel's network state and must run as root (try --dry-run)")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    @contextmanager
    def network_lock(self):
        """Serializes network create/remove (first/last network installs/removes base chains)."""
        if self.dry_run:
            yield
            return
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.state_dir / "network.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _snapshot_store(state_dir: Path):
    """--dry-run plans against an in-memory copy of the state: the very same code path as a real
    run (same validation, same allocation), and nothing it does can reach the real database."""
    import sqlite3

    from ..db import migrate, session

    mem = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    path = session.db_path(state_dir)
    if path.exists():
        try:
            _copy_readonly(path, mem)
        except sqlite3.Error as exc:
            raise CnetError(f"cannot read the state database {path}: {exc}") from None
    mem.execute("PRAGMA foreign_keys = ON")
    store = session.Store(conn=session.Connection(mem))
    # Only a missing or older database pays for Alembic (and SQLAlchemy), on this same connection.
    migrate.ensure_current(store.conn)
    return store


def _copy_readonly(path: Path, dest) -> None:
    """Copy the database into `dest` without writing anything next to it. Opened read-only, a WAL
    database still gets -wal and -shm files created beside it (and a user who may only read the
    state dir, a non-root --dry-run, cannot create them at all). When no -wal file exists, no
    connection is open and every commit is in the main file, so reading it as immutable is exact
    and leaves no trace; otherwise the files exist already and a plain read-only open works."""
    import sqlite3

    mode = "ro" if Path(f"{path}-wal").exists() else "ro&immutable=1"
    src = sqlite3.connect(f"file:{path}?mode={mode}", uri=True)
    try:
        src.backup(dest)
    finally:
        src.close()
