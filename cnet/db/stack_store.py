"""A stack's records: its containers and networks are the ones labelled cnet.stack=NAME."""

from __future__ import annotations

from ..records import Container, Network
from . import queries as q
from .connection import Connection


def containers(conn: Connection, stack: str) -> list[Container]:
    return [Container.from_row(r) for r in conn.all(q.STACK_CONTAINERS, (stack,))]


def networks(conn: Connection, stack: str) -> list[Network]:
    return [Network.from_row(r) for r in conn.all(q.STACK_NETWORKS, (stack,))]


def labels(conn: Connection, stack: str) -> dict[str, dict[str, str]]:
    """container id -> its labels, for the stack's containers."""
    out: dict[str, dict[str, str]] = {}
    for cid, key, value in conn.all(q.STACK_LABELS, (stack,)):
        out.setdefault(cid, {})[key] = value
    return out


def delete_creating(conn: Connection, stack: str) -> None:
    """The journal's handler of a rolled-back stack-up (target: the stack name)."""
    conn.execute(q.STACK_DELETE_CREATING, (stack,))


def finish_release(conn: Connection, stack: str) -> None:
    """The journal's handler of a finished stack-down: every container of the stack that is no
    longer live has its endpoints and mappings released (store.finish_release)."""
    from . import store

    for c in containers(conn, stack):
        if c.state in ("exited", "removing"):
            store.finish_release(conn, c.id)
