"""Per-command context: state dir, modes, and the lazily opened database, runner and journal."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..db import connection
from ..db.connection import Connection
from ..db.reading import DEFAULT_STATE_DIR as DEFAULT_STATE_DIR  # where cni*.py look it up
from ..db.reading import state_dir_name
from ..errors import PermissionDenied, StateError

if TYPE_CHECKING:  # each import paid only by the commands that use it
    from ..journal import Journal
    from ..runner import ShellRunner


def state_dir_from_env(option: str | None) -> Path:
    return Path(state_dir_name(option))


def container_dir(ctx: Context, container_id: str) -> Path:
    """A container's folder: its log, reap log, hosts and resolv.conf."""
    return ctx.state_dir / "containers" / container_id


def _quiet(_msg: str) -> None:
    return None


@dataclass
class Context:
    state_dir: Path
    dry_run: bool = False
    verbose: bool = False
    # Output is the CLI's business: it passes these in (one line to the user; -v command echo).
    say: Callable[[str], None] = _quiet
    echo: Callable[[str], None] | None = None
    # Set by read-only commands: a missing database is an empty state, not one to create.
    readonly: bool = False
    # The CNI plugin: commands run without the `sh` package (cnet.runner.SpawnRunner).
    light_runner: bool = False
    # Overlay networks' cluster store: etcd endpoints (--etcd / CNET_ETCD) and TLS files
    # (CA, client certificate, client key) passed through to its client (cnet/cluster.py).
    etcd: str | None = None
    etcd_tls: tuple[str | None, str | None, str | None] = (None, None, None)
    cluster: object | None = field(default=None, init=False, repr=False)  # opened by services/overlay.py
    _store: Connection | None = field(default=None, init=False, repr=False)
    _runner: ShellRunner | None = field(default=None, init=False, repr=False)
    _journal: Journal | None = field(default=None, init=False, repr=False)
    _network_locked: bool = field(default=False, init=False, repr=False)

    @property
    def ipv6_host(self) -> bool:
        """The kernel has IPv6 (not booted with ipv6.disable=1): what the wiring plans ask."""
        return os.path.isdir("/proc/sys/net/ipv6")

    @property
    def runner(self) -> ShellRunner:
        if self._runner is None:
            if self.light_runner:
                from ..runner import SpawnRunner

                self._runner = SpawnRunner(echo=self.echo if self.verbose else None)
            else:
                from ..runner import ShellRunner

                self._runner = ShellRunner(echo=self.echo if self.verbose else None)
        return self._runner

    @property
    def store(self) -> Connection:
        """The state database (an in-memory copy under --dry-run)."""
        if self._store is None:
            self._store = self._open_store()
        return self._store

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            from ..journal import Journal
            from .handlers import JOURNAL_HANDLERS

            self._journal = Journal(self.store, self.runner, JOURNAL_HANDLERS)
        return self._journal

    def _open_store(self) -> Connection:
        """Every broken state dir ends here in one line (StateError), before any kernel change:
        wrong owner or mode, read-only, full, damaged, from a newer cnet, unreadable."""
        import sqlite3

        try:
            return self._open_store_checked()
        except StateError:
            raise
        except (OSError, sqlite3.Error) as exc:
            raise StateError(connection.state_error(exc, self.state_dir)) from None
        except Exception as exc:  # SQLAlchemy's wrapper of a sqlite3 error while migrating
            orig = getattr(exc, "orig", None)
            if isinstance(orig, (OSError, sqlite3.Error)):
                raise StateError(connection.state_error(orig, self.state_dir)) from None
            raise

    def _open_store_checked(self) -> Connection:
        from ..db import migrate

        connection.check_state_dir(self.state_dir)
        if (
            not self.dry_run
            and os.geteuid() != 0
            and self.state_dir.exists()
            and not os.access(self.state_dir, os.R_OK | os.X_OK)
        ):
            raise PermissionDenied(f"cannot read the state dir {self.state_dir}: this command needs root")
        if self.readonly and not self.dry_run and not connection.db_path(self.state_dir).exists():
            # No database yet: the empty state, in memory (a mistyped --state-dir on `ps` must not
            # create a database somewhere), from the schema's SQL: reading needs no migration.
            conn = connection.open_snapshot(self.state_dir)
            migrate.create_empty(conn)
            return conn
        if self.dry_run:
            conn = connection.open_snapshot(self.state_dir)
            migrate.ensure_current(conn)
            return conn
        try:
            connection.ensure_state_dir(self.state_dir)
        except StateError:
            if os.geteuid() != 0:
                raise PermissionDenied(
                    f"cannot write the state dir {self.state_dir}: run as root (or use --dry-run)"
                ) from None
            raise
        conn = connection.open_state(self.state_dir)
        migrate.ensure_current(conn, lock_path=self.state_dir / "migrate.lock")
        return conn

    def require_root(self) -> None:
        if self.dry_run:
            return
        if os.geteuid() != 0:
            raise PermissionDenied(
                "this command changes the kernel's network state and must run as root (try --dry-run)"
            )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    @contextmanager
    def stack_lock(self) -> Iterator[None]:
        """One `up`/`down` at a time: a second one of the same file waits, then finds the work
        done (its diff is taken under the lock) instead of failing on names the first created."""
        if self.dry_run:
            yield
            return
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.state_dir / "stack.lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # said, so a wait is never mistaken for a hang
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                by = f" (pid {holder})" if holder.isdigit() else ""
                self.say(f"waiting for another cnet up or down{by} to finish")
                fcntl.flock(fd, fcntl.LOCK_EX)
            # Who holds it, for the next one to wait to name.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def network_lock(self, *, shared: bool = False) -> Iterator[None]:
        """Exclusive: network create/remove (the first/last network installs/removes the base
        chains), gc and net restore. Shared: every other operation that changes the kernel (the
        apply seam), so gc and restore never observe one half done, while runs go on in parallel.
        Re-entrant within a process (a gc's own apply, a run restoring its network first): a
        second flock on another descriptor would wait for ourselves."""
        if self.dry_run or self._network_locked:
            yield
            return
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.state_dir / "network.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            self._network_locked = True
            yield
        finally:
            self._network_locked = False
            os.close(fd)
