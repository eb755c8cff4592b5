"""Plans for a network's kernel objects: its bridge and rules, and cnet's base chains."""

from __future__ import annotations

from ..commands import Plan, Step, cmd
from ..kernel import ip as ipk
from ..kernel import iptables as ipt
from ..records import Direction, Network


def network_rules(net: Network) -> list[ipt.Rule]:
    return ipt.network_rules(name=net.name, bridge=net.bridge, subnet=net.subnet, internal=net.internal)


def bridge_steps(net: Network) -> list[Step]:
    """The bridge with its gateway address, and route_localnet on it (no rules)."""
    return [
        ipk.bridge_create(net.bridge, net.gateway, net.prefix_len, net.mtu),
        ipk.route_localnet(net.bridge),
    ]


def network_steps(net: Network) -> list[Step]:
    """The steps that create one network's kernel objects (without the base chains)."""
    return [*bridge_steps(net), ipt.rules_add(network_rules(net), f"install firewall rules of network {net.name}")]


def base_steps(ip_forward_before: str) -> list[Step]:
    return [ipk.ip_forward(True, ip_forward_before), ipt.base_create()]


def create(net: Network, *, first: bool, ip_forward_before: str) -> Plan:
    """`net create`: the base chains and forwarding with the first network, then the network."""
    plan = Plan()
    if first:
        plan.extend(base_steps(ip_forward_before))
    plan.extend(network_steps(net))
    return plan


def base_removal_steps(ip_forward_before: str) -> list[Step]:
    fallback = [cmd(*j.argv("-D")) for j in ipt.base_jumps()]
    for table, chains in ipt.BASE_CHAINS.items():
        fallback += [cmd("iptables", "-w", "-t", table, "-F", c) for c in chains]
        fallback += [cmd("iptables", "-w", "-t", table, "-X", c) for c in chains]
    return [
        Step(summary="remove cnet base chains and their jumps", do=ipt.base_delete_command(), fallback=tuple(fallback)),
        ipk.ip_forward(False, ip_forward_before),
    ]


def remove(net: Network, *, last: bool, ip_forward_before: str) -> Plan:
    """`net rm`: its rules and bridge; with the last network the base chains, and ip_forward as
    it was before cnet."""
    plan = Plan(direction=Direction.DESTROY)
    plan.add(ipt.rules_remove(network_rules(net), f"remove firewall rules of network {net.name}"))
    plan.add(ipk.bridge_delete(net.bridge))
    if last:
        plan.extend(base_removal_steps(ip_forward_before))
    return plan
