"""`net connect` / `net disconnect`: one more network on a running container, or one less."""

from __future__ import annotations

from ... import validate
from ...db import store
from ...db.connection import Connection
from ...errors import Conflict, NotFound
from ...plans import container as plans
from ...records import ContainerState, Endpoint, OpKind
from ..apply import Change, Outcome, apply
from ..context import Context
from ..endpoints import attach, restore_missing_networks, usable_network


def connect(
    ctx: Context, network: str, ref: str, ip: str | None = None, aliases: tuple[str, ...] = ()
) -> Outcome[Endpoint]:
    validate.name(network, "network name")
    if ip is not None:
        validate.ipv4_address(ip, "IP address")
    for a in aliases:
        validate.hostname(a)
    ctx.require_root()
    restore_steps = restore_missing_networks(ctx, [network])

    def prepare(conn: Connection) -> Change[Endpoint]:
        c = store.get_container(conn, ref)
        if c.state != ContainerState.RUNNING:
            raise Conflict(f"container {c.name} is not running")
        net = usable_network(conn, network)
        if store.endpoint_on(conn, c.id, net.id) is not None:
            raise Conflict(f"container {c.name} is already connected to network {net.name}")
        has_default = store.has_default_route(conn, c.id)
        ep = attach(
            conn,
            c.id,
            net,
            store.next_interface(conn, c.id),
            ip,
            default_route=not has_default and not net.internal,
            aliases=tuple(dict.fromkeys(aliases)),
        )
        plan = plans.connect(c.netns, ep, first=not has_default, before=restore_steps, ipv6_host=ctx.ipv6_host)
        return Change(OpKind.NET_CONNECT, f"{c.id}/{net.id}", plan, ep)

    out = apply(ctx, prepare)
    from .. import names

    names.refresh(ctx, [out.result.network_id], [out.result.container_id])
    return out


def disconnect(ctx: Context, network: str, ref: str) -> Outcome[Endpoint]:
    ctx.require_root()
    ep_seen: list[Endpoint] = []

    def prepare(conn: Connection) -> Change[Endpoint]:
        c = store.get_container(conn, ref)
        net = store.get_network(conn, network)
        ep = store.endpoint_on(conn, c.id, net.id)
        if ep is None:
            raise NotFound(f"container {c.name} is not connected to network {net.name}")
        ep_seen.append(ep)
        ports = [p for p in store.ports_of(conn, c.id) if p.endpoint_id == ep.id]
        return Change(
            OpKind.NET_DISCONNECT,
            f"{c.id}/{net.id}",
            plans.disconnect(c.id, ep, ports),
            ep,
            title=f"container {c.name} disconnected from network {net.name}",
        )

    try:
        return apply(ctx, prepare)
    finally:
        if ep_seen:  # the teardown runs to the end even when it reports errors
            from .. import names

            names.refresh(ctx, [ep_seen[0].network_id], [ep_seen[0].container_id])
