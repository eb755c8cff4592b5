"""Network use cases: create, remove, list, inspect."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

from .. import ipam, ipam6, naming, validate, validate6
from ..db import names_store, overlay_store, store
from ..db.connection import Connection
from ..errors import CnetError, Conflict, ValidationError
from ..frozen_record import replace
from ..kernel.parse import proc_net_route
from ..plans import network as plans
from ..records import Network, NetworkState, OpKind
from .apply import Change, Outcome, apply
from .context import Context
from .formats import iso
from .hostfacts import host_facts

DEFAULT_POOLS = [ipaddress.IPv4Network(f"10.{n}.0.0/16") for n in range(91, 100)]
DEFAULT_POOL_PREFIX = 24
DEFAULT_MTU = 1500


def host_routes6() -> list[tuple[ipaddress.IPv6Network, str]]:
    """The host's IPv6 routes (main table, from /proc/net/ipv6_route) as (destination, device),
    without the link-local, multicast and loopback ones every interface has."""
    try:
        text = Path("/proc/net/ipv6_route").read_text()
    except OSError:
        return []  # IPv6 disabled: no routes to shadow
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 10 or f[9] == "lo":
            continue
        net = ipaddress.IPv6Network((int(f[0], 16), int(f[1], 16)))
        if net.prefixlen == 0 or net.is_link_local or net.is_multicast:
            continue
        out.append((net, f[9]))
    return out


def _ipv6_part(
    conn: Connection, net6: ipaddress.IPv6Network, gateway6: str | None, ip_range6: str | None
) -> dict[str, str | None]:
    """The networks row's IPv6 columns, after the checks: no overlap with another network's IPv6
    subnet nor with a host IPv6 route, gateway and range inside the subnet."""
    clash = ipam6.overlapping_network(conn, net6)
    if clash:
        raise Conflict(f"IPv6 subnet {net6} overlaps network {clash[0]!r} ({clash[1]})")
    for route, dev in host_routes6():
        if net6.overlaps(route):
            raise Conflict(f"IPv6 subnet {net6} overlaps the host route {route} (dev {dev}); choose another subnet")
    if gateway6 is None:
        gw6 = net6.network_address + 1
    else:
        gw6 = validate.ipv6_address(gateway6, "IPv6 gateway")
        if gw6 not in net6 or gw6 == net6.network_address:
            raise ValidationError(f"IPv6 gateway {gw6} is outside subnet {net6} or its subnet-router address")
    rng6 = None
    if ip_range6 is not None:
        rng6 = validate6.subnet6(ip_range6, "IPv6 ip range")
        if not rng6.subnet_of(net6):
            raise ValidationError(f"IPv6 ip range {rng6} is not inside subnet {net6}")
    lo, hi = ipam6.dynamic_bounds(net6, rng6)
    return {
        "subnet6": str(net6),
        "subnet6_first": ipam6.to_hex(int(net6.network_address)),
        "subnet6_last": ipam6.to_hex(int(net6.broadcast_address)),
        "gateway6": str(gw6),
        "ip_range6": str(rng6) if rng6 else None,
        "range6_first": ipam6.to_hex(lo),
        "range6_last": ipam6.to_hex(hi),
        "alloc6_cursor": ipam6.to_hex(lo - 1),
    }


def host_routes() -> list[tuple[ipaddress.IPv4Network, str]]:
    """The host's IPv4 routes (main table) as (destination, device): a cnet subnet must not
    shadow them. Read from /proc/net/route, which needs no privileges (--dry-run sees the same)
    and no process."""
    try:
        return proc_net_route(Path("/proc/net/route").read_text())
    except OSError as exc:
        raise CnetError(f"cannot read the host's routes from /proc/net/route: {exc}") from None


def _overlaps_a_network(conn: Connection, net: ipaddress.IPv4Network) -> tuple[str, str] | None:
    return store.overlapping_network(conn, int(net.network_address), int(net.broadcast_address))


def _pick_default_subnet(conn: Connection) -> ipaddress.IPv4Network:
    routes = [r for r, _dev in host_routes()]
    for pool in DEFAULT_POOLS:
        for candidate in pool.subnets(new_prefix=DEFAULT_POOL_PREFIX):
            if _overlaps_a_network(conn, candidate):
                continue
            if any(candidate.overlaps(r) for r in routes):
                continue
            return candidate
    raise ValidationError("no free subnet left in the default pools (10.91.0.0/16-10.99.0.0/16): pass --subnet")


def _gateway(net: ipaddress.IPv4Network, gateway: str | None) -> ipaddress.IPv4Address:
    if gateway is None:
        return net.network_address + 1
    gw = validate.ipv4_address(gateway, "gateway")
    if gw not in net:
        raise ValidationError(f"gateway {gw} is outside subnet {net}")
    if gw in (net.network_address, net.broadcast_address):
        raise ValidationError(f"gateway {gw} is the network or broadcast address of {net}")
    return gw


def _ip_range(net: ipaddress.IPv4Network, ip_range: str | None) -> ipaddress.IPv4Network | None:
    if ip_range is None:
        return None
    rng = validate.subnet(ip_range, "ip range")
    if not rng.subnet_of(net):
        raise ValidationError(f"ip range {rng} is not inside subnet {net}")
    return rng


def create_network(
    ctx: Context,
    *,
    name: str,
    subnet: str | None = None,
    gateway: str | None = None,
    ip_range: str | None = None,
    mtu: int = DEFAULT_MTU,
    internal: bool = False,
    driver: str = "bridge",
    labels: dict[str, str] | None = None,
    overlay: dict[str, Any] | None = None,
    subnet6: str | None = None,
    gateway6: str | None = None,
    ip_range6: str | None = None,
) -> Outcome[Network]:
    """overlay: this host's share of an overlay network (services/overlay.py): the network's id
    and its overlay_* fields; `subnet` is then the host subnet and the driver is vxlan.
    subnet6 (with gateway6, ip_range6): a dual-stack network (`--ipv6`)."""
    # Everything the user typed is checked before the database or the kernel is touched.
    validate.name(name, "network name")
    if name == validate.NO_NETWORK:
        raise ValidationError(f"invalid network name {name!r}: `--net {name}` means no network")
    if driver != ("vxlan" if overlay else "bridge"):
        raise ValidationError(f"unknown driver {driver!r}: 'bridge', or 'vxlan' with --etcd")
    validate.mtu(mtu)
    requested = validate.network_subnet(subnet) if subnet is not None else None  # "" is an error, not "pick one"
    if requested is None and (gateway or ip_range):
        raise ValidationError("--gateway and --ip-range need --subnet")
    requested6 = validate6.network_subnet6(subnet6) if subnet6 is not None else None
    if requested6 is None and (gateway6 or ip_range6):
        raise ValidationError("an IPv6 --gateway or --ip-range needs --ipv6 and an IPv6 --subnet")
    if requested6 is not None and not Path("/proc/sys/net/ipv6").exists():
        raise CnetError("IPv6 is disabled on this host (no /proc/sys/net/ipv6): --ipv6 cannot work here")
    ctx.require_root()
    facts = None

    def prepare(conn: Connection) -> Change[Network]:
        if store.network_name_taken(conn, name):
            raise Conflict(f"network {name!r} already exists")
        net_subnet = requested if requested is not None else _pick_default_subnet(conn)
        clash = _overlaps_a_network(conn, net_subnet)
        if clash:
            raise Conflict(f"subnet {net_subnet} overlaps network {clash[0]!r} ({clash[1]})")
        for other, whole in overlay_store.overlay_subnets(conn).items():
            # An overlay's other hosts route their shares of it through this host's vxlan device.
            if other != name and net_subnet.overlaps(ipaddress.IPv4Network(whole)):
                raise Conflict(f"subnet {net_subnet} overlaps overlay network {other!r} ({whole})")
        gw = _gateway(net_subnet, gateway)
        rng = _ip_range(net_subnet, ip_range)
        for route, dev in host_routes():
            if net_subnet.overlaps(route):
                # The bridge's connected route would shadow (or be shadowed by) the host's.
                raise Conflict(
                    f"subnet {net_subnet} overlaps the host route {route} (dev {dev}); choose another subnet"
                )
        lo, hi = ipam.dynamic_bounds(net_subnet, rng)
        v6: dict[str, Any] = _ipv6_part(conn, requested6, gateway6, ip_range6) if requested6 is not None else {}
        first6 = bool(v6) and ipam6.other_count(conn, "") == 0
        extra = dict(overlay or {})
        network_id = extra.pop("id", None) or naming.new_id()
        net = Network(
            id=network_id,
            name=name,
            driver=driver,
            subnet=str(net_subnet),
            subnet_first_int=int(net_subnet.network_address),
            subnet_last_int=int(net_subnet.broadcast_address),
            prefix_len=net_subnet.prefixlen,
            gateway=str(gw),
            ip_range=str(rng) if rng else None,
            range_first_int=lo,
            range_last_int=hi,
            alloc_cursor_int=lo - 1,
            bridge=naming.bridge_name(network_id),
            mtu=mtu,
            internal=internal,
            state=NetworkState.CREATING,
            created_at=time.time(),
            bridge_mac=naming.bridge_mac(network_id),
            **extra,
            **v6,
        )
        first = store.network_count(conn) == 0
        assert facts is not None
        if first:
            if facts.ip_forward != "1" and not facts.sysctl_writable:
                raise CnetError(
                    "IPv4 forwarding is off and /proc/sys is read-only: turn net.ipv4.ip_forward on where "
                    "/proc/sys is writable, then run this again"
                )
            store.put_setting(conn, store.IP_FORWARD_SETTING, facts.ip_forward)
        if first6:
            if facts.ip6_forward != "1" and not facts.sysctl_writable:
                raise CnetError("IPv6 forwarding is off and /proc/sys is read-only: turn it on, then run this again")
            store.put_setting(conn, store.IP6_FORWARD_SETTING, facts.ip6_forward)
        store.insert_network(conn, net)
        names_store.insert_labels(conn, "network_labels", "network_id", network_id, labels or {})
        ipam.reserve_gateway(conn, network_id, net.gateway)
        if net.gateway6:
            ipam6.reserve_gateway(conn, network_id, net.gateway6)

        def mark_ready(c: Connection) -> None:
            store.set_network_state(c, network_id, NetworkState.READY)

        return Change(
            OpKind.NET_CREATE,
            network_id,
            plans.create(net, first=first, facts=facts, first6=first6),
            net,
            on_success=mark_ready,
        )

    with ctx.network_lock():
        # The network lock serializes create/remove and gc: the count cannot change before
        # prepare() runs. Only the first network reads the rule sets (its base chains adopt
        # what an earlier life left); every network reads the sysctls.
        with ctx.store.read() as conn:
            first = store.network_count(conn) == 0
        facts = host_facts(ctx if first else None)
        out = apply(ctx, prepare)
    if facts.route_localnet_blocked():
        ctx.say(
            f"cnet: warning: /proc/sys is read-only: route_localnet stays off on the bridge of network {name}, "
            "so its 127.0.0.1 port mappings will not answer (other host addresses will)"
        )
    if ctx.dry_run:
        return out
    return Outcome(out.plan, replace(out.result, state=NetworkState.READY))


def remove_network(ctx: Context, name: str) -> Outcome[Network]:
    ctx.require_root()

    def prepare(conn: Connection) -> Change[Network]:
        net = store.get_network(conn, name)
        containers, attachments = store.network_users(conn, net.id)
        if containers:
            raise Conflict(
                f"network {net.name} still has containers: {', '.join(containers)} (stop or disconnect them first)"
            )
        if attachments:
            raise Conflict(
                f"network {net.name} still has CNI attachments: {', '.join(attachments)} "
                "(their runtimes' DEL releases them)"
            )
        if net.state != NetworkState.READY:
            raise Conflict(f"network {net.name} is {net.state}; try again when that operation ends")
        last = store.other_network_count(conn, net.id) == 0
        before = store.get_setting(conn, store.IP_FORWARD_SETTING)
        last6 = bool(net.subnet6) and ipam6.other_count(conn, net.id) == 0
        plan = plans.remove(
            net,
            last=last,
            ip_forward_before=before or "0",
            facts=host_facts(),
            last6=last6,
            ip6_forward_before=store.get_setting(conn, store.IP6_FORWARD_SETTING) or "0",
        )
        if not ctx.dry_run:
            store.set_network_state(conn, net.id, NetworkState.REMOVING)
        return Change(OpKind.NET_RM, net.id, plan, net, title=f"network {net.name} removed")

    with ctx.network_lock():
        return apply(ctx, prepare)


# --- views ------------------------------------------------------------------------------------------


def unused_networks(conn: Connection) -> list[str]:
    """Names of the networks no container is attached to (`net prune`)."""
    return names_store.unused_network_names(conn)


def list_networks(conn: Connection) -> list[dict[str, Any]]:
    """One row per network for `net ls`."""
    return [
        {
            "name": n.name,
            "id": n.id,
            "driver": n.driver,
            "subnet": n.subnet,
            "gateway": n.gateway,
            "subnet6": n.subnet6,
            "bridge": n.bridge,
            "internal": n.internal,
            "containers": count,
        }
        for n, count in store.networks_with_counts(conn)
    ]


def inspect_all(conn: Connection) -> list[dict[str, Any]]:
    return [describe(conn, n) for n, _count in store.networks_with_counts(conn)]


def inspect_network(conn: Connection, name: str) -> dict[str, Any]:
    return describe(conn, store.get_network(conn, name))


def describe(conn: Connection, net: Network) -> dict[str, Any]:
    members = store.network_members(conn, net.id)
    return {
        "id": net.id,
        "name": net.name,
        "driver": net.driver,
        "subnet": net.subnet,
        "gateway": net.gateway,
        "ip_range": net.ip_range,
        "ipv6": net.subnet6 is not None,
        "subnet6": net.subnet6,
        "gateway6": net.gateway6,
        "ip_range6": net.ip_range6,
        "bridge": net.bridge,
        "bridge_mac": net.bridge_mac,
        "mtu": net.mtu,
        "internal": net.internal,
        "state": str(net.state),
        "created": iso(net.created_at),
        "labels": names_store.network_labels(conn, net.id),
        "overlay": (
            {
                "subnet": net.overlay_subnet,
                "vni": net.vni,
                "vxlan": naming.vxlan_name(net.id),
                "vtep_mac": net.vtep_mac,
                "underlay_ip": net.underlay_ip,
                "underlay_dev": net.underlay_dev,
                "peers": [
                    {"host_subnet": p[0], "host_id": p[1], "underlay_ip": p[2], "vtep_mac": p[3]}
                    for p in overlay_store.peers(conn, net.id)
                ],
            }
            if net.overlay
            else None
        ),
        "containers": [
            {"name": m[0], "id": m[1], "interface": m[2], "ip": m[3], "ip6": m[6], "mac": m[4], "host_veth": m[5]}
            for m in members
        ],
    }
