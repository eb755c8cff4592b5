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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

from .errors import AllocationError, Conflict, ValidationError

_TAKEN = "SELECT 1 FROM ip_allocations WHERE network_id = ? AND address_int = ?"
# First address after a run of taken ones, starting the walk at ?3; index order, stops early.
_RUN_END = """
SELECT a.address_int + 1 FROM ip_allocations a
WHERE a.network_id = ?1 AND a.address_int >= ?2 AND a.address_int <= ?3
  AND NOT EXISTS (SELECT 1 FROM ip_allocations b WHERE b.network_id = ?1 AND b.address_int = a.address_int + 1)
ORDER BY a.address_int LIMIT 1
"""
_INSERT = (
    "INSERT INTO ip_allocations (network_id, address_int, address, kind, endpoint_id, allocated_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_IF_FREE = _INSERT.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)


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


def _first_free_from(conn: sa.Connection, network_id: str, start: int, hi: int) -> int | None:
    if start > hi:
        return None
    if conn.exec_driver_sql(_TAKEN, (network_id, start)).first() is None:
        return start
    row = conn.exec_driver_sql(_RUN_END, (network_id, start, hi)).first()
    if row is None or row[0] > hi:
        return None
    return row[0]


def next_free(conn: sa.Connection, network_id: str, lo: int, hi: int, cursor: int) -> int | None:
    start = cursor + 1 if lo <= cursor < hi else lo
    found = _first_free_from(conn, network_id, start, hi)
    if found is None and start > lo:
        found = _first_free_from(conn, network_id, lo, start - 1)
    return found


def allocate(
    conn: sa.Connection,
    network: dict,
    *,
    endpoint_id: int | None = None,
    advance_cursor: bool = True,
) -> int:
    """Hand out the next free address of the network's dynamic range; returns it as an integer."""
    lo, hi = network["range_first_int"], network["range_last_int"]
    cursor = network["alloc_cursor_int"]
    addr = cursor + 1 if lo <= cursor < hi else lo
    # Next-fit's common case, the address after the cursor is free: test and take it in one
    # statement (the primary key rejects a taken one; OR IGNORE turns that into rowcount 0).
    row = (network["id"], addr, int_to_ip(addr), "dynamic", endpoint_id, time.time())
    if conn.exec_driver_sql(_INSERT_IF_FREE, row).rowcount != 1:
        addr = next_free(conn, network["id"], lo, hi, cursor)
        if addr is None:
            raise AllocationError(
                f"network {network['name']} has no free address left in {network['ip_range'] or network['subnet']}"
            )
        conn.exec_driver_sql(_INSERT, (network["id"], addr, int_to_ip(addr), "dynamic", endpoint_id, time.time()))
    if advance_cursor:
        conn.exec_driver_sql("UPDATE networks SET alloc_cursor_int = ? WHERE id = ?", (addr, network["id"]))
        network["alloc_cursor_int"] = addr
    return addr


def check_static(network: dict, requested: str) -> int:
    """Validate a requested address against the subnet (no state needed). Returns it as int."""
    from .validate import ipv4_address

    addr = ipv4_address(requested, "IP address")
    subnet = ipaddress.IPv4Network(network["subnet"])
    if addr not in subnet:
        raise ValidationError(f"IP address {addr} is outside network {network['name']} ({subnet})")
    if addr == subnet.network_address:
        raise ValidationError(f"IP address {addr} is the network address of {subnet}")
    if addr == subnet.broadcast_address:
        raise ValidationError(f"IP address {addr} is the broadcast address of {subnet}")
    if str(addr) == network["gateway"]:
        raise ValidationError(f"IP address {addr} is the gateway of network {network['name']}")
    return int(addr)


def allocate_static(conn: sa.Connection, network: dict, requested: str, *, endpoint_id: int | None = None) -> int:
    addr = check_static(network, requested)
    holder = conn.exec_driver_sql(
        "SELECT c.name FROM ip_allocations a LEFT JOIN endpoints e ON e.id = a.endpoint_id "
        "LEFT JOIN containers c ON c.id = e.container_id WHERE a.network_id = ? AND a.address_int = ?",
        (network["id"], addr),
    ).first()
    if holder is not None:
        who = f"container {holder[0]}" if holder[0] else "another allocation"
        raise Conflict(f"IP address {int_to_ip(addr)} is already in use on network {network['name']} by {who}")
    conn.exec_driver_sql(_INSERT, (network["id"], addr, int_to_ip(addr), "static", endpoint_id, time.time()))
    return addr


def reserve_gateway(conn: sa.Connection, network_id: str, gateway: str) -> None:
    addr = ip_to_int(gateway)
    conn.exec_driver_sql(_INSERT, (network_id, addr, gateway, "gateway", None, time.time()))


def bind(conn: sa.Connection, network_id: str, addr: int, endpoint_id: int) -> None:
    conn.exec_driver_sql(
        "UPDATE ip_allocations SET endpoint_id = ? WHERE network_id = ? AND address_int = ?",
        (endpoint_id, network_id, addr),
    )


def release(conn: sa.Connection, network_id: str, addr: int) -> None:
    conn.exec_driver_sql("DELETE FROM ip_allocations WHERE network_id = ? AND address_int = ?", (network_id, addr))
