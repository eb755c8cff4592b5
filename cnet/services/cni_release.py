"""Releasing CNI attachments: one DEL's work, also done by GC and by `cnet gc` for an attachment
whose runtime lost its network namespace without a DEL. Apart from the verbs (cnet.services.cni)
so that the reconciler can use it without importing the ADD path."""

from __future__ import annotations

import os

from ..cni.protocol import CniError, Code
from ..commands import Plan, Step
from ..db import store
from ..db.connection import Connection
from ..plans import cni as plans
from ..records import Container, ContainerState, Direction, OpKind
from .apply import Change, apply
from .context import Context


def _short(container_id: str) -> str:
    return container_id[:12]


def release(ctx: Context, cni_container_id: str, ifname: str) -> bool:
    """Release one attachment (DEL, GC, cnet gc): True when this call released it. Nothing to
    release (never added, released already, being released by another call) is not an error."""

    def prepare(conn: Connection) -> Change[bool]:
        att = store.attachment(conn, cni_container_id, ifname)
        if att is not None and att.state == ContainerState.CREATING:
            raise CniError(
                Code.TRY_AGAIN_LATER, f"an ADD of {ifname} for container {_short(cni_container_id)} is still running"
            )
        if att is None or not store.claim_attachment(conn, att.id):
            return Change(OpKind.CNI_DEL, cni_container_id, Plan(direction=Direction.DESTROY), False)
        plan = plans.detach(att, store.endpoints_of(conn, att.id), store.ports_of(conn, att.id))
        return Change(OpKind.CNI_DEL, att.id, plan, True, title=f"CNI attachment {att.name} released")

    return apply(ctx, prepare).result


def vanished(conn: Connection) -> list[Container]:
    """Attachments whose runtime namespace is gone (the runtime lost it without a DEL)."""
    return [a for a in store.attachments(conn) if a.state == ContainerState.ATTACHED and not os.path.exists(a.netns)]


def release_vanished(ctx: Context) -> tuple[list[str], list[Step]]:
    """Release them (each its own journaled operation); under --dry-run only plan it. Returns one
    note per attachment and, for --dry-run, the steps a real run would take."""
    with ctx.store.read() as conn:
        gone = vanished(conn)
        shown = (
            [s for a in gone for s in plans.detach(a, store.endpoints_of(conn, a.id), store.ports_of(conn, a.id)).steps]
            if ctx.dry_run
            else []
        )
    notes = [
        f"release CNI attachment {a.name} (container {_short(a.cni_container_id or '')} {a.cni_ifname}): "
        f"its network namespace {a.netns} is gone"
        for a in gone
    ]
    if not ctx.dry_run:
        for a in gone:
            release(ctx, a.cni_container_id or "", a.cni_ifname or "")
    return notes, shown
