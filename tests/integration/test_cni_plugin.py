"""cnet as a CNI plugin, driven as libcni drives it (issue 8): the installed executable, a bare
environment, the configuration on stdin. Each test runs in its own sandbox and ends with the host
exactly as it found it (links, rules, netns, forwarding, database rows)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from .cni_support import Plugin, attachments, ns_addrs, ns_default_gw
from .conftest import add_client, answers, del_client, probe, run_server, settled

pytestmark = pytest.mark.root


def cid(i: int) -> str:
    return f"{i:02d}" + "c0ffee" * 10 + "ab"  # 64 characters, as runtimes make them


@pytest.fixture
def cni(sandbox, tmp_path) -> Plugin:
    return Plugin(sandbox, tmp_path / "cni-bin")


def host_veth(doc: dict) -> str:
    return doc["interfaces"][1]["name"]


def veths(sb) -> list[str]:
    return [name for name in sb.link_names() if name.startswith("cnetv")]


def wait_gone(sb, link: str) -> bool:
    return sb.wait_for(lambda: link not in sb.link_names(), timeout=5)


def test_add_check_del(sandbox, cni):
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    sb.sh("ip netns add rt1")
    r = cni.add(cni.conf("blue"), cid(1), "rt1")
    assert r.rc == 0 and r.stderr == "", r
    doc = r.doc
    assert doc["cniVersion"] == "1.0.0"
    (ip,) = doc["ips"]
    assert ip["address"].startswith("10.77.0.") and ip["address"].endswith("/24") and ip["gateway"] == "10.77.0.1"
    sandbox_if = doc["interfaces"][ip["interface"]]
    assert sandbox_if["name"] == "eth0" and sandbox_if["sandbox"] == "/run/netns/rt1" and sandbox_if["mac"]
    assert doc["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.77.0.1"}] and doc["dns"] == {}
    assert ns_addrs(sb, "rt1", "eth0") == [ip["address"]]
    assert ns_default_gw(sb, "rt1") == "10.77.0.1"
    assert host_veth(doc) in sb.link_names()
    assert attachments(sb) == [(cid(1), "eth0", "attached")]

    # cnet sees it like a container: ps, inspect, sql, journal; and keeps its network.
    (row,) = [c for c in json.loads(sb.cnet("ps", "--json").stdout) if c["id"] != ""]
    assert row["ips"] == [ip["address"].split("/")[0]] and row["state"] == "attached"
    info = json.loads(sb.cnet("inspect", row["name"]).stdout)
    assert info["kind"] == "cni" and info["cni"] == {
        "container_id": cid(1),
        "ifname": "eth0",
        "netns": "/run/netns/rt1",
    }
    assert info["networks"][0]["network"] == "blue"
    rows = json.loads(sb.cnet("sql", "SELECT * FROM v_cni_attachments", "--json").stdout)
    assert [(r["container_id"], r["ifname"], r["network"], r["ip"]) for r in rows] == [
        (cid(1), "eth0", "blue", ip["address"].split("/")[0])
    ]
    assert "cni-add" in sb.cnet("journal").stdout
    res = sb.cnet("net", "rm", "blue", check=False)
    assert res.returncode == 1 and "attach" in res.stderr and row["name"] in res.stderr

    # CHECK passes, then DEL releases everything, and DEL again is fine.
    r = cni.call("CHECK", cni.conf("blue", prev=doc), container_id=cid(1), netns="/run/netns/rt1", ifname="eth0")
    assert (r.rc, r.stdout) == (0, ""), r
    r = cni.delete(cni.conf("blue", prev=doc), cid(1), "rt1")
    assert (r.rc, r.stdout, r.stderr) == (0, "", ""), r
    assert attachments(sb) == [] and wait_gone(sb, host_veth(doc))
    assert "eth0" not in sb.run(["ip", "-n", "rt1", "-br", "link"]).stdout
    for netns in ("rt1", None):
        r = cni.delete(cni.conf("blue"), cid(1), netns)
        assert r.rc == 0, r
    sb.sh("ip netns del rt1")
    r = cni.delete(cni.conf("blue"), cid(1), "rt1")
    assert r.rc == 0, r
    assert "cni-del" in sb.cnet("journal").stdout
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline


# Never on a runtime call: the heavy dependencies, and what only other commands need.
PLUGIN_NEVER = {"sh", "sqlalchemy", "alembic", "typer", "tabulate", "subprocess", "asyncio", "logging", "threading"}
# ADD's alone (IPAM, labels, endpoints, the veth name's hash): a DEL does without them.
ADD_ONLY = {"cnet.ipam", "cnet.services.endpoints", "cnet.db.names_store", "hashlib"}


def plugin_imports(sb, cni: Plugin, command: str, conf: dict, **kw) -> set[str]:
    """The modules one call of the installed plugin imported (its own interpreter, -X importtime)."""
    python = cni.path.read_text().splitlines()[0][2:].split()[0]
    argv = cni.argv(command, **kw)
    res = sb.run([*argv[:-1], python, "-SE", "-X", "importtime", argv[-1]], input=json.dumps(conf), timeout=60)
    assert res.returncode == 0, res
    lines = [line for line in res.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    return {line.split("|")[2].strip() for line in lines[1:]}


def test_add_and_del_import_only_what_they_use(sandbox, cni):
    """The start-up guard of tests/unit/test_startup_imports.py, for the plugin: its imports are
    paid on every runtime call."""
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    sb.sh("ip netns add rt1")
    conf = cni.conf("blue")
    added = plugin_imports(sb, cni, "ADD", conf, container_id=cid(1), netns="/run/netns/rt1", ifname="eth0")
    assert {"cnet.services.cni", "cnet.ipam", "cnet.runner", "cnet.journal"} <= added  # the parse works
    assert not added & PLUGIN_NEVER, sorted(added & PLUGIN_NEVER)
    for netns in ("/run/netns/rt1", ""):  # the runtime's DEL, then a repeated one
        deleted = plugin_imports(sb, cni, "DEL", conf, container_id=cid(1), netns=netns, ifname="eth0")
        assert "cnet.services.cni" in deleted
        assert not deleted & (PLUGIN_NEVER | ADD_ONLY), sorted(deleted & (PLUGIN_NEVER | ADD_ONLY))
    assert attachments(sb) == []
    sb.sh("ip netns del rt1")
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline


def test_del_after_netns_or_interface_is_gone(sandbox, cni):
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    conf = cni.conf("blue", runtime={"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "udp"}]})
    sb.sh("ip netns add rt1 && ip netns add rt2")
    d1 = cni.add(conf, cid(1), "rt1").doc
    d2 = cni.add(cni.conf("blue"), cid(2), "rt2").doc
    sb.sh("ip netns del rt1 && ip -n rt2 link del eth0")  # the runtime tore down first
    assert wait_gone(sb, host_veth(d1)) and wait_gone(sb, host_veth(d2))
    assert cni.delete(conf, cid(1), "rt1").rc == 0
    assert cni.delete(cni.conf("blue"), cid(2), "rt2").rc == 0
    assert attachments(sb) == []
    assert "cnet:ctr:" not in sb.iptables_save()
    sb.sh("ip netns del rt2")
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_result_in_the_configured_version(sandbox, cni, version):
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    sb.sh("ip netns add rt1")
    r = cni.add(cni.conf("blue", version=version), cid(1), "rt1")
    assert r.rc == 0, r
    assert r.doc["cniVersion"] == version
    assert ("version" in r.doc["ips"][0]) == (version < "1.0.0")
    assert cni.delete(cni.conf("blue", version=version, prev=r.doc), cid(1), "rt1").rc == 0
    sb.sh("ip netns del rt1")
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline


def test_dual_stack_result_lists_both_families_and_check_wants_them(sandbox, cni):
    sb = sandbox
    sb.cnet("net", "create", "dual", "--ipv6", "--subnet", "10.77.0.0/24", "--subnet", "fd00:77::/64")
    sb.sh("ip netns add rt1")
    r = cni.add(cni.conf("dual"), cid(1), "rt1")
    assert r.rc == 0 and r.stderr == "", r
    doc = r.doc
    v4, v6 = doc["ips"]
    assert v4["address"].startswith("10.77.0.") and v4["gateway"] == "10.77.0.1" and v4["interface"] == 2
    assert v6["address"].startswith("fd00:77::") and v6["address"].endswith("/64") and "version" not in v6
    assert v6["gateway"] == "fd00:77::1" and v6["interface"] == 2
    assert doc["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.77.0.1"}, {"dst": "::/0", "gw": "fd00:77::1"}]
    # What the result says is what the runtime's namespace holds.
    data = json.loads(sb.run(["ip", "-n", "rt1", "-j", "-6", "addr", "show", "dev", "eth0"], check=True).stdout)
    addrs6 = [f"{a['local']}/{a['prefixlen']}" for d in data for a in d["addr_info"] if a.get("scope") == "global"]
    assert addrs6 == [v6["address"]]
    routes6 = json.loads(sb.run(["ip", "-n", "rt1", "-j", "-6", "route", "show", "default"], check=True).stdout)
    assert [rt["gateway"] for rt in routes6] == ["fd00:77::1"]
    check = dict(container_id=cid(1), netns="/run/netns/rt1", ifname="eth0")
    r = cni.call("CHECK", cni.conf("dual", prev=doc), **check)
    assert (r.rc, r.stdout) == (0, ""), r
    # CHECK finds the IPv6 side missing too (an IPv6 route outlives the address it came with).
    sb.sh(f"ip -n rt1 addr del {v6['address']} dev eth0")
    r = cni.call("CHECK", cni.conf("dual", prev=doc), **check)
    assert (r.rc, r.code) == (1, 103) and f"lacks its address {v6['address']}" in r.doc["msg"], r
    sb.sh("ip -n rt1 -6 route del default")
    r = cni.call("CHECK", cni.conf("dual", prev=doc), **check)
    assert (r.rc, r.code) == (1, 103) and "the default route via fd00:77::1 is missing" in r.doc["msg"], r
    assert cni.delete(cni.conf("dual", prev=doc), cid(1), "rt1").rc == 0
    sb.sh("ip netns del rt1")
    sb.cnet("net", "rm", "dual")
    assert sb.snapshot() == sb.baseline


def test_static_ipv6_address_on_a_dual_stack_network(sandbox, cni):
    # podman --ip6 sends it in runtimeConfig.ips: taken from the network's IPv6 subnet like an
    # IPv4 one (alone or beside it), refused in one CNI error where it cannot be had.
    sb = sandbox
    sb.cnet("net", "create", "dual", "--ipv6", "--subnet", "10.77.0.0/24", "--subnet", "fd00:77::/64")
    sb.cnet("net", "create", "v4", "--subnet", "10.78.0.0/24")
    sb.sh("ip netns add rt1")
    sb.sh("ip netns add rt2")
    both = cni.conf("dual", runtime={"ips": ["10.77.0.50/24", "fd00:77::50/64"]})
    r = cni.add(both, cid(1), "rt1")
    assert r.rc == 0, r
    assert [i["address"] for i in r.doc["ips"]] == ["10.77.0.50/24", "fd00:77::50/64"]
    data = json.loads(sb.run(["ip", "-n", "rt1", "-j", "-6", "addr", "show", "dev", "eth0"], check=True).stdout)
    assert [a["local"] for d in data for a in d["addr_info"] if a.get("scope") == "global"] == ["fd00:77::50"]
    only6 = cni.conf("dual", runtime={"ips": ["fd00:77::51"]})
    r2 = cni.add(only6, cid(2), "rt2")
    assert r2.rc == 0, r2
    v4, v6 = (i["address"] for i in r2.doc["ips"])
    assert v4.startswith("10.77.0.") and v6 == "fd00:77::51/64"
    refused = {
        "fd00:77::50": "already in use",  # rt1 holds it
        "fd00:78::5": "outside network dual",
        "fd00:77::1": "is the gateway",
    }
    sb.sh("ip netns add rt3")
    for addr, why in refused.items():
        r3 = cni.add(cni.conf("dual", runtime={"ips": [addr]}), cid(3), "rt3")
        assert r3.rc == 1 and why in r3.doc["msg"], (addr, r3)
    r3 = cni.add(cni.conf("v4", runtime={"ips": ["fd00:77::52"]}), cid(3), "rt3")
    assert r3.rc == 1 and "network v4 has no IPv6 subnet" in r3.doc["msg"], r3
    assert veths(sb) and len(veths(sb)) == 2  # the refused ADDs left nothing
    assert cni.delete(both, cid(1), "rt1").rc == 0
    assert cni.delete(only6, cid(2), "rt2").rc == 0
    for ns in ("rt1", "rt2", "rt3"):
        sb.sh(f"ip netns del {ns}")
    sb.cnet("net", "rm", "dual", "v4")
    assert sb.snapshot() == sb.baseline


def test_any_ifname_two_networks_static_ip_and_mac(sandbox, cni):
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    sb.cnet("net", "create", "red", "--subnet", "10.78.0.0/24")
    sb.sh("ip netns add rt1")
    blue = cni.conf("blue", runtime={"ips": ["10.77.0.50/24"], "mac": "02:00:00:aa:bb:cc"})
    r1 = cni.add(blue, cid(1), "rt1", ifname="net1")
    assert r1.rc == 0, r1
    assert r1.doc["ips"][0]["address"] == "10.77.0.50/24" and r1.doc["interfaces"][2]["mac"] == "02:00:00:aa:bb:cc"
    r2 = cni.add(cni.conf("red"), cid(1), "rt1", ifname="eth1")
    assert r2.rc == 0, r2
    assert r2.doc["routes"] == []  # the default route stays with the container's first attachment
    assert ns_addrs(sb, "rt1", "net1") == ["10.77.0.50/24"]
    assert ns_addrs(sb, "rt1", "eth1") == [r2.doc["ips"][0]["address"]]
    assert ns_default_gw(sb, "rt1") == "10.77.0.1"
    link = json.loads(sb.run(["ip", "-n", "rt1", "-j", "link", "show", "dev", "net1"]).stdout)[0]
    assert link["address"] == "02:00:00:aa:bb:cc"
    again = cni.add(cni.conf("blue"), cid(1), "rt1", ifname="net1")
    assert again.rc == 1 and again.code == 101, again
    assert cni.delete(blue, cid(1), "rt1", ifname="net1").rc == 0
    assert cni.delete(cni.conf("red"), cid(1), "rt1", ifname="eth1").rc == 0
    sb.sh("ip netns del rt1")
    sb.cnet("net", "rm", "blue", "red")
    assert sb.snapshot() == sb.baseline


def test_port_mappings_reach_the_attachment(sandbox, cni, tools):
    """Mapped ports answer wherever a `cnet run -p` mapping does: 127.0.0.1 and other hosts; a
    `cnet run` container on the same network talks to the attachment directly, both ways."""
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    client = add_client(sb)
    sb.sh("ip netns add rt1 && ip -n rt1 link set lo up")  # lo is the runtime's to bring up
    conf = cni.conf(
        "blue",
        runtime={
            "portMappings": [
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"},
                {"hostPort": 8081, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": 8082, "containerPort": 80, "protocol": "udp"},
            ]
        },
    )
    r = cni.add(conf, cid(1), "rt1")
    assert r.rc == 0, r
    att_ip = r.doc["ips"][0]["address"].split("/")[0]
    server = sb.popen(["nsenter", "--net=/run/netns/rt1", "python3", str(tools.server), "80"])
    try:
        assert sb.wait_for(
            lambda: answers(sb, tools, ["tcp:127.0.0.1:80"], netns="rt1")["tcp:127.0.0.1:80"], timeout=10
        )
        got = answers(sb, tools, ["tcp:127.0.0.1:8080", "tcp:127.0.0.1:8081", "udp:127.0.0.1:8082"])
        assert all(got.values()), got
        ext = answers(
            sb,
            tools,
            [f"tcp:{client.host_ip}:8081", f"udp:{client.host_ip}:8082", "tcp:127.0.0.1:8080"],
            netns=client.netns,
        )
        assert ext[f"tcp:{client.host_ip}:8081"] and ext[f"udp:{client.host_ip}:8082"]
        assert ext["tcp:127.0.0.1:8080"] is None  # a 127.0.0.1 mapping stays local
        ctr = run_server(sb, tools, "c1", "--net", "blue", port=90)
        ctr_ip = ctr["networks"][0]["ip"]
        (reply,) = probe(sb, tools, [f"tcp:{ctr_ip}:90"], netns="rt1")
        assert reply.split()[:2] == ["c1", att_ip]  # no NAT between them
        (reply,) = probe(sb, tools, [f"tcp:{att_ip}:80"], netns=ctr["netns"])
        assert reply.split()[1] == ctr_ip
        sb.cnet("rm", "-f", "c1")
    finally:
        server.kill()
        server.wait()
    assert cni.delete(conf, cid(1), "rt1").rc == 0
    assert "cnet:ctr:" not in sb.iptables_save()
    sb.sh("ip netns del rt1")
    del_client(sb, client)
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline


def test_port_mapping_on_one_ipv6_host_address(sandbox, cni, tools):
    # As `run -p [IPV6]:8081:80`: published on that IPv6 address only; refused on an IPv4-only
    # network; DEL takes the ip6tables rules away.
    sb = sandbox
    ext = add_client(sb, ipv6=True)
    sb.cnet("net", "create", "dual", "--ipv6", "--subnet", "10.77.0.0/24", "--subnet", "fd00:77::/64")
    sb.cnet("net", "create", "v4", "--subnet", "10.78.0.0/24")
    sb.sh("ip netns add rt1 && ip -n rt1 link set lo up")
    mapping = {"portMappings": [{"hostPort": 8081, "containerPort": 80, "protocol": "tcp", "hostIP": ext.host_ip6}]}
    refused = cni.add(cni.conf("v4", runtime=mapping), cid(2), "rt1")
    assert refused.rc == 1 and "network v4 has no IPv6" in refused.doc["msg"], refused
    conf = cni.conf("dual", runtime=mapping)
    r = cni.add(conf, cid(1), "rt1")
    assert r.rc == 0, r
    server = sb.popen(["nsenter", "--net=/run/netns/rt1", "python3", str(tools.server), "80", "dual"])
    try:
        assert sb.wait_for(
            lambda: probe(sb, tools, [f"tcp:[{ext.host_ip6}]:8081"], netns=ext.netns, timeout=0.5)[0], timeout=10
        )
        assert probe(sb, tools, [f"tcp:{ext.host_ip}:8081"], netns=ext.netns, timeout=1) == [None]  # IPv6 only
    finally:
        server.kill()
        server.wait()
    assert f"-d {ext.host_ip6}/128 -p tcp -m tcp --dport 8081" in sb.ip6tables_save()
    assert cni.delete(conf, cid(1), "rt1").rc == 0
    sb.sh("ip netns del rt1")
    del_client(sb, ext)
    sb.cnet("net", "rm", "dual", "v4")
    assert sb.snapshot() == sb.baseline


def test_bad_input_gets_a_cni_error_and_changes_nothing(sandbox, cni):
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    sb.sh("ip netns add rt1 && ip netns add rt2")
    held = cni.add(cni.conf("blue", runtime={"portMappings": [{"hostPort": 8080, "containerPort": 80}]}), cid(1), "rt1")
    assert held.rc == 0, held
    held_ip = held.doc["ips"][0]["address"].split("/")[0]
    sb.cnet("run", "-d", "--name", "c1", "--net", "blue", "-p", "9090:80", "--", "sleep", "600")
    before = settled(sb)
    good = cni.conf("blue")

    def ports(*specs):
        return cni.conf(
            "blue",
            runtime={
                "portMappings": [dict(zip(("hostPort", "containerPort", "hostIP"), s, strict=False)) for s in specs]
            },
        )

    cases = {
        "unknown network": (dict(good, network="nope"), {}, 7),
        "missing netns": (good, {"netns": "/run/netns/nope"}, 4),
        "no CNI_NETNS": (good, {"netns": ""}, 4),
        "garbage JSON": ("{not json", {}, 6),
        "unsupported version": (dict(good, cniVersion="2.0.0"), {}, 1),
        "old version": (dict(good, cniVersion="0.2.0"), {}, 1),
        "ipam section": (dict(good, ipam={"type": "host-local"}), {}, 2),
        "bad ifname": (good, {"ifname": "a/b"}, 4),
        "port mapped by an attachment": (ports((8080, 80)), {}, 101),
        "port mapped by a container": (ports((9090, 80, "127.0.0.1")), {}, 101),
        "address outside the subnet": (cni.conf("blue", runtime={"ips": ["10.99.0.5/24"]}), {}, 7),
        "the gateway's address": (cni.conf("blue", runtime={"ips": ["10.77.0.1"]}), {}, 7),
        "wrong prefix length": (cni.conf("blue", runtime={"ips": ["10.77.0.9/16"]}), {}, 7),
        "an address in use": (cni.conf("blue", runtime={"ips": [held_ip]}), {}, 101),
        "attachment twice": (good, {"cid": cid(1), "netns": "/run/netns/rt1"}, 101),
        "the kernel refuses (ifname lo exists)": (good, {"ifname": "lo"}, 100),
    }
    for what, (conf, over, code) in cases.items():
        kw = {
            "container_id": over.get("cid", cid(2)),
            "netns": over.get("netns", "/run/netns/rt2"),
            "ifname": over.get("ifname", "eth0"),
        }
        r = cni.call("ADD", conf, **kw)
        assert r.rc == 1 and r.doc is not None, (what, r)
        assert r.code == code and r.doc["msg"] and r.stderr == "", (what, r.doc)
        assert set(r.doc) <= {"cniVersion", "code", "msg", "details"}, what
        assert settled(sb) == before, what
    r = cni.call("CHECK", good, container_id=cid(3), netns="/run/netns/rt2", ifname="eth0")
    assert (r.rc, r.code) == (1, 3), r
    sb.cnet("rm", "-f", "c1")
    assert cni.delete(good, cid(1), "rt1").rc == 0
    sb.sh("ip netns del rt1 && ip netns del rt2")
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline


def test_unknown_network_without_any_state_creates_nothing(sandbox, cni):
    sb = sandbox
    sb.sh("ip netns add rt1")
    conf = {"cniVersion": "1.0.0", "name": "blue", "type": "cnet", "stateDir": str(sb.state_dir)}
    r = cni.add(conf, cid(1), "rt1")
    assert (r.rc, r.code) == (1, 7), r
    assert cni.delete(conf, cid(1), "rt1").rc == 0
    assert not sb.state_dir.exists()
    sb.sh("ip netns del rt1")
    assert sb.snapshot() == sb.baseline


def test_twenty_parallel_adds_get_distinct_addresses(sandbox, cni):
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    n = 20
    sb.sh(" && ".join(f"ip netns add rt{i}" for i in range(n)))
    conf = cni.conf("blue")
    procs = [cni.popen("ADD", conf, container_id=cid(i), netns=f"/run/netns/rt{i}", ifname="eth0") for i in range(n)]
    outs = [cni.finish(p) for p in procs]
    assert [r.rc for r in outs] == [0] * n, outs
    ips = [r.doc["ips"][0]["address"] for r in outs]
    assert len(set(ips)) == n
    assert [ns_addrs(sb, f"rt{i}", "eth0") for i in range(n)] == [[ip] for ip in ips]
    rows = json.loads(sb.cnet("sql", "SELECT ip FROM v_cni_attachments", "--json").stdout)
    assert sorted(r["ip"] for r in rows) == sorted(ip.split("/")[0] for ip in ips)
    procs = [cni.popen("DEL", conf, container_id=cid(i), netns=f"/run/netns/rt{i}", ifname="eth0") for i in range(n)]
    outs = [cni.finish(p) for p in procs]
    assert [r.rc for r in outs] == [0] * n, outs
    assert attachments(sb) == []
    sb.sh(" && ".join(f"ip netns del rt{i}" for i in range(n)))
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline


HANG = """#!/bin/sh
# A fake iptables-restore that hangs while $HANG_FILE exists (the test then SIGKILLs the plugin).
if [ -e "{hang}" ]; then echo $$ > "{hang}.pid"; exec sleep 600; fi
exec {real} "$@"
"""


def _plugin_pid(launcher_pid: int, timeout: float = 10.0) -> int:
    """The plugin under `nsenter` (its only child: env exec'd the plugin in place)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kids = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split()
        except OSError:
            kids = []
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise AssertionError("the plugin process did not start")


def test_sigkill_mid_add_is_repaired(sandbox, cni, tmp_path):
    import os
    import shutil

    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    sb.sh("ip netns add rt1")
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    hang = tmp_path / "hang"
    fake = fakes / "iptables-restore"
    fake.write_text(HANG.format(hang=hang, real=shutil.which("iptables-restore")))
    fake.chmod(0o755)
    path = f"{fakes}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    conf = cni.conf("blue", runtime={"portMappings": [{"hostPort": 8080, "containerPort": 80}]})
    base = settled(sb)

    def killed_add() -> None:
        hang.write_text("")
        proc = cni.popen("ADD", conf, container_id=cid(1), netns="/run/netns/rt1", ifname="eth0", env={"PATH": path})
        plugin = _plugin_pid(proc.pid)
        assert sb.wait_for(lambda: Path(f"{hang}.pid").exists(), timeout=30), "the plugin never reached the port step"
        assert len(veths(sb)) == 1  # the veth is made
        os.kill(plugin, signal.SIGKILL)
        cni.finish(proc, timeout=30)
        # The fake's sleep is left to the sandbox (it dies with it): the pid it wrote is the one in
        # the sandbox's pid namespace, which on this host may be another process altogether.
        Path(f"{hang}.pid").unlink()
        hang.unlink()

    # 1. Any cnet command repairs it.
    killed_add()
    res = sb.cnet("ps")
    assert "recovered interrupted operation" in res.stderr and "cni-add" in res.stderr
    assert settled(sb) == base
    # 2. So does the runtime's retried ADD, which then succeeds.
    killed_add()
    r = cni.add(conf, cid(1), "rt1", env={"PATH": path})
    assert r.rc == 0, r
    assert attachments(sb) == [(cid(1), "eth0", "attached")]
    assert len(veths(sb)) == 1
    assert ns_addrs(sb, "rt1", "eth0") == [r.doc["ips"][0]["address"]]
    ops = json.loads(
        sb.cnet(
            "sql", "SELECT kind, status, recovered FROM operations WHERE kind = 'cni-add' ORDER BY id", "--json"
        ).stdout
    )
    assert [(o["status"], o["recovered"]) for o in ops] == [("rolled_back", 1), ("rolled_back", 1), ("done", 0)]
    assert cni.delete(conf, cid(1), "rt1").rc == 0
    sb.sh("ip netns del rt1")
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline


def test_check_finds_damage(sandbox, cni):
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    sb.sh("ip netns add rt1")
    conf = cni.conf("blue")
    doc = cni.add(conf, cid(1), "rt1").doc
    check = dict(container_id=cid(1), netns="/run/netns/rt1", ifname="eth0")
    assert cni.call("CHECK", cni.conf("blue", prev=doc), **check).rc == 0
    sb.sh("ip -n rt1 addr flush dev eth0")
    r = cni.call("CHECK", cni.conf("blue", prev=doc), **check)
    assert (r.rc, r.code) == (1, 103) and "10.77.0." in r.doc["msg"], r
    assert cni.delete(conf, cid(1), "rt1").rc == 0
    sb.sh("ip netns del rt1")
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline


def test_gc_and_status_verbs(sandbox, cni):
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    conf = cni.conf("blue", version="1.1.0")
    for i in range(3):
        sb.sh(f"ip netns add rt{i}")
        assert cni.add(conf, cid(i), f"rt{i}").rc == 0
    gc = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": cid(1), "ifname": "eth0"}]})
    r = cni.call("GC", gc)
    assert (r.rc, r.stdout) == (0, ""), r
    assert attachments(sb) == [(cid(1), "eth0", "attached")]
    assert len(veths(sb)) == 1
    assert cni.call("GC", dict(conf, network="nope")).rc == 0

    assert (cni.call("STATUS", conf).rc, cni.call("STATUS", conf).stdout) == (0, "")
    bridge = json.loads(sb.cnet("net", "inspect", "blue").stdout)["bridge"]
    sb.sh(f"ip link del {bridge}")
    r = cni.call("STATUS", conf)
    assert (r.rc, r.code) == (1, 50) and bridge in r.doc["msg"], r
    assert cni.call("STATUS", dict(conf, network="nope")).code == 50
    sb.cnet("net", "restore")
    assert cni.call("STATUS", conf).rc == 0
    assert cni.call("GC", dict(conf, **{"cni.dev/valid-attachments": []})).rc == 0
    assert attachments(sb) == []
    sb.sh("ip netns del rt0 && ip netns del rt1 && ip netns del rt2")
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline


def test_cnet_gc_releases_an_attachment_whose_netns_vanished(sandbox, cni):
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    sb.sh("ip netns add rt1 && ip netns add rt2")
    conf = cni.conf("blue", runtime={"portMappings": [{"hostPort": 8080, "containerPort": 80}]})
    d1 = cni.add(conf, cid(1), "rt1").doc
    assert cni.add(cni.conf("blue"), cid(2), "rt2").rc == 0
    sb.sh("ip netns del rt1")  # the runtime lost it without a DEL
    assert wait_gone(sb, host_veth(d1))
    dry = sb.cnet("--dry-run", "gc")
    assert "CNI attachment" in dry.stderr and cid(1)[:12] in dry.stderr
    assert len(attachments(sb)) == 2
    sb.cnet("gc")
    assert attachments(sb) == [(cid(2), "eth0", "attached")]
    assert "cnet:ctr:" not in sb.iptables_save()
    assert cni.delete(cni.conf("blue"), cid(2), "rt2").rc == 0
    sb.sh("ip netns del rt2")
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline


def test_cnet_commands_leave_attachments_to_their_runtime(sandbox, cni):
    sb = sandbox
    sb.cnet("net", "create", "blue", "--subnet", "10.77.0.0/24")
    sb.sh("ip netns add rt1")
    assert cni.add(cni.conf("blue"), cid(1), "rt1").rc == 0
    (name,) = [r["name"] for r in json.loads(sb.cnet("ps", "--json").stdout)]
    for argv in (("rm", "-f", name), ("stop", name)):
        res = sb.cnet(*argv, check=False)
        assert res.returncode == 1 and "CNI" in res.stderr and "Traceback" not in res.stderr, res
    assert attachments(sb) == [(cid(1), "eth0", "attached")]
    sb.cnet("gc")  # a live attachment is not garbage
    assert attachments(sb) == [(cid(1), "eth0", "attached")]
    assert cni.delete(cni.conf("blue"), cid(1), "rt1").rc == 0
    sb.sh("ip netns del rt1")
    sb.cnet("net", "rm", "blue")
    assert sb.snapshot() == sb.baseline
