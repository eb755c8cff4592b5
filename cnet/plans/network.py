"""Plans for a network's kernel objects: its bridge and rules, and cnet's base chains."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import naming
from ..commands import Plan, Step, cmd
from ..kernel import ebtables as eb
from ..kernel import ip as ipk
from ..kernel import ip6tables as ip6t
from ..kernel import iptables as ipt
from ..kernel import parse
from ..kernel import vxlan as vx
from ..naming import CHAIN_SPOOF
from ..records import Direction, Network


@dataclass(frozen=True)
class HostFacts:
    """What `net create` / `net rm` read of the host before planning: sysctls are written only
    when their value must change (a read-only /proc/sys is then no obstacle), and the base chains
    adopt what an earlier life left instead of adding a second jump."""

    ip_forward: str = "0"
    ip6_forward: str = "0"  # net.ipv6.conf.all.forwarding
    # What a new bridge inherits (net.ipv4.conf.default.route_localnet).
    route_localnet_default: str = "0"
    sysctl_writable: bool = True
    rules: parse.Ruleset = field(default_factory=parse.Ruleset)  # iptables-save (first network only)
    bridge_rules: parse.Ruleset = field(default_factory=parse.Ruleset)  # ebtables-save (idem)

    @property
    def route_localnet_inherited(self) -> bool:
        return self.route_localnet_default == "1"

    def route_localnet_blocked(self) -> bool:
        """route_localnet must be set on a new bridge but /proc/sys is read-only: the network
        works, 127.0.0.1 port mappings into it do not."""
        return not self.route_localnet_inherited and not self.sysctl_writable


def network_rules(net: Network) -> list[ipt.Rule]:
    overlay = (naming.vxlan_name(net.id), net.overlay_subnet) if net.overlay_subnet else None
    return ipt.network_rules(
        name=net.name, bridge=net.bridge, subnet=net.subnet, internal=net.internal, overlay=overlay
    )


def network_rules6(net: Network) -> list[ipt.Rule]:
    assert net.subnet6
    return ip6t.network_rules(name=net.name, bridge=net.bridge, subnet6=net.subnet6, internal=net.internal)


def bridge_steps(net: Network, *, route_localnet: bool = True) -> list[Step]:
    """The bridge with its own MAC and gateway address(es), and route_localnet on it (no rules)."""
    gw6 = f"{net.gateway6}/{net.prefix6_len}" if net.gateway6 else None
    steps = [ipk.bridge_create(net.bridge, net.gateway, net.prefix_len, net.mtu, net.bridge_mac, gw6)]
    if route_localnet:
        steps.append(ipk.route_localnet(net.bridge))
    return steps


def vxlan_step(net: Network) -> Step:
    """An overlay network's vxlan device on this host, holding the network address of the host's
    share as a /32 (what the peers route to, flannel's scheme)."""
    assert net.vni is not None and net.vtep_mac and net.underlay_ip and net.underlay_dev
    return vx.device_create(
        dev=naming.vxlan_name(net.id),
        vni=net.vni,
        mac=net.vtep_mac,
        local=net.underlay_ip,
        underlay_dev=net.underlay_dev,
        mtu=net.mtu,
        address=net.subnet.split("/")[0],
    )


def network_steps(net: Network, facts: HostFacts | None = None) -> list[Step]:
    """The steps that create one network's kernel objects (without the base chains; an overlay's
    peers come from its peer sync)."""
    facts = facts or HostFacts()
    write_localnet = not facts.route_localnet_inherited and facts.sysctl_writable
    steps = [
        *bridge_steps(net, route_localnet=write_localnet),
        *([vxlan_step(net)] if net.overlay else []),
        ipt.rules_add(network_rules(net), f"install firewall rules of network {net.name}"),
    ]
    if net.subnet6:
        steps.append(ip6t.rules_add(network_rules6(net), f"install IPv6 firewall rules of network {net.name}"))
    return steps


def leftover_jumps(rules: parse.Ruleset) -> dict[tuple[str, str], list[tuple[tuple[str, ...], str]]]:
    """cnet's rules in the built-in chains it jumps from, as an earlier life left them."""
    hooks = ipt.jump_hooks()
    out: dict[tuple[str, str], list[tuple[tuple[str, ...], str]]] = {}
    for r in rules.rules:
        if (r.table, r.chain) not in hooks:
            continue
        if (r.target or "").startswith("CNET-") or (r.comment or "").startswith("cnet:"):
            out.setdefault((r.table, r.chain), []).append((r.spec, r.delete_line()))
    return out


def spoof_jump_counts(bridge_rules: parse.Ruleset) -> dict[str, int]:
    return {hook: sum(1 for r in bridge_rules.in_chain("filter", hook) if r.spec == eb.JUMP_SPEC) for hook in eb.HOOKS}


def base_steps(facts: HostFacts) -> list[Step]:
    steps = []
    if facts.ip_forward != "1":
        steps.append(ipk.ip_forward(True, facts.ip_forward))
    steps.append(ipt.base_create(leftover_jumps(facts.rules)))
    steps.append(
        eb.base_create(
            chain_present=facts.bridge_rules.has_chain("filter", CHAIN_SPOOF),
            jump_counts=spoof_jump_counts(facts.bridge_rules),
        )
    )
    return steps


def base6_steps(facts: HostFacts) -> list[Step]:
    """With the first dual-stack network: IPv6 forwarding (when off) and the ip6tables chains."""
    steps = []
    if facts.ip6_forward != "1":
        steps.append(ipk.ip6_forward(True, facts.ip6_forward))
    steps.append(ip6t.base_create())
    return steps


def create(net: Network, *, first: bool, facts: HostFacts, first6: bool = False) -> Plan:
    """`net create`: the base chains and forwarding with the first network (the IPv6 ones with the
    first dual-stack network), then the network."""
    plan = Plan()
    if first:
        plan.extend(base_steps(facts))
    if first6:
        plan.extend(base6_steps(facts))
    plan.extend(network_steps(net, facts))
    return plan


def base_removal_steps(ip_forward_before: str, facts: HostFacts) -> list[Step]:
    fallback = [cmd(*j.argv("-D")) for j in ipt.base_jumps()]
    for table, chains in ipt.BASE_CHAINS.items():
        fallback += [cmd("iptables", "-w", "-t", table, "-F", c) for c in chains]
        fallback += [cmd("iptables", "-w", "-t", table, "-X", c) for c in chains]
    steps = [
        Step(summary="remove cnet base chains and their jumps", do=ipt.base_delete_command(), fallback=tuple(fallback)),
        eb.base_remove(),
    ]
    if facts.ip_forward != ip_forward_before and facts.sysctl_writable:
        steps.append(ipk.ip_forward(False, ip_forward_before))
    return steps


def remove(
    net: Network,
    *,
    last: bool,
    ip_forward_before: str,
    facts: HostFacts,
    last6: bool = False,
    ip6_forward_before: str = "0",
) -> Plan:
    """`net rm`: its rules and bridge; with the last network the base chains, and ip_forward as
    it was before cnet (when it is not that already); the same for IPv6 with the last dual-stack
    network."""
    plan = Plan(direction=Direction.DESTROY)
    plan.add(ipt.rules_remove(network_rules(net), f"remove firewall rules of network {net.name}"))
    if net.overlay:
        plan.add(vx.device_delete(naming.vxlan_name(net.id)))  # its routes, neighbours and fdb go with it
    if net.subnet6:
        plan.add(ip6t.rules_remove(network_rules6(net), f"remove IPv6 firewall rules of network {net.name}"))
    plan.add(ipk.bridge_delete(net.bridge))
    if last6 and net.subnet6:
        plan.add(ip6t.base_remove())
        if facts.ip6_forward != ip6_forward_before and facts.sysctl_writable:
            plan.add(ipk.ip6_forward(False, ip6_forward_before))
    if last:
        plan.extend(base_removal_steps(ip_forward_before, facts))
    return plan
