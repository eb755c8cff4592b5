"""The IPv6 half of the expected firewall for `gc` and `net restore` (cnet.plans.reconcile
compares it with `ip6tables-save` as it compares the IPv4 half with `iptables-save`): the IPv6
base chains while a dual-stack network exists, each ready dual-stack network's rules and each
stable container's IPv6 port rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .. import naming
from ..kernel import ip6tables as ip6t
from ..kernel import iptables as ipt
from ..records import Network, PortMapping
from .container import port_rules6
from .network import network_rules6


class Desired(Protocol):
    """What cnet.plans.reconcile.Desired offers (not imported: that module imports this one)."""

    networks: list[Network]
    ports_by_container: dict[str, list[PortMapping]]
    busy_containers: set[str]

    @property
    def ready_networks(self) -> Sequence[Network]: ...

    def stable_container(self, cid: str) -> bool: ...


def dual_stack(d: Desired) -> bool:
    return any(n.subnet6 for n in d.networks)


def base_chains(d: Desired) -> dict[str, tuple[str, ...]]:
    return ip6t.BASE_CHAINS6 if dual_stack(d) else {}


def expected_rules(d: Desired) -> dict[str, list[ipt.Rule]]:
    out: dict[str, list[ipt.Rule]] = {}
    if dual_stack(d):
        out[naming.BASE_COMMENT] = ip6t.base_rules()
        out[naming.BASE_COMMENT + ":jumps"] = ip6t.base_jumps()
    for net in d.ready_networks:
        if net.subnet6:
            out[naming.network_comment(net.name)] = network_rules6(net)
    for cid, ports in d.ports_by_container.items():
        rules = port_rules6(cid, ports)
        if rules and d.stable_container(cid):
            out[naming.container_comment(cid)] = rules
    return out


def owned_comments(d: Desired) -> set[str]:
    owned = {naming.BASE_COMMENT} if dual_stack(d) else set()
    owned |= {naming.network_comment(n.name) for n in d.networks if n.subnet6}
    owned |= {naming.container_comment(cid) for cid in d.ports_by_container}
    owned |= {naming.container_comment(cid) for cid in d.busy_containers}
    return owned
