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
        # (h1's agent applies h2's share within about a second: wait for it, under load too.)
        reply = h1.wait_for(lambda: probe(h1, tools, [f"tcp:{ip2}:80"], netns=c1["netns"])[0], timeout=10)
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
        # Isolation as for bridges: a container on another cnet network of h1 reaches no overlay
        # container, on this host or across the overlay.
        h1.cnet("net", "create", "lan", "--subnet", "10.77.0.0/24")
        b1 = run_server(h1, tools, "b1", "--net", "lan")
        assert answers(h1, tools, [f"tcp:{ip1}:80", f"tcp:{ip2}:80"], netns=b1["netns"]) == {
            f"tcp:{ip1}:80": None,
            f"tcp:{ip2}:80": None,
        }
        h1.cnet("rm", "-f", "b1")
        h1.cnet("net", "rm", "lan")
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
    finally:
        for p in agents:
            stop(p)
    # Another host's containers block a cluster-wide rm (h2 runs one again, with its count published).
    cnet(h2, etcd, "run", "-d", "--name", "c2b", "--net", "ov", "--", "sleep", "60")
    busy = cnet(h1, etcd, "net", "rm", "ov", check=False)
    assert busy.returncode == 1 and "still has containers on host" in busy.stderr, busy.stderr
    h2.cnet("rm", "-f", "c2b")  # publishes h2's count (0)
    # h3 still runs c3, but its membership lapsed: it does not hold the network up.
    assert h3.cnet("ps", "-q").stdout.strip()
    cnet(h1, etcd, "net", "rm", "ov")
    h3.cnet("rm", "-f", "c3")
    # The other hosts leave on their next command touching it (their agents are stopped).
    for h in (h2, h3):
        cnet(h, etcd, "net", "rm", "ov")
    assert etcd.keys() == keys_before
    for h in (h1, h2, h3):
        assert left_behind(h) == [], f"host {h.index} left things behind"


def one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnet: error: "), res.stderr
    return lines[0]


def test_etcd_outage(world, tmp_path, tools):
    """etcd gone: traffic flows on; run on a joined host works with a warning; commands that need
    etcd fail with one line naming it and change nothing."""
    w, etcd = world
    h1, h2, h3 = hosts(w, tmp_path, 3, etcd.url)
    cnet(h1, etcd, "net", "create", "ov", "--driver", "vxlan", "--subnet", "10.210.0.0/16")
    c1 = run_server(h1, tools, "c1", "--net", "ov")
    c2 = run_server(h2, tools, "c2", "--net", "ov")
    ip2 = c2["networks"][0]["ip"]
    h1.cnet("net", "ls")  # h1 syncs and learns h2 (no agents in this test)
    cnet(h1, etcd, "run", "--rm", "--net", "ov", "--", "true")
    assert answers(h1, tools, [f"tcp:{ip2}:80"], netns=c1["netns"])[f"tcp:{ip2}:80"] == "c2"
    etcd.stop(ETCD_IP)
    try:
        assert answers(h1, tools, [f"tcp:{ip2}:80"], netns=c1["netns"])[f"tcp:{ip2}:80"] == "c2"
        ran = cnet(h1, etcd, "run", "-d", "--name", "c1b", "--net", "ov", "--", "sleep", "60")
        assert "warning" in ran.stderr and ETCD_IP in ran.stderr, ran.stderr
        h1.cnet("rm", "-f", "c1b")
        before = {h.index: h.snapshot() for h in (h1, h2, h3)}
        for h, argv in (
            (h1, ["net", "create", "ov2", "--driver", "vxlan", "--subnet", "10.211.0.0/16"]),
            (h3, ["run", "--rm", "--net", "ov", "--", "true"]),  # a first join needs etcd
            (h1, ["net", "rm", "ov"]),
        ):
            assert ETCD_IP in one_line_error(cnet(h, etcd, *argv, check=False))
        assert {h.index: h.snapshot() for h in (h1, h2, h3)} == before
    finally:
        etcd.start(ETCD_IP)
        assert w.wait_for(etcd.healthy, timeout=20, interval=0.2)
    for h, name in ((h1, "c1"), (h2, "c2")):
        h.cnet("rm", "-f", name)
    cnet(h1, etcd, "net", "rm", "ov")
    cnet(h2, etcd, "net", "rm", "ov")
    assert etcd.keys() == []
    for h in (h1, h2, h3):
        assert left_behind(h) == [], f"host {h.index} left things behind"


def test_bad_input_changes_nothing(world, tmp_path):
    w, etcd = world
    (h1,) = hosts(w, tmp_path, 1, etcd.url)
    vx = ["net", "create", "ov2", "--driver", "vxlan"]
    # No etcd named (a host that never joined one): one line.
    no_etcd = h1.run(h1.cnet_argv(*vx, "--subnet", "10.223.0.0/16"), env={"CNET_ETCD": ""})
    assert "--etcd" in one_line_error(no_etcd)
    cnet(h1, etcd, "net", "create", "ov", "--driver", "vxlan", "--subnet", "10.220.0.0/16", "--vni", "42")
    keys, host = etcd.keys(), h1.snapshot()
    cases = {
        "bad CIDR": [*vx, "--subnet", "10.300.0.0/16"],
        "host subnet too big": [*vx, "--subnet", "10.221.0.0/16", "--host-subnet-size", "12"],
        "host subnet too small": [*vx, "--subnet", "10.221.0.0/16", "--host-subnet-size", "31"],
        "VNI out of range": [*vx, "--subnet", "10.221.0.0/16", "--vni", "16777216"],
        "VNI zero": [*vx, "--subnet", "10.221.0.0/16", "--vni", "0"],
        "VNI in use": [*vx, "--subnet", "10.221.0.0/16", "--vni", "42"],
        "overlaps an overlay": [*vx, "--subnet", "10.220.128.0/17"],
        "same name, other parameters": ["net", "create", "ov", "--driver", "vxlan", "--subnet", "10.222.0.0/16"],
        "overlaps a host route": [*vx, "--subnet", "192.0.2.0/24"],
        "a bridge inside the overlay": ["net", "create", "lan", "--subnet", "10.220.5.0/24"],
    }
    for what, argv in cases.items():
        line = one_line_error(cnet(h1, etcd, *argv, check=False))
        assert etcd.keys() == keys and h1.snapshot() == host, what
        assert "Traceback" not in line
    for url in ("http://192.0.2.77:2379", "ftp://192.0.2.254:2379", "http://192.0.2.254:notaport"):
        res = h1.cnet("--etcd", url, *vx, "--subnet", "10.223.0.0/16", check=False)
        line = one_line_error(res)
        assert url.split("//")[1].split(":")[0] in line or "endpoint" in line, line
        assert etcd.keys() == keys and h1.snapshot() == host, url
    cnet(h1, etcd, "net", "rm", "ov")
    assert etcd.keys() == []
    assert left_behind(h1) == []


def test_three_member_etcd_loses_one(tmp_path, tools):
    ips = [f"{ETCD_IP[:-3]}{n}" for n in (251, 252, 253)]
    w, etcd = make_world(tmp_path, ips)
    try:
        h1, h2 = hosts(w, tmp_path, 2, etcd.url)
        cnet(h1, etcd, "net", "create", "ov", "--driver", "vxlan", "--subnet", "10.230.0.0/16")
        c1 = run_server(h1, tools, "c1", "--net", "ov")
        etcd.stop(ips[0])  # the first endpoint: cnet goes on with the next
        c2 = run_server(h2, tools, "c2", "--net", "ov")
        h1.cnet("net", "ls")  # h1 learns h2
        cnet(h1, etcd, "run", "--rm", "--net", "ov", "--", "true")
        ip2 = c2["networks"][0]["ip"]
        assert answers(h1, tools, [f"tcp:{ip2}:80"], netns=c1["netns"])[f"tcp:{ip2}:80"] == "c2"
        h1.cnet("rm", "-f", "c1")
        h2.cnet("rm", "-f", "c2")
        cnet(h1, etcd, "net", "rm", "ov")
        cnet(h2, etcd, "net", "rm", "ov")
        assert etcd.ctl("get", "--prefix", "--keys-only", "/", endpoints=f"{ips[1]}:2379").stdout.strip() == ""
        for h in (h1, h2):
            assert left_behind(h) == []
    finally:
        etcd.close()
        w.close()


PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# `bridge` that fails (the peer sync of a join), and `ip` that hangs while creating the vxlan
# device (cnet is then SIGKILLed in the middle of a join).
FAILING_BRIDGE = "#!/bin/sh\necho 'RTNETLINK answers: injected failure' >&2\nexit 1\n"
HANGING_IP = """#!/bin/sh
if [ "$1" = "-batch" ]; then
  input=$(cat)
  case "$input" in *"type vxlan"*) touch "{mark}"; exec sleep 1000;; esac
  printf '%s\\n' "$input" | exec /usr/sbin/ip "$@"
fi
exec /usr/sbin/ip "$@"
"""


def fake(tmp_path, name: str, body: str) -> str:
    d = tmp_path / f"fake-{name}"
    d.mkdir()
    (d / name).write_text(body)
    (d / name).chmod(0o755)
    return f"{d}:{PATH}"


def subnet_keys(etcd) -> list[str]:
    return [k for k in etcd.keys() if k.startswith("/cnet/subnets/")]  # noqa: SIM118 - not a dict


def test_a_failed_or_crashed_join_is_repaired_by_the_next_command(world, tmp_path, tools):
    w, etcd = world
    h1, h2, h3 = hosts(w, tmp_path, 3, etcd.url)
    cnet(h1, etcd, "net", "create", "ov", "--driver", "vxlan", "--subnet", "10.240.0.0/16")
    c1 = run_server(h1, tools, "c1", "--net", "ov")
    server = ["--", "python3", str(tools.server), "80"]
    # 1. SIGKILL in the middle of h2's join (creating the vxlan device): the next command rolls
    # the half-built share back and joins on the host subnet etcd already holds for h2.
    mark = tmp_path / "hung"
    proc = h2.popen(
        h2.cnet_argv("run", "-d", "--name", "c2", "--net", "ov", *server),
        env={"PATH": fake(tmp_path, "ip", HANGING_IP.format(mark=mark))},
    )
    assert w.wait_for(mark.exists, timeout=30), "the join never reached the vxlan device"
    claimed = subnet_keys(etcd)
    assert len(claimed) == 2
    signal_child(proc, signal.SIGKILL)
    h2.run(["pkill", "-KILL", "-f", "sleep 1000"])  # the fake's sleep
    c2 = run_server(h2, tools, "c2", "--net", "ov")
    assert subnet_keys(etcd) == claimed  # the same subnet, no second one
    # 2. h3's join fails at its peer sync: one line; the next run completes it.
    failed = h3.run(
        h3.cnet_argv("run", "-d", "--name", "c3", "--net", "ov", *server),
        env={"PATH": fake(tmp_path, "bridge", FAILING_BRIDGE)},
    )
    assert "injected failure" in one_line_error(failed)
    c3 = run_server(h3, tools, "c3", "--net", "ov")
    assert len(subnet_keys(etcd)) == 3
    cnet(h1, etcd, "run", "--rm", "--net", "ov", "--", "true")  # h1 syncs its peers (no agents here)
    ips = [c["networks"][0]["ip"] for c in (c2, c3)]
    got = answers(h1, tools, [f"tcp:{ip}:80" for ip in ips], netns=c1["netns"])
    assert list(got.values()) == ["c2", "c3"], got
    for h, name in ((h1, "c1"), (h2, "c2"), (h3, "c3")):
        h.cnet("rm", "-f", name)
    cnet(h1, etcd, "net", "rm", "ov")
    for h in (h2, h3):
        cnet(h, etcd, "net", "rm", "ov")
    assert etcd.keys() == []
    for h in (h1, h2, h3):
        assert left_behind(h) == [], f"host {h.index} left things behind"


def test_dry_run_shows_the_join_and_changes_nothing(world, tmp_path):
    w, etcd = world
    (h1,) = hosts(w, tmp_path, 1, etcd.url)
    out = cnet(h1, etcd, "--dry-run", "net", "create", "ov", "--driver", "vxlan", "--subnet", "10.250.0.0/16")
    assert "type vxlan id 1 dstport 4789 local 192.0.2.1 dev eth0 nolearning" in out.stdout
    assert "mtu 1450" in out.stdout and "! -d 10.250.0.0/16" in out.stdout
    # --underlay-ip: another address of this host, or one line.
    h1.sh("ip addr add 192.0.2.101/24 dev eth0")
    vx = ["--dry-run", "net", "create", "ov", "--driver", "vxlan", "--subnet", "10.250.0.0/16", "--underlay-ip"]
    assert "local 192.0.2.101 dev eth0" in cnet(h1, etcd, *vx, "192.0.2.101").stdout
    assert "not an address of this host" in one_line_error(cnet(h1, etcd, *vx, "203.0.113.9", check=False))
    assert etcd.keys() == []
    assert left_behind(h1) == []


def test_dry_run_of_a_run_on_a_host_that_has_not_joined_shows_the_join(world, tmp_path):
    # h2 defined the network; h1's first run would join it: the dry run shows the join (its host
    # subnet, the bridge and vxlan device) and then the container on it, and changes nothing.
    w, etcd = world
    h1, h2 = hosts(w, tmp_path, 2, etcd.url)
    cnet(h2, etcd, "net", "create", "ov", "--driver", "vxlan", "--subnet", "10.244.0.0/16")
    keys = etcd.keys()
    out = cnet(h1, etcd, "--dry-run", "run", "-d", "--net", "ov", "--", "sleep", "1000").stdout
    assert "type vxlan id 1 dstport 4789 local 192.0.2.1 dev eth0 nolearning" in out
    assert "10.244.1.1/24" in out, out  # the next free host subnet's gateway (h2 has 10.244.0.0/24)
    assert out.index("type vxlan") < out.index("veth")  # joined first, then wired
    assert out.count("type vxlan ") == 1 and out.count(" type bridge\n") == 1, out  # made once
    assert etcd.keys() == keys
    assert left_behind(h1) == []
    cnet(h2, etcd, "net", "rm", "ov")
    assert etcd.keys() == []
    assert left_behind(h2) == []


def test_a_rebooted_host_gets_its_share_back(world, tmp_path, tools):
    """After a reboot `cnet restore` re-creates the bridge and the vxlan device from SQLite alone;
    the next command brings the peers back; the host keeps its host subnet (its lease lives on).

    h1 runs an agent: a host without one is a member only for the TTL after its last command, and
    the rebooted host rightly skips a peer whose membership lapsed (under load, the steps between
    h1's last command and h2's sync took longer than that)."""
    w, etcd = world
    h1, h2 = hosts(w, tmp_path, 2, etcd.url)
    cnet(h1, etcd, "net", "create", "ov", "--driver", "vxlan", "--subnet", "10.245.0.0/16")
    keeper = h1.popen(h1.cnet_argv("--etcd", etcd.url, "agent"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        c1 = run_server(h1, tools, "c1", "--net", "ov")
        cnet(h2, etcd, "run", "--rm", "--net", "ov", "--", "true")  # h2 joins
        before = share(h2)["subnet"]
        h2.reboot()
        h2.baseline = {**h2.baseline, "links": h2.link_names()}  # eth0 and lo, as before
        h2.cnet("restore")
        assert any(name.startswith("cnetx") for name in h2.link_names())
        c2 = run_server(h2, tools, "c2", "--net", "ov")  # syncs h2's peers
        assert share(h2)["subnet"] == before
        # That one command put the route to h1 back (the kernel lost it, the database did not).
        h1_vtep = share(h1)["subnet"].split("/")[0]
        assert h1_vtep in vxlan_neighbours(h2, share(h2)["id"])
        cnet(h1, etcd, "run", "--rm", "--net", "ov", "--", "true")  # h1 syncs (h2's VTEP MAC is the same)
        ip1 = c1["networks"][0]["ip"]
        reply = h2.wait_for(lambda: probe(h2, tools, [f"tcp:{ip1}:80"], netns=c2["netns"])[0], timeout=10)
        assert reply is not None and reply.split()[:2] == ["c1", c2["networks"][0]["ip"]], reply
        for h, name in ((h1, "c1"), (h2, "c2")):
            h.cnet("rm", "-f", name)
    finally:
        stop(keeper)
    cnet(h1, etcd, "net", "rm", "ov")
    cnet(h2, etcd, "net", "rm", "ov")
    assert etcd.keys() == []
    for h in (h1, h2):
        assert left_behind(h) == [], f"host {h.index} left things behind"
