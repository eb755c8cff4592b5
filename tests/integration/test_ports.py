"""Port mappings: every reachability path for TCP and UDP, host-IP binding, conflicts, release."""

import json
import subprocess
import time

import pytest

from .conftest import add_client, answers, del_client, inspect, probe, run_server

pytestmark = pytest.mark.root

PROTOS = ("tcp", "udp")


def _targets(ip: str, port: int) -> list[str]:
    return [f"{p}:{ip}:{port}" for p in PROTOS]


def test_published_port_reachable_from_everywhere_but_networks_stay_isolated(sandbox, tools):
    sb = sandbox
    ext = add_client(sb)
    sb.cnet("net", "create", "n1", "--subnet", "10.10.1.0/24")
    sb.cnet("net", "create", "n2", "--subnet", "10.10.2.0/24")
    # tcp and udp on the same host port: not a conflict.
    srv = run_server(sb, tools, "srv", "--net", "n1", "-p", "8080:80/tcp", "-p", "8080:80/udp")
    nb = run_server(sb, tools, "nb", "--net", "n1")
    other = run_server(sb, tools, "other", "--net", "n2")
    srv_ip, other_ip = srv["networks"][0]["ip"], other["networks"][0]["ip"]

    published = {
        "external client via the host address": (ext.netns, _targets(ext.host_ip, 8080)),
        "host via its own address": (None, _targets(ext.host_ip, 8080)),
        "host via the gateway address": (None, _targets("10.10.1.1", 8080)),
        "host via another network's gateway": (None, _targets("10.10.2.1", 8080)),
        "host via 127.0.0.1": (None, _targets("127.0.0.1", 8080)),
        "neighbour via the host address (hairpin)": (nb["netns"], _targets(ext.host_ip, 8080)),
        "neighbour via the gateway (hairpin)": (nb["netns"], _targets("10.10.1.1", 8080)),
        "itself via the host address (hairpin)": (srv["netns"], _targets(ext.host_ip, 8080)),
        "container on another network": (other["netns"], _targets(ext.host_ip, 8080)),
    }
    for what, (netns, targets) in published.items():
        got = answers(sb, tools, targets, netns=netns)
        assert got == {t: "srv" for t in targets}, what

    blocked = {
        "other network -> container directly": (other["netns"], _targets(srv_ip, 80)),
        "container -> other network directly": (srv["netns"], _targets(other_ip, 80)),
        "external client -> container address": (ext.netns, _targets(srv_ip, 80)),
    }
    for what, (netns, targets) in blocked.items():
        got = probe(sb, tools, targets, netns=netns, timeout=1)
        assert got == [None, None], what
    # Control: the blocked servers do answer on their own network.
    assert answers(sb, tools, _targets(srv_ip, 80), netns=nb["netns"]) == {t: "srv" for t in _targets(srv_ip, 80)}

    sb.cnet("rm", "-f", "srv", "nb", "other")
    sb.cnet("net", "rm", "n1", "n2")
    del_client(sb, ext)


def test_loopback_mapping_reachable_only_via_127_0_0_1(sandbox, tools):
    sb = sandbox
    ext = add_client(sb)
    # The external client sends to 127.0.0.1 through the host (its own lo is down).
    sb.run(["ip", "-n", ext.netns, "route", "add", "127.0.0.0/8", "via", ext.host_ip], check=True)
    sb.run(["ip", "netns", "exec", ext.netns, "sysctl", "-q", "-w", "net.ipv4.conf.eth0.route_localnet=1"], check=True)
    sb.cnet("net", "create", "n1", "--subnet", "10.10.1.0/24")
    srv = run_server(sb, tools, "lo1", "--net", "n1", "-p", "127.0.0.1:8081:80/tcp", "-p", "127.0.0.1:8081:80/udp")

    loop = _targets("127.0.0.1", 8081)
    assert answers(sb, tools, loop) == {t: "lo1" for t in loop}
    assert probe(sb, tools, _targets(ext.host_ip, 8081), timeout=1) == [None, None]
    assert probe(sb, tools, _targets("10.10.1.1", 8081), timeout=1) == [None, None]
    assert probe(sb, tools, _targets(ext.host_ip, 8081), netns=ext.netns, timeout=1) == [None, None]
    assert probe(sb, tools, loop, netns=ext.netns, timeout=1) == [None, None]
    # A container cannot reach it through its gateway either.
    assert probe(sb, tools, _targets("10.10.1.1", 8081), netns=srv["netns"], timeout=1) == [None, None]

    # Control: it is the raw-table guard that stops the external client (moby#45610), not the setup.
    guard = [
        "CNET-PREROUTING",
        "-d",
        "127.0.0.0/8",
        "!",
        "-i",
        "lo",
        "-m",
        "comment",
        "--comment",
        "cnet:base",
        "-j",
        "DROP",
    ]
    sb.run(["iptables", "-w", "-t", "raw", "-D", *guard], check=True)
    try:
        assert probe(sb, tools, ["tcp:127.0.0.1:8081"], netns=ext.netns)[0] is not None
    finally:
        sb.run(["iptables", "-w", "-t", "raw", "-A", *guard], check=True)

    sb.cnet("rm", "-f", "lo1")
    sb.cnet("net", "rm", "n1")
    del_client(sb, ext)


def _refused(sb, *args: str, match: str) -> None:
    before = sb.snapshot()
    res = sb.cnet("run", "-d", *args, "--", "sleep", "60", check=False)
    assert res.returncode == 1, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], res.stderr
    assert sb.snapshot() == before


def test_port_conflicts_are_refused_before_anything_changes(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.1.0/24")
    sb.cnet("run", "-d", "--name", "a", "--net", "n1", "-p", "8080:80", "-p", "127.0.0.1:9090:90", "--", "sleep", "60")

    _refused(sb, "--name", "b", "--net", "n1", "-p", "8080:80", match="already mapped by container a")
    # Wildcard vs specific address overlap, both ways.
    _refused(sb, "--name", "b", "--net", "n1", "-p", "127.0.0.1:8080:80", match="already mapped by container a")
    _refused(sb, "--name", "b", "--net", "n1", "-p", "9090:80", match="already mapped by container a")
    # A range that covers a mapped port.
    _refused(sb, "--name", "b", "--net", "n1", "-p", "8079-8081:79-81", match="8080")

    # A host process listening on the port (in the sandbox), tcp and udp.
    listener = sb.popen(
        [
            "python3",
            "-c",
            "import socket, time; t = socket.socket(); t.bind(('0.0.0.0', 7070)); t.listen(); "
            "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 7071)); "
            "print('up', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout.readline().strip() == "up"
        _refused(sb, "--name", "b", "--net", "n1", "-p", "7070:80", match="in use by a host process")
        _refused(sb, "--name", "b", "--net", "n1", "-p", "7071:80/udp", match="in use by a host process")
    finally:
        listener.kill()
        listener.wait()

    # Same port, other protocol; the other address of a specific mapping: both fine.
    sb.cnet(
        "run", "-d", "--name", "b", "--net", "n1", "-p", "8080:80/udp", "-p", "10.10.1.1:9090:90", "--", "sleep", "60"
    )
    ports = json.loads(
        sb.cnet(
            "sql",
            "SELECT container, host_ip, host_port, protocol FROM v_port_mappings "
            "ORDER BY container, host_port, protocol",
            "--json",
        ).stdout
    )
    assert [(p["container"], p["host_ip"], p["host_port"], p["protocol"]) for p in ports] == [
        ("a", "0.0.0.0", 8080, "tcp"),
        ("a", "127.0.0.1", 9090, "tcp"),
        ("b", "0.0.0.0", 8080, "udp"),
        ("b", "10.10.1.1", 9090, "tcp"),
    ]

    sb.cnet("rm", "-f", "a", "b")
    sb.cnet("net", "rm", "n1")


def test_killed_container_releases_everything_within_2s(sandbox, tools):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.1.0/24")
    info = run_server(sb, tools, "k", "--net", "n1", "-p", "8080:80/tcp", "-p", "8080:80/udp")
    host_veth, netns, ip = info["networks"][0]["host_veth"], info["netns"], info["networks"][0]["ip"]
    assert host_veth in sb.link_names()
    # Traffic first, so that conntrack holds UDP entries pointing at the old address.
    assert answers(sb, tools, _targets("127.0.0.1", 8080)) == {t: "k" for t in _targets("127.0.0.1", 8080)}

    sb.run(["kill", "-9", str(info["pid"])], check=True)
    t0 = time.monotonic()

    def released():
        return (
            host_veth not in sb.link_names()
            and netns not in sb.netns()
            and "cnet:ctr:" not in sb.iptables_save()
            and not sb.db_rows().get("port_mappings")
            and not sb.db_rows().get("endpoints")
        )

    assert sb.wait_for(released, timeout=2.0, interval=0.05), "not released within 2 s"
    assert time.monotonic() - t0 < 2.5
    rows = json.loads(sb.cnet("ps", "-a", "--json").stdout)
    assert [(r["name"], r["state"]) for r in rows] == [("k", "exited (137)")]
    assert (
        json.loads(sb.cnet("sql", "SELECT count(*) AS n FROM ip_allocations WHERE kind != 'gateway'", "--json").stdout)[
            0
        ]["n"]
        == 0
    )

    # The port is free for the next container at once, tcp and udp (no stale conntrack for udp).
    run_server(sb, tools, "k2", "--net", "n1", "-p", "8080:80/tcp", "-p", "8080:80/udp")
    assert answers(sb, tools, _targets("127.0.0.1", 8080)) == {t: "k2" for t in _targets("127.0.0.1", 8080)}
    assert inspect(sb, "k2")["networks"][0]["ip"] != ip  # next-fit: no immediate reuse

    sb.cnet("rm", "-f", "k2")
    sb.cnet("rm", "k")
    sb.cnet("net", "rm", "n1")
