"""Dual-stack plans and builders compared by value (argv and stdin): the bridge's and the
container's IPv6 addresses (nodad) and route, ip6tables rules, published ports on both families,
the IPv6 anti-spoofing pins, and IPv4-only networks planned exactly as before."""

from cnet.frozen_record import replace
from cnet.kernel import ebtables as eb
from cnet.kernel import ip as ipk
from cnet.kernel import ip6tables as ip6t
from cnet.plans import container as cplans
from cnet.plans import network as nplans
from cnet.records import Direction, PortMapping
from tests.unit.test_plans import CTR, EP, NET, TCP

DUAL = replace(NET, subnet6="fd00:5::/64", gateway6="fd00:5::1")
EP6 = replace(EP, ip6="fd00:5::2", gateway6="fd00:5::1", prefix6_len=64)
TCP6 = replace(TCP, container_ip6="fd00:5::2")  # -p 8080:80 on a dual-stack network
ONE6 = PortMapping(3, CTR.id, 1, "2001:db8::1", 8443, 443, "tcp", "10.5.0.2", "fd00:5::2")
FRESH = nplans.HostFacts(ip_forward="0", ip6_forward="0")
C = ("-m", "comment", "--comment", "cnet:net:web")


def test_link_local_is_the_kernels_eui64():
    # Read from a bridge the kernel addressed itself: 0a:ba:13:ac:70:7b -> fe80::8ba:13ff:feac:707b.
    assert ipk.link_local("0a:ba:13:ac:70:7b") == "fe80::8ba:13ff:feac:707b"
    assert ipk.link_local("02:42:0a:0a:01:03") == "fe80::42:aff:fe0a:103"


def test_bridge_gets_the_ipv6_gateway_nodad_in_the_same_batch():
    step = ipk.bridge_create("cnet-x", "10.5.0.1", 24, 1500, "0a:00:00:00:00:01", "fd00:5::1/64")
    assert step.do.argv == ("ip", "-batch", "-")
    assert step.do.stdin.splitlines() == [
        "link add name cnet-x address 0a:00:00:00:00:01 mtu 1500 type bridge",
        "addr add 10.5.0.1/24 dev cnet-x",
        "addr add fd00:5::1/64 dev cnet-x nodad",
        # Its link-local address made by cnet, nodad: the kernel's own stays tentative for a second
        # or two once the first veth brings the carrier up, and the host's solicitations meanwhile
        # go unanswered (a published IPv6 port would not answer right after `run`).
        "link set dev cnet-x addrgenmode none",
        "addr add fe80::800:ff:fe00:1/64 dev cnet-x nodad",
        "link set cnet-x up",
    ]


def test_container_side_adds_the_ipv6_address_nodad_and_default_route_in_one_process():
    step = ipk.endpoint_container_side(
        netns="cnet-c1",
        interface="eth0",
        ip="10.5.0.2",
        prefix_len=24,
        gateway="10.5.0.1",
        loopback=True,
        ip6="fd00:5::2/64",
        gateway6="fd00:5::1",
    )
    assert step.do.argv == ("nsenter", "--net=/run/netns/cnet-c1", "ip", "-batch", "-")
    assert step.do.stdin.splitlines() == [
        "link set lo up",
        "addr add 10.5.0.2/24 dev eth0",
        "link set eth0 up",
        "addr add fd00:5::2/64 dev eth0 nodad",
        "route add default via 10.5.0.1 dev eth0",
        "route add default via fd00:5::1 dev eth0",
    ]


def test_ipv4_only_plans_are_unchanged():
    plan = cplans.wiring(CTR, [EP], [TCP])
    assert len(plan) == 4  # host side, inside, anti-spoofing, one iptables-restore
    assert "nodad" not in plan.as_shell_script() and "ip6tables" not in plan.as_shell_script()
    net = nplans.create(NET, first=True, facts=FRESH)
    assert "ip6tables" not in net.as_shell_script() and "ipv6" not in net.as_shell_script()


def test_ipv4_only_interfaces_get_no_ipv6_address_where_the_host_has_ipv6():
    # Its link-local address would send DAD and MLD multicasts at link up, flooded by the bridge
    # to every other container: turned off before the link comes up, in the same process.
    inside = cplans.wiring(CTR, [EP], [TCP], ipv6_host=True).steps[1]
    assert inside.do.argv == ("nsenter", "--net=/run/netns/cnet-cccccccccccc", "ip", "-batch", "-")
    assert inside.do.stdin.splitlines() == [
        "link set lo up",
        "link set dev eth0 addrgenmode none",
        "addr add 10.5.0.2/24 dev eth0",
        "link set eth0 up",
        "route add default via 10.5.0.1 dev eth0",
    ]
    on = cplans.connect(CTR.netns, EP, first=False, ipv6_host=True).steps[1]
    assert on.do.stdin.splitlines()[0] == "link set dev eth0 addrgenmode none"
    # A host without IPv6 (ipv6.disable=1) has nothing to turn off, and `ip` would refuse it.
    assert "addrgenmode" not in cplans.wiring(CTR, [EP], [TCP], ipv6_host=False).as_shell_script()
    # Born with an MTU below 1280 the interface has no IPv6, and the kernel refuses the setting.
    small = replace(EP, mtu=1279)
    assert "addrgenmode" not in cplans.wiring(CTR, [small], [TCP], ipv6_host=True).as_shell_script()
    at_min = replace(EP, mtu=1280)
    assert "addrgenmode none" in cplans.wiring(CTR, [at_min], [TCP], ipv6_host=True).as_shell_script()
    # A dual-stack interface keeps its link-local address (neighbour discovery, the pin allows it).
    assert "addrgenmode" not in cplans.wiring(CTR, [EP6], [TCP6], ipv6_host=True).as_shell_script()
    # The CNI plugin's attachments: the runtime's namespace, its settings (the default).
    assert "addrgenmode" not in "".join(
        s.do.stdin or "" for s in cplans.endpoint_steps("ns", EP, first=True, create_netns=False)
    )


def test_dual_stack_wiring_adds_one_ip6tables_restore_for_ports_only():
    plan = cplans.wiring(CTR, [EP6], [TCP6])
    assert [s.do.argv[0] for s in plan] == [
        "ip",
        "nsenter",
        "ebtables-nft-restore",
        "iptables-restore",
        "ip6tables-restore",
    ]
    v6 = plan.steps[-1]
    assert v6.do.argv == ("ip6tables-restore", "-w", "--noflush")
    assert v6.do.stdin == (
        "*nat\n-A CNET-DNAT -p tcp -m tcp --dport 8080 -m comment --comment cnet:ctr:cccccccccccc "
        "-j DNAT --to-destination [fd00:5::2]:80\nCOMMIT\n"
    )
    assert v6.undo[0].stdin == v6.do.stdin.replace("-A CNET-DNAT", "-D CNET-DNAT")
    # Without ports: no extra process at all.
    assert len(cplans.wiring(CTR, [EP6], [])) == 3


def test_a_mapping_on_one_ipv6_address_is_ipv6_only():
    assert cplans.port_rules(CTR.id, [ONE6]) == []
    [rule] = cplans.port_rules6(CTR.id, [ONE6])
    assert rule.spec == (
        "-d", "2001:db8::1/128", "-p", "tcp", "-m", "tcp", "--dport", "8443",
        "-m", "comment", "--comment", "cnet:ctr:cccccccccccc", "-j", "DNAT", "--to-destination", "[fd00:5::2]:443",
    )  # fmt: skip
    # A v4-only endpoint's mapping has no IPv6 side.
    assert cplans.port_rules6(CTR.id, [TCP]) == []


def test_release_removes_both_families():
    steps = cplans.release_steps(CTR, [TCP6], [EP6])
    assert [s.do.argv[0] for s in steps] == ["iptables-restore", "ip6tables-restore", "ebtables-nft-restore", "ip"]
    assert steps[1].summary == "remove published ports of container c1 (IPv6)"
    assert steps[1].fallback[0].argv[:4] == ("ip6tables", "-w", "-t", "nat")


def test_ipv6_network_rules_mirror_ipv4_without_the_loopback_rule():
    rules = ip6t.network_rules(name="web", bridge="br", subnet6="fd00:5::/64", internal=False)
    assert [(r.table, r.chain, r.spec) for r in rules] == [
        ("filter", "CNET-ISOLATION-1", ("-i", "br", "!", "-o", "br") + C + ("-j", "CNET-ISOLATION-2")),
        ("filter", "CNET-ISOLATION-2", ("-o", "br") + C + ("-j", "DROP")),
        ("filter", "CNET-FORWARD", ("-i", "br", "-o", "br") + C + ("-j", "ACCEPT")),
        ("filter", "CNET-FORWARD", ("-o", "br", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED") + C + ("-j", "ACCEPT")),
        ("filter", "CNET-FORWARD", ("-o", "br", "-m", "conntrack", "--ctstate", "DNAT") + C + ("-j", "ACCEPT")),
        ("filter", "CNET-FORWARD", ("-i", "br") + C + ("-j", "ACCEPT")),
        ("filter", "CNET-FORWARD", ("-o", "br") + C + ("-j", "DROP")),
        ("nat", "CNET-POSTROUTING", ("-s", "fd00:5::/64", "!", "-o", "br") + C + ("-j", "MASQUERADE")),
        ("nat", "CNET-POSTROUTING",
         ("-s", "fd00:5::/64", "-d", "fd00:5::/64", "-o", "br", "-m", "conntrack", "--ctstate", "DNAT") + C
         + ("-j", "MASQUERADE")),
    ]  # fmt: skip
    internal = ip6t.network_rules(name="web", bridge="br", subnet6="fd00:5::/64", internal=True)
    assert [r.chain for r in internal] == ["CNET-ISOLATION-1", "CNET-ISOLATION-1", "CNET-FORWARD"]
    assert all(r.spec[-1] in ("DROP", "ACCEPT") for r in internal)


def test_first_dual_stack_network_brings_ipv6_forwarding_and_base_chains_last_takes_them():
    plan = nplans.create(DUAL, first=True, facts=FRESH, first6=True)
    assert [s.summary for s in plan] == [
        "enable IPv4 forwarding",
        "install cnet base chains and one jump from each built-in chain",
        "install the anti-spoofing chain and its jumps (ebtables)",
        "enable IPv6 forwarding",
        "install cnet's IPv6 base chains and one jump from each built-in chain (ip6tables)",
        "create bridge cnet-aaaaaaaaaa (0a:aa:aa:aa:aa:aa) with gateway 10.5.0.1/24 and fd00:5::1/64",
        "allow 127.0.0.1 port mappings through cnet-aaaaaaaaaa (route_localnet)",
        "install firewall rules of network web",
        "install IPv6 firewall rules of network web",
    ]
    fwd = plan.steps[3]
    assert fwd.do.argv == ("sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
    assert fwd.undo[0].argv == ("sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=0")
    base = plan.steps[4]
    assert base.do.argv == ("ip6tables-restore", "-w", "--noflush") and "*raw" not in base.do.stdin
    assert "-I FORWARD 1 -m comment --comment cnet:base -j CNET-FORWARD" in base.do.stdin
    assert base.undo[0].stdin.startswith("*nat\n-D PREROUTING")
    # Forwarding already on: not written (a read-only /proc/sys is then no obstacle).
    on = nplans.create(DUAL, first=False, facts=nplans.HostFacts(ip6_forward="1"), first6=True)
    assert "enable IPv6 forwarding" not in [s.summary for s in on]

    rm = nplans.remove(DUAL, last=True, ip_forward_before="0", facts=FRESH, last6=True, ip6_forward_before="0")
    assert rm.direction == Direction.DESTROY
    assert [s.do.argv[0] for s in rm][:3] == ["iptables-restore", "ip6tables-restore", "ip"]
    assert "remove cnet's IPv6 base chains and their jumps (ip6tables)" in [s.summary for s in rm]
    was_on = nplans.remove(DUAL, last=False, ip_forward_before="0", facts=nplans.HostFacts(ip6_forward="1"), last6=True)
    assert was_on.steps[-1].do.argv == ("sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=0")


def test_ipv6_anti_spoofing_pins_the_source_allows_link_local_and_drops_router_advertisements():
    [step] = [cplans.spoof_add([EP6])]
    lines = step.do.stdin.splitlines()
    v = "-i cnetv0123456789"
    assert lines[-5:] == [
        f"-A CNET-SPOOF -p IPv6 {v} --ip6-proto ipv6-icmp --ip6-icmp-type router-advertisement -j DROP",
        f"-A CNET-SPOOF -p IPv6 {v} --ip6-src fd00:5::2 -j RETURN",
        f"-A CNET-SPOOF -p IPv6 {v} --ip6-src fe80::/10 -j RETURN",
        f"-A CNET-SPOOF -p IPv6 {v} --ip6-src :: -j RETURN",
        f"-A CNET-SPOOF -p IPv6 {v} -j DROP",
    ]
    assert len(step.undo) == 9  # every rule deleted one by one (crash-safe undo)
    assert eb.endpoint_rules(host_veth="cnetv1", mac="02:00:00:00:00:01", ip="10.0.0.2")[-1].spec[-1] == "DROP"
    assert len(eb.endpoint_rules(host_veth="cnetv1", mac="02:00:00:00:00:01", ip="10.0.0.2")) == 4
