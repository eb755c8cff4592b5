"""Overlay networks (driver vxlan) across hosts: define in etcd, join, sync peers, remove.

etcd holds what the cluster agrees on (cnet/plans/overlay.py has the key layout); each host's
SQLite holds its share as an ordinary networks row with overlay columns, so containers take their
addresses from the local IPAM and restore/gc rebuild the bridge and vxlan device without etcd.
Order of every change: etcd first (one transaction), then the kernel through the journal; when
the kernel part fails, the etcd part is taken back, and a crash in between is repaired by the
next command (a host that finds its own share in etcd but no local row simply joins again).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from .. import naming, validate
from ..cluster import Cluster, ClusterUnavailable, absent, delete, delete_prefix, present, put, unchanged
from ..commands import cmd
from ..db import overlay_store as ostore
from ..db import store
from ..db.connection import Connection
from ..errors import AllocationError, CnetError, Conflict, NotFound, ValidationError
from ..kernel import vxlan as vx
from ..plans import overlay as po
from ..records import Network, OpKind
from .apply import Change, Outcome, apply
from .context import Context
from .networks import create_network, host_routes, remove_network

DEFAULT_TTL = 30
# The host-subnet lease: long, so that a host that was down (or cut off from etcd) for a while
# gets its subnet back, while a host gone for good frees it eventually (flannel keeps 24 h).
SUBNET_TTL = 24 * 3600
DEFAULT_HOST_SUBNET_SIZE = 24


def cluster(ctx: Context) -> Cluster:
    """etcd as --etcd (or CNET_ETCD) names it, else as it was when this host last joined."""
    if ctx.cluster is None:
        if not ctx.etcd:
            with ctx.store.read() as conn:
                ctx.etcd = ostore.setting(conn, ostore.ETCD_SETTING)
        if not ctx.etcd:
            raise ValidationError("overlay networks need the cluster store: pass --etcd URLS (or set CNET_ETCD)")
        from ..cluster import TLS

        ca, cert, key = ctx.etcd_tls
        ctx.cluster = Cluster(ctx.etcd, TLS(ca=ca, cert=cert, key=key))
    assert isinstance(ctx.cluster, Cluster)
    return ctx.cluster


def snapshot(cl: Cluster) -> po.Snapshot:
    revision, entries = cl.range_prefix(po.PREFIX)
    snap = po.Snapshot.parse(revision, {k: e.value for k, e in entries.items()})
    snap.leases = {k: e.lease for k, e in entries.items() if e.lease}
    return snap


def host_id(ctx: Context) -> str:
    """This host's id in etcd: made once, kept in the state database."""
    if ctx.dry_run:
        with ctx.store.read() as conn:
            return ostore.setting(conn, ostore.HOST_ID_SETTING) or "(this host)"
    with ctx.store.write() as conn:
        hid = ostore.setting(conn, ostore.HOST_ID_SETTING)
        if hid is None:
            hid = naming.new_id() + naming.new_id()[:4]
            ostore.set_setting(conn, ostore.HOST_ID_SETTING, hid)
    return hid


# --- the underlay ---------------------------------------------------------------------------------


def underlay(ctx: Context, cl: Cluster, underlay_ip: str | None) -> tuple[str, str, int]:
    """(address, link, link MTU) this host's VXLAN packets leave from: the route towards etcd's
    first endpoint by default (the network the hosts share), or the link holding --underlay-ip."""
    if underlay_ip is not None:
        ip = str(validate.ipv4_address(underlay_ip, "underlay IP"))
        for link in json.loads(ctx.runner.read(cmd("ip", "-j", "-4", "addr")) or "[]"):
            if any(a.get("local") == ip for a in link.get("addr_info", [])):
                return ip, link["ifname"], int(link["mtu"])
        raise ValidationError(f"--underlay-ip {ip} is not an address of this host")
    import socket

    host = cl.endpoints[0].host
    try:
        target = socket.gethostbyname(host)
    except OSError:
        raise ValidationError(f"cannot resolve etcd host {host!r}") from None
    routes = json.loads(ctx.runner.read(cmd("ip", "-j", "route", "get", target)) or "[]")
    if not routes or routes[0].get("dev") == "lo" or not routes[0].get("prefsrc"):
        raise ValidationError(f"cannot tell the underlay address from the route to etcd ({target}): pass --underlay-ip")
    dev, ip = routes[0]["dev"], routes[0]["prefsrc"]
    links = json.loads(ctx.runner.read(cmd("ip", "-j", "link", "show", "dev", dev)) or "[]")
    return ip, dev, int(links[0]["mtu"]) if links else 1500


def check_local_overlaps(ctx: Context, subnet: str, *, own: str | None = None) -> None:
    """The overlay's subnet must not meet a local network (other than its own share) nor a host
    route (other than the routes to its own peers)."""
    net = ipaddress.IPv4Network(subnet)
    own_dev = naming.vxlan_name(own) if own else None
    with ctx.store.read() as conn:
        clash = store.overlapping_network(conn, int(net.network_address), int(net.broadcast_address))
        if clash and (own is None or store.get_network(conn, clash[0]).id != own):
            raise Conflict(f"subnet {net} overlaps network {clash[0]!r} ({clash[1]})")
    for route, dev in host_routes():
        if net.overlaps(route) and dev != own_dev and (own is None or dev != naming.bridge_name(own)):
            raise Conflict(f"subnet {net} overlaps the host route {route} (dev {dev}); choose another subnet")


# --- leases and membership --------------------------------------------------------------------------


def leases(ctx: Context, cl: Cluster) -> tuple[int, int]:
    """(membership lease, host-subnet lease), renewed, or granted anew when they lapsed."""
    out = []
    with ctx.store.read() as conn:
        ttl = int(ostore.setting(conn, ostore.TTL_SETTING) or DEFAULT_TTL)
        current = [ostore.setting(conn, k) for k in (ostore.MEMBER_LEASE_SETTING, ostore.SUBNET_LEASE_SETTING)]
    for key, lease, lease_ttl in zip(
        (ostore.MEMBER_LEASE_SETTING, ostore.SUBNET_LEASE_SETTING), current, (ttl, SUBNET_TTL), strict=True
    ):
        if lease and cl.keepalive(int(lease)) > 0:
            out.append(int(lease))
            continue
        new = cl.grant(lease_ttl)
        with ctx.store.write() as conn:
            ostore.set_setting(conn, key, str(new))
        out.append(new)
    return out[0], out[1]


def publish(ctx: Context, cl: Cluster, net: Network, snap: po.Snapshot, me: str) -> bool:
    """This host's membership of the network (with its container count, for `net rm` elsewhere)
    and its share, under the current leases: renewed every time, written only when etcd's copy
    differs (every write wakes every agent's watch). False when etcd changed meanwhile."""
    member_lease, subnet_lease = leases(ctx, cl)
    with ctx.store.read() as conn:
        count = ostore.endpoint_count(conn, net.id)
    share = po.Share(net.subnet, me, net.underlay_ip or "", net.vtep_mac or "")
    key, mkey = po.subnet_key(net.name, net.subnet), po.member_key(net.name, me)
    seen = snap.shares.get(net.name, {}).get(net.subnet)
    if seen is not None and seen.host_id != me:
        raise Conflict(f"host subnet {net.subnet} of network {net.name} is now held by host {seen.host_id}")
    member = {"containers": count}
    writes = []
    if snap.raw.get(key) != share.value() or snap.leases.get(key) != subnet_lease:
        writes.append(put(key, share.value(), subnet_lease))
    if snap.raw.get(mkey) != member or snap.leases.get(mkey) != member_lease:
        writes.append(put(mkey, member, member_lease))
    if not writes:
        return True
    _rev, entries = cl.range_prefix(key)
    guard = unchanged(key, entries[key].mod_revision) if key in entries else absent(key)
    return cl.txn([present(po.network_key(net.name)), guard], writes)


# --- peers ------------------------------------------------------------------------------------------


def neighbours(ctx: Context, net: Network) -> dict[str, str]:
    dev = naming.vxlan_name(net.id)
    try:
        rows = json.loads(ctx.runner.read(cmd("ip", "-j", "neigh", "show", "dev", dev, "nud", "permanent")) or "[]")
    except CnetError:
        return {}
    return {r["dst"]: r.get("lladdr", "") for r in rows if "dst" in r}


def sync_peers(ctx: Context, cl: Cluster, net: Network, snap: po.Snapshot, me: str) -> list[str]:
    """One peer sync of one joined network; returns what changed (one line per step). A network
    removed cluster-wide is left here too."""
    if net.name not in snap.networks:
        remove_network(ctx, net.name)
        forget_host_if_idle(ctx, cl)
        return [f"network {net.name} was removed from the cluster: left"]
    if not ctx.dry_run:
        publish(ctx, cl, net, snap, me)
    want = snap.peers(net.name, me)
    with ctx.store.read() as conn:
        applied = [vx.Peer(*row) for row in ostore.peers(conn, net.id)]
    plan = po.sync_plan(net, want, neighbours(ctx, net), applied)
    if not plan.steps:
        return []

    def prepare(_conn: Connection) -> Change[None]:
        def record(c: Connection) -> None:
            ostore.set_peers(c, net.id, [(p.host_subnet, p.host_id, p.underlay_ip, p.vtep_mac) for p in want])

        return Change(OpKind.PEER_SYNC, net.id, plan, None, on_success=record)

    apply(ctx, prepare)
    return [s.summary for s in plan.steps]


def sync_all(ctx: Context, *, names: list[str] | None = None) -> list[str]:
    cl = cluster(ctx)
    snap = snapshot(cl)
    me = host_id(ctx)
    with ctx.store.read() as conn:
        nets = [n for n in ostore.overlay_networks(conn) if names is None or n.name in names]
    notes = []
    for net in nets:
        notes += sync_peers(ctx, cl, net, snap, me)
    return notes


# --- create, join, remove ---------------------------------------------------------------------------


def join(ctx: Context, cl: Cluster, name: str, *, underlay_ip: str | None, snap: po.Snapshot) -> Outcome[Network]:
    """Lease a host subnet (one transaction) and build this host's share of the network."""
    d = snap.networks.get(name)
    if d is None:
        raise NotFound(f"network {name!r} not found (neither here nor in etcd at {cl.describe()})")
    me = host_id(ctx)
    ip, dev, link_mtu = underlay(ctx, cl, underlay_ip)
    mtu = d.mtu or link_mtu - vx.OVERHEAD
    if mtu > link_mtu - vx.OVERHEAD:
        raise ValidationError(f"network {name} has MTU {mtu}, more than {dev}'s MTU {link_mtu} minus {vx.OVERHEAD}")
    check_local_overlaps(ctx, d.subnet)
    network_id = naming.new_id()
    share = snap.share_of(name, me)
    claimed = None
    if share is None and ctx.dry_run:
        free = snap.free_host_subnets(name)
        share = po.Share(free[0] if free else d.host_subnets()[0], me, ip, naming.vtep_mac(network_id))
    elif share is None:
        member_lease, subnet_lease = leases(ctx, cl)
        for candidate in snap.free_host_subnets(name):
            share = po.Share(candidate, me, ip, naming.vtep_mac(network_id))
            ok = cl.txn(
                [present(po.network_key(name)), absent(po.subnet_key(name, candidate))],
                [
                    put(po.subnet_key(name, candidate), share.value(), subnet_lease),
                    put(po.member_key(name, me), {"containers": 0}, member_lease),
                ],
            )
            if ok:
                claimed = share
                break
        else:
            raise AllocationError(f"no free host subnet left in network {name} ({d.subnet}, /{d.host_subnet_size}s)")
    assert share is not None
    overlay: dict[str, Any] = {
        "id": network_id,
        "overlay_subnet": d.subnet,
        "vni": d.vni,
        "vtep_mac": naming.vtep_mac(network_id),
        "underlay_ip": ip,
        "underlay_dev": dev,
    }
    if not ctx.dry_run:
        with ctx.store.write() as conn:  # agents and later commands find etcd without --etcd
            ostore.set_setting(conn, ostore.ETCD_SETTING, cl.describe())
        (ctx.state_dir / ostore.MARKER).touch()
    try:
        out = create_network(ctx, name=name, subnet=share.host_subnet, mtu=mtu, driver="vxlan", overlay=overlay)
    except BaseException:
        if claimed is not None:
            _release(cl, name, claimed, me)
        raise
    if not ctx.dry_run:
        sync_peers(ctx, cl, out.result, snapshot(cl), me)
    return out


def _release(cl: Cluster, name: str, share: po.Share, me: str) -> None:
    try:
        cl.txn([], [delete(po.subnet_key(name, share.host_subnet)), delete(po.member_key(name, me))])
    except ClusterUnavailable:
        pass  # the lease ends it


def create(
    ctx: Context,
    *,
    name: str,
    subnet: str | None,
    host_subnet_size: int,
    vni: int | None,
    mtu: int | None,
    underlay_ip: str | None,
) -> Outcome[Network]:
    validate.name(name, "network name")
    if subnet is None:
        raise ValidationError("--driver vxlan needs --subnet (the whole overlay's subnet)")
    net = validate.network_subnet(subnet)
    if not net.prefixlen < host_subnet_size <= 30:
        raise ValidationError(
            f"--host-subnet-size {host_subnet_size} does not fit subnet {net}: between /{net.prefixlen + 1} and /30"
        )
    if vni is not None and not 1 <= vni <= po.VNI_MAX:
        raise ValidationError(f"VNI {vni} is out of range (1-{po.VNI_MAX})")
    if mtu is not None:
        validate.mtu(mtu)
    cl = cluster(ctx)
    ctx.require_root()
    snap = snapshot(cl)
    existing = snap.networks.get(name)
    if existing is not None:
        same = (
            existing.subnet == str(net)
            and existing.host_subnet_size == host_subnet_size
            and vni in (None, existing.vni)
            and mtu in (None, existing.mtu)
        )
        if not same:
            raise Conflict(
                f"network {name!r} exists in etcd with other parameters (subnet {existing.subnet}, "
                f"host subnets /{existing.host_subnet_size}, vni {existing.vni}, mtu {existing.mtu or 'auto'})"
            )
        with ctx.store.read() as conn:
            if store.find_network(conn, name) is not None:
                raise Conflict(f"network {name!r} already exists")
        return join(ctx, cl, name, underlay_ip=underlay_ip, snap=snap)
    for other in snap.networks.values():
        if net.overlaps(ipaddress.IPv4Network(other.subnet)):
            raise Conflict(f"subnet {net} overlaps overlay network {other.name!r} ({other.subnet})")
    if vni is not None and vni in snap.vnis:
        raise Conflict(f"VNI {vni} is in use by overlay network {snap.vnis[vni]!r}")
    chosen = vni if vni is not None else next(v for v in range(1, po.VNI_MAX + 1) if v not in snap.vnis)
    with ctx.store.read() as conn:
        if store.network_name_taken(conn, name):
            raise Conflict(f"network {name!r} already exists")
    check_local_overlaps(ctx, str(net))
    d = po.Definition(name, str(net), host_subnet_size, chosen, mtu)
    if ctx.dry_run:
        snap.networks[name] = d
        return join(ctx, cl, name, underlay_ip=underlay_ip, snap=snap)
    ok = cl.txn(
        [absent(po.network_key(name)), absent(po.vni_key(chosen))],
        [put(po.network_key(name), d.value()), put(po.vni_key(chosen), name)],
    )
    if not ok:
        raise Conflict(f"network {name!r} or VNI {chosen} was defined by another host just now; try again")
    snap.networks[name] = d
    snap.vnis[chosen] = name
    try:
        return join(ctx, cl, name, underlay_ip=underlay_ip, snap=snap)
    except BaseException:
        cl.txn([], [delete(po.network_key(name)), delete(po.vni_key(chosen))])
        raise


def remove(ctx: Context, name: str) -> Outcome[Network] | None:
    """`net rm` of an overlay network: refused while another live host has containers on it;
    this host's share goes first (refused while it has containers), then the definition in
    etcd; the other hosts' agents (or their next command) remove their shares."""
    cl = cluster(ctx)
    ctx.require_root()
    snap = snapshot(cl)
    me = host_id(ctx)
    busy = snap.busy_hosts(name, me)
    if busy:
        raise Conflict(f"network {name} still has containers on host(s) {', '.join(busy)}")
    with ctx.store.read() as conn:
        local = store.find_network(conn, name)
    d = snap.networks.get(name)
    if local is None and d is None:
        raise NotFound(f"network {name!r} not found (neither here nor in etcd at {cl.describe()})")
    out = remove_network(ctx, name) if local is not None else None
    if ctx.dry_run:
        return out
    if d is not None:
        cl.txn(
            [],
            [
                delete(po.network_key(name)),
                delete(po.vni_key(d.vni)),
                delete_prefix(f"{po.SUBNETS}{name}/"),
                delete_prefix(f"{po.MEMBERS}{name}/"),
            ],
        )
    forget_host_if_idle(ctx, cl)
    return out


def forget_host_if_idle(ctx: Context, cl: Cluster) -> None:
    """No overlay network left here: the host's leases end now, its settings go."""
    with ctx.store.write() as conn:
        if ostore.overlay_networks(conn):
            return
        stale = ostore.forget_host(conn)
    (ctx.state_dir / ostore.MARKER).unlink(missing_ok=True)
    for lease in stale:
        try:
            cl.revoke(lease)
        except ClusterUnavailable:
            pass


def cluster_networks(ctx: Context) -> list[po.Definition]:
    return sorted(snapshot(cluster(ctx)).networks.values(), key=lambda d: d.name)
