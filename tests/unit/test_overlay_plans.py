"""Overlay networks without root or etcd: the vxlan builders (argv and batch input), the etcd
snapshot's reading (peers, lapsed hosts, free host subnets), the peer sync plan, the overlay's
firewall rules, and the cluster client's endpoint parsing and one-line failures."""

from __future__ import annotations

import pytest

from cnet.cluster import Cluster, ClusterUnavailable, parse_endpoints
from cnet.commands import cmd
from cnet.errors import ValidationError
from cnet.kernel import vxlan as vx
from cnet.plans import network as nplans
from cnet.plans import overlay as po
from cnet.records import Direction
from tests.unit.factories import network

OV = network(
    id="abcdef012345",
    name="ov",
    driver="vxlan",
    subnet="10.200.1.0/24",
    gateway="10.200.1.1",
    bridge="cnet-abcdef0123",
    mtu=1450,
    overlay_subnet="10.200.0.0/16",
    vni=42,
    vtep_mac="0e:ab:cd:ef:01:23",
    underlay_ip="192.0.2.1",
    underlay_dev="eth0",
)
DEV = "cnetxabcdef0123"
P2 = vx.Peer("10.200.2.0/24", "h2", "192.0.2.2", "0e:00:00:00:00:02")
P3 = vx.Peer("10.200.3.0/24", "h3", "192.0.2.3", "0e:00:00:00:00:03")


def test_vxlan_device_is_one_batch_with_its_undo():
    step = nplans.vxlan_step(OV)
    assert step.do.argv == ("ip", "-batch", "-")
    assert step.do.stdin == (
        f"link add name {DEV} address 0e:ab:cd:ef:01:23 mtu 1450 type vxlan id 42 dstport 4789 "
        "local 192.0.2.1 dev eth0 nolearning\n"
        f"addr add 10.200.1.0/32 dev {DEV}\n"
        f"link set {DEV} up\n"
    )
    assert step.undo == (cmd("ip", "link", "del", DEV),)


def test_peers_add_is_two_processes_and_undoes_entry_by_entry():
    ip_step, fdb_step = vx.peers_add(DEV, [P2, P3])
    assert ip_step.do.stdin.splitlines() == [
        f"neigh replace 10.200.2.0 lladdr 0e:00:00:00:00:02 dev {DEV} nud permanent",
        f"route replace 10.200.2.0/24 via 10.200.2.0 dev {DEV} onlink",
        f"neigh replace 10.200.3.0 lladdr 0e:00:00:00:00:03 dev {DEV} nud permanent",
        f"route replace 10.200.3.0/24 via 10.200.3.0 dev {DEV} onlink",
    ]
    assert fdb_step.do.argv == ("bridge", "-batch", "-")
    assert fdb_step.do.stdin.splitlines() == [
        f"fdb replace 0e:00:00:00:00:02 dev {DEV} dst 192.0.2.2 self permanent",
        f"fdb replace 0e:00:00:00:00:03 dev {DEV} dst 192.0.2.3 self permanent",
    ]
    assert cmd("bridge", "fdb", "del", "0e:00:00:00:00:03", "dev", DEV, "dst", "192.0.2.3") in fdb_step.undo
    assert vx.peers_add(DEV, []) == []


def test_peer_removal_tolerates_entries_already_gone():
    steps = vx.peer_remove(DEV, P2)
    assert [s.do.argv[:3] for s in steps] == [("ip", "route", "del"), ("ip", "neigh", "del"), ("bridge", "fdb", "del")]
    assert all("no such" in s.nothing_to_do for s in steps)


def entries(**extra):
    base = {
        "/cnet/networks/ov": {"subnet": "10.200.0.0/16", "host_subnet_size": 24, "vni": 42, "mtu": None},
        "/cnet/vnis/42": "ov",
        "/cnet/subnets/ov/10.200.1.0-24": {"host": "h1", "underlay": "192.0.2.1", "vtep_mac": "0e:ab:cd:ef:01:23"},
        "/cnet/subnets/ov/10.200.2.0-24": {"host": "h2", "underlay": "192.0.2.2", "vtep_mac": "0e:00:00:00:00:02"},
        "/cnet/subnets/ov/10.200.3.0-24": {"host": "h3", "underlay": "192.0.2.3", "vtep_mac": "0e:00:00:00:00:03"},
        "/cnet/members/ov/h1": {"containers": 0},
        "/cnet/members/ov/h2": {"containers": 2},
        "/not/ours": "x",
        "/cnet/networks/broken": {"subnet": "10.9.0.0/16"},  # skipped, not fatal
    }
    base.update(extra)
    return base


def test_snapshot_peers_are_the_live_other_hosts():
    snap = po.Snapshot.parse(7, entries())
    assert set(snap.networks) == {"ov"} and snap.vnis == {42: "ov"}
    # h3's membership lapsed (no member key): no peer; h1 is this host.
    assert snap.peers("ov", "h1") == [P2]
    assert snap.share_of("ov", "h2").host_subnet == "10.200.2.0/24"
    assert snap.busy_hosts("ov", "h1") == ["h2"]
    assert snap.busy_hosts("ov", "h2") == []
    free = snap.free_host_subnets("ov")
    assert free[0] == "10.200.0.0/24" and "10.200.1.0/24" not in free and len(free) == 253


def test_sync_plan_adds_removes_and_is_empty_when_in_line():
    # First sync: nothing in the kernel.
    plan = po.sync_plan(OV, [P2, P3], {}, [])
    assert [s.do.argv[0] for s in plan] == ["ip", "bridge"] and plan.direction == Direction.CREATE
    # In line: nothing to do.
    assert not po.sync_plan(OV, [P2, P3], {"10.200.2.0": P2.vtep_mac, "10.200.3.0": P3.vtep_mac}, [P2, P3]).steps
    # P3 lapsed: its three entries go, P2 stays as it is.
    plan = po.sync_plan(OV, [P2], {"10.200.2.0": P2.vtep_mac, "10.200.3.0": P3.vtep_mac}, [P2, P3])
    assert [s.do for s in plan] == [s.do for s in vx.peer_remove(DEV, P3)]
    # A reboot lost the kernel's entries although the database remembers them: re-added.
    plan = po.sync_plan(OV, [P2], {}, [P2])
    assert len(plan.steps) == 2 and "10.200.2.0" in plan.steps[0].do.stdin


def test_overlay_rules_keep_sources_inside_and_isolate_the_vxlan_device():
    rules = {(r.table, r.chain, r.spec[:-2] if r.spec[-2] == "-j" else r.spec) for r in nplans.network_rules(OV)}
    specs = [" ".join(r.spec) for r in nplans.network_rules(OV)]
    assert any(
        s.startswith("-s 10.200.1.0/24 ! -o cnet-abcdef0123 ! -d 10.200.0.0/16") and "MASQUERADE" in s for s in specs
    )
    assert any(s.startswith(f"! -i cnet-abcdef0123 -o {DEV}") and s.endswith("DROP") for s in specs)
    assert any(s.startswith(f"-i {DEV} -o cnet-abcdef0123 -s 10.200.0.0/16") and s.endswith("ACCEPT") for s in specs)
    # A bridge network's rules are as before.
    plain = [" ".join(r.spec) for r in nplans.network_rules(network())]
    assert not any("! -d" in s for s in plain) and rules


def test_overlay_network_create_and_remove_carry_the_vxlan_device():
    create = nplans.create(OV, first=False, facts=nplans.HostFacts(ip_forward="1"))
    assert [s.summary.split()[0:2] for s in create][:2] == [["create", "bridge"], ["allow", "127.0.0.1"]]
    assert any(s.summary.startswith(f"create vxlan device {DEV}") for s in create)
    remove = nplans.remove(OV, last=False, ip_forward_before="1", facts=nplans.HostFacts(ip_forward="1"))
    assert [s.do for s in remove].index(cmd("ip", "link", "del", DEV)) < [s.do for s in remove].index(
        cmd("ip", "link", "del", OV.bridge)
    )


def test_endpoints_parse():
    eps = parse_endpoints("http://10.0.0.1:2379, https://etcd2:2380,10.0.0.3")
    assert [str(e) for e in eps] == ["http://10.0.0.1:2379", "https://etcd2:2380", "http://10.0.0.3:2379"]
    for bad in ("", "ftp://x:1", "http://x:port", "http://x:2379/v3"):
        with pytest.raises(ValidationError):
            parse_endpoints(bad)


def test_unreachable_etcd_is_one_line_naming_every_endpoint():
    # Nothing listens on these loopback ports: refused at once.
    cl = Cluster("http://127.0.0.1:9,http://127.0.0.1:7", timeout=1)
    with pytest.raises(ClusterUnavailable) as err:
        cl.range_prefix("/cnet/")
    msg = str(err.value)
    assert "\n" not in msg and "http://127.0.0.1:9" in msg and "http://127.0.0.1:7" in msg
