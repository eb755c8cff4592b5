"""The plan builders (cnet.plans) from records, compared by value: no database, no root."""

import dataclasses

from cnet.commands import cmd
from cnet.frozen_record import replace
from cnet.kernel import iptables as ipt
from cnet.plans import container as cplans
from cnet.plans import network as nplans
from cnet.records import Container, ContainerState, Direction, Endpoint, NetworkState, PortMapping
from tests.unit.factories import network

NET = network(id="aaaaaaaaaaaa", name="web", bridge="cnet-aaaaaaaaaa", bridge_mac="0a:aa:aa:aa:aa:aa")
CTR = Container(
    id="cccccccccccc",
    name="c1",
    state=ContainerState.RUNNING,
    command=("sleep", "9"),
    hostname="c1",
    env={},
    spec={},
    detached=True,
    netns="cnet-cccccccccccc",
    created_at=0.0,
    pid=4242,
)
EP = Endpoint(
    id=1,
    container_id=CTR.id,
    network_id=NET.id,
    interface="eth0",
    host_veth="cnetv0123456789",
    ip="10.5.0.2",
    ip_int=0,
    mac="02:42:0a:05:00:02",
    is_default_route=True,
    created_at=0.0,
    network="web",
    bridge=NET.bridge,
    gateway=NET.gateway,
    prefix_len=24,
    mtu=1500,
)
TCP = PortMapping(1, CTR.id, 1, "0.0.0.0", 8080, 80, "tcp", "10.5.0.2")
UDP = PortMapping(2, CTR.id, 1, "127.0.0.1", 5353, 53, "udp", "10.5.0.2")


def test_states_compare_equal_to_the_stored_text():
    assert ContainerState.RUNNING == "running" and Direction.DESTROY == "destroy"
    assert f"{NetworkState.READY}" == "ready"


FRESH = nplans.HostFacts(ip_forward="0")
FORWARDING = nplans.HostFacts(ip_forward="1")


def test_network_create_and_remove_are_paired():
    first = nplans.create(NET, first=True, facts=FRESH)
    assert first.direction == Direction.CREATE
    assert [s.summary for s in first] == [
        "enable IPv4 forwarding",
        "install cnet base chains and one jump from each built-in chain",
        "install the anti-spoofing chain and its jumps (ebtables)",
        "create bridge cnet-aaaaaaaaaa (0a:aa:aa:aa:aa:aa) with gateway 10.5.0.1/24",
        "allow 127.0.0.1 port mappings through cnet-aaaaaaaaaa (route_localnet)",
        "install firewall rules of network web",
    ]
    rules = nplans.network_rules(NET)
    assert first.steps[-1] == ipt.rules_add(rules, "install firewall rules of network web")
    gone = nplans.remove(NET, last=True, ip_forward_before="0", facts=FORWARDING)
    assert gone.teardown
    assert gone.steps[0] == ipt.rules_remove(rules, "remove firewall rules of network web")
    assert gone.steps[0].fallback == tuple(ipt.single_deletes(rules))
    assert [s.summary for s in gone][1:] == [
        "delete bridge cnet-aaaaaaaaaa",
        "remove cnet base chains and their jumps",
        "remove the anti-spoofing chain and its jumps (ebtables)",
        "restore IPv4 forwarding to 0",
    ]
    assert len(nplans.remove(NET, last=False, ip_forward_before="0", facts=FORWARDING)) == 2


def test_sysctls_are_written_only_when_their_value_must_change():
    """Forwarding already on: no write, and so nothing for a rollback to undo; a bridge inheriting
    route_localnet=1 needs no write either; forwarding left as cnet found it is not restored."""
    on = nplans.HostFacts(ip_forward="1", route_localnet_default="1", sysctl_writable=False)
    plan = nplans.create(NET, first=True, facts=on)
    assert not [s for s in plan if s.do.argv[0] == "sysctl"]
    assert not on.route_localnet_blocked()
    gone = nplans.remove(NET, last=True, ip_forward_before="1", facts=on)
    assert not [s for s in gone if s.do.argv[0] == "sysctl"]
    # /proc/sys read-only and a bridge that would need route_localnet: the network is made
    # without it (the service warns that 127.0.0.1 mappings into it will not answer).
    ro = nplans.HostFacts(ip_forward="1", sysctl_writable=False)
    assert ro.route_localnet_blocked()
    assert not [s for s in nplans.create(NET, first=False, facts=ro) if s.do.argv[0] == "sysctl"]


def test_first_network_adopts_leftover_spoof_chain_and_jumps():
    from cnet.kernel import parse

    left = parse.ebtables_save(
        "*filter\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\n:CNET-SPOOF RETURN\n"
        "-A INPUT -j CNET-SPOOF\n-A FORWARD -j CNET-SPOOF\n-A FORWARD -j CNET-SPOOF\n"
        "-A CNET-SPOOF -s ! 02:42:0a:05:00:09 -i cnetvdead -j DROP\n"
    )
    plan = nplans.create(NET, first=True, facts=nplans.HostFacts(ip_forward="1", bridge_rules=left))
    [step] = [s for s in plan if s.do.argv[0] == "ebtables-nft-restore"]
    assert step.do.stdin.splitlines() == [
        "*filter",
        "-F CNET-SPOOF",  # kept, emptied: no row owns anything in it with no network yet
        "-D FORWARD -j CNET-SPOOF",
        "-D FORWARD -j CNET-SPOOF",
        "-I FORWARD 1 -j CNET-SPOOF",
    ]


def test_wiring_then_ports_and_launch_is_separate():
    plan = cplans.wiring(CTR, [EP], [TCP, UDP])
    assert plan.direction == Direction.CREATE
    assert [s.summary for s in plan] == [
        "create veth cnetv0123456789 on cnet-aaaaaaaaaa, peer eth0 in cnet-cccccccccccc, the host's neighbour entry for it",
        "configure eth0 10.5.0.2/24 in cnet-cccccccccccc",
        "pin cnetv0123456789 to 10.5.0.2 and 02:42:0a:05:00:02 (anti-spoofing)",
        "publish 2 port(s) of container c1",
        # Installed as well as removed: a client that kept sending from one source port while
        # the old container went away would otherwise never reach the new one.
        "flush UDP conntrack entries for port 5353",
    ]
    assert plan.steps[3].undo == (ipt.restore(ipt.restore_input(cplans.port_rules(CTR.id, [TCP, UDP]), "-D")),)
    spoof = plan.steps[2]
    assert spoof.do.argv == ("ebtables-nft-restore", "--noflush") and spoof.atomic
    assert [u.argv[3:] for u in spoof.undo] == [
        tuple(line.split()) for line in spoof.do.stdin.replace("-A ", "-D ").splitlines()[1:]
    ]
    # conntrack exits 1 when nothing matched: done, not a failure (and `|| true` in the script).
    flush = plan.steps[4]
    assert flush.nothing_to_do == ("0 flow entries",)
    assert "conntrack -D -p udp --orig-port-dst 5353 || true" in plan.as_shell_script()
    assert cplans.launch_step(["unshare", "x"]).do == cmd("unshare", "x")


def test_release_removes_ports_flushes_udp_then_the_netns():
    plan = cplans.release(CTR, [TCP, UDP], [EP])
    assert plan.teardown
    assert [s.summary for s in plan] == [
        "remove published ports of container c1",
        "flush UDP conntrack entries for port 5353",
        "remove the anti-spoofing rules of cnetv0123456789",
        "delete network namespace cnet-cccccccccccc",
    ]
    # 127.0.0.1 mappings match their address, 0.0.0.0 ones any.
    specs = [r.spec for r in cplans.port_rules(CTR.id, [TCP, UDP])]
    assert "-d" not in specs[0] and specs[1][:2] == ("-d", "127.0.0.1/32")


def test_teardown_for_stop_and_rm_and_disconnect():
    stop = cplans.teardown(CTR, [TCP], timeout=2)
    assert [s.do.argv[:3] for s in stop][:3] == [("kill", "-s", "TERM"), ("sleep", "2"), ("kill", "-s", "KILL")]
    rm = cplans.teardown(CTR, [], timeout=None)
    assert next(s.summary for s in rm) == "kill PID 1 (the kernel then kills the whole PID namespace)"
    assert "|| true" in rm.as_shell_script()
    assert len(cplans.teardown(replace(CTR, state=ContainerState.EXITED), [], timeout=None)) == 0
    off = cplans.disconnect(CTR.id, EP, [TCP])
    assert off.teardown and [s.summary for s in off] == [
        "remove published ports on this network",
        "remove the anti-spoofing rules of cnetv0123456789",
        "delete veth cnetv0123456789",
    ]
    on = cplans.connect(CTR.netns, EP, first=False)
    assert [s.summary for s in on][-1] == "pin cnetv0123456789 to 10.5.0.2 and 02:42:0a:05:00:02 (anti-spoofing)"


# --- reconcile: attachments and live orphans (issue 15 items 3, 7) ---------------------------------
def _kernel(veth, *, netns=("cnet-cccccccccccc",), pids=None, ids=None):
    from cnet.kernel import parse
    from cnet.plans.reconcile import Kernel

    links = {NET.bridge: parse.Link(NET.bridge, True, ("10.5.0.1/24",))}
    if veth is not None:
        links[veth.name] = veth
    return Kernel(
        links=links,
        netns=set(netns),
        rules=parse.Ruleset(),
        netns_pids=pids or {},
        netns_ids=ids or {},
        ip_forward="1",
        route_localnet={NET.bridge: "1"},
        live_containers={CTR.id},
    )


def _desired(with_container=True):
    from cnet.plans.reconcile import Desired

    if not with_container:
        return Desired([], {}, [], {}, set(), set())
    return Desired([NET], {CTR.id: CTR}, [EP], {}, set(), set())


def test_reconcile_reattaches_a_detached_down_or_hairpinless_veth():
    from cnet.kernel import parse
    from cnet.plans.reconcile import plan_reconcile

    good = parse.Link(EP.host_veth, True, (), master=NET.bridge, hairpin=True)
    for broken, expect in [
        (dataclasses.replace(good, master=None, hairpin=None), ["master", "hairpin on"]),
        (dataclasses.replace(good, up=False), ["up"]),
        (dataclasses.replace(good, hairpin=False), ["hairpin on"]),
    ]:
        for clean in (True, False):  # gc and net restore alike
            plan, notes = plan_reconcile(_kernel(broken), _desired(), clean=clean)
            steps = [s for s in plan.steps if s.summary.startswith("re-attach")]
            assert len(steps) == 1 and all(e in steps[0].summary for e in expect), plan.steps
            assert steps[0].do.stdin.splitlines() == [
                f"link set {EP.host_veth} master {NET.bridge}",
                f"link set dev {EP.host_veth} type bridge_slave hairpin on",
                f"link set {EP.host_veth} up",
            ]
    plan, _ = plan_reconcile(_kernel(good), _desired(), clean=True)
    assert [s for s in plan.steps if "re-attach" in s.summary or "endpoint" in s.summary] == []
    plan, notes = plan_reconcile(_kernel(None), _desired(), clean=True)
    assert any("re-created" in n for n in notes)
    # Re-created as `run` makes it: without IPv6 on an IPv4-only network where the host has IPv6.
    assert "addrgenmode" not in plan.as_shell_script()  # ip6_forward unread: no IPv6 here
    plan, _ = plan_reconcile(dataclasses.replace(_kernel(None), ip6_forward="0"), _desired(), clean=True)
    assert "link set dev eth0 addrgenmode none" in plan.as_shell_script()


def test_gc_keeps_orphans_with_live_processes_unless_forced():
    from cnet.kernel import parse
    from cnet.plans.reconcile import plan_reconcile

    veth = parse.Link(EP.host_veth, True, (), master=NET.bridge, hairpin=True, link_netnsid=7)
    k = _kernel(veth, pids={"cnet-cccccccccccc": [99]}, ids={"cnet-cccccccccccc": 7})
    k.rules = parse.iptables_save(
        "*nat\n:CNET-DNAT - [0:0]\n-A CNET-DNAT -j RETURN -m comment --comment cnet:ctr:x\nCOMMIT\n"
    )
    plan, notes = plan_reconcile(k, _desired(False), clean=True)
    assert plan.steps == [], plan.steps  # nothing killed, nothing removed, rules kept
    assert any("keep orphan network namespace cnet-cccccccccccc" in n and "--force" in n for n in notes)
    plan, _ = plan_reconcile(k, _desired(False), clean=True, force=True)
    argvs = [s.do.argv for s in plan.steps]
    assert ("kill", "-KILL", "99") in argvs and ("ip", "netns", "del", "cnet-cccccccccccc") in argvs
    assert any(a[:3] == ("ip", "link", "del") for a in argvs) and any(a[0] == "iptables-restore" for a in argvs)


def test_a_new_endpoint_seeds_both_neighbour_entries():
    """Host side: the endpoint's addresses on the bridge; inside: the gateway's with the bridge's
    MAC (none when the network has no MAC recorded), IPv6 ones only on a dual-stack endpoint."""
    ep = replace(EP, bridge_mac=NET.bridge_mac)
    host, inside = cplans.endpoint_steps(CTR.netns, ep, first=True, create_netns=True)
    assert f"neigh replace 10.5.0.2 lladdr {EP.mac} dev {NET.bridge} nud stale" in host.do.stdin.splitlines()
    assert [line for line in inside.do.stdin.splitlines() if line.startswith("neigh")] == [
        f"neigh replace {NET.gateway} lladdr {NET.bridge_mac} dev eth0 nud stale"
    ]
    dual = replace(ep, ip6="fd00:5::2", gateway6="fd00:5::1", prefix6_len=64)
    host, inside = cplans.endpoint_steps(CTR.netns, dual, first=True, create_netns=True)
    assert f"neigh replace fd00:5::2 lladdr {EP.mac} dev {NET.bridge} nud stale" in host.do.stdin.splitlines()
    assert f"neigh replace fd00:5::1 lladdr {NET.bridge_mac} dev eth0 nud stale" in inside.do.stdin.splitlines()
    _, inside = cplans.endpoint_steps(CTR.netns, EP, first=True, create_netns=True)
    assert "neigh" not in inside.do.stdin  # no MAC recorded for the bridge
