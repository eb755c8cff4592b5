"""Parsers for what the kernel reports: `ip -j addr`/`ip -j link`, `ip netns list`, `iptables-save`,
`ebtables-save`.

Pure functions on text, so the reconciliation (cnet.plans.reconcile) can be tested without root. Rules
are parsed into the same (table, chain, spec) shape that kernel/iptables.py builds: iptables-save
prints a rule with the very tokens cnet gave it (verified on iptables 1.8.9 nf_tables; the unit
tests pin it), so comparing an expected Rule with a saved one is a tuple comparison.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipaddress import IPv4Network


@dataclass(frozen=True)
class Link:
    name: str
    up: bool
    addrs: tuple[str, ...]  # IPv4 "a.b.c.d/len"
    mac: str | None = None
    master: str | None = None  # the bridge it is a port of
    hairpin: bool | None = None  # bridge port's hairpin flag (`ip -d`); None: not a bridge port
    link_netnsid: int | None = None  # a veth's peer lives in this netns id (`ip netns list`'s id)
    addrs6: tuple[str, ...] = ()  # IPv6 "addr/len" (link-local ones included)


def links(text: str) -> dict[str, Link]:
    """`ip -j [-d] addr` (or `ip -j link`, which carries no addresses) -> {name: Link}."""
    out: dict[str, Link] = {}
    for d in json.loads(text or "[]"):
        name = d.get("ifname")
        if not name:
            continue
        addrs, addrs6 = (
            tuple(f"{a['local']}/{a['prefixlen']}" for a in d.get("addr_info", []) if a.get("family") == family)
            for family in ("inet", "inet6")
        )
        info = d.get("linkinfo") or {}
        slave = info.get("info_slave_data") if info.get("info_slave_kind") == "bridge" else None
        hairpin = bool(slave.get("hairpin")) if isinstance(slave, dict) else None
        nsid = d.get("link_netnsid")
        out[name] = Link(
            name,
            "UP" in d.get("flags", []),
            addrs,
            d.get("address"),
            d.get("master"),
            hairpin,
            nsid if isinstance(nsid, int) else None,
            addrs6,
        )
    return out


def netns_names(text: str) -> set[str]:
    """`ip netns list` prints "NAME" or "NAME (id: N)" per line."""
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def netns_ids(text: str) -> dict[str, int]:
    """`ip netns list` -> {name: id} for the namespaces that have an id (a veth peer in them)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.replace("(", " ").replace(")", " ").split()
        if len(parts) >= 3 and parts[1] == "id:" and parts[2].isdigit():
            out[parts[0]] = int(parts[2])
    return out


@dataclass(frozen=True)
class HostAddr:
    local: str
    prefixlen: int
    broadcast: str | None
    loopback: bool


def host_addrs(text: str) -> list[HostAddr]:
    """Every IPv4 and IPv6 address of this host from `ip -j addr` (with its broadcast)."""
    out = []
    for d in json.loads(text or "[]"):
        loopback = "LOOPBACK" in d.get("flags", [])
        for a in d.get("addr_info", []):
            if a.get("family") in ("inet", "inet6") and a.get("local"):
                out.append(HostAddr(a["local"], int(a.get("prefixlen", 32)), a.get("broadcast"), loopback))
    return out


@dataclass(frozen=True)
class SavedRule:
    table: str
    chain: str
    spec: tuple[str, ...]
    line: str  # the `-A ...` line exactly as iptables-save printed it (valid iptables-restore input)

    @property
    def comment(self) -> str | None:
        return option(self.spec, "--comment")

    @property
    def target(self) -> str | None:
        return option(self.spec, "-j")

    @property
    def in_iface(self) -> str | None:
        return option(self.spec, "-i")

    def delete_line(self) -> str:
        return "-D" + self.line[2:]


@dataclass
class Ruleset:
    chains: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> chain -> policy ("-" for user chains)
    rules: list[SavedRule] = field(default_factory=list)

    def has_chain(self, table: str, chain: str) -> bool:
        return chain in self.chains.get(table, {})

    def in_chain(self, table: str, chain: str) -> list[SavedRule]:
        return [r for r in self.rules if r.table == table and r.chain == chain]


def option(spec: tuple[str, ...], name: str) -> str | None:
    for i, tok in enumerate(spec[:-1]):
        if tok == name:
            return spec[i + 1]
    return None


def iptables_save(text: str) -> Ruleset:
    rs = Ruleset()
    table = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:]
            rs.chains.setdefault(table, {})
        elif line.startswith(":") and table:
            parts = line[1:].split()
            rs.chains[table][parts[0]] = parts[1] if len(parts) > 1 else "-"
        elif line.startswith("-A ") and table:
            tokens = shlex.split(line)
            rs.rules.append(SavedRule(table, tokens[1], tuple(tokens[2:]), line))
    return rs


def ebtables_save(text: str) -> Ruleset:
    """`ebtables-nft-save`: the same shape as iptables-save (`*filter`, `:CHAIN POLICY`, `-A CHAIN
    ...`), without COMMIT lines; `-c` counters ("[0:0] -A ...") are not asked for. A rule's
    tokens are printed in a fixed order (kernel/ebtables.py builds them in that order)."""
    return iptables_save(text)


def proc_net_route(text: str) -> list[tuple[IPv4Network, str]]:
    """(destination, device) of every route in /proc/net/route (the main table), without the
    default route. Read from /proc, not `ip route`: no process spawn on `net create`'s path."""
    import ipaddress
    import socket
    import struct

    routes = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        dst = socket.inet_ntoa(struct.pack("<I", int(f[1], 16)))
        mask = socket.inet_ntoa(struct.pack("<I", int(f[7], 16)))
        net = ipaddress.IPv4Network(f"{dst}/{mask}", strict=False)
        if net.prefixlen == 0:
            continue
        routes.append((net, f[0]))
    return routes
