"""A container's use of overlay networks: before it starts, join the networks this host has not
joined yet and sync the peers of the others; after containers came or went, tell etcd this host's
container counts. Defining, joining and removing a network is cnet/services/overlay.py."""

from __future__ import annotations

from ..cluster import ClusterUnavailable
from ..commands import Step
from ..db import overlay_store as ostore
from ..db import store
from ..errors import Conflict, ValidationError
from ..records import NetworkState
from .context import Context
from .overlay import cluster, host_id, join, publish, snapshot, sync_peers


def use_networks(ctx: Context, names: list[str]) -> list[Step]:
    """Before a container joins: join the networks this host has not joined yet, sync the peers
    of the others. With etcd away, networks already joined still work (local IPAM): a warning.
    Returns what a --dry-run shows: the joins it would make (etcd is only read)."""
    with ctx.store.read() as conn:
        local = {n: store.find_network(conn, n) for n in names}
    if ctx.dry_run:
        return _dry_run_joins(ctx, [n for n, net in local.items() if net is None])
    try:
        cl = cluster(ctx)
        snap = snapshot(cl)
    except (ClusterUnavailable, ValidationError) as exc:
        if all(net is not None for net in local.values()):
            ctx.say(f"cnet: warning: {exc}; peers of {', '.join(names)} are not being refreshed")
            return []
        raise
    me = host_id(ctx)
    for name, net in local.items():
        if net is None:
            join(ctx, cl, name, underlay_ip=None, snap=snap)
        else:
            sync_peers(ctx, cl, net, snap, me)
    return []


def _dry_run_joins(ctx: Context, names: list[str]) -> list[Step]:
    """The joins a run would make, planned in the dry run's in-memory copy of the state (where the
    network is then as good as joined, so the run's own plan follows), as `net create` shows one."""
    if not names:
        return []
    cl = cluster(ctx)
    snap = snapshot(cl)
    steps: list[Step] = []
    for name in names:
        out = join(ctx, cl, name, underlay_ip=None, snap=snap)
        with ctx.store.write() as conn:
            store.set_network_state(conn, out.result.id, NetworkState.READY)
        steps += out.plan.steps
    return steps


def after_change(ctx: Context, names: list[str]) -> None:
    """After containers came or went: tell etcd this host's container counts (best effort)."""
    if ctx.dry_run or not names:
        return
    try:
        cl = cluster(ctx)
        snap = snapshot(cl)
        me = host_id(ctx)
        with ctx.store.read() as conn:
            nets = [n for n in ostore.overlay_networks(conn) if n.name in names]
        for net in nets:
            if net.name in snap.networks:
                publish(ctx, cl, net, snap, me)
    except (ClusterUnavailable, ValidationError, Conflict) as exc:
        ctx.say(f"cnet: warning: {exc}")
