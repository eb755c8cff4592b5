"""Builders for iproute2 commands: bridges, veth pairs, network namespaces, addresses, routes.

Each phase of wiring is one `ip -batch -` process (host side) or `ip -n NS -batch -` (inside the
container's namespace): one process spawn per phase instead of one per change.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..commands import Command, Step, cmd


def netns_path(netns: str) -> str:
    """A namespace by name (pinned under /run/netns by `ip netns add`) or by path (a CNI runtime's,
    which iproute2's `netns` argument takes as well when it contains a '/')."""
    return netns if netns.startswith("/") else f"/run/netns/{netns}"


def batch(lines: list[str], netns: str | None = None, force: bool = False) -> Command:
    """One `ip -batch -` process for several changes (inside `netns` if given)."""
    argv: list[str] = []
    if netns:
        # Not `ip -n NS`: iproute2 then unshares a mount namespace (to remount /sys), which copies
        # the whole mount table, and every pinned netns is a mount: the cost grows with every
        # container (scripts/bench, kernel growth). nsenter only enters the network namespace
        # (netlink needs nothing else) and stays flat.
        argv += ["nsenter", f"--net={netns_path(netns)}"]
    argv.append("ip")
    if force:
        # -force: keep going after an error (used by best-effort teardown only).
        argv.append("-force")
    argv += ["-batch", "-"]
    return Command(tuple(argv), "\n".join(lines) + "\n")


def bridge_create(bridge: str, gateway: str, prefix_len: int, mtu: int, mac: str, gateway6: str | None = None) -> Step:
    """The bridge is born with a MAC of its own. Without one it copies the lowest MAC of its ports
    and changes it whenever that port leaves: every neighbour's ARP entry for the gateway then
    points at a MAC nobody answers to until it expires (no way out, no host services).
    `gateway6` ("ADDR/LEN", dual stack): added `nodad`, usable at once. Its link-local address too:
    the kernel would make one when the first container's veth brings the bridge's carrier up and
    keep it tentative (duplicate address detection) for a second or two, and while it is, the
    neighbour solicitations the host sends to reach a container from outside go unanswered: a
    published IPv6 port would not answer right after `run`. So no automatic one (addrgenmode
    none) and the same EUI-64 address from the bridge's own MAC, `nodad`."""
    lines = [
        f"link add name {bridge} address {mac} mtu {mtu} type bridge",
        f"addr add {gateway}/{prefix_len} dev {bridge}",
    ]
    if gateway6:
        lines.append(f"addr add {gateway6} dev {bridge} nodad")
        lines.append(f"link set dev {bridge} addrgenmode none")
        lines.append(f"addr add {link_local(mac)}/64 dev {bridge} nodad")
    lines.append(f"link set {bridge} up")
    shown = f"{gateway}/{prefix_len}" + (f" and {gateway6}" if gateway6 else "")
    return Step(
        summary=f"create bridge {bridge} ({mac}) with gateway {shown}", do=batch(lines), undo=(link_del(bridge),)
    )


def link_local(mac: str) -> str:
    """The EUI-64 link-local address the kernel would derive from `mac` (RFC 4291 appendix A)."""
    b = [int(x, 16) for x in mac.split(":")]
    words = [(b[0] ^ 0x02) << 8 | b[1], b[2] << 8 | 0xFF, 0xFE << 8 | b[3], b[4] << 8 | b[5]]
    return "fe80::" + ":".join(f"{w:x}" for w in words)


def link_del(name: str) -> Command:
    return cmd("ip", "link", "del", name)


def bridge_delete(bridge: str) -> Step:
    return Step(summary=f"delete bridge {bridge}", do=link_del(bridge))


def netns_add(netns: str) -> Step:
    return Step(
        summary=f"create network namespace {netns}",
        do=cmd("ip", "netns", "add", netns),
        undo=(netns_del(netns),),
    )


def netns_del(netns: str) -> Command:
    return cmd("ip", "netns", "del", netns)


def mac_for_ip(ip: str) -> str:
    """A MAC derived from the IPv4 address (as Docker does): a reused address keeps its MAC, so
    stale ARP entries of neighbours still point at the right place."""
    octets = [int(o) for o in ip.split(".")]
    return "02:42:" + ":".join(f"{o:02x}" for o in octets)


def endpoint_host_side(
    *,
    netns: str,
    host_veth: str,
    interface: str,
    bridge: str,
    mtu: int,
    mac: str,
    create_netns: bool,
    ip: str | None = None,
    ip6: str | None = None,
) -> Step:
    """One `ip -batch -`: (netns,) veth pair with its peer born inside the netns, host end on the
    bridge with hairpin on (so a container can reach itself through a published port).

    `ip` (and `ip6`, the endpoint's addresses): the host's neighbour entry for the endpoint, made
    STALE, as if the host had already talked to it. Without it the host's first packet to a new
    container (a published port's first connection) waits for an ARP request broadcast, which the
    bridge floods to every port, so reaching each of N new containers costs work in all N and a
    stack's start grows with the square of its size (scripts/bench, stack growth). STALE is the
    kernel's own state for an entry it learnt and has not confirmed lately: the first packet goes
    out at once, and the kernel confirms the entry by unicast (never a broadcast) if no reply
    does. It is cache, not configuration, so it has no undo, like the entries the kernel learns
    itself: the kernel's garbage collection drops it once unused (when the table holds more than
    gc_thresh1 entries), deleting the bridge drops it, and the next endpoint with that address
    replaces it (MACs follow addresses, mac_for_ip)."""
    lines = []
    if create_netns:
        lines.append(f"netns add {netns}")
    lines += [
        f"link add name {host_veth} mtu {mtu} type veth peer name {interface} mtu {mtu} address {mac} netns {netns}",
        f"link set {host_veth} master {bridge}",
        f"link set dev {host_veth} type bridge_slave hairpin on",
        f"link set {host_veth} up",
    ]
    lines += [f"neigh replace {a} lladdr {mac} dev {bridge} nud stale" for a in (ip, ip6) if a]
    undo = [link_del(host_veth)]
    if create_netns:
        undo.append(netns_del(netns))
    return Step(
        summary=f"create veth {host_veth} on {bridge}, peer {interface} in {netns}"
        + (", the host's neighbour entry for it" if ip or ip6 else ""),
        do=batch(lines),
        undo=tuple(undo),
    )


IPV6_MIN_MTU = 1280  # RFC 8200: below it the kernel gives an interface no IPv6 at all


def endpoint_container_side(
    *,
    netns: str,
    interface: str,
    ip: str,
    prefix_len: int,
    gateway: str | None,
    loopback: bool,
    ip6: str | None = None,
    gateway6: str | None = None,
    ipv6_host: bool = False,
    neighbours: Sequence[tuple[str, str]] = (),
) -> Step:
    """`ip6` ("ADDR/LEN", dual stack) is added `nodad`: no duplicate address detection delay, the
    address works as soon as `run` returns (IPAM guarantees it is unique on the bridge); the IPv6
    default route goes via `gateway6`.

    Without `ip6` the interface gets no IPv6 address at all (addrgenmode none), as Docker leaves
    IPv4-only interfaces without IPv6 since CVE-2024-32473: the link-local address the kernel
    would make sends duplicate address detection and MLD reports when the link comes up, which
    the bridge floods to every other port, so each start would cost work in every container
    already on the network and a stack's start would grow with the square of its size
    (scripts/bench, stack growth). `ipv6_host`: the kernel has IPv6 (the setting is IPv6's: `ip`
    fails on it under ipv6.disable=1, where there is nothing to turn off).

    `neighbours` ((address, MAC): the gateway's, on the bridge): the container's neighbour entries
    for them, STALE, for the reason endpoint_host_side seeds the host's: a container answering the
    host would otherwise broadcast an ARP request for the gateway, flooded to every port. They
    live in the namespace and go with it."""
    lines = []
    if loopback:
        lines.append("link set lo up")
    if ip6 is None and ipv6_host:
        lines.append(f"link set dev {interface} addrgenmode none")
    lines += [
        f"addr add {ip}/{prefix_len} dev {interface}",
        f"link set {interface} up",
    ]
    if ip6:
        lines.append(f"addr add {ip6} dev {interface} nodad")
    lines += [f"neigh replace {a} lladdr {m} dev {interface} nud stale" for a, m in neighbours]
    if gateway:
        lines.append(f"route add default via {gateway} dev {interface}")
    if gateway6:
        lines.append(f"route add default via {gateway6} dev {interface}")
    # No undo: everything here lives inside the veth/netns that the previous step's undo removes.
    shown = f"{ip}/{prefix_len}" + (f" and {ip6}" if ip6 else "")
    return Step(summary=f"configure {interface} {shown} in {netns}", do=batch(lines, netns=netns))


def loopback_only(netns: str) -> list[Step]:
    """A container without networks: its own namespace with only lo, up (like Docker's
    --network none). Two processes: `ip -batch` lines cannot name a namespace."""
    return [
        netns_add(netns),
        Step(summary=f"bring up lo in {netns}", do=batch(["link set lo up"], netns=netns)),
    ]


def sysctl_set(key: str, value: str) -> Command:
    return cmd("sysctl", "-q", "-w", f"{key}={value}")


def bridge_set_mac(bridge: str, mac: str) -> Step:
    return Step(
        summary=f"give bridge {bridge} its own MAC {mac}", do=cmd("ip", "link", "set", "dev", bridge, "address", mac)
    )


def route_localnet(bridge: str) -> Step:
    # Lets DNAT'ed packets from 127.0.0.1 leave through the bridge (127.0.0.1 port mappings);
    # the raw-table guard in iptables.py keeps it from exposing the host's loopback services.
    return Step(
        summary=f"allow 127.0.0.1 port mappings through {bridge} (route_localnet)",
        do=sysctl_set(f"net.ipv4.conf.{bridge}.route_localnet", "1"),
        atomic=True,
    )


def ip_forward(enable: bool, previous: str) -> Step:
    return Step(
        summary="enable IPv4 forwarding" if enable else f"restore IPv4 forwarding to {previous}",
        do=sysctl_set("net.ipv4.ip_forward", "1" if enable else previous),
        undo=(sysctl_set("net.ipv4.ip_forward", previous),) if enable else (),
        atomic=True,
    )


def ip6_forward(enable: bool, previous: str) -> Step:
    """net.ipv6.conf.all.forwarding (dual-stack networks), written only when it must change."""
    key = "net.ipv6.conf.all.forwarding"
    return Step(
        summary="enable IPv6 forwarding" if enable else f"restore IPv6 forwarding to {previous}",
        do=sysctl_set(key, "1" if enable else previous),
        undo=(sysctl_set(key, previous),) if enable else (),
        atomic=True,
    )
