"""The journal's tables, read side (the journal writes them): what `cnet journal` shows and what
gc asks of operations in flight. Every statement from cnet.db.queries."""

from __future__ import annotations

import sqlite3

from . import queries as q
from .connection import Connection


def last_operation_id(conn: Connection) -> int:
    return int(conn.scalar(q.OP_LAST_ID))


def busy_operations(conn: Connection, since_op: int) -> list[tuple[str, str]]:
    """(kind, target) of operations still running or begun after `since_op`."""
    return [(r[0], r[1]) for r in conn.all(q.OPS_BUSY, (since_op,))]


def recent_operations(conn: Connection, limit: int) -> list[sqlite3.Row]:
    return conn.all(q.OPS_RECENT, (limit,))


def operation(conn: Connection, op_id: int) -> sqlite3.Row | None:
    return conn.one(q.OP_DETAIL, (op_id,))


def operation_steps(conn: Connection, op_id: int) -> list[sqlite3.Row]:
    return conn.all(q.OP_DETAIL_STEPS, (op_id,))
