"""The state database of a read-only command (`cnet ps`), opened directly when there is nothing
else to do first: what a read-only services Context (services/context.py) would give, without
loading it, the store or the recovery. Anything else (a state dir or database to complain about,
a schema to migrate, an interrupted operation to recover or a dead container to release when run
as root) answers None, and the caller takes the Context's way, which does all of that and says
what is wrong in the same words on every path (tests/unit/test_ps_fast.py)."""

from __future__ import annotations

import os
import sqlite3

from . import connection, migrate, recovery_store
from .connection import Connection

DEFAULT_STATE_DIR = "/var/lib/cnet"


def state_dir_name(option: str | None) -> str:
    """The state dir: --state-dir, else CNET_STATE_DIR, else the default."""
    return option or os.environ.get("CNET_STATE_DIR") or DEFAULT_STATE_DIR


def open_current(state_dir: str, *, root: bool) -> Connection | None:
    """The state database, at the current schema, with nothing to recover (asked only as root,
    the only user recovery runs for), or the empty state when there is no database yet; None
    when the Context must open it. Side effects are the Context's own: the database opened
    read-write with the same pragmas (cnet.db.connection.open_database), nothing created."""
    try:
        st = os.stat(state_dir)
    except FileNotFoundError:
        return empty()
    except OSError:
        return None
    if connection.state_dir_problem(st, state_dir) is not None:
        return None
    if not root and not os.access(state_dir, os.R_OK | os.X_OK):
        return None
    db = os.path.join(state_dir, "cnet.db")
    try:
        os.stat(db)
    except FileNotFoundError:
        return empty()
    except OSError:
        return None
    conn = None
    try:
        conn = connection.open_database(db)
        if migrate.current_revision(conn) == migrate.HEAD_REVISION and not (
            root and recovery_store.recovery_pending(conn)
        ):
            return conn
    except (OSError, sqlite3.Error):
        pass
    if conn is not None:
        conn.close()
    return None


def empty() -> Connection:
    """No database yet: the empty state, in memory, from the schema's SQL (as the Context builds
    it for a read-only command: a mistyped --state-dir must not create a database anywhere)."""
    conn = connection.open_memory()
    migrate.create_empty(conn)
    return conn
