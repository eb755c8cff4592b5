"""Reboot (kernel state gone, database kept) and reconciliation (`cnet gc`, `cnet net restore`).

A reboot is simulated by killing the sandbox and starting a new one over the same state dir: the
links, rules, netns and processes are gone (new network and PID namespaces), cnet.db is not.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest

pytestmark = pytest.mark.root


def kernel(sb) -> dict:
    snap = sb.snapshot()
    snap.pop("db")
    return snap


@contextmanager
def rebooted(sb):
    """The same sandbox after a reboot (its teardown checks then apply to the new host)."""
    sb.reboot()
    yield sb


def sql(sb, query: str) -> list:
    return json.loads(sb.cnet("sql", query, "--json").stdout)


def nothing_to_repair(sb) -> None:
    plan = sb.cnet("--dry-run", "gc").stdout
    assert "# step:" not in plan, plan


def test_reboot_releases_containers_and_run_recreates_the_network(sandbox):
    sb = sandbox
    kernel_empty = kernel(sb)
    sb.cnet("net", "create", "a", "--subnet", "10.71.0.0/24")
    sb.cnet("run", "-d", "--name", "c1", "--net", "a", "-p", "8080:80", "--", "sleep", "1000")
    with rebooted(sb) as sb2:
        assert kernel(sb2) == kernel_empty
        ps = sb2.cnet("ps", "-a")
        assert "cnet: container c1 marked exited" in ps.stderr
        assert sql(sb2, "SELECT name, state FROM containers") == [{"name": "c1", "state": "exited"}]
        assert sql(sb2, "SELECT count(*) AS n FROM port_mappings") == [{"n": 0}]
        assert sql(sb2, "SELECT kind FROM ip_allocations") == [{"kind": "gateway"}]
        # The host port and the address are free again; the network comes back with the next run.
        dry = sb2.cnet("--dry-run", "run", "--net", "a", "-p", "8080:80", "--", "true").stdout
        assert "link add name cnet-" in dry and "type bridge" in dry
        out = sb2.cnet("run", "-d", "--name", "c2", "--net", "a", "-p", "8080:80", "--", "sleep", "1000")
        assert "network a restored" in out.stderr
        info = json.loads(sb2.cnet("inspect", "c2").stdout)
        assert info["networks"][0]["ip"] == "10.71.0.3"  # next-fit: .2 is not reused at once
        bridge = json.loads(sb2.cnet("net", "inspect", "a").stdout)["bridge"]
        assert sb2.addrs(bridge) == ["10.71.0.1/24"]
        assert sb2.sysctl(f"net.ipv4.conf.{bridge}.route_localnet") == "1"
        assert sb2.sysctl("net.ipv4.ip_forward") == "1"
        nothing_to_repair(sb2)
        sb2.cnet("rm", "-f", "c2")
        sb2.cnet("rm", "c1")
        sb2.cnet("net", "rm", "a")


def test_net_restore_recreates_every_network_and_rm_works_on_leftovers(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "a", "--subnet", "10.72.0.0/24")
    sb.cnet("net", "create", "b", "--subnet", "10.73.0.0/24", "--internal")
    sb.cnet("net", "create", "c", "--subnet", "10.74.0.0/24")
    sb.cnet("run", "-d", "--name", "c1", "--net", "a", "--net", "b", "-p", "8080:80", "--", "sleep", "1000")
    sb.cnet("rm", "-f", "c1")
    before = kernel(sb)
    with rebooted(sb) as sb2:
        # net rm of a leftover whose kernel objects are gone: best effort, succeeds.
        sb2.cnet("net", "rm", "c")
        res = sb2.cnet("net", "restore")
        assert "repair step" in res.stdout
        after = kernel(sb2)
        c_bridge = [link for link in before["links"] if link not in after["links"]]
        assert len(c_bridge) == 1  # exactly network c's bridge is missing: it was removed
        assert [r for r in before["rules"] if ":net:c" not in r] == after["rules"]
        nothing_to_repair(sb2)
        assert "nothing to do" in sb2.cnet("net", "restore").stdout
        sb2.cnet("net", "rm", "a", "b")


def test_gc_removes_orphans_restores_flushed_rules_and_dry_run_changes_nothing(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "a", "--subnet", "10.75.0.0/24")
    sb.cnet("run", "-d", "--name", "c1", "--net", "a", "-p", "8080:80", "--", "sleep", "1000")
    healthy = sb.snapshot()
    assert "nothing to do" in sb.cnet("gc").stdout
    # Damage: flush nat (cnet's jumps, masquerade and DNAT go), plant cnet-named orphans.
    sb.sh(
        "iptables -t nat -F && ip link add cnetorphan0 type bridge && ip netns add cnet-0123456789ab && "
        "iptables -t nat -A CNET-DNAT -p tcp --dport 1 -m comment --comment cnet:ctr:aaaaaaaaaaaa "
        "-j DNAT --to-destination 10.75.0.99:1 && iptables -N CNET-STALE && ip link del "
        + json.loads(sb.cnet("inspect", "c1").stdout)["networks"][0]["host_veth"]
    )
    damaged = sb.snapshot()
    dry = sb.cnet("--dry-run", "gc").stdout
    for expect in (
        "ip netns del cnet-0123456789ab",
        "ip link del cnetorphan0",
        "-X CNET-STALE",
        "cnet:ctr:aaaaaaaaaaaa",
        "-I PREROUTING 1",
        "--to-destination 10.75.0.2:80",
        "type veth peer",
    ):
        assert expect in dry, dry
    assert sb.snapshot() == damaged  # --dry-run changed nothing
    sb.cnet("gc")
    assert sb.snapshot() == healthy
    nothing_to_repair(sb)
    sb.cnet("rm", "-f", "c1")
    sb.cnet("net", "rm", "a")


FOREIGN = """
iptables -t raw -A PREROUTING -p udp --dport 9 -j NOTRACK
iptables -t raw -A OUTPUT -p udp --dport 9 -j NOTRACK
iptables -t nat -N MYNAT
iptables -t nat -A MYNAT -p tcp --dport 2222 -j DNAT --to-destination 192.0.2.9:22
iptables -t nat -A PREROUTING -j MYNAT
iptables -t nat -A INPUT -p tcp --dport 7 -j ACCEPT
iptables -t nat -A OUTPUT -p tcp --dport 2222 -j MYNAT
iptables -t nat -A POSTROUTING -s 192.0.2.0/24 -j MASQUERADE
iptables -N MYFILTER
iptables -A MYFILTER -s 198.51.100.0/24 -j DROP
iptables -A INPUT -j MYFILTER
iptables -A FORWARD -j MYFILTER
iptables -A FORWARD -m comment --comment "admin: keep" -j ACCEPT
iptables -A OUTPUT -p tcp --dport 25 -j REJECT
iptables -P FORWARD DROP
"""


def foreign(sb) -> list[str]:
    return [r for r in sb.rules() if "cnet" not in r.lower()]


def test_foreign_rules_survive_every_command(sandbox):
    sb = sandbox
    sb.sh(FOREIGN.strip().replace("\n", " && "))
    mine = foreign(sb)
    sb.baseline = sb.snapshot()  # teardown: the foreign rules and the DROP policy are all still there
    steps = [
        ("net", "create", "a", "--subnet", "10.76.0.0/24"),
        (
            "run",
            "-d",
            "--name",
            "c1",
            "--net",
            "a",
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1:5353:53/udp",
            "--",
            "sleep",
            "1000",
        ),
        ("net", "create", "b", "--subnet", "10.77.0.0/24", "--internal"),
        ("net", "connect", "b", "c1"),
        ("net", "disconnect", "b", "c1"),
        ("gc",),
        ("stop", "-t", "0", "c1"),
        ("rm", "-f", "c1"),
        ("gc",),
        ("net", "rm", "b"),
        ("net", "rm", "a"),
        ("gc",),
    ]
    for argv in steps:
        sb.cnet(*argv)
        assert foreign(sb) == mine, argv
