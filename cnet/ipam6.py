"""IPv6 address management, as cnet.ipam does IPv4, over the ip6_allocations table.

128-bit addresses do not fit SQLite's 64-bit integers: keys are 32 lower-case hex digits, whose
text order is numeric order, so the primary key finds a candidate and an index range walks a run
of taken addresses, as the integer keys do for IPv4. The per-allocation cost is the same: one
`INSERT OR IGNORE` of the address after the cursor; only when it is taken, an index walk to the
end of the run of taken addresses (rows stepped lazily, stopping at the first gap). A /64 costs
what a /120 does.

IPv6 has no broadcast address: the subnet's first address (the subnet-router anycast address) and
the gateway are never handed out; the last address is.
"""

from __future__ import annotations

import ipaddress
import time

from .db import queries as q
from .db.connection import Connection
from .errors import AllocationError, Conflict, ValidationError
from .records import Network
from .validate6 import ipv6_address


def to_hex(value: int) -> str:
    return format(value, "032x")


def from_hex(value: str) -> int:
    return int(value, 16)


def hex_to_ip(value: str) -> str:
    return str(ipaddress.IPv6Address(int(value, 16)))


def ip_to_hex(value: str) -> str:
    return to_hex(int(ipaddress.IPv6Address(value)))


def dynamic_bounds(subnet: ipaddress.IPv6Network, ip_range: ipaddress.IPv6Network | None) -> tuple[int, int]:
    lo = int(subnet.network_address) + 1
    hi = int(subnet.broadcast_address)
    if ip_range is not None:
        lo = max(lo, int(ip_range.network_address))
        hi = min(hi, int(ip_range.broadcast_address))
    return lo, hi


def overlapping_network(conn: Connection, net: ipaddress.IPv6Network) -> tuple[str, str] | None:
    """A network whose IPv6 subnet overlaps `net`, as (name, subnet6)."""
    row = conn.one(q.NETWORK6_OVERLAPPING, (to_hex(int(net.broadcast_address)), to_hex(int(net.network_address))))
    return None if row is None else (row[0], row[1])


def other_count(conn: Connection, network_id: str) -> int:
    """Dual-stack networks other than this one (the IPv6 base chains go with the last)."""
    return int(conn.scalar(q.NETWORK6_COUNT_OTHERS, (network_id,)))


def _first_free_from(conn: Connection, network_id: str, start: int, hi: int) -> int | None:
    if start > hi:
        return None
    expected = start
    for (taken,) in conn.execute(q.ALLOC6_FROM, (network_id, to_hex(start), to_hex(hi))):
        if from_hex(taken) != expected:
            break
        expected += 1
    return expected if expected <= hi else None


def next_free(conn: Connection, network_id: str, lo: int, hi: int, cursor: int) -> int | None:
    start = cursor + 1 if lo <= cursor < hi else lo
    found = _first_free_from(conn, network_id, start, hi)
    if found is None and start > lo:
        found = _first_free_from(conn, network_id, lo, start - 1)
    return found


def _insert(conn: Connection, network_id: str, addr: int, kind: str, *, if_free: bool = False) -> int:
    row = (network_id, to_hex(addr), str(ipaddress.IPv6Address(addr)), kind, None, time.time())
    return conn.execute(q.ALLOC6_INSERT_IF_FREE if if_free else q.ALLOC6_INSERT, row).rowcount


def allocate(conn: Connection, network: Network) -> int:
    """The next free IPv6 address of a dual-stack network's dynamic range, as an integer (inside
    the caller's write transaction)."""
    assert network.range6_first and network.range6_last
    lo, hi = from_hex(network.range6_first), from_hex(network.range6_last)
    cursor = from_hex(conn.scalar(q.NETWORK6_CURSOR, (network.id,)))
    addr = cursor + 1 if lo <= cursor < hi else lo
    if _insert(conn, network.id, addr, "dynamic", if_free=True) != 1:
        found = next_free(conn, network.id, lo, hi, cursor)
        if found is None:
            raise AllocationError(
                f"network {network.name} has no free IPv6 address left in {network.ip_range6 or network.subnet6}"
            )
        addr = found
        _insert(conn, network.id, addr, "dynamic")
    conn.execute(q.NETWORK6_SET_CURSOR, (to_hex(addr), network.id))
    return addr


def check_static(network: Network, requested: str) -> int:
    """A requested IPv6 address (--ip6) against the network (no state needed)."""
    addr = ipv6_address(requested, "IPv6 address")
    if not network.subnet6:
        raise ValidationError(f"--ip6 {addr}: network {network.name} has no IPv6 subnet (create it with --ipv6)")
    subnet = ipaddress.IPv6Network(network.subnet6)
    if addr not in subnet:
        raise ValidationError(f"IPv6 address {addr} is outside network {network.name} ({subnet})")
    if addr == subnet.network_address:
        raise ValidationError(f"IPv6 address {addr} is the subnet-router address of {subnet}")
    if str(addr) == network.gateway6:
        raise ValidationError(f"IPv6 address {addr} is the gateway of network {network.name}")
    return int(addr)


def allocate_static(conn: Connection, network: Network, requested: str) -> int:
    addr = check_static(network, requested)
    holder = conn.one(q.ALLOC6_HOLDER, (network.id, to_hex(addr)))
    if holder is not None:
        who = f"container {holder[0]}" if holder[0] else "another allocation"
        raise Conflict(
            f"IPv6 address {ipaddress.IPv6Address(addr)} is already in use on network {network.name} by {who}"
        )
    _insert(conn, network.id, addr, "static")
    return addr


def allocate_kept(conn: Connection, network: Network, wanted: str) -> int:
    """`wanted` (the address a container had before `cnet start`) when it is still valid on the
    network and free, else the next free one: as IPv4 does for a restarted container."""
    try:
        addr = check_static(network, wanted)
    except ValidationError:
        return allocate(conn, network)  # the network was re-created with another subnet
    if _insert(conn, network.id, addr, "dynamic", if_free=True) != 1:
        return allocate(conn, network)
    return addr


def reserve_gateway(conn: Connection, network_id: str, gateway: str) -> None:
    _insert(conn, network_id, int(ipaddress.IPv6Address(gateway)), "gateway")


def bind(conn: Connection, network_id: str, addr: int, endpoint_id: int) -> None:
    conn.execute(q.ALLOC6_BIND, (endpoint_id, network_id, to_hex(addr)))


def release(conn: Connection, network_id: str, addr: int) -> None:
    """(An endpoint's addresses go with its row, ON DELETE CASCADE; this is the explicit form.)"""
    conn.execute(q.ALLOC6_DELETE, (network_id, to_hex(addr)))
