"""IPv6 IPAM (cnet.ipam6) on a real migrated SQLite database: hex keys that sort as numbers,
next-fit with wrap-around, exhaustion, static addresses, ranges, a /64's cost."""

import ipaddress
import time

import pytest

from cnet import ipam6
from cnet.errors import AllocationError, Conflict, ValidationError

from .test_ipam import make_network

GW6 = "fd00:1::1"


def make_dual(store, subnet6: str, *, ip_range6: str | None = None, gateway6: str | None = None):
    net = make_network(store, "10.0.0.0/24")
    n6 = ipaddress.IPv6Network(subnet6)
    rng = ipaddress.IPv6Network(ip_range6) if ip_range6 else None
    lo, hi = ipam6.dynamic_bounds(n6, rng)
    gw = gateway6 or str(n6.network_address + 1)
    cols = {
        "subnet6": str(n6),
        "subnet6_first": ipam6.to_hex(int(n6.network_address)),
        "subnet6_last": ipam6.to_hex(int(n6.broadcast_address)),
        "gateway6": gw,
        "ip_range6": ip_range6,
        "range6_first": ipam6.to_hex(lo),
        "range6_last": ipam6.to_hex(hi),
        "alloc6_cursor": ipam6.to_hex(lo - 1),
    }
    with store.write() as conn:
        sets = ", ".join(f"{k} = ?" for k in cols)
        conn.execute(f"UPDATE networks SET {sets} WHERE id = ?", (*cols.values(), net.id))
        ipam6.reserve_gateway(conn, net.id, gw)
    from cnet.frozen_record import replace

    return replace(net, **cols)


def alloc(store, net) -> str:
    with store.write() as conn:
        return str(ipaddress.IPv6Address(ipam6.allocate(conn, net)))


def alloc_all(store, net) -> list[str]:
    got = []
    while True:
        try:
            got.append(alloc(store, net))
        except AllocationError:
            return got


def release(store, net, addr: str) -> None:
    with store.write() as conn:
        ipam6.release(conn, net.id, int(ipaddress.IPv6Address(addr)))


def test_hex_keys_sort_as_numbers():
    values = [0, 1, 15, 16, 255, 2**64 - 1, 2**64, 2**127, 2**128 - 1]
    keys = [ipam6.to_hex(v) for v in values]
    assert sorted(keys) == keys and all(len(k) == 32 for k in keys)
    assert [ipam6.from_hex(k) for k in keys] == values
    assert ipam6.hex_to_ip(ipam6.ip_to_hex("fd00:1::2")) == "fd00:1::2"


def test_slash126_hands_out_two_addresses_then_is_exhausted(store):
    net = make_dual(store, "fd00:1::/126")
    # ::0 is the subnet-router address, ::1 the gateway; IPv6 has no broadcast: ::3 is usable.
    assert alloc_all(store, net) == ["fd00:1::2", "fd00:1::3"]
    with pytest.raises(AllocationError, match=r"no free IPv6 address left in fd00:1::/126"):
        alloc(store, net)


def test_next_fit_wraps_and_does_not_reuse_at_once(store):
    net = make_dual(store, "fd00:1::/125")  # ::2-::7 dynamic
    assert alloc_all(store, net) == [f"fd00:1::{i}" for i in range(2, 8)]
    release(store, net, "fd00:1::3")
    release(store, net, "fd00:1::5")
    assert alloc(store, net) == "fd00:1::3"  # the cursor is at the end: wrap to the first free
    assert alloc(store, net) == "fd00:1::5"
    release(store, net, "fd00:1::4")
    release(store, net, "fd00:1::2")
    assert alloc(store, net) == "fd00:1::2"  # after ::5 nothing is free up to the end: wrap


def test_a_run_of_taken_addresses_is_walked_to_its_end(store):
    net = make_dual(store, "fd00:1::/64")
    for addr in ("fd00:1::2", "fd00:1::3", "fd00:1::4"):
        with store.write() as conn:
            ipam6.allocate_static(conn, net, addr)
    assert alloc(store, net) == "fd00:1::5"
    assert alloc(store, net) == "fd00:1::6"


def test_range_and_the_top_of_a_slash64(store):
    net = make_dual(store, "fd00:1::/64", ip_range6="fd00:1::ffff:ffff:ffff:fffe/127")
    assert alloc_all(store, net) == ["fd00:1::ffff:ffff:ffff:fffe", "fd00:1::ffff:ffff:ffff:ffff"]


def test_static_checks(store):
    net = make_dual(store, "fd00:1::/64")
    with store.write() as conn:
        assert ipam6.allocate_static(conn, net, "fd00:1::99") == int(ipaddress.IPv6Address("fd00:1::99"))
    for addr, exc, fragment in [
        ("fd00:1::99", Conflict, "already in use on network"),
        ("fd00:2::5", ValidationError, "outside network"),
        ("fd00:1::", ValidationError, "subnet-router"),
        ("fd00:1::1", ValidationError, "gateway"),
        ("10.0.0.5", ValidationError, "not an IPv6 address"),
    ]:
        with pytest.raises(exc, match=fragment), store.write() as conn:
            ipam6.allocate_static(conn, net, addr)
    v4_only = make_network(store, "10.0.1.0/24")
    with pytest.raises(ValidationError, match="has no IPv6 subnet"):
        ipam6.check_static(v4_only, "fd00:1::5")


def test_a_kept_address_comes_back_when_free_else_the_next_free_one(store):
    net = make_dual(store, "fd00:1::/64")
    ip = ipaddress.IPv6Address
    with store.write() as conn:
        assert ipam6.allocate_kept(conn, net, "fd00:1::77") == int(ip("fd00:1::77"))  # free: kept
        # Taken now (by the allocation above), gone from the subnet, or the gateway: a fresh one,
        # no error (`cnet start` must not fail for it).
        assert ipam6.allocate_kept(conn, net, "fd00:1::77") == int(ip("fd00:1::2"))
        assert ipam6.allocate_kept(conn, net, "fd00:9::5") == int(ip("fd00:1::3"))
        assert ipam6.allocate_kept(conn, net, "fd00:1::1") == int(ip("fd00:1::4"))
        kinds = [r[0] for r in conn.execute("SELECT kind FROM ip6_allocations WHERE kind != 'gateway'")]
    assert kinds == ["dynamic"] * 4


def test_overlap_lookup_on_hex_bounds(store):
    net = make_dual(store, "fd00:1::/64")
    with store.read() as conn:
        assert ipam6.overlapping_network(conn, ipaddress.IPv6Network("fd00:1::/80")) == (net.name, "fd00:1::/64")
        assert ipam6.overlapping_network(conn, ipaddress.IPv6Network("fd00::/16")) == (net.name, "fd00:1::/64")
        assert ipam6.overlapping_network(conn, ipaddress.IPv6Network("fd00:2::/64")) is None


def test_cost_does_not_depend_on_the_subnet(store):
    """A /64 (2^64 addresses) allocates as fast as a /120: nothing proportional to the subnet."""
    small, big = make_dual(store, "fd00:1::/120"), make_dual(store, "fd00:2::/64")
    t = {}
    for net in (small, big):
        start = time.perf_counter()
        for _ in range(100):
            alloc(store, net)
        t[net.subnet6] = time.perf_counter() - start
    assert t["fd00:2::/64"] < 5 * t["fd00:1::/120"] + 0.5
