"""Network use cases: create, list, inspect, remove."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

from .. import ipam, journal as journal_mod, naming, validate
from ..commands import Plan, Step, cmd
from ..errors import CnetError, Conflict, NotFound, ValidationError
from ..kernel import ip as ipk
from ..kernel import iptables as ipt
from .context import Context

DEFAULT_POOLS = [ipaddress.IPv4Network(f"10.{n}.0.0/16") for n in range(91, 100)]
DEFAULT_POOL_PREFIX = 24
DEFAULT_MTU = 1500
IP_FORWARD_SETTING = "ip_forward_before_cnet"


@dataclass
class Outcome:
    """What a use case returns: the plan (always) and, unless dry-run, a result to show."""

    plan: Plan
    result: object = None


def row_to_dict(row) -> dict:
    return dict(row._mapping) if row is not None else None


def get_network(conn: sa.Connection, name_or_id: str) -> dict:
    row = conn.exec_driver_sql("SELECT * FROM networks WHERE name = ? OR id = ?", (name_or_id, name_or_id)).first()
    if row is None:
        raise NotFound(f"network {name_or_id!r} not found")
    return row_to_dict(row)


def network_steps(net: dict) -> list[Step]:
    """The steps that create one network's kernel objects (without the base chains)."""
    return [
        ipk.bridge_create(net["bridge"], net["gateway"], net["prefix_len"], net["mtu"]),
        ipk.route_localnet(net["bridge"]),
        ipt.rules_add(_net_rules(net), f"install firewall rules of network {net['name']}"),
    ]


def _net_rules(net: dict) -> list[ipt.Rule]:
    return ipt.network_rules(name=net["name"], bridge=net["bridge"], subnet=net["subnet"], internal=bool(net["internal"]))


def base_steps(ip_forward_before: str) -> list[Step]:
    return [ipk.ip_forward(True, ip_forward_before), ipt.base_create()]


def read_ip_forward() -> str:
    try:
        return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() or "0"
    except OSError:
        return "0"


def host_routes(ctx: Context) -> list[tuple[ipaddress.IPv4Network, str]]:
    """The host's IPv4 routes (main table) as (destination, device): a cnet subnet must not
    shadow them. Read from /proc/net/route, which needs no privileges (--dry-run sees the same)
    and no process."""
    from ..kernel.parse import proc_net_route

    try:
        return proc_net_route(Path("/proc/net/route").read_text())
    except OSError as exc:
        raise CnetError(f"cannot read the host's routes from /proc/net/route: {exc}") from None


def _overlapping(conn: sa.Connection, first: int, last: int):
    return conn.exec_driver_sql(
        "SELECT name, subnet FROM networks WHERE subnet_first_int <= ? AND subnet_last_int >= ? LIMIT 1",
        (last, first),
    ).first()


def _pick_default_subnet(ctx: Context, conn: sa.Connection) -> ipaddress.IPv4Network:
    routes = [r for r, _dev in host_routes(ctx)]
    for pool in DEFAULT_POOLS:
        for candidate in pool.subnets(new_prefix=DEFAULT_POOL_PREFIX):
            if _overlapping(conn, int(candidate.network_address), int(candidate.broadcast_address)):
                continue
            if any(candidate.overlaps(r) for r in routes):
                continue
            return candidate
    raise ValidationError("no free subnet left in the default pools (10.91.0.0/16-10.99.0.0/16): pass --subnet")


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
) -> Outcome:
    # Everything the user typed is checked before the database or the kernel is touched.
    validate.name(name, "network name")
    if driver != "bridge":
        raise ValidationError(f"unknown driver {driver!r}: only 'bridge' is supported")
    validate.mtu(mtu)
    net_subnet = validate.network_subnet(subnet) if subnet is not None else None  # "" is an error, not "pick one"
    if net_subnet is None and (gateway or ip_range):
        raise ValidationError("--gateway and --ip-range need --subnet")
    ctx.require_root()

    with ctx.network_lock():
        store = ctx.store
        with store.write() as conn:
            if conn.exec_driver_sql("SELECT 1 FROM networks WHERE name = ?", (name,)).first():
                raise Conflict(f"network {name!r} already exists")
            if net_subnet is None:
                net_subnet = _pick_default_subnet(ctx, conn)
            clash = _overlapping(conn, int(net_subnet.network_address), int(net_subnet.broadcast_address))
            if clash:
                raise Conflict(f"subnet {net_subnet} overlaps network {clash[0]!r} ({clash[1]})")
            gw = _gateway(net_subnet, gateway)
            rng = _ip_range(net_subnet, ip_range)
            for route, dev in host_routes(ctx):
                if net_subnet.overlaps(route):
                    # The bridge's connected route would shadow (or be shadowed by) the host's.
                    raise Conflict(f"subnet {net_subnet} overlaps the host route {route} (dev {dev}); choose another subnet")
            lo, hi = ipam.dynamic_bounds(net_subnet, rng)
            network_id = naming.new_id()
            net = {
                "id": network_id,
                "name": name,
                "driver": driver,
                "subnet": str(net_subnet),
                "subnet_first_int": int(net_subnet.network_address),
                "subnet_last_int": int(net_subnet.broadcast_address),
                "prefix_len": net_subnet.prefixlen,
                "gateway": str(gw),
                "ip_range": str(rng) if rng else None,
                "range_first_int": lo,
                "range_last_int": hi,
                "alloc_cursor_int": lo - 1,
                "bridge": naming.bridge_name(network_id),
                "mtu": mtu,
                "internal": int(internal),
                "state": "creating",
                "created_at": time.time(),
            }
            plan = Plan()
            first = conn.exec_driver_sql("SELECT count(*) FROM networks").scalar() == 0
            if first:
                before = read_ip_forward()
                conn.exec_driver_sql(
                    "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (IP_FORWARD_SETTING, before)
                )
                plan.extend(base_steps(before))
            plan.extend(network_steps(net))
            cols = ", ".join(net)
            conn.exec_driver_sql(
                f"INSERT INTO networks ({cols}) VALUES ({', '.join('?' * len(net))})", tuple(net.values())
            )
            ipam.reserve_gateway(conn, network_id, net["gateway"])
            if ctx.dry_run:
                return Outcome(plan, net)
            op = ctx.journal.begin(conn, "net-create", network_id, "create", plan)

        def mark_ready(c: sa.Connection) -> None:
            c.exec_driver_sql("UPDATE networks SET state = 'ready' WHERE id = ?", (network_id,))

        ctx.journal.execute(op, on_success=mark_ready)
        net["state"] = "ready"
        return Outcome(plan, net)


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


def _rolled_back_create(conn: sa.Connection, network_id: str) -> None:
    conn.exec_driver_sql("DELETE FROM networks WHERE id = ?", (network_id,))
    if conn.exec_driver_sql("SELECT count(*) FROM networks").scalar() == 0:
        conn.exec_driver_sql("DELETE FROM settings WHERE key = ?", (IP_FORWARD_SETTING,))


def _completed_remove(conn: sa.Connection, network_id: str) -> None:
    conn.exec_driver_sql("DELETE FROM networks WHERE id = ?", (network_id,))
    if conn.exec_driver_sql("SELECT count(*) FROM networks").scalar() == 0:
        conn.exec_driver_sql("DELETE FROM settings WHERE key = ?", (IP_FORWARD_SETTING,))


journal_mod.register("net-create", rolled_back=_rolled_back_create)
journal_mod.register("net-rm", completed=_completed_remove)


def removal_steps(net: dict, last: bool, ip_forward_before: str) -> list[Step]:
    rules = _net_rules(net)
    steps = [
        Step(
            summary=f"remove firewall rules of network {net['name']}",
            do=ipt.restore(ipt.restore_input(rules, "-D")),
            fallback=tuple(ipt.single_deletes(rules)),
        ),
        ipk.bridge_delete(net["bridge"]),
    ]
    if last:
        steps += base_removal_steps(ip_forward_before)
    return steps


def base_removal_steps(ip_forward_before: str) -> list[Step]:
    fallback = [cmd(*j.argv("-D")) for j in ipt.base_jumps()]
    for table, chains in ipt.BASE_CHAINS.items():
        fallback += [cmd("iptables", "-w", "-t", table, "-F", c) for c in chains]
        fallback += [cmd("iptables", "-w", "-t", table, "-X", c) for c in chains]
    return [
        Step(summary="remove cnet base chains and their jumps", do=ipt.base_delete_command(), fallback=tuple(fallback)),
        ipk.ip_forward(False, ip_forward_before),
    ]


def remove_network(ctx: Context, name: str) -> Outcome:
    ctx.require_root()
    with ctx.network_lock():
        with ctx.store.write() as conn:
            net = get_network(conn, name)
            users = conn.exec_driver_sql(
                "SELECT c.name FROM endpoints e JOIN containers c ON c.id = e.container_id WHERE e.network_id = ? ORDER BY c.name",
                (net["id"],),
            ).fetchall()
            if users:
                names = ", ".join(u[0] for u in users)
                raise Conflict(f"network {net['name']} still has containers: {names} (stop or disconnect them first)")
            if net["state"] != "ready":
                raise Conflict(f"network {net['name']} is {net['state']}; try again when that operation ends")
            remaining = conn.exec_driver_sql("SELECT count(*) FROM networks WHERE id != ?", (net["id"],)).scalar()
            before = conn.exec_driver_sql("SELECT value FROM settings WHERE key = ?", (IP_FORWARD_SETTING,)).scalar()
            plan = Plan(best_effort=True)
            plan.extend(removal_steps(net, remaining == 0, before or "0"))
            if ctx.dry_run:
                return Outcome(plan, net)
            conn.exec_driver_sql("UPDATE networks SET state = 'removing' WHERE id = ?", (net["id"],))
            op = ctx.journal.begin(conn, "net-rm", net["id"], "destroy", plan)
        ctx.journal.execute(op)
        if op.errors:
            from ..errors import CnetError

            raise CnetError(f"network {net['name']} removed with errors: {'; '.join(op.errors)}")
        return Outcome(plan, net)


def list_networks(conn: sa.Connection) -> list[dict]:
    rows = conn.exec_driver_sql(
        "SELECT n.*, (SELECT count(*) FROM endpoints e WHERE e.network_id = n.id) AS containers "
        "FROM networks n ORDER BY n.name"
    ).fetchall()
    return [row_to_dict(r) for r in rows]


def inspect_network(conn: sa.Connection, name: str) -> dict:
    return inspect_network_row(conn, get_network(conn, name))


def inspect_network_row(conn: sa.Connection, net: dict) -> dict:
    members = conn.exec_driver_sql(
        "SELECT c.name, c.id, e.interface, e.ip, e.mac, e.host_veth FROM endpoints e "
        "JOIN containers c ON c.id = e.container_id WHERE e.network_id = ? ORDER BY c.name",
        (net["id"],),
    ).fetchall()
    return {
        "id": net["id"],
        "name": net["name"],
        "driver": net["driver"],
        "subnet": net["subnet"],
        "gateway": net["gateway"],
        "ip_range": net["ip_range"],
        "bridge": net["bridge"],
        "mtu": net["mtu"],
        "internal": bool(net["internal"]),
        "state": net["state"],
        "created": _iso(net["created_at"]),
        "containers": [
            {"name": m[0], "id": m[1], "interface": m[2], "ip": m[3], "mac": m[4], "host_veth": m[5]} for m in members
        ],
    }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    import datetime

    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="seconds")
