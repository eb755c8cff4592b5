"""Anti-spoofing on the bridge (issue 15.9): a container sends only with its own IP and MAC and
answers ARP only for its own address.

Both attacks are tried from a cnet container against a neighbour: datagrams with the neighbour's
IP (to a host service on the gateway address, and to the neighbour's published port through the
host), and a gratuitous ARP claiming the neighbour's IP (`busybox arping -U -s`), which without
protection re-points the host's neighbour entry, and so the neighbour's published port, at the
attacker. Each attempt is shown dropped by the CNET-SPOOF rule's own counter, and a control run
with the chain's jumps removed shows the same packets succeed, so the rules are what stops them.
Legitimate traffic (neighbours, published ports, outbound NAT) is unaffected, and everything goes
with the containers and the network (the sandbox fixture compares `ebtables-nft-save` too).
"""

from __future__ import annotations

import contextlib
import json
import re
import textwrap

import pytest

from .conftest import add_client, answers, del_client, inspect, run_server

pytestmark = pytest.mark.root

# Logs every UDP datagram it gets ("PEER DATA" per line) to a file; runs on the host or in a
# container (they share the filesystem).
UDP_LOGGER = textwrap.dedent(
    """
    import socket, sys
    host, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((host, port))
    open(log, "a").close()
    while True:
        data, peer = u.recvfrom(2048)
        with open(log, "a") as f:
            f.write(peer[0] + " " + data.decode() + "\\n")
    """
)

# argv: SRC_IP DST_IP PORT TAG: a few datagrams from SRC_IP (IP_TRANSPARENT: the address need not
# be the sender's own, and it is not added to its interface, which would make it answer ARP too).
SPOOF = textwrap.dedent(
    """
    import socket, sys, time
    src, dst, port, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_IP, 19, 1)  # IP_TRANSPARENT
    s.bind((src, 0))
    for _ in range(3):
        s.sendto(tag.encode(), (dst, port))
        time.sleep(0.05)
    """
)


def spoof_counters(sb, veth: str) -> dict[str, int]:
    """Packet counter of each CNET-SPOOF rule of `veth`, keyed by what it checks."""
    out = sb.run(["ebtables-nft", "-t", "filter", "-L", "CNET-SPOOF", "--Lc"], check=True).stdout
    counters = {}
    for line in out.splitlines():
        if f"-i {veth} " not in line:
            continue
        kind = next(k for k in ("--arp-ip-src", "--arp-mac-src", "--ip-src", "-s") if f"{k} !" in line)
        counters[kind] = int(re.search(r"pcnt = (\d+)", line).group(1))
    assert len(counters) == 4, out
    return counters


@contextlib.contextmanager
def spoof_chain_removed(sb):
    """The control experiment: the same attack with the jumps into CNET-SPOOF taken out."""
    for hook in ("INPUT", "FORWARD"):
        sb.run(["ebtables-nft", "-t", "filter", "-D", hook, "-j", "CNET-SPOOF"], check=True)
    try:
        yield
    finally:
        for hook in ("INPUT", "FORWARD"):
            sb.run(["ebtables-nft", "-t", "filter", "-I", hook, "1", "-j", "CNET-SPOOF"], check=True)


def neigh_mac(sb, ip: str, dev: str) -> str | None:
    data = json.loads(sb.run(["ip", "-j", "neigh", "show", ip, "dev", dev], check=True).stdout)
    return data[0].get("lladdr") if data else None


def lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def scene(sandbox, tools, tmp_path):
    """Network n1 with a victim (echo server on tcp/80, UDP logger on 81, published 8080 and
    8081/udp) and an attacker container, a host UDP logger on the gateway, an external client."""
    sb = sandbox
    ext = add_client(sb)
    sb.cnet("net", "create", "n1", "--subnet", "10.70.0.0/24")
    logger = tmp_path / "udp_logger.py"
    logger.write_text(UDP_LOGGER)
    spoof = tmp_path / "spoof.py"
    spoof.write_text(SPOOF)
    victim = run_server(sb, tools, "victim", "--net", "n1", "-p", "8080:80", "-p", "8081:81/udp")
    victim_log = tmp_path / "victim.log"
    sb.cnet("exec", "victim", "sh", "-c", f"python3 {logger} 0.0.0.0 81 {victim_log} >/dev/null 2>&1 &")
    sb.cnet("run", "-d", "--name", "attacker", "--net", "n1", "--", "sleep", "100000")
    attacker = inspect(sb, "attacker")
    host_log = tmp_path / "host.log"
    host_logger = sb.popen(["python3", str(logger), "10.70.0.1", "7000", str(host_log)])
    assert sb.wait_for(lambda: host_log.exists() and victim_log.exists(), timeout=10)
    net = inspect(sb, "n1")
    try:
        yield {
            "sb": sb,
            "ext": ext,
            "victim": victim,
            "attacker": attacker,
            "spoof": spoof,
            "victim_log": victim_log,
            "host_log": host_log,
            "bridge": net["bridge"],
            "bridge_mac": net["bridge_mac"],
        }
    finally:
        host_logger.kill()
        host_logger.wait()
    sb.cnet("rm", "-f", "victim", "attacker")
    sb.cnet("net", "rm", "n1")
    del_client(sb, ext)


def ep(info: dict) -> dict:
    [e] = info["networks"]
    return e


def in_ns(info: dict, *argv: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{info['netns']}", *argv]


def test_sending_with_a_neighbours_ip_is_dropped(scene):
    s = scene
    sb, v, a = s["sb"], ep(s["victim"]), ep(s["attacker"])
    # The attacker knows the gateway's MAC already: what is tested is the IPv4 packet itself (its
    # ARP request would carry the spoofed address too, and be dropped by the ARP rule).
    sb.run(
        in_ns(s["attacker"], "ip", "neigh", "replace", "10.70.0.1", "lladdr", s["bridge_mac"], "dev", "eth0"),
        check=True,
    )

    def attack(tag: str) -> None:
        # To a host service on the gateway address, and to the victim's published port via the host.
        sb.run(in_ns(s["attacker"], "python3", str(s["spoof"]), v["ip"], "10.70.0.1", "7000", tag), check=True)
        sb.run(in_ns(s["attacker"], "python3", str(s["spoof"]), v["ip"], "10.70.0.1", "8081", tag), check=True)

    before = spoof_counters(sb, a["host_veth"])
    attack("spoofed")
    assert spoof_counters(sb, a["host_veth"])["--ip-src"] >= before["--ip-src"] + 6
    # Its own address still works: the same datagrams from the attacker's own IP arrive.
    sb.run(in_ns(s["attacker"], "python3", str(s["spoof"]), a["ip"], "10.70.0.1", "7000", "own"), check=True)
    assert sb.wait_for(lambda: f"{a['ip']} own" in lines(s["host_log"]), timeout=5), lines(s["host_log"])
    assert not [line for line in lines(s["host_log"]) if "spoofed" in line]
    assert not [line for line in lines(s["victim_log"]) if "spoofed" in line]

    # Control: without the chain, the host takes the victim's address from the attacker, and the
    # victim's published port receives its datagrams.
    with spoof_chain_removed(sb):
        attack("control")
        assert sb.wait_for(lambda: f"{v['ip']} control" in lines(s["host_log"]), timeout=5), lines(s["host_log"])
        assert sb.wait_for(lambda: [x for x in lines(s["victim_log"]) if "control" in x], timeout=5)


def test_gratuitous_arp_for_a_neighbours_ip_is_dropped(scene, tools):
    s = scene
    sb, v, a, bridge = s["sb"], ep(s["victim"]), ep(s["attacker"]), s["bridge"]
    target = ["tcp:127.0.0.1:8080"]

    def host_knows_victim() -> str | None:
        sb.run(["busybox", "ping", "-c", "1", "-W", "1", v["ip"]], check=True)
        return neigh_mac(sb, v["ip"], bridge)

    def claim() -> None:
        sb.run(
            in_ns(s["attacker"], "busybox", "arping", "-U", "-c", "2", "-w", "1", "-I", "eth0", "-s", v["ip"], v["ip"]),
            check=True,
        )

    # Root in its own namespace, the attacker takes the victim's address (busybox arping binds to
    # its -s address); the address alone changes nothing on the host until it is announced.
    sb.run(in_ns(s["attacker"], "ip", "addr", "add", f"{v['ip']}/32", "dev", "eth0"), check=True)
    assert host_knows_victim() == v["mac"]
    before = spoof_counters(sb, a["host_veth"])
    claim()
    after = spoof_counters(sb, a["host_veth"])
    assert after["--arp-ip-src"] >= before["--arp-ip-src"] + 2
    assert neigh_mac(sb, v["ip"], bridge) == v["mac"], "the host's ARP entry for the victim was taken over"
    assert answers(sb, tools, target) == {target[0]: "victim"}

    # Control: without the chain the host's entry moves to the attacker's MAC: the victim's
    # published port now leads to the attacker (nothing listens there: no answer).
    with spoof_chain_removed(sb):
        claim()
        assert sb.wait_for(lambda: neigh_mac(sb, v["ip"], bridge) == a["mac"], timeout=5)
        assert answers(sb, tools, target) == {target[0]: None}
    sb.run(["ip", "neigh", "del", v["ip"], "dev", bridge], check=True)
    assert host_knows_victim() == v["mac"]


def test_legitimate_traffic_still_flows(scene, tools):
    s = scene
    sb, v, ext = s["sb"], ep(s["victim"]), s["ext"]
    # Neighbours reach each other; the published port answers from another host and from the
    # attacker container (hairpin); outbound NAT reaches the external host.
    sb.run(in_ns(s["attacker"], "busybox", "ping", "-c", "1", "-W", "2", v["ip"]), check=True)
    assert answers(sb, tools, [f"tcp:{ext.host_ip}:8080"], netns=ext.netns) == {f"tcp:{ext.host_ip}:8080": "victim"}
    assert answers(sb, tools, ["tcp:10.70.0.1:8080"], netns=s["attacker"]["netns"]) == {"tcp:10.70.0.1:8080": "victim"}
    assert answers(sb, tools, [f"tcp:{v['ip']}:80"], netns=s["attacker"]["netns"]) == {f"tcp:{v['ip']}:80": "victim"}
    sb.run(in_ns(s["attacker"], "busybox", "ping", "-c", "1", "-W", "2", ext.ip), check=True)


def test_rules_follow_the_endpoints(scene):
    """Connect adds an endpoint's rules, disconnect and rm remove them; gc puts back a rule deleted
    by hand and removes an orphan one (only of veths named cnet*)."""
    s = scene
    sb = s["sb"]
    a = ep(s["attacker"])

    def spoof_lines() -> list[str]:
        return [line for line in sb.ebtables_save().splitlines() if line.startswith("-A CNET-SPOOF")]

    assert len(spoof_lines()) == 8  # victim and attacker, four each
    sb.cnet("net", "create", "n2", "--subnet", "10.71.0.0/24")
    sb.cnet("net", "connect", "n2", "attacker")
    veth2 = next(n for n in inspect(sb, "attacker")["networks"] if n["network"] == "n2")
    assert len([line for line in spoof_lines() if veth2["host_veth"] in line]) == 4
    assert f"--ip-src ! {veth2['ip']}" in sb.ebtables_save()
    sb.cnet("net", "disconnect", "n2", "attacker")
    assert not [line for line in spoof_lines() if veth2["host_veth"] in line]
    sb.cnet("net", "rm", "n2")

    # Repair and clean-up by gc.
    own = [line for line in spoof_lines() if a["host_veth"] in line]
    sb.run(["ebtables-nft", "-t", "filter", "-D", *own[1].split()[1:]], check=True)
    sb.run(["ebtables-nft", "-t", "filter", "-A", "CNET-SPOOF", "-i", "cnetvorphan0001", "-j", "DROP"], check=True)
    sb.run(["ebtables-nft", "-t", "filter", "-A", "CNET-SPOOF", "-i", "foreign0", "-j", "DROP"], check=True)
    plan = sb.cnet("--dry-run", "gc").stdout
    assert "ebtables-nft-restore --noflush" in plan, plan
    notes = sb.cnet("gc").stdout + sb.cnet("gc").stderr
    assert "cnetvorphan0001" not in sb.ebtables_save(), notes
    assert sorted(line for line in spoof_lines() if a["host_veth"] in line) == sorted(own)
    assert "-i foreign0" in sb.ebtables_save()  # not cnet's: kept
    sb.run(["ebtables-nft", "-t", "filter", "-D", "CNET-SPOOF", "-i", "foreign0", "-j", "DROP"], check=True)
    assert "# step:" not in sb.cnet("--dry-run", "gc").stdout
