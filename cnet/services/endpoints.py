"""Putting an endpoint on a network, shared by `cnet run`, `net connect` and CNI ADD: the network
must be usable (its bridge re-created first if a reboot took it), the host ports free, and the
endpoint gets its address from IPAM."""

from __future__ import annotations

from .. import ipam, ipam6, naming, validate
from ..commands import Step
from ..db import overlay_store, store
from ..db.connection import Connection
from ..errors import Conflict, ValidationError
from ..kernel import ip as ipk
from ..netdev import bridge_ready
from ..records import ALL_ADDRESSES, Endpoint, Network, NetworkState, PortSpec
from .context import Context


def host_port_state(host_ip: str, port: int, protocol: str) -> str:
    """'free', 'in-use' (a host process listens there: the DNAT rule would shadow it) or
    'not-local' (no such address on this host: the mapping could never be reached), found by
    binding a throwaway socket, which changes nothing."""
    import errno
    import socket  # here: the CNI plugin never probes the host's ports, and pays every import

    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        s.bind((host_ip, port))
        return "free"
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return "in-use"
        if exc.errno == errno.EADDRNOTAVAIL:
            return "not-local"
        return "free"  # EACCES: a non-root --dry-run may not bind low ports; not a conflict
    finally:
        s.close()


def check_ports(conn: Connection, specs: tuple[PortSpec, ...], *, host_check: bool = True) -> None:
    """Each host port must be free of cnet's own mappings, and (host_check) of host processes."""
    for spec in specs:
        holder = store.port_holder(conn, spec)
        if holder:
            raise Conflict(
                f"host port {spec.host_ip}:{spec.host_port}/{spec.protocol} is already mapped by container {holder}"
            )
        if not host_check:
            continue
        state = host_port_state(spec.host_ip, spec.host_port, spec.protocol)
        if state == "in-use":
            raise Conflict(
                f"host port {spec.host_ip}:{spec.host_port}/{spec.protocol} is already in use by a host process"
            )
        if state == "not-local":
            raise ValidationError(f"host IP {spec.host_ip} in port mapping is not an address of this host")


def check_host_ips(ctx: Context, specs: tuple[PortSpec, ...] | list[PortSpec]) -> None:
    """Host IPs given in -p are addresses of this host, not a subnet's broadcast or network
    address: `ip -j addr` is read only when some mapping names a host IP."""
    ips = sorted({s.host_ip for s in specs if s.host_ip != ALL_ADDRESSES})
    if not ips:
        return
    from ..commands import cmd
    from ..kernel import parse

    addrs = parse.host_addrs(ctx.runner.read(cmd("ip", "-j", "addr")))
    for ip in ips:
        validate.host_ip_of_this_host(ip, addrs)


def usable_network(conn: Connection, ref: str) -> Network:
    net = store.get_network(conn, ref)
    if net.state != NetworkState.READY:
        raise Conflict(f"network {net.name} is {net.state}")
    return net


def attach(
    conn: Connection,
    container_id: str,
    net: Network,
    interface: str,
    static_ip: str | None,
    *,
    default_route: bool,
    mac: str | None = None,
    aliases: tuple[str, ...] = (),
    static_ip6: str | None = None,
    kept_ip6: str | None = None,
) -> Endpoint:
    """Allocate an address on the network (and an IPv6 one on a dual-stack network) and record the
    endpoint holding it (its MAC derived from the IPv4 address unless one is asked for). kept_ip6,
    the IPv6 address a container had before `cnet start`, is taken again when it is still free."""
    addr = ipam.allocate_static(conn, net, static_ip) if static_ip else ipam.allocate(conn, net)
    ip = ipam.int_to_ip(addr)
    addr6 = None
    if static_ip6:
        addr6 = ipam6.allocate_static(conn, net, static_ip6)
    elif net.subnet6 and kept_ip6:
        addr6 = ipam6.allocate_kept(conn, net, kept_ip6)
    elif net.subnet6:
        addr6 = ipam6.allocate(conn, net)
    ep = store.insert_endpoint(
        conn,
        container_id=container_id,
        network=net,
        interface=interface,
        host_veth=naming.host_veth_name(container_id, net.id),
        ip=ip,
        ip_int=addr,
        mac=mac or ipk.mac_for_ip(ip),
        default_route=default_route,
        aliases=aliases,
        ip6=None if addr6 is None else ipam6.hex_to_ip(ipam6.to_hex(addr6)),
    )
    ipam.bind(conn, net.id, addr, ep.id)
    if addr6 is not None:
        ipam6.bind(conn, net.id, addr6, ep.id)
    return ep


def kept_addresses(eps: list[Endpoint]) -> dict[str, list[str | None]]:
    """What a container's spec keeps of its addresses, interface by interface, so that `cnet
    start` brings it back on them when they are free (addresses6 only on a dual-stack container:
    an IPv4-only one's spec stays as it was)."""
    kept: dict[str, list[str | None]] = {"addresses": [ep.ip for ep in eps]}
    if any(ep.ip6 for ep in eps):
        kept["addresses6"] = [ep.ip6 for ep in eps]
    return kept


def restore_missing_networks(ctx: Context, names: tuple[str, ...] | list[str]) -> list[Step]:
    """A network whose bridge is gone (the host rebooted), or does not carry the MAC cnet gave it,
    is repaired before it is used. The check is one ioctl per network; the reconciler is imported
    only when a bridge really needs it (start-up time of every run:
    tests/unit/test_startup_imports.py, scripts/bench)."""
    # No transaction: each network is checked on its own, and `run` checks them all again under
    # its write lock.
    bridges = [b for b in (store.ready_bridge(ctx.store, n) for n in names) if b is not None]
    if all(bridge_ready(bridge, mac) for bridge, mac in bridges):
        return []
    from .reconcile import ensure_networks

    return ensure_networks(ctx, names)


def overlay_host(ctx: Context) -> bool:
    """--etcd given, or this host joined an overlay network: without either, `run` and `rm`
    spend no statement on overlays (tests/integration/test_startup.py)."""
    try:
        return bool(ctx.etcd) or (ctx.state_dir / overlay_store.MARKER).exists()
    except OSError:  # an unreadable state dir: opening the database says so, in one line
        return False


def overlays_first(ctx: Context, names: tuple[str, ...] | list[str]) -> tuple[list[str], list[Step]]:
    """Overlay networks among `names` (those not here while etcd is configured may be ones): joined
    on first use, their peers synced once. Returns their names, and the joins a --dry-run shows.
    The overlay module (and the etcd client) is imported only when there is one
    (tests/unit/test_startup_imports.py)."""
    if not overlay_host(ctx):
        return [], []
    found = [(n, store.find_network(ctx.store, n)) for n in names if n != validate.NO_NETWORK]
    overlays = [n for n, net in found if (net is None and ctx.etcd) or (net is not None and net.overlay)]
    if not overlays:
        return [], []
    from .overlay_use import use_networks

    return overlays, use_networks(ctx, overlays)


def overlay_counts_changed(ctx: Context) -> None:
    """A container left: hosts elsewhere read this host's container counts (`net rm`). One query
    when there is no overlay network."""
    if not overlay_host(ctx):
        return
    with ctx.store.read() as conn:
        names = sorted(overlay_store.overlay_subnets(conn))
    if names:
        from .overlay_use import after_change

        after_change(ctx, names)
