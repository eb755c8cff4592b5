"""Overlay networks (driver vxlan) across three "hosts" sharing one etcd, all inside one sandbox
(tests/overlay_hosts.py): reachability of every pair, distinct host subnets, source addresses
kept across the overlay, outbound NAT, published ports, a late joiner, a lost host dropped after
its TTL, an etcd outage, bad input, a 3-member etcd losing one member, and cleanup that leaves
every host and etcd as they were."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.integration.conftest import answers, probe, run_server
from tests.overlay_hosts import ETCD_IP, Host, make_world, signal_child
from tests.sandbox import left_behind

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.leaves_state]  # each host checks itself
TTL = "3"


@pytest.fixture
def world(tmp_path):
    w, etcd = make_world(tmp_path)
    try:
        yield w, etcd
    finally:
        etcd.close()
        w.close()


def hosts(world, tmp_path, n: int, world_etcd_url: str) -> list[Host]:
    out = []
    for i in range(1, n + 1):
        h = Host(world, i, tmp_path / f"h{i}")
        h.extra_env["CNET_ETCD"] = world_etcd_url  # run_server & co. do not pass --etcd
        h.baseline = h.snapshot()
        out.append(h)
    return out


def cnet(h: Host, etcd, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return h.cnet("--etcd", etcd.url, *args, check=check)


def agent(h: Host, etcd) -> subprocess.Popen:
    return h.popen(
        h.cnet_argv("--etcd", etcd.url, "agent", "--ttl", TTL), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def stop(p: subprocess.Popen, sig: str = "TERM") -> None:
    if p.poll() is None:
        signal_child(p, signal.SIGTERM if sig == "TERM" else signal.SIGKILL)


def share(h: Host) -> dict:
    return json.loads(h.cnet("net", "inspect", "ov").stdout)


def vxlan_neighbours(h: Host, net_id: str) -> set[str]:
    out = h.run(["ip", "-j", "neigh", "show", "dev", f"cnetx{net_id}"[:15], "nud", "permanent"], check=True).stdout
    return {n["dst"] for n in json.loads(out or "[]")}


def test_three_hosts_share_an_overlay(world, tmp_path, tools):
    w, etcd = world
    keys_before = etcd.keys()
    h1, h2, h3 = hosts(w, tmp_path, 3, etcd.url)
    created = cnet(h1, etcd, "net", "create", "ov", "--driver", "vxlan", "--subnet", "10.200.0.0/16")
    assert created.stdout.strip()
    # Another host sees it before joining.
    assert "ov" in cnet(h2, etcd, "net", "ls", "-q").stdout.split()
    agents = [agent(h1, etcd), agent(h2, etcd)]
    try:
        c1 = run_server(h1, tools, "c1", "--net", "ov")
        c2 = run_server(h2, tools, "c2", "--net", "ov", "-p", "8080:80")  # joins on first use
        s1, s2 = share(h1), share(h2)
        assert s1["driver"] == s2["driver"] == "vxlan"
        assert s1["subnet"] != s2["subnet"], "two hosts got the same host subnet"
        ip1, ip2 = c1["networks"][0]["ip"], c2["networks"][0]["ip"]
        # Across the overlay, and the source address is the container's own (no masquerade).
        reply = probe(h1, tools, [f"tcp:{ip2}:80"], netns=c1["netns"])[0]
        assert reply is not None and reply.split()[:2] == ["c2", ip1], reply
        # A late joiner, learned by the earlier hosts through their agents.
        c3 = run_server(h3, tools, "c3", "--net", "ov")
        agents.append(agent(h3, etcd))
        ip3 = c3["networks"][0]["ip"]
        assert len({share(h)["subnet"] for h in (h1, h2, h3)}) == 3
        everyone = {"c1": (h1, c1, ip1), "c2": (h2, c2, ip2), "c3": (h3, c3, ip3)}
        for name, (h, info, _ip) in everyone.items():
            targets = [f"tcp:{ip}:80" for other, (_h, _i, ip) in everyone.items() if other != name]
            got = h.wait_for(
                lambda h=h, info=info, targets=targets: all(answers(h, tools, targets, netns=info["netns"]).values()),
                timeout=5,
            )
            assert got, f"{name} cannot reach all of its peers: {answers(h, tools, targets, netns=info['netns'])}"
        # Leaving the overlay: masqueraded to the host's underlay address.
        outside = w.popen(["python3", str(tools.server), "9000"], stdout=subprocess.DEVNULL)
        w.wait_for(lambda: probe(w, tools, [f"tcp:{ETCD_IP}:9000"], timeout=0.5)[0], timeout=5)
        try:
            seen = w.wait_for(lambda: probe(h1, tools, [f"tcp:{ETCD_IP}:9000"], netns=c1["netns"])[0], timeout=5)
            assert seen and seen.split()[1] == h1.ip, seen
            # A published port on an overlay container, from the underlay.
            assert probe(w, tools, [f"tcp:{h2.ip}:8080"])[0].split()[0] == "c2"
        finally:
            signal_child(outside, signal.SIGKILL)
        # A lost host (its agent killed, no goodbye) is dropped by the others after its TTL.
        stop(agents.pop(), "KILL")
        h3_vtep = share(h3)["subnet"].split("/")[0]
        assert h3_vtep in vxlan_neighbours(h1, s1["id"])
        gone = h1.wait_for(
            lambda: h3_vtep not in vxlan_neighbours(h1, s1["id"]) and h3_vtep not in vxlan_neighbours(h2, s2["id"]),
            timeout=int(TTL) + 6,
            interval=0.2,
        )
        assert gone, "the lost host is still a peer after its TTL"
        # net rm is refused while a live host has containers on the network; h3 lapsed: no count.
        h2.cnet("rm", "-f", "c2")
        refused = cnet(h1, etcd, "net", "rm", "ov", check=False)
        assert refused.returncode == 1 and "c1" in refused.stderr, refused.stderr
        h1.cnet("rm", "-f", "c1")
        h3.cnet("rm", "-f", "c3")
    finally:
        for p in agents:
            stop(p)
    # Another host's containers block a cluster-wide rm (h2 runs one again, with its count published).
    cnet(h2, etcd, "run", "-d", "--name", "c2b", "--net", "ov", "--", "sleep", "60")
    busy = cnet(h1, etcd, "net", "rm", "ov", check=False)
    assert busy.returncode == 1 and "still has containers on host" in busy.stderr, busy.stderr
    h2.cnet("rm", "-f", "c2b")  # publishes h2's count (0)
    cnet(h1, etcd, "net", "rm", "ov")
    # The other hosts leave on their next command touching it (their agents are stopped).
    for h in (h2, h3):
        cnet(h, etcd, "net", "rm", "ov")
    assert etcd.keys() == keys_before
    for h in (h1, h2, h3):
        assert left_behind(h) == [], f"host {h.index} left things behind"
