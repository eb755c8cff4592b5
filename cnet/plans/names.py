"""The files that give a container its names: /etc/hosts (the names of the containers it shares a
network with) and /etc/resolv.conf (the host's, without nameservers it cannot reach). Pure: text
in, text out; cnet.services.names reads the database and writes the files.

Docker's user-defined networks answer these names with an embedded DNS server; cnet keeps no
resident process, so each container gets a hosts file of its own, bind-mounted over /etc/hosts
in its private mount namespace and rewritten in place whenever a network's membership changes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from ..frozen_record import FrozenRecord

# What Docker writes at the top of a container's /etc/hosts.
HOSTS_HEADER = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
HOSTS_NOTE = "# cnet: the containers on this container's networks; rewritten as they start, stop, connect, disconnect\n"
NO_NAMESERVER = (
    "# cnet: the host's resolv.conf lists only loopback nameservers, which a container cannot reach;\n"
    "# no nameserver is set: only the names in /etc/hosts resolve.\n"
)
# systemd-resolved's own list of upstream servers: where the real ones are when /etc/resolv.conf
# names only its stub listener 127.0.0.53 (Docker and podman read it in that case too).
SYSTEMD_RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"


class Member(FrozenRecord):
    """One container's endpoint on one network, as the hosts files list it."""

    network_id: str
    container_id: str
    interface: str
    ip: str
    name: str
    hostname: str
    aliases: tuple[str, ...] = ()
    ip6: str | None = None  # on a dual-stack network

    def names(self) -> list[str]:
        return list(dict.fromkeys([self.name, self.hostname, *self.aliases]))


def hosts_line(m: Member) -> str:
    """The member's names on its IPv4 address, and on its IPv6 one on a dual-stack network (the
    resolver returns both, IPv4 first)."""
    names = " ".join(m.names())
    line = f"{m.ip}\t{names}\n"
    return line if m.ip6 is None else f"{line}{m.ip6}\t{names}\n"


def hosts_files(viewers: Iterable[str], members: Sequence[Member]) -> dict[str, str]:
    """Each viewer's hosts file: the members of each of its networks (itself included), network
    by network in the order of its interfaces, so a name shared over two networks (its own, too)
    resolves to the address on the first. Each network's block is rendered once."""
    by_net: dict[str, list[Member]] = {}
    mine: dict[str, list[Member]] = {}
    for m in members:
        by_net.setdefault(m.network_id, []).append(m)
        mine.setdefault(m.container_id, []).append(m)
    out: dict[str, str] = {}
    blocks: dict[str, str] = {}
    for v in viewers:
        own = sorted(mine.get(v, []), key=lambda m: _iface_key(m.interface))
        text = []
        for ep in own:
            block = blocks.get(ep.network_id)
            if block is None:
                block = blocks[ep.network_id] = "".join(hosts_line(m) for m in by_net[ep.network_id])
            text.append(block)
        out[v] = HOSTS_HEADER + HOSTS_NOTE + "".join(text)
    return out


def _iface_key(name: str) -> tuple[int, str]:
    digits = name.lstrip("abcdefghijklmnopqrstuvwxyz")
    return (int(digits) if digits.isdigit() else 1 << 30, name)


def nameservers(text: str) -> list[str]:
    return [parts[1] for line in text.splitlines() if len(parts := line.split()) >= 2 and parts[0] == "nameserver"]


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def only_loopback(text: str) -> bool:
    servers = nameservers(text)
    return bool(servers) and all(is_loopback(s) for s in servers)


def container_resolv(host_text: str, upstream_text: str | None = None) -> str:
    """The container's resolv.conf: the host's without loopback nameservers. When the host's names
    only loopback servers (systemd-resolved's stub), systemd-resolved's upstream list is used if
    given. If no nameserver is left, a comment says so and none is set (Docker would fall back to
    8.8.8.8; cnet sends no query anywhere the host's admin did not configure)."""
    text = host_text
    if (
        upstream_text is not None
        and only_loopback(host_text)
        and not all(is_loopback(n) for n in nameservers(upstream_text))
    ):
        text = upstream_text
    kept = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and is_loopback(parts[1]):
            continue
        kept.append(line)
    out = "\n".join(kept).rstrip("\n") + "\n" if kept else ""
    if not nameservers(out):
        out += NO_NAMESERVER
    return out
