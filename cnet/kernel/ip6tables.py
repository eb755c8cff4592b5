"""Builders for cnet's ip6tables rules (dual-stack networks), applied with `ip6tables-restore
--noflush` as the IPv4 rules are with iptables-restore.

The same chains as IPv4 (cnet.kernel.iptables), in the ip6 family, without the raw table: IPv6
has no route_localnet, so there are no ::1 port mappings to guard (the kernel cannot DNAT to ::1;
`-p [::1]:...` is refused by cnet.validate6).

  filter  FORWARD     -> CNET-FORWARD      -> CNET-ISOLATION-1 -> CNET-ISOLATION-2
  nat     PREROUTING  -> CNET-DNAT   (dst-type LOCAL)
  nat     OUTPUT      -> CNET-DNAT   (dst-type LOCAL)
  nat     POSTROUTING -> CNET-POSTROUTING

The base chains come with the first dual-stack network and go with the last one, so a host with
IPv4-only networks has no ip6tables rules of cnet's at all.
"""

from __future__ import annotations

from ..commands import Command, Step, cmd
from . import iptables as ipt
from .iptables import Rule

BASE_CHAINS6 = {table: chains for table, chains in ipt.BASE_CHAINS.items() if table != "raw"}


def restore(text: str) -> Command:
    return cmd("ip6tables-restore", "-w", "--noflush", stdin=text)


def single_delete(rule: Rule) -> Command:
    return cmd("ip6tables", *rule.argv("-D")[1:])


def base_jumps() -> list[Rule]:
    return [j for j in ipt.base_jumps() if j.table != "raw"]


def base_rules() -> list[Rule]:
    return [r for r in ipt.base_rules() if r.table != "raw"]


def network_rules(*, name: str, bridge: str, subnet6: str, internal: bool) -> list[Rule]:
    """The IPv4 rules of a network with its IPv6 subnet: forwarding, the two-stage isolation (and
    an internal network's drops), masquerade out and hairpin masquerade; no 127.0.0.0/8 rule."""
    rules = ipt.network_rules(name=name, bridge=bridge, subnet=subnet6, internal=internal)
    return [r for r in rules if "127.0.0.0/8" not in r.spec]


def port_rules(
    *, container_id: str, host_ip: str | None, host_port: int, container_ip6: str, container_port: int, protocol: str
) -> list[Rule]:
    """DNAT to the container's IPv6 address; `host_ip` None: every local IPv6 address."""
    [rule] = ipt.port_rules(
        container_id=container_id,
        host_ip=None,
        host_port=host_port,
        container_ip=f"[{container_ip6}]",
        container_port=container_port,
        protocol=protocol,
    )
    spec = rule.spec if host_ip is None else ("-d", f"{host_ip}/128") + rule.spec
    return [Rule(rule.table, rule.chain, spec)]


def rules_add(rules: list[Rule], summary: str) -> Step:
    return Step(
        summary=summary,
        do=restore(ipt.restore_input(rules, "-A")),
        undo=(restore(ipt.restore_input(rules, "-D")),),
    )


def rules_remove(rules: list[Rule], summary: str) -> Step:
    return Step(
        summary=summary,
        do=restore(ipt.restore_input(rules, "-D")),
        fallback=tuple(single_delete(r) for r in rules),
    )


def base_delete_command() -> Command:
    out: list[str] = []
    for table, chains in BASE_CHAINS6.items():
        out.append(f"*{table}")
        out += [j.line("-D") for j in base_jumps() if j.table == table]
        out += [f"-F {chain}" for chain in chains]
        out += [f"-X {chain}" for chain in chains]
        out.append("COMMIT")
    return restore("\n".join(out) + "\n")


def base_create() -> Step:
    """The IPv6 base chains, their rules and one jump (at position 1) from each built-in chain."""
    text = ipt.restore_input(base_rules(), "-A", new_chains=BASE_CHAINS6)
    jumps: dict[str, list[str]] = {}
    for j in base_jumps():
        jumps.setdefault(j.table, []).append(j.line("-I").replace(f"-I {j.chain} ", f"-I {j.chain} 1 ", 1))
    out: list[str] = []
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        if line == "COMMIT" and table in jumps:
            out += jumps[table]
        out.append(line)
    return Step(
        summary="install cnet's IPv6 base chains and one jump from each built-in chain (ip6tables)",
        do=restore("\n".join(out) + "\n"),
        undo=(base_delete_command(),),
    )


def base_remove() -> Step:
    fallback = [single_delete(j) for j in base_jumps()]
    for table, chains in BASE_CHAINS6.items():
        fallback += [cmd("ip6tables", "-w", "-t", table, "-F", c) for c in chains]
        fallback += [cmd("ip6tables", "-w", "-t", table, "-X", c) for c in chains]
    return Step(
        summary="remove cnet's IPv6 base chains and their jumps (ip6tables)",
        do=base_delete_command(),
        fallback=tuple(fallback),
    )
