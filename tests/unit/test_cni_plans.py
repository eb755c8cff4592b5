"""CNI attachment plans (cnet.plans.cni) and SpawnRunner (the plugin's runner), by value: no root."""

import pytest

from cnet.commands import cmd
from cnet.errors import CommandFailed
from cnet.frozen_record import replace
from cnet.kernel import iptables as ipt
from cnet.kernel.parse import Link
from cnet.plans import cni as plans
from cnet.plans import container as cplans
from cnet.records import Container, ContainerKind, ContainerState, Direction, Endpoint, PortMapping
from cnet.runner import SpawnRunner

ATT = Container(
    id="aaaaaaaaaaaa",
    name="cni-0123456789ab-net1",
    state=ContainerState.CREATING,
    command=(),
    hostname="",
    env={},
    spec={},
    detached=False,
    netns="/run/netns/netns-1234",
    created_at=0.0,
    kind=ContainerKind.CNI,
    cni_container_id="0123456789ab" * 5,
    cni_ifname="net1",
)
EP = Endpoint(
    id=1,
    container_id=ATT.id,
    network_id="nnnnnnnnnnnn",
    interface="net1",
    host_veth="cnetv0123456789",
    ip="10.5.0.2",
    ip_int=0,
    mac="02:00:00:aa:bb:cc",
    is_default_route=True,
    created_at=0.0,
    network="web",
    bridge="cnet-nnnnnnnnnn",
    gateway="10.5.0.1",
    prefix_len=24,
    mtu=1500,
)
UDP = PortMapping(1, ATT.id, 1, "127.0.0.1", 5353, 53, "udp", "10.5.0.2")


def test_attach_wires_the_runtimes_netns_by_path_and_leaves_its_lo_alone():
    plan = plans.attach(ATT, EP, [UDP])
    assert plan.direction == Direction.CREATE
    host, inside, spoof, ports = plan.steps
    assert host == cplans.endpoint_steps(ATT.netns, EP, first=False, create_netns=False)[0]
    assert (
        "link add name cnetv0123456789 mtu 1500 type veth peer name net1 mtu 1500 address 02:00:00:aa:bb:cc "
        "netns /run/netns/netns-1234" in host.do.stdin
    )
    assert host.undo == (cmd("ip", "link", "del", "cnetv0123456789"),)  # never the runtime's netns
    assert inside.do.argv == ("nsenter", "--net=/run/netns/netns-1234", "ip", "-batch", "-")
    assert inside.do.stdin.splitlines() == [
        "addr add 10.5.0.2/24 dev net1",
        "link set net1 up",
        "route add default via 10.5.0.1 dev net1",
    ]
    assert spoof == cplans.spoof_add([EP])  # pinned to its address and MAC like any endpoint
    assert ports == ipt.rules_add(cplans.port_rules(ATT.id, [UDP]), f"publish 1 port(s) of CNI attachment {ATT.name}")


def test_attach_without_default_route_or_ports():
    plan = plans.attach(ATT, replace(EP, is_default_route=False), [])
    assert len(plan.steps) == 3 and "route" not in plan.steps[1].do.stdin


def test_detach_unpublishes_then_deletes_the_veth_only():
    plan = plans.detach(ATT, [EP], [UDP])
    assert plan.direction == Direction.DESTROY
    assert plan.steps[:-2] == cplans.port_release_steps(ATT.id, f"CNI attachment {ATT.name}", [UDP])
    assert plan.steps[-2] == cplans.spoof_remove([EP])
    assert plan.steps[-1].do == cmd("ip", "link", "del", "cnetv0123456789")
    assert not any("netns" in " ".join(s.do.argv) for s in plan.steps)


def test_check_reads_and_problems():
    reads = plans.check_reads(ATT, EP)
    assert reads["interface"].argv == (
        "nsenter",
        "--net=/run/netns/netns-1234",
        "ip",
        "-j",
        "addr",
        "show",
        "dev",
        "net1",
    )
    good = Link("net1", True, ("10.5.0.2/24",))
    host = {"ifname": EP.host_veth, "master": EP.bridge}
    assert plans.check_problems(EP, host=host, interface=good, default_gateways=["10.5.0.1"]) == []
    assert plans.check_problems(EP, host=None, interface=None, default_gateways=[]) == [
        "the host veth cnetv0123456789 is missing",
        "interface net1 is missing from the namespace",
    ]
    bad = plans.check_problems(EP, host={"master": "other"}, interface=Link("net1", False, ()), default_gateways=[])
    assert bad == [
        "the host veth cnetv0123456789 is not on bridge cnet-nnnnnnnnnn",
        "interface net1 lacks its address 10.5.0.2/24",
        "interface net1 is down",
        "the default route via 10.5.0.1 is missing",
    ]


def test_spawn_runner_keeps_the_runner_contract(tmp_path):
    r = SpawnRunner()
    assert r.run(cmd("cat", stdin="hello\n")).stdout == "hello\n"
    assert r.read(cmd("sh", "-c", "echo out; echo err >&2")) == "out\n"
    with pytest.raises(CommandFailed) as info:
        r.read(cmd("sh", "-c", "echo out; echo broken >&2; exit 3"))
    assert (info.value.code, info.value.stderr) == (3, "broken")
    with pytest.raises(CommandFailed) as info:
        r.run(cmd("no-such-program-cnet"))
    assert info.value.code == 127
    script = tmp_path / "noexec"
    script.write_text("#!/bin/sh\n")
    assert r.try_run(cmd(str(script)))[0] is False
    assert r.try_run(cmd("true")) == (True, "")


def test_check_on_a_dual_stack_network_reads_and_wants_the_ipv6_side():
    dual = replace(EP, ip6="fd00:5::2", prefix6_len=64, gateway6="fd00:5::1")
    reads = plans.check_reads(ATT, dual)
    assert reads["routes6"].argv == (
        "nsenter",
        "--net=/run/netns/netns-1234",
        "ip",
        "-j",
        "-6",
        "route",
        "show",
        "default",
    )
    assert "routes6" not in plans.check_reads(ATT, EP)
    assert "routes6" not in plans.check_reads(ATT, replace(dual, is_default_route=False))
    host = {"ifname": EP.host_veth, "master": EP.bridge}
    good = Link("net1", True, ("10.5.0.2/24",), addrs6=("fd00:5::2/64", "fe80::1/64"))
    ok = plans.check_problems(
        dual, host=host, interface=good, default_gateways=["10.5.0.1"], default_gateways6=["fd00:5::1"]
    )
    assert ok == []
    bad = plans.check_problems(
        dual, host=host, interface=Link("net1", True, ("10.5.0.2/24",)), default_gateways=["10.5.0.1"]
    )
    assert bad == ["interface net1 lacks its address fd00:5::2/64", "the default route via fd00:5::1 is missing"]
