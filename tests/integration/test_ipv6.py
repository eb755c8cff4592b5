"""Dual-stack networks (`net create --ipv6`): IPv6 between containers, published ports on the
host's IPv6 addresses from an external host and from containers (hairpin), outbound masquerade,
isolation between networks, the IPv6 anti-spoofing pin, and nothing left behind (the sandbox
fixture compares ip6tables and IPv6 forwarding with the baseline too)."""

import json
import time

import pytest

from .conftest import add_client, answers, count_frames, del_client, in_netns, inspect, probe, run_server

pytestmark = pytest.mark.root

N1 = ("--ipv6", "--subnet", "10.30.1.0/24", "--subnet", "fd00:30:1::/64")
N2 = ("--ipv6", "--subnet", "10.30.2.0/24", "--subnet", "fd00:30:2::/64")


def _t6(ip: str, port: int) -> list[str]:
    return [f"tcp:[{ip}]:{port}", f"udp:[{ip}]:{port}"]


def test_dual_stack_reachability_isolation_and_masquerade(sandbox, tools):
    sb = sandbox
    ext = add_client(sb, ipv6=True)
    sb.cnet("net", "create", "d1", *N1)
    sb.cnet("net", "create", "d2", *N2)
    assert sb.sysctl("net.ipv6.conf.all.forwarding") == "1"
    srv = run_server(sb, tools, "srv", "--net", "d1", "-p", "8080:80", "-p", "8080:80/udp", dual=True)
    nb = run_server(sb, tools, "nb", "--net", "d1", dual=True)
    other = run_server(sb, tools, "other", "--net", "d2", dual=True)
    srv_ip6, nb_ip6 = srv["networks"][0]["ip6"], nb["networks"][0]["ip6"]
    other_ip6 = other["networks"][0]["ip6"]
    assert (srv_ip6, nb_ip6) == ("fd00:30:1::2", "fd00:30:1::3")
    assert other["networks"][0]["gateway6"] == "fd00:30:2::1"

    # Container to container over IPv6, with the neighbour's own source address (no NAT).
    [reply] = probe(sb, tools, [f"tcp:[{srv_ip6}]:80"], netns=nb["netns"])
    assert reply.split()[:2] == ["srv", nb_ip6]

    published = {
        "external host via the host's IPv6 address": (ext.netns, _t6(ext.host_ip6, 8080)),
        "external host via the host's IPv4 address (both families)": (ext.netns, [f"tcp:{ext.host_ip}:8080"]),
        "neighbour via the host's IPv6 address (hairpin)": (nb["netns"], _t6(ext.host_ip6, 8080)),
        "itself via the host's IPv6 address (hairpin)": (srv["netns"], _t6(ext.host_ip6, 8080)),
        "container on another network": (other["netns"], _t6(ext.host_ip6, 8080)),
        "the host itself": (None, _t6(ext.host_ip6, 8080)),
    }
    for what, (netns, targets) in published.items():
        assert answers(sb, tools, targets, netns=netns) == {t: "srv" for t in targets}, what
    # The external host sees its own address: DNAT, no masquerade on the way in.
    [reply] = probe(sb, tools, [f"tcp:[{ext.host_ip6}]:8080"], netns=ext.netns)
    assert reply.split()[1] == ext.ip6

    blocked = {
        "other network -> container directly": (other["netns"], _t6(srv_ip6, 80)),
        "container -> other network directly": (srv["netns"], _t6(other_ip6, 80)),
        "external host -> container address": (ext.netns, _t6(srv_ip6, 80)),
    }
    sb.sh(f"ip -n {ext.netns} route add fd00:30::/32 via {ext.host_ip6}")  # even when routed there
    for what, (netns, targets) in blocked.items():
        assert probe(sb, tools, targets, netns=netns, timeout=1) == [None, None], what

    # Outbound: the external host sees the host's address (masquerade out of the network).
    outside = sb.popen(in_netns(ext.netns, ["python3", str(tools.server), "9000", "dual"]))
    try:
        assert sb.wait_for(lambda: probe(sb, tools, [f"tcp:[{ext.ip6}]:9000"], timeout=0.5)[0], timeout=10)
        [reply] = probe(sb, tools, [f"tcp:[{ext.ip6}]:9000"], netns=srv["netns"])
        assert reply.split()[1] == ext.host_ip6
    finally:
        outside.kill()
        outside.wait()

    sb.cnet("rm", "-f", "srv", "nb", "other")
    sb.cnet("net", "rm", "d1", "d2")
    del_client(sb, ext)
    assert sb.rules6() == sb.baseline["rules6"]


def test_published_on_one_ipv6_address_and_loopback_refused(sandbox, tools):
    sb = sandbox
    ext = add_client(sb, ipv6=True)
    sb.cnet("net", "create", "d1", *N1)
    run_server(sb, tools, "one", "--net", "d1", "-p", f"[{ext.host_ip6}]:8081:80", dual=True)
    got = probe(sb, tools, [f"tcp:[{ext.host_ip6}]:8081", f"tcp:{ext.host_ip}:8081"], netns=ext.netns, timeout=1)
    assert got[0] and got[0].split()[0] == "one"
    assert got[1] is None  # IPv6 only
    ports = json.loads(sb.cnet("sql", "SELECT host_ip, host_port FROM v_port_mappings", "--json").stdout)
    assert ports == [{"host_ip": ext.host_ip6, "host_port": 8081}]
    # The port is held on the host for IPv6 too: a host process cannot take it.
    res = sb.run(["python3", "-c", f"import socket; socket.socket(socket.AF_INET6).bind(('{ext.host_ip6}', 8081))"])
    assert res.returncode != 0 and "Address already in use" in res.stderr
    res = sb.cnet("run", "--net", "d1", "-p", "[::1]:8082:80", "--", "true", check=False)
    assert res.returncode == 1 and len(res.stderr.splitlines()) == 1 and "cannot DNAT to ::1" in res.stderr
    sb.cnet("rm", "-f", "one")
    sb.cnet("net", "rm", "d1")
    del_client(sb, ext)


def test_spoofed_ipv6_source_is_dropped(sandbox, tools):
    sb = sandbox
    sb.cnet("net", "create", "d1", *N1)
    srv = run_server(sb, tools, "srv", "--net", "d1", dual=True)
    sb.cnet("run", "-d", "--name", "evil", "--net", "d1", "--ip6", "fd00:30:1::66", "--", "sleep", "600")
    evil = json.loads(sb.cnet("inspect", "evil").stdout)
    srv_ip6 = srv["networks"][0]["ip6"]
    # Root inside its namespace, the container takes a neighbour-to-be's address as well.
    sb.run(in_netns(evil["netns"], ["ip", "addr", "add", "fd00:30:1::77/64", "dev", "eth0", "nodad"]), check=True)
    own, spoofed = probe(
        sb, tools, [f"fd00:30:1::66@tcp:[{srv_ip6}]:80", f"fd00:30:1::77@tcp:[{srv_ip6}]:80"], netns=evil["netns"]
    )
    assert own and own.split()[:2] == ["srv", "fd00:30:1::66"]
    assert spoofed is None
    # A router advertisement from the container is dropped too (no container routes the others).
    rules = sb.ebtables_save()
    assert "--ip6-icmp-type router-advertisement -j DROP" in rules and "--ip6-src fd00:30:1::66 -j RETURN" in rules
    sb.cnet("rm", "-f", "srv", "evil")
    sb.cnet("net", "rm", "d1")


def test_gc_and_restore_bring_back_the_ipv6_objects(sandbox, tools):
    sb = sandbox
    sb.cnet("net", "create", "d1", *N1)
    rules6 = sb.rules6()
    sb.reboot()  # every link and rule gone, the state stays
    sb.cnet("restore")
    bridge = json.loads(sb.cnet("net", "inspect", "d1").stdout)["bridge"]
    assert "inet6 fd00:30:1::1/64" in sb.run(["ip", "-6", "addr", "show", "dev", bridge], check=True).stdout
    assert sb.rules6() == rules6
    assert sb.sysctl("net.ipv6.conf.all.forwarding") == "1"
    # gc: an orphan IPv6 rule goes, a network's missing IPv6 rule comes back.
    sb.sh(
        "ip6tables -t nat -A CNET-POSTROUTING -m comment --comment cnet:net:gone -j ACCEPT && "
        "ip6tables -t nat -D CNET-POSTROUTING -s fd00:30:1::/64 ! -o " + bridge +
        " -m comment --comment cnet:net:d1 -j MASQUERADE"
    )  # fmt: skip
    assert sb.rules6() != rules6
    sb.cnet("gc")
    assert sb.rules6() == rules6
    srv = run_server(sb, tools, "srv", "--net", "d1", dual=True)
    sb.cnet("run", "-d", "--name", "cl", "--net", "d1", "--", "sleep", "600")
    cl = json.loads(sb.cnet("inspect", "cl").stdout)
    assert answers(sb, tools, [f"tcp:[{srv['networks'][0]['ip6']}]:80"], netns=cl["netns"]) == {
        f"tcp:[{srv['networks'][0]['ip6']}]:80": "srv"
    }
    sb.cnet("rm", "-f", "srv", "cl")
    sb.cnet("net", "rm", "d1")


@pytest.mark.parametrize("internal_first", [True, False])
def test_internal_dual_stack_network_drops_ipv6_whatever_the_creation_order(sandbox, tools, internal_first):
    sb = sandbox
    ext = add_client(sb, ipv6=True)
    create = [
        ("i1", ("--internal", "--ipv6", "--subnet", "10.30.3.0/24", "--subnet", "fd00:30:3::/64")),
        ("d1", N1),
    ]
    for name, args in create if internal_first else create[::-1]:
        sb.cnet("net", "create", name, *args)
    inside = run_server(sb, tools, "inside", "--net", "i1", dual=True)
    peer = run_server(sb, tools, "peer", "--net", "i1", dual=True)
    outer = run_server(sb, tools, "outer", "--net", "d1", "-p", "8080:80", dual=True)
    in6, out6 = inside["networks"][0]["ip6"], outer["networks"][0]["ip6"]
    assert answers(sb, tools, _t6(in6, 80), netns=peer["netns"]) == {t: "inside" for t in _t6(in6, 80)}
    assert inside["networks"][0]["gateway6"] == "fd00:30:3::1"
    routes = sb.run(in_netns(inside["netns"], ["ip", "-6", "route"]), check=True).stdout
    assert "default" not in routes  # an internal network has no way out
    sb.run(in_netns(inside["netns"], ["ip", "-6", "route", "add", "default", "via", "fd00:30:3::1"]), check=True)
    outside = sb.popen(in_netns(ext.netns, ["python3", str(tools.server), "9000", "dual"]))
    assert sb.wait_for(lambda: probe(sb, tools, [f"tcp:[{ext.ip6}]:9000"], timeout=0.5)[0], timeout=10)
    # Control: the ordinary network does get out.
    assert probe(sb, tools, [f"tcp:[{ext.ip6}]:9000"], netns=outer["netns"])[0]
    blocked = {
        "internal -> other network": (inside["netns"], _t6(out6, 80)),
        "internal -> external host": (inside["netns"], _t6(ext.ip6, 9000)),
        "internal -> published port via the host": (inside["netns"], _t6(ext.host_ip6, 8080)),
        "other network -> internal": (outer["netns"], _t6(in6, 80)),
    }
    try:
        for what, (netns, targets) in blocked.items():
            assert probe(sb, tools, targets, netns=netns, timeout=1) == [None, None], what
    finally:
        outside.kill()
        outside.wait()
    sb.cnet("rm", "-f", "inside", "peer", "outer")
    sb.cnet("net", "rm", "i1", "d1")
    del_client(sb, ext)


def _ra_dad(sb, netns: str, devs: tuple[str, ...]) -> dict[str, str]:
    """accept_ra and accept_dad of `devs` as the container's network namespace has them."""
    keys = [f"/proc/sys/net/ipv6/conf/{d}/{k}" for d in devs for k in ("accept_ra", "accept_dad")]
    out = sb.run(in_netns(netns, ["cat", *keys]), check=True).stdout.split()
    return dict(zip([k.split("conf/")[1] for k in keys], out, strict=True))


def test_router_advertisements_and_dad_off_inside_containers(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "d1", *N1)
    sb.cnet("net", "create", "d2", *N2)
    sb.cnet("net", "create", "v4", "--subnet", "10.30.9.0/24")
    # A new namespace starts with both on (1): the container's init shell turns them off.
    fresh = sb.run(["unshare", "--net", "cat", "/proc/sys/net/ipv6/conf/default/accept_ra"], check=True)
    assert fresh.stdout.strip() == "1"
    sb.cnet("run", "-d", "--name", "c6", "--net", "d1", "--", "sleep", "600")
    netns = json.loads(sb.cnet("inspect", "c6").stdout)["netns"]
    devs = ("all", "default", "lo", "eth0")
    zero = dict.fromkeys(_ra_dad(sb, netns, devs), "0")
    assert sb.wait_for(lambda: _ra_dad(sb, netns, devs) == zero), _ra_dad(sb, netns, devs)

    # An interface that `net connect` adds after the start inherits `default` (0).
    sb.cnet("net", "connect", "d2", "c6")
    nets = json.loads(sb.cnet("inspect", "c6").stdout)["networks"]
    second = next(n["interface"] for n in nets if n["network"] == "d2")
    assert _ra_dad(sb, netns, (second,)) == {f"{second}/accept_ra": "0", f"{second}/accept_dad": "0"}

    # An IPv4-only container starts and runs its command, with the same settings inside.
    res = sb.cnet("run", "--rm", "--net", "v4", "--", "cat", "/proc/sys/net/ipv6/conf/eth0/accept_ra")
    assert (res.returncode, res.stdout) == (0, "0\n"), res

    sb.cnet("rm", "-f", "c6")
    sb.cnet("net", "rm", "d1", "d2", "v4")


def test_start_comes_back_on_the_static_ipv6_address(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "d1", *N1)
    sb.cnet("run", "-d", "--name", "s6", "--net", "d1", "--ip6", "fd00:30:1::66", "--", "sleep", "600")
    sb.cnet("stop", "-t", "0", "s6")
    # Meanwhile another container takes the next dynamic address: a fresh allocation would differ.
    sb.cnet("run", "-d", "--name", "other", "--net", "d1", "--", "sleep", "600")
    sb.cnet("start", "s6")
    ep = json.loads(sb.cnet("inspect", "s6").stdout)["networks"][0]
    assert ep["ip6"] == "fd00:30:1::66"
    netns = json.loads(sb.cnet("inspect", "s6").stdout)["netns"]
    addrs = sb.run(in_netns(netns, ["ip", "-6", "-o", "addr", "show", "dev", "eth0"]), check=True).stdout
    assert "fd00:30:1::66/64" in addrs
    sb.cnet("rm", "-f", "s6", "other")
    sb.cnet("net", "rm", "d1")


def test_dry_run_ps_inspect_and_sql_show_the_ipv6_side(sandbox):
    sb = sandbox
    plan = sb.cnet("--dry-run", "net", "create", "d1", *N1).stdout
    for line in (
        "sysctl -q -w net.ipv6.conf.all.forwarding=1",
        "ip6tables-restore -w --noflush <<'CNET_EOF'",
        "addr add fd00:30:1::1/64 dev",
        "addrgenmode none",
    ):
        assert line in plan, plan
    assert sb.cnet("net", "ls", "-q").stdout.split() == []  # a dry run changes nothing
    sb.cnet("net", "create", "d1", *N1)
    plan = sb.cnet("--dry-run", "run", "-d", "--name", "x", "--net", "d1", "--", "sleep", "600").stdout
    assert "addr add fd00:30:1::2/64 dev eth0 nodad" in plan and "route add default via fd00:30:1::1" in plan, plan
    assert "--ip6-src fd00:30:1::2 -j RETURN" in plan, plan
    sb.cnet("run", "-d", "--name", "x", "--net", "d1", "--", "sleep", "600")
    (row,) = json.loads(sb.cnet("ps", "--json").stdout)
    assert row["ips"] == ["10.30.1.2", "fd00:30:1::2"]
    tmpl = "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}} {{end}}"
    assert sb.cnet("inspect", "-f", tmpl, "x").stdout.strip() == "fd00:30:1::2"
    ip6 = json.loads(sb.cnet("sql", "SELECT ip6 FROM v_endpoints", "--json").stdout)
    assert ip6 == [{"ip6": "fd00:30:1::2"}]
    sql = "SELECT address, kind, container FROM v_ip_allocations WHERE family = 6 ORDER BY address"
    allocs = json.loads(sb.cnet("sql", sql, "--json").stdout)
    assert allocs == [
        {"address": "fd00:30:1::1", "kind": "gateway", "container": None},
        {"address": "fd00:30:1::2", "kind": "dynamic", "container": "x"},
    ]
    sb.cnet("rm", "-f", "x")
    sb.cnet("net", "rm", "d1")


def test_start_comes_back_on_its_dynamic_ipv6_address_when_free(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "d1", *N1)
    sb.cnet("run", "-d", "--name", "a", "--net", "d1", "--", "sleep", "600")
    sb.cnet("run", "-d", "--name", "b", "--net", "d1", "--", "sleep", "600")
    a6 = json.loads(sb.cnet("inspect", "a").stdout)["networks"][0]["ip6"]
    b6 = json.loads(sb.cnet("inspect", "b").stdout)["networks"][0]["ip6"]
    sb.cnet("stop", "-t", "0", "a", "b")
    # Another container takes the next dynamic addresses meanwhile: fresh ones would differ.
    sb.cnet("run", "-d", "--name", "other", "--net", "d1", "--", "sleep", "600")
    sb.cnet("start", "a")
    a = json.loads(sb.cnet("inspect", "a").stdout)
    assert a["networks"][0]["ip6"] == a6
    addrs = sb.run(in_netns(a["netns"], ["ip", "-6", "-o", "addr", "show", "dev", "eth0"]), check=True).stdout
    assert f"{a6}/64" in addrs
    # b's old address taken meanwhile: b comes back on a fresh one, without an error.
    sb.cnet("rm", "-f", "other")
    sb.cnet("run", "-d", "--name", "thief", "--net", "d1", "--ip6", b6, "--", "sleep", "600")
    sb.cnet("start", "b")
    fresh6 = json.loads(sb.cnet("inspect", "b").stdout)["networks"][0]["ip6"]
    assert fresh6 not in (b6, a6)
    sb.cnet("rm", "-f", "a", "b", "thief")
    sb.cnet("net", "rm", "d1")


def test_hosts_files_list_ipv6_addresses_on_dual_stack_networks(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "d1", *N1)
    sb.cnet("net", "create", "v4", "--subnet", "10.30.9.0/24")
    sb.cnet("run", "-d", "--name", "h1", "--net", "d1", "--", "sleep", "600")
    sb.cnet("run", "-d", "--name", "h2", "--net", "d1", "--net", "v4", "--", "sleep", "600")
    h2 = json.loads(sb.cnet("inspect", "h2").stdout)["networks"]
    hosts = sb.cnet("exec", "h1", "--", "cat", "/etc/hosts").stdout
    assert f"{h2[0]['ip']}\th2\n{h2[0]['ip6']}\th2\n" in hosts
    got = sb.cnet("exec", "h1", "--", "getent", "ahostsv6", "h2").stdout.split()
    assert h2[0]["ip6"] in got
    # On h2's IPv4-only network it has one line.
    own = sb.cnet("exec", "h2", "--", "cat", "/etc/hosts").stdout
    assert own.count(f"{h2[1]['ip']}\t") == 1
    sb.cnet("rm", "-f", "h1", "h2")
    sb.cnet("net", "rm", "d1", "v4")


def _ipv6_addrs(sb, netns: str, dev: str) -> list[str]:
    out = sb.run(in_netns(netns, ["ip", "-j", "-6", "addr", "show", "dev", dev]), check=True).stdout
    return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out) for a in link.get("addr_info", [])]


# Frames from containers (MACs 02:42:..., ip.mac_for_ip): not the bridge's own, nor those of the
# host's end of the veth.
FROM_CONTAINERS = "frame[6:8] == bytes([2, 0x42])"


def test_ipv4_only_interfaces_get_no_ipv6_and_a_start_sends_nothing_to_the_others(sandbox, tmp_path):
    """An interface on an IPv4-only network has no IPv6 address (no link-local one either), by
    `run`, `up` and `net connect`: the kernel's link-local address would send duplicate address
    detection and MLD reports at link up, which the bridge floods to every container on it. So
    starting containers costs nothing in the ones already running: their eth0 receives nothing.
    A dual-stack interface keeps its link-local address."""
    sb = sandbox
    sb.cnet("net", "create", "v4", "--subnet", "10.30.5.0/24")
    sb.cnet("net", "create", "v4b", "--subnet", "10.30.6.0/24")
    sb.cnet("net", "create", "d1", *N1)
    sb.cnet("run", "-d", "--name", "first", "--net", "v4", "--", "sleep", "600")
    first = inspect(sb, "first")["netns"]
    assert _ipv6_addrs(sb, first, "eth0") == []
    sniffer = count_frames(sb, first, FROM_CONTAINERS)
    stack = tmp_path / "s.toml"
    stack.write_text('name = "q"\n[containers.s]\ncommand = ["sleep", "600"]\nnetworks = ["v4"]\nscale = 4\n')
    sb.cnet("up", str(stack))
    sb.cnet("run", "-d", "--name", "more", "--net", "v4", "--", "sleep", "600")
    sb.cnet("net", "connect", "v4b", "more")
    more = inspect(sb, "more")["netns"]
    assert _ipv6_addrs(sb, more, "eth0") == [] and _ipv6_addrs(sb, more, "eth1") == []
    assert _ipv6_addrs(sb, inspect(sb, "s-1")["netns"], "eth0") == []
    time.sleep(1.5)  # what the starts would have sent (each link-local address: a report, then a second)
    heard, _ = sniffer.communicate(timeout=10)
    assert int(heard) == 0  # with link-local addresses: several frames from each of the six
    sb.cnet("run", "-d", "--name", "dual", "--net", "d1", "--", "sleep", "600")
    addrs = _ipv6_addrs(sb, inspect(sb, "dual")["netns"], "eth0")
    assert "fd00:30:1::2/64" in addrs and any(a.startswith("fe80::") for a in addrs), addrs
    sb.cnet("down", str(stack))
    sb.cnet("rm", "-f", "first", "more", "dual")
    for net in ("v4", "v4b", "d1"):
        sb.cnet("net", "rm", net)


def test_a_network_below_ipv6s_minimum_mtu_still_starts_containers(sandbox):
    # Born with an MTU under 1280 an interface has no IPv6, and the kernel refuses `addrgenmode`
    # on it: cnet leaves the setting out there (every start on such a network failed with it).
    sb = sandbox
    sb.cnet("net", "create", "small", "--subnet", "10.79.0.0/24", "--mtu", "1200")
    res = sb.cnet("run", "--rm", "--net", "small", "--", "ip", "-o", "link", "show", "dev", "eth0")
    assert " mtu 1200 " in res.stdout, res.stdout
    sb.cnet("net", "rm", "small")
