"""IP address management on integers, over the ip_allocations table.

- The network address, the broadcast address and the gateway are never handed out (the first two
  lie outside the dynamic bounds, the gateway holds an allocation row of kind 'gateway').
- Next-fit from a cursor, as CNI host-local does: a released address is not reused at once, while
  conntrack entries and neighbours' ARP caches may still point at it.
- Cost does not depend on the subnet size: a lookup by primary key for the candidate after the
  cursor, and only when it is taken, an index walk to the end of the run of taken addresses.
  Nothing proportional to the subnet (no bitmap) is read or written, so a /8 costs what a /24 does.

All functions run inside the caller's write transaction (BEGIN IMMEDIATE), which makes the
read-then-insert atomic across processes.
"""

from __future__ import annotations

import ipaddress
import time

from .db import queries as q
from .db.connection import Connection
from .errors import AllocationError, Conflict, ValidationError
from .records import Network
from .validate import ipv4_address


def int_to_ip(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def ip_to_int(value: str) -> int:
    return int(ipaddress.IPv4Address(value))


def dynamic_bounds(subnet: ipaddress.IPv4Network, ip_range: ipaddress.IPv4Network | None) -> tuple[int, int]:
    lo = int(subnet.network_address) + 1
    hi = int(subnet.broadcast_address) - 1
    if ip_range is not None:
        lo = max(lo, int(ip_range.network_address))
        hi = min(hi, int(ip_range.broadcast_address))
    return lo, hi


def _first_free_from(conn: Connection, network_id: str, start: int, hi: int) -> int | None:
    if start > hi:
        return None
    if conn.one(q.ALLOC_TAKEN, (network_id, start)) is None:
        return start
    row = conn.one(q.ALLOC_RUN_END, (network_id, start, hi))
    if row is None or row[0] > hi:
        return None
    found: int = row[0]
    return found


def next_free(conn: Connection, network_id: str, lo: int, hi: int, cursor: int) -> int | None:
    start = cursor + 1 if lo <= cursor < hi else lo
    found = _first_free_from(conn, network_id, start, hi)
    if found is None and start > lo:
        found = _first_free_from(conn, network_id, lo, start - 1)
    return found


def allocate(conn: Connection, network: Network) -> int:
    """Hand out the next free address of the network's dynamic range; returns it as an integer.
    The cursor is read here, inside the caller's write transaction (the record may be older)."""
    lo, hi = network.range_first_int, network.range_last_int
    cursor: int = conn.scalar(q.NETWORK_CURSOR, (network.id,))
    addr = cursor + 1 if lo <= cursor < hi else lo
    # Next-fit's common case, the address after the cursor is free: test and take it in one
    # statement.
    if (
        conn.execute(q.ALLOC_INSERT_IF_FREE, (network.id, addr, int_to_ip(addr), "dynamic", None, time.time())).rowcount
        != 1
    ):
        found = next_free(conn, network.id, lo, hi, cursor)
        if found is None:
            raise AllocationError(
                f"network {network.name} has no free address left in {network.ip_range or network.subnet}"
            )
        addr = found
        conn.execute(q.ALLOC_INSERT, (network.id, addr, int_to_ip(addr), "dynamic", None, time.time()))
    conn.execute(q.NETWORK_SET_CURSOR, (addr, network.id))
    return addr


def check_static(network: Network, requested: str) -> int:
    """Validate a requested address against the subnet (no state needed). Returns it as int."""
    addr = ipv4_address(requested, "IP address")
    subnet = ipaddress.IPv4Network(network.subnet)
    if addr not in subnet:
        raise ValidationError(f"IP address {addr} is outside network {network.name} ({subnet})")
    if addr == subnet.network_address:
        raise ValidationError(f"IP address {addr} is the network address of {subnet}")
    if addr == subnet.broadcast_address:
        raise ValidationError(f"IP address {addr} is the broadcast address of {subnet}")
    if str(addr) == network.gateway:
        raise ValidationError(f"IP address {addr} is the gateway of network {network.name}")
    return int(addr)


def allocate_static(conn: Connection, network: Network, requested: str) -> int:
    addr = check_static(network, requested)
    holder = conn.one(q.ALLOC_HOLDER, (network.id, addr))
    if holder is not None:
        who = f"container {holder[0]}" if holder[0] else "another allocation"
        raise Conflict(f"IP address {int_to_ip(addr)} is already in use on network {network.name} by {who}")
    conn.execute(q.ALLOC_INSERT, (network.id, addr, int_to_ip(addr), "static", None, time.time()))
    return addr


def reserve_gateway(conn: Connection, network_id: str, gateway: str) -> None:
    addr = ip_to_int(gateway)
    conn.execute(q.ALLOC_INSERT, (network_id, addr, gateway, "gateway", None, time.time()))


def bind(conn: Connection, network_id: str, addr: int, endpoint_id: int) -> None:
    conn.execute(q.ALLOC_BIND, (endpoint_id, network_id, addr))


def release(conn: Connection, network_id: str, addr: int) -> None:
    conn.execute(q.ALLOC_DELETE, (network_id, addr))
