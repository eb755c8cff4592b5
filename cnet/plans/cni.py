"""Plans for a CNI attachment: a runtime's network namespace wired to a cnet network (ADD), and
released again (DEL, GC, or `cnet gc` once the namespace is gone). Pure.

The wiring is a container's endpoint and port mappings (cnet.plans.container builds both), with
two differences: the namespace is the runtime's (a path, CNI_NETNS, which cnet neither creates
nor deletes, and whose lo is the runtime's business), and the interface is named by the runtime
(CNI_IFNAME).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..commands import Command, Plan, Step, cmd
from ..kernel import ip as ipk
from ..kernel import ip6tables as ip6t
from ..kernel import iptables as ipt
from ..records import Container, Direction, Endpoint, PortMapping
from .container import endpoint_steps, port_release_steps, port_rules, port_rules6, spoof_add, spoof_remove

if TYPE_CHECKING:  # the parsers are CHECK's alone: ADD and DEL, on every runtime call, skip them
    from ..kernel.parse import Link


def attach(att: Container, ep: Endpoint, ports: Sequence[PortMapping], *, before: Sequence[Step] = ()) -> Plan:
    """ADD: the veth pair with its peer born in the runtime's namespace, the address and default
    route inside, then the published ports. `before`: a network to restore first."""
    plan = Plan(list(before))
    plan.extend(endpoint_steps(att.netns, ep, first=False, create_netns=False))
    plan.add(spoof_add([ep]))  # pinned to its address and MAC, as a `cnet run` endpoint is
    if rules := port_rules(att.id, ports):  # none when every mapping names an IPv6 host address
        plan.add(ipt.rules_add(rules, f"publish {len(ports)} port(s) of CNI attachment {att.name}"))
    if rules6 := port_rules6(att.id, ports):  # a dual-stack network: the IPv6 side as well
        plan.add(ip6t.rules_add(rules6, f"publish {len(ports)} port(s) of CNI attachment {att.name} on IPv6"))
    return plan


def detach(att: Container, endpoints: Sequence[Endpoint], ports: Sequence[PortMapping]) -> Plan:
    """Its published ports, then its veth (the peer in the runtime's namespace goes with it).
    Best effort: whatever is already gone (the namespace, the interface) is fine."""
    plan = Plan(port_release_steps(att.id, f"CNI attachment {att.name}", ports), direction=Direction.DESTROY)
    if endpoints:
        plan.add(spoof_remove(endpoints))
    for ep in endpoints:
        plan.add(Step(summary=f"delete veth {ep.host_veth}", do=ipk.link_del(ep.host_veth)))
    return plan


# --- CHECK -----------------------------------------------------------------------------------------
def check_reads(att: Container, ep: Endpoint) -> dict[str, Command]:
    """The read-only commands CHECK runs: the host veth, and inside the runtime's namespace the
    interface and the default route (on a dual-stack network the IPv6 one too)."""
    inside = ["nsenter", f"--net={att.netns}", "ip", "-j"]
    reads = {
        "host": cmd("ip", "-j", "link", "show", "dev", ep.host_veth),
        "interface": cmd(*inside, "addr", "show", "dev", ep.interface),
        "routes": cmd(*inside, "route", "show", "default"),
    }
    if ep.ip6 and ep.is_default_route:
        reads["routes6"] = cmd(*inside, "-6", "route", "show", "default")
    return reads


def check_problems(
    ep: Endpoint,
    *,
    host: dict | None,
    interface: Link | None,
    default_gateways: list[str],
    default_gateways6: Sequence[str] = (),
) -> list[str]:
    """What the kernel lacks of the attachment's record, one sentence each ([] = all there).
    `host`: the host veth as `ip -j link` shows it (None: missing)."""
    problems = []
    if host is None:
        problems.append(f"the host veth {ep.host_veth} is missing")
    elif host.get("master") != ep.bridge:
        problems.append(f"the host veth {ep.host_veth} is not on bridge {ep.bridge}")
    if interface is None:
        problems.append(f"interface {ep.interface} is missing from the namespace")
        return problems
    want = f"{ep.ip}/{ep.prefix_len}"
    if want not in interface.addrs:
        problems.append(f"interface {ep.interface} lacks its address {want}")
    if ep.ip6 and (want6 := f"{ep.ip6}/{ep.prefix6_len}") not in interface.addrs6:
        problems.append(f"interface {ep.interface} lacks its address {want6}")
    if not interface.up:
        problems.append(f"interface {ep.interface} is down")
    if ep.is_default_route and ep.gateway not in default_gateways:
        problems.append(f"the default route via {ep.gateway} is missing")
    if ep.is_default_route and ep.ip6 and ep.gateway6 not in default_gateways6:
        problems.append(f"the default route via {ep.gateway6} is missing")
    return problems
