"""IPAM on a real migrated SQLite database: exhaustion, reserved addresses, static, ranges, next-fit."""

import ipaddress
import time

import pytest

from cnet import ipam, naming
from cnet.db import store as store_mod
from cnet.errors import AllocationError, Conflict, ValidationError
from cnet.records import Network, NetworkState

_seq = iter(range(10**6))


def make_network(store, subnet: str, *, gateway: str | None = None, ip_range: str | None = None) -> Network:
    """A network row as `net create` writes it (gateway reserved), without any kernel change."""
    net_ = ipaddress.IPv4Network(subnet)
    rng = ipaddress.IPv4Network(ip_range) if ip_range else None
    lo, hi = ipam.dynamic_bounds(net_, rng)
    n = next(_seq)
    net = Network(
        id=f"{n:012x}",
        name=f"net{n}",
        driver="bridge",
        subnet=str(net_),
        subnet_first_int=int(net_.network_address),
        subnet_last_int=int(net_.broadcast_address),
        prefix_len=net_.prefixlen,
        gateway=gateway or str(net_.network_address + 1),
        ip_range=ip_range,
        range_first_int=lo,
        range_last_int=hi,
        alloc_cursor_int=lo - 1,
        bridge=f"cnet-{n:010x}",
        mtu=1500,
        internal=False,
        state=NetworkState.READY,
        created_at=time.time(),
        bridge_mac=naming.bridge_mac(f"{n:012x}"),
    )
    with store.write() as conn:
        store_mod.insert_network(conn, net)
        ipam.reserve_gateway(conn, net.id, net.gateway)
    return net


def alloc(store, net) -> str:
    with store.write() as conn:
        return ipam.int_to_ip(ipam.allocate(conn, net))


def alloc_all(store, net) -> list[str]:
    got = []
    while True:
        try:
            got.append(alloc(store, net))
        except AllocationError:
            return got


def release(store, net, addr: str) -> None:
    with store.write() as conn:
        ipam.release(conn, net.id, ipam.ip_to_int(addr))


def static(store, net, addr: str) -> str:
    with store.write() as conn:
        return ipam.int_to_ip(ipam.allocate_static(conn, net, addr))


def held(store, net) -> list[str]:
    rows = store.all("SELECT address, kind FROM ip_allocations WHERE network_id = ? ORDER BY address_int", (net.id,))
    return [tuple(r) for r in rows]


def test_slash30_has_one_address(store):
    net = make_network(store, "10.0.0.0/30")
    assert alloc(store, net) == "10.0.0.2"
    with pytest.raises(AllocationError, match=r"network net\d+ has no free address left in 10.0.0.0/30"):
        alloc(store, net)
    assert held(store, net) == [("10.0.0.1", "gateway"), ("10.0.0.2", "dynamic")]


def test_slash29_exhaustion_never_hands_out_reserved(store):
    net = make_network(store, "10.0.0.8/29")
    got = alloc_all(store, net)
    assert got == ["10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"]
    # network (.8), gateway (.9), broadcast (.15) never handed out
    assert not {"10.0.0.8", "10.0.0.9", "10.0.0.15"} & set(got)
    with pytest.raises(AllocationError):
        alloc(store, net)


def test_gateway_in_the_middle_is_skipped(store):
    net = make_network(store, "10.0.0.8/29", gateway="10.0.0.12")
    got = alloc_all(store, net)
    assert got == ["10.0.0.9", "10.0.0.10", "10.0.0.11", "10.0.0.13", "10.0.0.14"]


def test_gateway_last_usable(store):
    net = make_network(store, "10.0.0.0/30", gateway="10.0.0.2")
    assert alloc_all(store, net) == ["10.0.0.1"]


def test_release_and_next_fit_reuse_order(store):
    net = make_network(store, "10.0.0.0/29")
    assert [alloc(store, net) for _ in range(3)] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    release(store, net, "10.0.0.3")
    # next-fit: the released .3 is not reused while addresses after the cursor are free
    assert alloc(store, net) == "10.0.0.5"
    assert alloc(store, net) == "10.0.0.6"
    # the cursor wraps: only now is .3 handed out again
    assert alloc(store, net) == "10.0.0.3"
    with pytest.raises(AllocationError):
        alloc(store, net)


def test_cursor_wraps_to_the_lowest_free(store):
    net = make_network(store, "10.0.0.0/29")
    alloc_all(store, net)  # .2-.6, cursor at .6 (the top)
    release(store, net, "10.0.0.5")
    release(store, net, "10.0.0.2")
    assert alloc(store, net) == "10.0.0.2"  # cursor at the end: start from the bottom
    assert alloc(store, net) == "10.0.0.5"  # then resume after the cursor
    with pytest.raises(AllocationError):
        alloc(store, net)


def test_cursor_persists_in_the_database(store):
    net = make_network(store, "10.0.0.0/24")
    alloc(store, net)
    alloc(store, net)
    release(store, net, "10.0.0.2")
    release(store, net, "10.0.0.3")
    # A fresh read of the row (another cnet process) continues after the cursor.
    row = store_mod.get_network(store, net.id)
    assert ipam.int_to_ip(row.alloc_cursor_int) == "10.0.0.3"
    assert alloc(store, row) == "10.0.0.4"


def test_run_of_taken_addresses_is_skipped(store):
    net = make_network(store, "10.0.0.0/24")
    for a in ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.6"]:
        static(store, net, a)
    # static allocations do not move the cursor; the dynamic search walks past the taken run
    assert alloc(store, net) == "10.0.0.5"
    assert alloc(store, net) == "10.0.0.7"


def test_ip_range_limits_dynamic_allocation(store):
    net = make_network(store, "10.0.0.0/24", ip_range="10.0.0.128/30")
    assert alloc_all(store, net) == ["10.0.0.128", "10.0.0.129", "10.0.0.130", "10.0.0.131"]
    with pytest.raises(AllocationError, match=r"no free address left in 10\.0\.0\.128/30"):
        alloc(store, net)
    # a static address outside the range but inside the subnet is fine
    assert static(store, net, "10.0.0.20") == "10.0.0.20"


def test_ip_range_with_gateway_and_network_address(store):
    net = make_network(store, "10.0.0.0/24", ip_range="10.0.0.0/30")
    assert alloc_all(store, net) == ["10.0.0.2", "10.0.0.3"]


def test_ip_range_at_the_top_excludes_broadcast(store):
    net = make_network(store, "10.0.0.0/24", ip_range="10.0.0.252/30")
    assert alloc_all(store, net) == ["10.0.0.252", "10.0.0.253", "10.0.0.254"]


@pytest.mark.parametrize(
    "addr, exc, fragment",
    [
        ("10.0.1.5", ValidationError, "is outside network"),
        ("10.0.0.0", ValidationError, "is the network address of 10.0.0.0/24"),
        ("10.0.0.255", ValidationError, "is the broadcast address of 10.0.0.0/24"),
        ("10.0.0.1", ValidationError, "is the gateway of network"),
        ("not-an-ip", ValidationError, "not an IPv4 address"),
        ("fd00::5", ValidationError, "an IPv6 address where IPv4 is expected"),
    ],
)
def test_static_errors(store, addr, exc, fragment):
    net = make_network(store, "10.0.0.0/24")
    before = held(store, net)
    with pytest.raises(exc, match=fragment):
        static(store, net, addr)
    assert held(store, net) == before


def test_static_held_is_a_conflict(store):
    net = make_network(store, "10.0.0.0/24")
    assert static(store, net, "10.0.0.9") == "10.0.0.9"
    with pytest.raises(
        Conflict, match=r"IP address 10\.0\.0\.9 is already in use on network net\d+ by another allocation"
    ):
        static(store, net, "10.0.0.9")
    dyn = alloc(store, net)
    with pytest.raises(Conflict):
        static(store, net, dyn)


def test_static_then_dynamic_never_collide(store):
    net = make_network(store, "10.0.0.0/29")
    static(store, net, "10.0.0.2")
    static(store, net, "10.0.0.4")
    assert alloc_all(store, net) == ["10.0.0.3", "10.0.0.5", "10.0.0.6"]


def test_failed_allocation_leaves_no_row(store):
    net = make_network(store, "10.0.0.0/30")
    alloc(store, net)
    before = held(store, net)
    with pytest.raises(AllocationError):
        alloc(store, net)
    assert held(store, net) == before


def test_networks_are_independent(store):
    a = make_network(store, "10.0.0.0/30")
    b = make_network(store, "10.0.1.0/30")
    assert alloc(store, a) == "10.0.0.2"
    assert alloc(store, b) == "10.0.1.2"


def test_large_subnet_is_cheap(store):
    # A /8 costs what a /24 does: nothing proportional to the subnet size is read or written.
    net = make_network(store, "10.0.0.0/8")
    start = time.perf_counter()
    got = [alloc(store, net) for _ in range(20)]
    assert got[0] == "10.0.0.2" and got[-1] == "10.0.0.21"
    assert time.perf_counter() - start < 5
    count = store.scalar("SELECT count(*) FROM ip_allocations WHERE network_id = ?", (net.id,))
    assert count == 21


def test_dynamic_bounds():
    s = ipaddress.IPv4Network("10.0.0.0/24")
    assert ipam.dynamic_bounds(s, None) == (ipam.ip_to_int("10.0.0.1"), ipam.ip_to_int("10.0.0.254"))
    r = ipaddress.IPv4Network("10.0.0.16/28")
    assert ipam.dynamic_bounds(s, r) == (ipam.ip_to_int("10.0.0.16"), ipam.ip_to_int("10.0.0.31"))
