"""What start-of-command recovery reads (services/recovery.py, services/containers/reaping.py),
and whether it has any work: `cnet ps` asks `recovery_pending()` first and loads the recovery
(its Context, the store, the journal) only when the answer is yes. Both ask the same questions
through these functions, so the check cannot miss what the recovery would do."""

from __future__ import annotations

import os
from collections import namedtuple

from .. import procs
from . import queries as q

# typing itself is not imported: `cnet ps` loads this module (tests/unit/test_startup_imports.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .connection import Connection

# What liveness checks need of a running container (no JSON columns decoded).
RunningProcess = namedtuple(
    "RunningProcess", ["id", "name", "pid", "pid_start_time", "watcher_pid", "watcher_start_time", "boot_id"]
)


def running_operation_owners(conn: Connection) -> list[tuple[int, int | None, int | None]]:
    """(operation id, owner pid, owner start time) of every operation still marked running."""
    return [(r[0], r[1], r[2]) for r in conn.all(q.OPS_RUNNING_OWNERS)]


def interrupted_operations_likely(conn: Connection) -> bool:
    """A running operation whose owner is gone. Only a hint (the journal checks again, and claims
    each operation atomically): when there is none, the journal and the runner (and `sh`) are
    not even loaded, which every `cnet ps` would otherwise pay for."""
    me = os.getpid()
    return any(owner != me and not procs.alive(owner, start) for _, owner, start in running_operation_owners(conn))


def has_orphan_removing(conn: Connection) -> bool:
    return conn.one(q.CONTAINER_ORPHAN_REMOVING_EXISTS) is not None


def delete_orphan_removing(conn: Connection) -> None:
    conn.execute(q.CONTAINER_ORPHAN_REMOVING_DELETE)


def running_processes(conn: Connection) -> list[RunningProcess]:
    return [RunningProcess(*r) for r in conn.all(q.CONTAINERS_RUNNING_PROCESSES)]


def release_reason(r: RunningProcess, boot: str) -> str | None:
    """Why this running container must be released now, or None (procs.release_reason)."""
    return procs.release_reason(r.pid, r.pid_start_time, r.watcher_pid, r.watcher_start_time, r.boot_id, boot)


def recovery_pending(conn: Connection) -> bool:
    """Whether services/recovery.py's recover_all would do anything on this database: recover an
    interrupted operation, finish an orphaned removal, or release a container whose process is
    gone. The same reads and the same tests as the recovery's own, in the same order."""
    if interrupted_operations_likely(conn) or has_orphan_removing(conn):
        return True
    running = running_processes(conn)
    if not running:
        return False
    boot = procs.boot_id()
    return any(release_reason(r, boot) is not None for r in running)
