"""The journal's handler table: for each operation kind, what happens to the database when an
operation of that kind is rolled back or completes (also when crash recovery finishes it).

Written out in one place and handed to the Journal (services.context), not registered by import
side effects: a kind missing here is refused at Journal.begin(), and a unit test checks that every
OpKind has an entry.
"""

from __future__ import annotations

from ..db import stack_store, store
from ..db.connection import Connection
from ..journal import Handlers
from ..records import OpKind


def forget_endpoint(conn: Connection, target: str) -> None:
    """target: "CONTAINER_ID/NETWORK_ID" (net-connect, net-disconnect)."""
    container_id, network_id = target.split("/")
    store.forget_endpoint(conn, container_id, network_id)


JOURNAL_HANDLERS: dict[str, Handlers] = {
    OpKind.NET_CREATE: Handlers(rolled_back=store.forget_network),
    OpKind.NET_RM: Handlers(completed=store.forget_network),
    OpKind.RUN: Handlers(rolled_back=store.delete_container),
    OpKind.START: Handlers(rolled_back=store.undo_start),
    OpKind.RELEASE: Handlers(completed=store.finish_release),
    OpKind.NET_CONNECT: Handlers(rolled_back=forget_endpoint),
    OpKind.NET_DISCONNECT: Handlers(completed=forget_endpoint),
    # Reconciliation owns no rows: the kernel is brought back to what the database says.
    OpKind.GC: Handlers(),
    OpKind.NET_RESTORE: Handlers(),
    # A CNI attachment is a containers row of kind cni: a rolled-back ADD leaves no row (its
    # endpoint, address and ports go with it); a finished DEL releases it as a container's
    # release does, and the row, claimed as removing, goes too.
    OpKind.CNI_ADD: Handlers(rolled_back=store.delete_container),
    OpKind.CNI_DEL: Handlers(completed=store.finish_release),
    # An overlay's peers: the rows are written when the sync succeeds (its on_success); a rolled
    # back or interrupted one leaves the last applied peers, and the next sync compares them with
    # the kernel's neighbours again.
    OpKind.PEER_SYNC: Handlers(),
    # A stack's containers in one operation (target: the stack name): a rolled-back `up` leaves
    # none of the containers it was creating; a finished release leaves its containers exited,
    # their endpoints and mappings gone (the caller then deletes the records).
    OpKind.STACK_UP: Handlers(rolled_back=stack_store.delete_creating),
    OpKind.STACK_DOWN: Handlers(completed=stack_store.finish_release),
}
