"""`cnet up` / `cnet down` in the sandbox: a stack with scale and published ports comes up, answers,
stays as it is on a second `up`, recreates exactly what changed, and goes away whole; a refused file
changes nothing; SIGKILL at any step of the batched operation is repaired by the next command."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.integration.conftest import answers, count_frames, in_netns, inspect, no_cnet_leftovers
from tests.integration.test_crash import Faults, db, kernel

pytestmark = pytest.mark.root

STACK = """
name = "shop"
[networks.front]
subnet = "10.71.0.0/24"

[containers.api]
command = ["python3", "{server}", "80"]
networks = ["front"]
ports = ["8085:80"]
environment = {{ MODE = "{mode}" }}

[containers.web]
command = ["python3", "{server}", "80"]
networks = ["front"]
ports = ["9001-9002:80"]
scale = 2
"""


def write(tmp_path, tools, *, mode: str = "a", extra: str = "", name: str = "stack.toml"):
    p = tmp_path / name
    p.write_text(STACK.format(server=tools.server, mode=mode) + extra)
    return p


def pids(sb) -> dict[str, int]:
    rows = json.loads(sb.cnet("ps", "--json", "--filter", "stack=shop").stdout)
    return {r["name"]: r["pid"] for r in rows}


def wait_answering(sb, tools, ports: dict[int, str]) -> None:
    targets = [f"tcp:127.0.0.1:{p}" for p in ports]
    want = {f"tcp:127.0.0.1:{p}": name for p, name in ports.items()}
    ok = sb.wait_for(lambda: answers(sb, tools, targets) == want, timeout=20, interval=0.2)
    assert ok, answers(sb, tools, targets)


def test_up_second_up_and_down(sandbox, tmp_path, tools):
    sb = sandbox
    f = write(tmp_path, tools)
    out = sb.cnet("up", str(f))
    assert out.stdout.splitlines() == ["network front created", "started api", "started web-1", "started web-2"]
    wait_answering(sb, tools, {8085: "api", 9001: "web-1", 9002: "web-2"})
    first = pids(sb)
    assert sorted(first) == ["api", "web-1", "web-2"] and all(first.values())
    ops = sb.cnet("sql", "SELECT kind, count(*) FROM operations GROUP BY kind ORDER BY kind").stdout
    assert "stack-up" in ops

    # A second up of the same file changes nothing: no output, no operation, the same processes.
    again = sb.cnet("up", str(f))
    assert again.stdout == "" and "up to date (3 container(s) running)" in again.stderr
    assert sb.cnet("sql", "SELECT kind, count(*) FROM operations GROUP BY kind ORDER BY kind").stdout == ops
    assert pids(sb) == first
    assert "# step:" not in sb.cnet("--dry-run", "gc").stdout  # the kernel is what the database says

    # Every container and the network the file declared go; nothing is left (fixture baseline).
    down = sb.cnet("down", str(f))
    assert down.stdout.splitlines() == ["removed api", "removed web-1", "removed web-2", "network front removed"]
    no_cnet_leftovers(sb)
    assert sb.cnet("ps", "-a", "-q").stdout == ""


def test_changed_definition_recreates_only_that_one_and_orphans(sandbox, tmp_path, tools):
    sb = sandbox
    sb.cnet("up", str(write(tmp_path, tools)))
    first = pids(sb)
    out = sb.cnet("up", str(write(tmp_path, tools, mode="b")))
    assert out.stdout.splitlines() == ["removed api", "started api"]
    second = pids(sb)
    assert second["api"] != first["api"]
    assert {k: second[k] for k in ("web-1", "web-2")} == {k: first[k] for k in ("web-1", "web-2")}
    wait_answering(sb, tools, {8085: "api", 9001: "web-1", 9002: "web-2"})
    env = sb.cnet("exec", "api", "--", "sh", "-c", "echo $MODE").stdout.strip()
    assert env == "b"

    # web no longer in the file: kept (with a warning) until --remove-orphans.
    f = tmp_path / "stack.toml"
    f.write_text(re.sub(r"\[containers\.web\].*", "", f.read_text(), flags=re.S))
    kept = sb.cnet("up", str(f))
    assert kept.stdout == "" and "no longer in the file: web-1, web-2" in kept.stderr
    assert sorted(pids(sb)) == ["api", "web-1", "web-2"]
    gone = sb.cnet("up", "--remove-orphans", str(f))
    assert gone.stdout.splitlines() == ["removed web-1", "removed web-2"]
    assert sorted(pids(sb)) == ["api"] and pids(sb)["api"] == second["api"]
    sb.cnet("down", "--stack", "shop")
    no_cnet_leftovers(sb)


def test_an_invalid_file_changes_nothing(sandbox, tmp_path, tools):
    sb = sandbox
    sb.cnet("net", "create", "other", "--subnet", "10.72.0.0/24")
    sb.cnet("run", "-d", "--name", "squatter", "--net", "other", "--", "sleep", "600")
    cases = {
        # a subnet an existing network has
        '\n[networks.clash]\nsubnet = "10.72.0.128/25"\n': "networks.clash.subnet: 10.72.0.128/25 overlaps network 'other'",
        # a container name in use outside the stack
        '\n[containers.squatter]\ncommand = "true"\nnetworks = ["front"]\n': "containers.squatter: container name 'squatter'",
        # a network that exists nowhere
        '\n[containers.lost]\ncommand = "true"\nnetworks = ["nowhere"]\n': "containers.lost.networks[0]: network 'nowhere' not found",
    }
    before = sb.snapshot()
    for extra, error in cases.items():
        res = sb.cnet("up", str(write(tmp_path, tools, extra=extra)), check=False)
        assert res.returncode == 1 and res.stdout == "", res
        assert res.stderr.startswith(f"cnet: error: {error}") and len(res.stderr.splitlines()) == 1, res.stderr
        assert sb.snapshot() == before
    # a port another container maps
    sb.cnet("run", "-d", "--name", "porter", "--net", "other", "-p", "9002:80", "--", "sleep", "600")
    before = sb.snapshot()
    res = sb.cnet("up", str(write(tmp_path, tools)), check=False)
    want = "cnet: error: containers.web.ports[0]: host port 0.0.0.0:9002/tcp is already mapped by container porter"
    assert res.returncode == 1 and res.stderr.strip() == want, res.stderr
    assert sb.snapshot() == before
    sb.cnet("rm", "-f", "porter", "squatter")
    # a host process holding a port: refused too, and the network `up` would have made is not made
    code = "import socket,time; s=socket.socket(); s.bind(('0.0.0.0', 8085)); s.listen(); time.sleep(60)"
    holder = sb.popen(["python3", "-c", code])
    try:
        assert sb.wait_for(lambda: ":8085 " in sb.run(["ss", "-ltn"]).stdout, timeout=10)
        before = sb.snapshot()
        res = sb.cnet("up", str(write(tmp_path, tools)), check=False)
        assert res.returncode == 1, res
        assert "containers.api.ports[0]: host port 0.0.0.0:8085/tcp is already in use by a host process" in res.stderr
        assert sb.snapshot() == before
    finally:
        holder.kill()
        holder.wait()
    sb.cnet("net", "rm", "other")


def objects(sb, name: str) -> dict:
    """The kernel objects of one container, its own names replaced by placeholders."""
    info = json.loads(sb.cnet("inspect", name).stdout)
    ep = info["networks"][0]
    ns, veth, cid = info["netns"], ep["host_veth"], info["id"]
    link = json.loads(sb.run(["ip", "-j", "-d", "link", "show", veth], check=True).stdout)[0]
    inside = ["nsenter", f"--net=/run/netns/{ns}", "ip", "-j"]
    addrs = json.loads(sb.run([*inside, "addr"], check=True).stdout)
    routes = json.loads(sb.run([*inside, "route"], check=True).stdout)

    def norm(text: str) -> str:
        return text.replace(cid, "CID").replace(veth, "VETH").replace(ns, "NS")

    return {
        "veth": (link["mtu"], link["operstate"], link["master"], link["linkinfo"]["info_slave_data"]["hairpin"]),
        "inside": [
            (
                a["ifname"],
                a["operstate"],
                a["mtu"],
                a.get("address"),
                [(x["local"], x["prefixlen"]) for x in a["addr_info"]],
            )
            for a in addrs
        ],
        "routes": [(r["dst"], r.get("gateway"), r["dev"]) for r in routes],
        "rules": sorted(norm(r) for r in sb.rules() if cid in r),
        "bridge_rules": sorted(norm(r) for r in sb.bridge_rules() if veth in r),
    }


def test_run_and_up_make_the_same_kernel_objects(sandbox, tmp_path):
    sb = sandbox
    sb.cnet("net", "create", "ext", "--subnet", "10.73.0.0/24")
    args = ["--net", "ext", "--ip", "10.73.0.10", "-p", "8085:80", "-p", "127.0.0.1:5353:53/udp"]
    sb.cnet("run", "-d", "--name", "one", *args, "--", "sleep", "600")
    by_run = objects(sb, "one")
    sb.cnet("rm", "-f", "one")
    f = tmp_path / "one.toml"
    f.write_text(
        'name = "solo"\n[containers.one]\ncommand = "sleep 600"\nnetworks = ["ext"]\nip = "10.73.0.10"\n'
        'ports = ["8085:80", "127.0.0.1:5353:53/udp"]\n'
    )
    sb.cnet("up", str(f))
    assert objects(sb, "one") == by_run
    assert by_run["rules"] and by_run["bridge_rules"]
    sb.cnet("down", str(f))
    sb.cnet("net", "rm", "ext")


# --- SIGKILL at every kernel command of `up` and `down` -----------------------------------------
KILL_STACK = (
    'name = "k"\n[containers.s]\ncommand = "sleep 600"\nnetworks = ["a"]\nports = ["7001-7002:80"]\nscale = 2\n'
)
# up: the host side (one ip -batch), one inside step per container, anti-spoofing, port rules;
# down: port rules, anti-spoofing rules, the namespaces.
COUNTS = {"up": 5, "down": 3}
CASES = [(op, at, mode) for op, n in COUNTS.items() for at in range(1, n + 1) for mode in ("pre", "post")]


@pytest.mark.parametrize("op,at,mode", CASES, ids=[f"{o}-{a}-{m}" for o, a, m in CASES])
def test_sigkill_at_every_step_is_repaired(sandbox, tmp_path, op, at, mode):
    sb = sandbox
    faults = Faults(sb, tmp_path)
    f = tmp_path / "k.toml"
    f.write_text(KILL_STACK)
    sb.cnet("net", "create", "a", "--subnet", "10.61.0.0/24")
    empty = (kernel(sb), db(sb))
    if op == "down":
        sb.cnet("up", str(f))
    faults.arm(at, mode)
    res = sb.run(sb.cnet_argv(op, str(f)), env={"PATH": faults.path}, timeout=60)
    faults.disarm()
    assert faults.fired(), f"step {at} of {op} never ran:\n{faults.log()}\n{res.stderr}"
    assert res.returncode in (-9, 137), res
    ps = sb.cnet("ps", "-a")
    assert "recovered interrupted operation" in ps.stderr, ps.stderr
    assert ("rolled back" if op == "up" else "completed") in ps.stderr
    assert "undo errors" not in ps.stderr
    if op == "down":
        # The release completed; the records the killed `down` had still to delete stay, exited.
        assert all(r["state"].startswith("exited") for r in json.loads(sb.cnet("ps", "-a", "--json").stdout))
        sb.cnet("down", str(f))
    settles(sb, empty)
    assert "# step:" not in sb.cnet("--dry-run", "gc").stdout
    # The host still works: the same file comes up, and goes.
    sb.cnet("up", str(f))
    assert sorted(pids_of(sb, "k")) == ["s-1", "s-2"]
    sb.cnet("down", str(f))
    settles(sb, empty)
    sb.cnet("net", "rm", "a")


def settles(sb, want) -> None:
    """The kernel destroys a deleted namespace's veths asynchronously: give it a moment."""
    sb.wait_for(lambda: (kernel(sb), db(sb)) == want, timeout=10, interval=0.1)
    assert (kernel(sb), db(sb)) == want


def pids_of(sb, stack: str) -> dict[str, int]:
    return {r["name"]: r["pid"] for r in json.loads(sb.cnet("ps", "--json", "--filter", f"stack={stack}").stdout)}


def test_step_count_of_up_and_down(sandbox, tmp_path):
    """COUNTS is what up and down really run (armed at a call that never comes)."""
    sb = sandbox
    faults = Faults(sb, tmp_path)
    f = tmp_path / "k.toml"
    f.write_text(KILL_STACK)
    sb.cnet("net", "create", "a", "--subnet", "10.61.0.0/24")
    for op in ("up", "down"):
        faults.arm(10_000, "pre")
        sb.run(sb.cnet_argv(op, str(f)), env={"PATH": faults.path}, timeout=60, check=True)
        assert faults.count() == COUNTS[op], faults.log()
    sb.cnet("net", "rm", "a")


def test_two_ups_of_one_file_at_once_both_succeed_and_make_each_thing_once(sandbox, tmp_path, tools):
    """A second `up` started while the first runs waits for it, then finds nothing to do: before
    the stack lock, the one that lost the race failed on the network or container names the other
    had just created."""
    sb = sandbox
    f = write(tmp_path, tools)
    procs = [
        sb.popen(sb.cnet_argv("up", str(f)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    # One of them did the work, the other found it done.
    assert sorted(o[0].count("started ") for o in outs) == [0, 3], outs
    wait_answering(sb, tools, {8085: "api", 9001: "web-1", 9002: "web-2"})
    assert sorted(pids(sb)) == ["api", "web-1", "web-2"]
    assert sb.cnet("sql", "SELECT count(*) FROM networks WHERE name = 'front'").stdout.split()[-1] == "1"
    sb.cnet("down", str(f))
    no_cnet_leftovers(sb)


# ARP requests broadcast (ethertype 0x0806 to ff:ff:ff:ff:ff:ff).
ARP_BROADCAST = 'frame[:6] == b"\\xff" * 6 and frame[12:14] == b"\\x08\\x06"'


CONNECT_EACH = """
import socket, sys
for ip in sys.argv[1:]:
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
        s.settimeout(3)
        print(s.connect_ex((ip, 9)))
"""


def test_the_host_reaches_new_containers_without_an_arp_broadcast(sandbox, tmp_path):
    """Each endpoint's MAC is in the host's neighbour table from the start (STALE, as if learnt),
    so the host's first packet to a new container is unicast: no ARP request flooded by the bridge
    to every other container, which made reaching N new containers cost N*N (stack growth)."""
    sb = sandbox
    sb.cnet("net", "create", "flat", "--subnet", "10.72.0.0/24")
    sb.cnet("net", "create", "dual", "--ipv6", "--subnet", "10.72.1.0/24", "--subnet", "fd00:72:1::/64")
    sb.cnet("run", "-d", "--name", "listener", "--net", "flat", "--", "sleep", "600")
    sniffer = count_frames(sb, inspect(sb, "listener")["netns"], ARP_BROADCAST)
    stack = tmp_path / "s.toml"
    stack.write_text('name = "q"\n[containers.s]\ncommand = ["sleep", "600"]\nnetworks = ["flat"]\nscale = 3\n')
    sb.cnet("up", str(stack))
    sb.cnet("run", "-d", "--name", "two", "--net", "dual", "--", "sleep", "600")
    sb.cnet("net", "connect", "flat", "two")
    bridge = json.loads(sb.cnet("net", "inspect", "flat").stdout)["bridge"]
    dual_bridge = json.loads(sb.cnet("net", "inspect", "dual").stdout)["bridge"]
    wanted = {}
    for name in ("s-1", "s-2", "s-3", "two"):
        for ep in inspect(sb, name)["networks"]:
            wanted[(ep["ip"], bridge if ep["network"] == "flat" else dual_bridge)] = ep["mac"]
            if ep["ip6"]:
                wanted[(ep["ip6"], dual_bridge)] = ep["mac"]
    assert len(wanted) == 6
    for (ip, dev), mac in wanted.items():
        out = sb.run(["ip", "-j", "neigh", "show", ip, "dev", dev], check=True).stdout
        (entry,) = json.loads(out)
        assert entry["lladdr"] == mac and entry["state"] == ["STALE"], entry
    # Inside: the gateway's addresses with the bridge's MAC.
    for name, dev, gateways in (("s-1", "eth0", ["10.72.0.1"]), ("two", "eth0", ["10.72.1.1", "fd00:72:1::1"])):
        netns, br = inspect(sb, name)["netns"], bridge if name == "s-1" else dual_bridge
        br_mac = json.loads(sb.run(["ip", "-j", "link", "show", "dev", br], check=True).stdout)[0]["address"]
        inside = json.loads(sb.run(in_netns(netns, ["ip", "-j", "neigh", "show", "dev", dev]), check=True).stdout)
        assert {e["dst"]: e["lladdr"] for e in inside} == {g: br_mac for g in gateways}, inside
    # The sandbox host's first packet to each address: a TCP connection the container refuses.
    refused = sb.run(["python3", "-c", CONNECT_EACH, *(ip for ip, _ in wanted)], check=True).stdout.split()
    assert refused == ["111"] * 6  # ECONNREFUSED: each container answered
    heard, _ = sniffer.communicate(timeout=10)
    assert int(heard) == 0  # without the seeded entries: two broadcasts per address on "flat"
    # The control: without its entry on either side, reaching s-2 is heard by the listener.
    sniffer = count_frames(sb, inspect(sb, "listener")["netns"], ARP_BROADCAST)
    s2 = inspect(sb, "s-2")
    sb.run(["ip", "neigh", "del", s2["networks"][0]["ip"], "dev", bridge], check=True)
    sb.run(in_netns(s2["netns"], ["ip", "neigh", "del", "10.72.0.1", "dev", "eth0"]), check=True)
    assert sb.run(["python3", "-c", CONNECT_EACH, s2["networks"][0]["ip"]], check=True).stdout.split() == ["111"]
    heard, _ = sniffer.communicate(timeout=10)
    assert int(heard) >= 1
    sb.cnet("down", str(stack))
    sb.cnet("rm", "-f", "listener", "two")
    sb.cnet("net", "rm", "flat", "dual")
    no_cnet_leftovers(sb)


def test_a_bridge_without_its_own_mac_gets_it_before_a_container_joins(sandbox):
    """A bridge made before networks had a MAC of their own has its lowest port's: a new
    container's neighbour entry for the gateway names the network's MAC, so `run` first gives the
    bridge its MAC (as gc and net restore do)."""
    sb = sandbox
    sb.cnet("net", "create", "old", "--subnet", "10.72.2.0/24")
    net = json.loads(sb.cnet("net", "inspect", "old").stdout)
    sb.run(["ip", "link", "set", "dev", net["bridge"], "address", "02:00:00:00:00:01"], check=True)
    res = sb.cnet("run", "-d", "--name", "m", "--net", "old", "--", "sleep", "600")
    assert "restored" in res.stderr and net["bridge_mac"] in res.stderr, res.stderr
    link = json.loads(sb.run(["ip", "-j", "link", "show", "dev", net["bridge"]], check=True).stdout)[0]
    assert link["address"] == net["bridge_mac"]
    inside = sb.run(in_netns(inspect(sb, "m")["netns"], ["ip", "-j", "neigh", "show", "dev", "eth0"]), check=True)
    assert [(e["dst"], e["lladdr"]) for e in json.loads(inside.stdout)] == [("10.72.2.1", net["bridge_mac"])]
    assert "restored" not in sb.cnet("run", "-d", "--name", "n", "--net", "old", "--", "sleep", "600").stderr
    sb.cnet("rm", "-f", "m", "n")
    sb.cnet("net", "rm", "old")
    no_cnet_leftovers(sb)
