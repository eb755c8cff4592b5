"""Peer test scenarios (netavark's, the CNI plugins' and moby's checks recast for cnet) that found
four problems (issue 15.8), one test each:

- the bridge's own MAC: removing the container whose port held the lowest MAC leaves the others
  reaching the gateway, the host and the outside at once (no stale ARP);
- a UDP mapping clears stale conntrack entries when installed: a client that kept sending from
  one source port while the old container went away reaches the new one;
- sysctls are written only when they must change: `net create` works with /proc/sys read-only
  when forwarding is on, and a rollback with nothing to undo says so;
- base chains adopt what an earlier life left (database lost, rules kept): one jump per chain.
"""

from __future__ import annotations

import shutil
import textwrap
import time

import pytest

from .conftest import add_client, del_client, inspect, run_server

pytestmark = pytest.mark.root


def link_macs(sb) -> dict[str, str]:
    return {link["ifname"]: link.get("address") for link in sb.links()}


def ping(sb, netns: str, ip: str, timeout: int = 1) -> bool:
    res = sb.run(["nsenter", f"--net=/run/netns/{netns}", "busybox", "ping", "-c", "1", "-W", str(timeout), ip])
    return res.returncode == 0


def test_removing_the_container_with_the_lowest_mac_leaves_the_others_connected(sandbox):
    sb = sandbox
    ext = add_client(sb)
    sb.cnet("net", "create", "n1", "--subnet", "10.72.0.0/24")
    net = inspect(sb, "n1")
    for name in ("c1", "c2", "c3"):
        sb.cnet("run", "-d", "--name", name, "--net", "n1", "--", "sleep", "100000")
    infos = {name: inspect(sb, name) for name in ("c1", "c2", "c3")}
    macs = link_macs(sb)
    assert macs[net["bridge"]] == net["bridge_mac"]
    # Every neighbour has the gateway in its ARP cache (as after any traffic).
    for info in infos.values():
        assert ping(sb, info["netns"], "10.72.0.1")
    lowest = min(infos, key=lambda n: macs[infos[n]["networks"][0]["host_veth"]])
    # Without a MAC of its own the bridge would carry exactly this port's MAC until it leaves.
    sb.cnet("rm", "-f", lowest)
    assert sb.wait_for(lambda: infos[lowest]["networks"][0]["host_veth"] not in link_macs(sb), timeout=5)
    assert link_macs(sb)[net["bridge"]] == net["bridge_mac"]
    for name, info in infos.items():
        if name == lowest:
            continue
        # At once, 1 s each: the gateway, a host address on another link, the outside (NAT).
        for target in ("10.72.0.1", ext.host_ip, ext.ip):
            assert ping(sb, info["netns"], target), f"{name} cannot reach {target} after {lowest} left"
    sb.cnet("rm", "-f", *[n for n in infos if n != lowest])
    sb.cnet("net", "rm", "n1")
    del_client(sb, ext)


def test_bridge_mac_is_kept_by_restore_and_repaired_by_gc(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.73.0.0/24")
    net = inspect(sb, "n1")
    sb.run(["ip", "link", "set", "dev", net["bridge"], "address", "0a:00:00:00:00:99"], check=True)
    out = sb.cnet("gc")
    assert link_macs(sb)[net["bridge"]] == net["bridge_mac"], out.stdout + out.stderr
    sb.run(["ip", "link", "del", net["bridge"]], check=True)
    sb.cnet("net", "restore")
    assert link_macs(sb)[net["bridge"]] == net["bridge_mac"]
    assert "# step:" not in sb.cnet("--dry-run", "gc").stdout
    sb.cnet("net", "rm", "n1")


# Sends one datagram every 50 ms from a fixed source port for `seconds`, and appends the first
# word of every reply (the answering container's hostname) with its time to a file.
UDP_CLIENT = textwrap.dedent(
    """
    import socket, sys, time
    dst, port, seconds, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 40000))
    s.settimeout(0.05)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            s.sendto(b"x", (dst, port))
            data = s.recv(2048)
            with open(log, "a") as f:
                f.write("%f %s\\n" % (time.monotonic(), data.split()[0].decode()))
        except OSError:
            pass
        time.sleep(0.05)
    """
)


def test_udp_client_on_one_source_port_reaches_the_new_container(sandbox, tools, tmp_path):
    sb = sandbox
    ext = add_client(sb)
    sb.cnet("net", "create", "n1", "--subnet", "10.74.0.0/24")
    run_server(sb, tools, "old", "--net", "n1", "-p", "9000:80/udp")
    client, log = tmp_path / "client.py", tmp_path / "replies"
    client.write_text(UDP_CLIENT)
    log.write_text("")
    proc = sb.popen(
        ["nsenter", f"--net=/run/netns/{ext.netns}", "python3", str(client), ext.host_ip, "9000", "40", str(log)]
    )
    try:
        assert sb.wait_for(lambda: "old" in log.read_text(), timeout=10), "the client never reached the old container"
        sb.cnet("rm", "-f", "old")
        time.sleep(1)  # the client keeps sending: its datagrams now make an entry with no DNAT
        run_server(sb, tools, "new", "--net", "n1", "-p", "9000:80/udp")
        started = time.monotonic()
        assert sb.wait_for(lambda: " new" in log.read_text(), timeout=5), (
            "the client never reached the new container (stale conntrack entry)"
        )
        assert time.monotonic() - started < 5
    finally:
        proc.kill()
        proc.wait()
    sb.cnet("rm", "-f", "new")
    sb.cnet("net", "rm", "n1")
    del_client(sb, ext)


def read_only_proc_sys(sb) -> None:
    sb.sh("mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys")
    assert sb.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]).returncode != 0


def test_net_create_with_read_only_proc_sys_when_forwarding_is_on(sandbox, tools):
    sb = sandbox
    sb.sh("sysctl -q -w net.ipv4.ip_forward=1")
    read_only_proc_sys(sb)
    sb.baseline = sb.snapshot()
    res = sb.cnet("net", "create", "n1", "--subnet", "10.75.0.0/24")
    # route_localnet cannot be set on the new bridge: said once, the network works without it.
    assert res.stderr.count("warning: /proc/sys is read-only") == 1, res.stderr
    assert "rollback" not in res.stderr
    info = run_server(sb, tools, "c1", "--net", "n1", "-p", "8080:80")
    assert ping(sb, info["netns"], "10.75.0.1")
    # gc and restore know: nothing they could do is planned, nothing fails.
    assert "# step:" not in sb.cnet("--dry-run", "gc").stdout
    sb.cnet("gc")
    sb.cnet("rm", "-f", "c1")
    res = sb.cnet("net", "rm", "n1")
    assert res.stderr == ""  # forwarding was on before cnet: nothing to write back


def test_net_create_with_read_only_proc_sys_and_forwarding_off_fails_cleanly(sandbox):
    sb = sandbox
    read_only_proc_sys(sb)
    sb.baseline = sb.snapshot()
    res = sb.cnet("net", "create", "n1", "--subnet", "10.75.0.0/24", check=False)
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        "cnet: error: IPv4 forwarding is off and /proc/sys is read-only: turn net.ipv4.ip_forward on where "
        "/proc/sys is writable, then run this again"
    ]
    assert sb.snapshot() == sb.baseline


FAILING_SYSCTL = """#!/bin/sh
echo "sysctl: permission denied on key \\"$3\\"" >&2
exit 255
"""


def test_a_rollback_with_nothing_to_undo_says_so(sandbox, tmp_path):
    """The first step (forwarding on) fails: nothing changed, so the one line says that, and no
    undo runs (it would fail the same way and report a "rollback incomplete")."""
    sb = sandbox
    d = tmp_path / "fakes"
    d.mkdir()
    (d / "sysctl").write_text(FAILING_SYSCTL)
    (d / "sysctl").chmod(0o755)
    import os

    res = sb.cnet(
        "net", "create", "n1", "--subnet", "10.76.0.0/24", check=False, env={"PATH": f"{d}:{os.environ['PATH']}"}
    )
    assert res.returncode == 1
    [line] = res.stderr.splitlines()
    assert line.startswith("cnet: error: command failed (exit 255): sysctl -q -w net.ipv4.ip_forward=1")
    assert line.endswith("(nothing was changed)") and "rollback incomplete" not in line
    assert sb.snapshot() == sb.baseline


def jump_counts(sb) -> dict[str, int]:
    """How many rules of each built-in chain jump into a cnet chain (iptables and ebtables)."""
    counts: dict[str, int] = {}
    table = None
    for line in sb.iptables_save().splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A ") and "-j CNET-" in line and not line.split()[1].startswith("CNET-"):
            key = f"{table}/{line.split()[1]}"
            counts[key] = counts.get(key, 0) + 1
    for line in sb.ebtables_save().splitlines():
        if line.startswith("-A ") and line.endswith("-j CNET-SPOOF"):
            key = f"bridge/{line.split()[1]}"
            counts[key] = counts.get(key, 0) + 1
    return counts


ONE_EACH = {
    "raw/PREROUTING": 1,
    "nat/PREROUTING": 1,
    "nat/OUTPUT": 1,
    "nat/POSTROUTING": 1,
    "filter/FORWARD": 1,
    "bridge/INPUT": 1,
    "bridge/FORWARD": 1,
}


def test_base_chains_adopt_an_earlier_lifes_rules_without_a_second_jump(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "old", "--subnet", "10.77.0.0/24")
    sb.cnet("run", "-d", "--name", "c1", "--net", "old", "-p", "8080:80", "--", "sleep", "100000")
    assert jump_counts(sb) == ONE_EACH
    # The database is lost; the kernel keeps every chain, jump and rule.
    shutil.rmtree(sb.state_dir)
    sb.cnet("net", "create", "new", "--subnet", "10.78.0.0/24")
    assert jump_counts(sb) == ONE_EACH
    # The earlier life's leftovers are gc's (the bridge, the container's netns and veth); its
    # container still runs, so plain gc keeps it (issue 15.7) and --force removes it.
    sb.cnet("gc", "--force")
    assert jump_counts(sb) == ONE_EACH
    assert "# step:" not in sb.cnet("--dry-run", "gc").stdout
    sb.cnet("net", "rm", "new")
    assert jump_counts(sb) == {}
    # Forwarding stays on: the lost database alone knew it was off before cnet's earlier life.
    assert sb.sysctl("net.ipv4.ip_forward") == "1"
    sb.sh("sysctl -q -w net.ipv4.ip_forward=0")
