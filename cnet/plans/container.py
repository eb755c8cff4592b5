"""Plans for a container's wiring: its endpoints, published ports, release and stop/rm."""

from __future__ import annotations

from collections.abc import Sequence

from ..commands import Plan, Step, cmd
from ..kernel import ebtables as eb
from ..kernel import ip as ipk
from ..kernel import ip6tables as ip6t
from ..kernel import iptables as ipt
from ..records import ALL_ADDRESSES, Container, Direction, Endpoint, PortMapping

LAUNCH_SUMMARY = "start the watcher, which starts the command as PID 1 of new pid/mount/uts/ipc namespaces"
LOG_WRITER_SUMMARY = (
    "start the log writer (detached): the next command's stdout and stderr reach it through two pipes, "
    "its stdin and fd 4; it writes the log with times, rotating it once at the size limit"
)


def port_rules(container_id: str, ports: Sequence[PortMapping]) -> list[ipt.Rule]:
    rules: list[ipt.Rule] = []
    for p in ports:
        if ":" in p.host_ip:
            continue  # an IPv6 host address: port_rules6
        rules += ipt.port_rules(
            container_id=container_id,
            host_ip=None if p.host_ip == ALL_ADDRESSES else p.host_ip,
            host_port=p.host_port,
            container_ip=p.container_ip,
            container_port=p.container_port,
            protocol=p.protocol,
        )
    return rules


def port_rules6(container_id: str, ports: Sequence[PortMapping]) -> list[ipt.Rule]:
    """The IPv6 side: a mapping without host IP to a dual-stack endpoint publishes on every IPv6
    address as well, `[IPV6]:...` on that one address only."""
    rules: list[ipt.Rule] = []
    for p in ports:
        if p.container_ip6 and (p.host_ip == ALL_ADDRESSES or ":" in p.host_ip):
            rules += ip6t.port_rules(
                container_id=container_id,
                host_ip=None if p.host_ip == ALL_ADDRESSES else p.host_ip,
                host_port=p.host_port,
                container_ip6=p.container_ip6,
                container_port=p.container_port,
                protocol=p.protocol,
            )
    return rules


def ports_add(container: Container, ports: Sequence[PortMapping]) -> list[Step]:
    """One iptables-restore for the IPv4 rules, one ip6tables-restore when there are IPv6 ones."""
    steps = []
    rules, rules6 = port_rules(container.id, ports), port_rules6(container.id, ports)
    if rules:
        steps.append(ipt.rules_add(rules, f"publish {len(ports)} port(s) of container {container.name}"))
    if rules6:
        steps.append(ip6t.rules_add(rules6, f"publish {len(rules6)} port(s) of container {container.name} on IPv6"))
    return steps


def ports_remove(container_id: str, summary: str, ports: Sequence[PortMapping]) -> list[Step]:
    steps = []
    rules, rules6 = port_rules(container_id, ports), port_rules6(container_id, ports)
    if rules:
        steps.append(ipt.rules_remove(rules, summary))
    if rules6:
        steps.append(ip6t.rules_remove(rules6, f"{summary} (IPv6)"))
    return steps


def spoof_targets(endpoints: Sequence[Endpoint]) -> list[eb.SpoofTarget]:
    return [eb.SpoofTarget(ep.host_veth, ep.mac, ep.ip, ep.ip6) for ep in endpoints]


def spoof_add(endpoints: Sequence[Endpoint]) -> Step:
    """Each endpoint may send only with its own IP and MAC (one ebtables transaction)."""
    return eb.endpoints_add(spoof_targets(endpoints))


def spoof_remove(endpoints: Sequence[Endpoint]) -> Step:
    return eb.endpoints_remove(spoof_targets(endpoints))


def udp_conntrack_flushes(ports: Sequence[PortMapping]) -> list[Step]:
    """A UDP "connection" lives on while packets keep coming: a client sending from one source
    port would stay tied to the mapping's old container (or to none) forever. Flushed when a
    mapping is installed and when it is removed. conntrack exits 1 when there was nothing to
    flush: that counts as done."""
    steps = []
    for port in sorted({p.host_port for p in ports if p.protocol == "udp"}):
        steps.append(
            Step(
                summary=f"flush UDP conntrack entries for port {port}",
                do=ipt.conntrack_flush_udp(port),
                nothing_to_do=("0 flow entries",),
            )
        )
    return steps


def endpoint_steps(netns: str, ep: Endpoint, *, first: bool, create_netns: bool, ipv6_host: bool = False) -> list[Step]:
    """`ipv6_host`: the kernel has IPv6, and an IPv4-only endpoint gets none (see
    kernel.ip.endpoint_container_side). Left False by the CNI plugin, whose runtime owns the
    namespace's IPv6 settings."""
    return [
        ipk.endpoint_host_side(
            netns=netns,
            host_veth=ep.host_veth,
            interface=ep.interface,
            bridge=ep.bridge,
            mtu=ep.mtu,
            mac=ep.mac,
            create_netns=create_netns,
            ip=ep.ip,
            ip6=ep.ip6,
        ),
        ipk.endpoint_container_side(
            netns=netns,
            interface=ep.interface,
            ip=ep.ip,
            prefix_len=ep.prefix_len,
            # Internal networks never get the default route: they have no way out.
            gateway=ep.gateway if ep.is_default_route else None,
            loopback=first,
            ip6=f"{ep.ip6}/{ep.prefix6_len}" if ep.ip6 else None,
            gateway6=ep.gateway6 if ep.is_default_route and ep.ip6 else None,
            # Born with an MTU below IPv6's minimum, an interface has no IPv6 to turn off, and the
            # kernel refuses the setting on it.
            ipv6_host=ipv6_host and ep.mtu >= ipk.IPV6_MIN_MTU,
            neighbours=gateway_neighbours(ep),
        ),
    ]


def gateway_neighbours(ep: Endpoint) -> list[tuple[str, str]]:
    """The gateway's addresses on this network with the bridge's MAC (none when it is unknown)."""
    if not ep.bridge_mac:
        return []
    return [(ep.gateway, ep.bridge_mac)] + ([(ep.gateway6, ep.bridge_mac)] if ep.ip6 and ep.gateway6 else [])


def wiring(
    container: Container,
    endpoints: Sequence[Endpoint],
    ports: Sequence[PortMapping],
    *,
    before: Sequence[Step] = (),
    after: Sequence[Step] = (),
    ipv6_host: bool = False,
) -> Plan:
    """`run`, up to the process: its namespace with every endpoint (the first creates the netns
    and brings lo up), then its published ports. `before`: steps that must come first (a network
    to restore); `after`: steps that need the netns made (the mount namespace template)."""
    plan = Plan(list(before))
    if not endpoints:
        plan.extend(ipk.loopback_only(container.netns))
    for i, ep in enumerate(endpoints):
        plan.extend(endpoint_steps(container.netns, ep, first=(i == 0), create_netns=(i == 0), ipv6_host=ipv6_host))
    if endpoints:
        plan.add(spoof_add(endpoints))
    if ports:
        plan.extend(ports_add(container, ports))
        plan.extend(udp_conntrack_flushes(ports))
    plan.extend(after)
    return plan


def launch_step(argv: Sequence[str]) -> Step:
    """Not a journal step: its process is the container (shown by --dry-run only)."""
    return Step(summary=LAUNCH_SUMMARY, do=cmd(*argv))


def log_writer_step(argv: Sequence[str]) -> Step:
    """A detached container's log writer, started just before its watcher (--dry-run only)."""
    return Step(summary=LOG_WRITER_SUMMARY, do=cmd(*argv))


def connect(netns: str, ep: Endpoint, *, first: bool, before: Sequence[Step] = (), ipv6_host: bool = False) -> Plan:
    plan = Plan(list(before))
    plan.extend(endpoint_steps(netns, ep, first=first, create_netns=False, ipv6_host=ipv6_host))
    plan.add(spoof_add([ep]))
    return plan


def disconnect(container_id: str, ep: Endpoint, ports: Sequence[PortMapping]) -> Plan:
    """Its ports on that network, its anti-spoofing rules, then its veth (the peer inside goes
    with it)."""
    plan = Plan(direction=Direction.DESTROY)
    if ports:
        plan.extend(ports_remove(container_id, "remove published ports on this network", ports))
        plan.extend(udp_conntrack_flushes(ports))
    plan.add(spoof_remove([ep]))
    plan.add(Step(summary=f"delete veth {ep.host_veth}", do=ipk.link_del(ep.host_veth)))
    return plan


def port_release_steps(container_id: str, what: str, ports: Sequence[PortMapping]) -> list[Step]:
    """Unpublish ports: their rules, and the UDP conntrack entries that would keep sending the
    ports' traffic to the old address."""
    steps: list[Step] = []
    if ports:
        steps.extend(ports_remove(container_id, f"remove published ports of {what}", ports))
        steps.extend(udp_conntrack_flushes(ports))
    return steps


def release_steps(container: Container, ports: Sequence[PortMapping], endpoints: Sequence[Endpoint] = ()) -> list[Step]:
    """The container's process is gone: its published ports, its anti-spoofing rules, then its
    namespace."""
    steps = port_release_steps(container.id, f"container {container.name}", ports)
    if endpoints:
        steps.append(spoof_remove(endpoints))
    # Deleting the namespace once its processes are gone lets the kernel destroy the veths
    # asynchronously, which is cheaper than an explicit `ip link del` per veth (scripts/bench).
    steps.append(Step(summary=f"delete network namespace {container.netns}", do=ipk.netns_del(container.netns)))
    return steps


def release(container: Container, ports: Sequence[PortMapping], endpoints: Sequence[Endpoint] = ()) -> Plan:
    return Plan(release_steps(container, ports, endpoints), direction=Direction.DESTROY)


def teardown(
    container: Container,
    ports: Sequence[PortMapping],
    *,
    timeout: float | None,
    endpoints: Sequence[Endpoint] = (),
) -> Plan:
    """What stop (timeout given) or rm -f (timeout None) would do, for --dry-run. cnet signals
    with os.kill() and polls /proc; the script shows the equivalent commands."""
    plan = Plan(direction=Direction.DESTROY)
    if container.live and container.pid:
        pid = str(container.pid)
        if timeout is not None:
            plan.add(Step(summary="ask PID 1 to stop", do=cmd("kill", "-s", "TERM", pid)))
            plan.add(
                Step(
                    summary=f"give it {timeout:g} s (PID 1 ignores SIGTERM without a handler)",
                    do=cmd("sleep", f"{timeout:g}"),
                )
            )
        plan.add(
            Step(
                summary="kill PID 1 (the kernel then kills the whole PID namespace)", do=cmd("kill", "-s", "KILL", pid)
            )
        )
        plan.extend(release_steps(container, ports, endpoints))
    return plan
