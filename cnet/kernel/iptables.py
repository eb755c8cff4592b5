"""Builders for cnet's iptables rules, applied in batches with `iptables-restore --noflush`.

Layout (own chains only; built-in chains get exactly one jump each and are never flushed):

  filter  FORWARD     -> CNET-FORWARD      -> CNET-ISOLATION-1 -> CNET-ISOLATION-2
  nat     PREROUTING  -> CNET-DNAT   (dst-type LOCAL: port mappings from other hosts/containers)
  nat     OUTPUT      -> CNET-DNAT   (dst-type LOCAL: port mappings from the host itself)
  nat     POSTROUTING -> CNET-POSTROUTING  (outbound masquerade, 127.0.0.1 and hairpin masquerade)
  raw     PREROUTING  -> CNET-PREROUTING   (drop 127.0.0.0/8 arriving on non-loopback links)

Every rule carries `-m comment --comment cnet:...` so leftovers can always be found.
"""

from __future__ import annotations

from ..commands import Command, Step, cmd
from ..frozen_record import FrozenRecord
from ..naming import (
    BASE_COMMENT,
    CHAIN_DNAT,
    CHAIN_FORWARD,
    CHAIN_ISOLATION_1,
    CHAIN_ISOLATION_2,
    CHAIN_POSTROUTING,
    CHAIN_RAW_PREROUTING,
    container_comment,
    network_comment,
)

TABLE_ORDER = ("raw", "nat", "filter")

BASE_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": (CHAIN_RAW_PREROUTING,),
    "nat": (CHAIN_DNAT, CHAIN_POSTROUTING),
    "filter": (CHAIN_FORWARD, CHAIN_ISOLATION_1, CHAIN_ISOLATION_2),
}


class Rule(FrozenRecord):
    table: str
    chain: str
    spec: tuple[str, ...]

    def __post_init__(self) -> None:
        # iptables-restore has its own tokenizer: arguments must not need quoting. Every value
        # that reaches a rule was validated (names, addresses, ports), this is the last guard.
        for arg in self.spec:
            if not arg or any(c.isspace() or c in "\"'\\#" for c in arg):
                raise ValueError(f"unsafe iptables argument: {arg!r}")

    def line(self, action: str) -> str:
        return " ".join((action, self.chain) + self.spec)

    def argv(self, action: str) -> tuple[str, ...]:
        return ("iptables", "-w", "-t", self.table, action, self.chain) + self.spec


def _c(comment: str) -> tuple[str, ...]:
    return ("-m", "comment", "--comment", comment)


def base_jumps() -> list[Rule]:
    """The single jump from each built-in chain (inserted at position 1)."""
    c = _c(BASE_COMMENT)
    return [
        Rule("raw", "PREROUTING", c + ("-j", CHAIN_RAW_PREROUTING)),
        Rule("nat", "PREROUTING", ("-m", "addrtype", "--dst-type", "LOCAL") + c + ("-j", CHAIN_DNAT)),
        Rule("nat", "OUTPUT", ("-m", "addrtype", "--dst-type", "LOCAL") + c + ("-j", CHAIN_DNAT)),
        Rule("nat", "POSTROUTING", c + ("-j", CHAIN_POSTROUTING)),
        Rule("filter", "FORWARD", c + ("-j", CHAIN_FORWARD)),
    ]


def base_rules() -> list[Rule]:
    """Rules inside cnet's own chains that do not belong to any one network."""
    c = _c(BASE_COMMENT)
    return [
        # CVE-2020-8558 / moby#45610: with route_localnet on the bridges, a packet for 127.0.0.0/8
        # arriving from a container or another host must never reach a loopback-only service nor
        # a 127.0.0.1 port mapping. Replies to our own 127.0.0.1 mappings are not affected: at
        # raw PREROUTING their destination is still the (masqueraded) gateway address.
        Rule("raw", CHAIN_RAW_PREROUTING, ("-d", "127.0.0.0/8", "!", "-i", "lo") + c + ("-j", "DROP")),
        Rule("filter", CHAIN_FORWARD, c + ("-j", CHAIN_ISOLATION_1)),
        # Published ports cross the isolation between ordinary networks: DNAT'ed connections
        # return from stage 2 (both directions). The exception lives in stage 2, never in
        # stage 1, so that it cannot let anything past an internal network's drops.
        Rule("filter", CHAIN_ISOLATION_2, ("-m", "conntrack", "--ctstate", "DNAT") + c + ("-j", "RETURN")),
    ]


def network_rules(
    *, name: str, bridge: str, subnet: str, internal: bool, overlay: tuple[str, str] | None = None
) -> list[Rule]:
    """The rules of one network, appended after the other networks' rules.

    Their effect must not depend on the order networks were created in. CNET-ISOLATION-1 holds
    only DROPs and jumps into stage 2, which either DROPs or RETURNs to stage 1: whatever the
    order of its rules, a packet that any of them drops is dropped. An internal network's drops
    therefore sit in stage 1 itself, where no earlier ACCEPT and no DNAT exception can come
    before them (an ACCEPT in CNET-FORWARD only runs after the jump into stage 1).

    overlay = (vxlan device, overlay subnet): the bridge holds this host's share of an overlay
    network. Other hosts' containers may open connections into the bridge through the vxlan
    device, no other network may send into it, and traffic inside the overlay keeps its source
    address (a container sees its peer's own address, not the vxlan device's)."""
    c = _c(network_comment(name))
    if internal:
        return [
            Rule("filter", CHAIN_ISOLATION_1, ("-i", bridge, "!", "-o", bridge) + c + ("-j", "DROP")),
            Rule("filter", CHAIN_ISOLATION_1, ("!", "-i", bridge, "-o", bridge) + c + ("-j", "DROP")),
            Rule("filter", CHAIN_FORWARD, ("-i", bridge, "-o", bridge) + c + ("-j", "ACCEPT")),
        ]
    rules = [
        Rule("filter", CHAIN_ISOLATION_1, ("-i", bridge, "!", "-o", bridge) + c + ("-j", CHAIN_ISOLATION_2)),
        Rule("filter", CHAIN_ISOLATION_2, ("-o", bridge) + c + ("-j", "DROP")),
        Rule("filter", CHAIN_FORWARD, ("-i", bridge, "-o", bridge) + c + ("-j", "ACCEPT")),
    ]
    rules += [
        Rule(
            "filter",
            CHAIN_FORWARD,
            ("-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED") + c + ("-j", "ACCEPT"),
        ),
        Rule("filter", CHAIN_FORWARD, ("-o", bridge, "-m", "conntrack", "--ctstate", "DNAT") + c + ("-j", "ACCEPT")),
        Rule("filter", CHAIN_FORWARD, ("-i", bridge) + c + ("-j", "ACCEPT")),
    ]
    masquerade: tuple[str, ...] = ("-s", subnet, "!", "-o", bridge)
    if overlay is not None:
        vxlan, overlay_subnet = overlay
        rules += [
            # Stage 2 is reached by every packet leaving any cnet bridge for elsewhere: only this
            # network's own bridge may send into its vxlan device.
            Rule("filter", CHAIN_ISOLATION_2, ("!", "-i", bridge, "-o", vxlan) + c + ("-j", "DROP")),
            Rule("filter", CHAIN_FORWARD, ("-i", vxlan, "-o", bridge, "-s", overlay_subnet) + c + ("-j", "ACCEPT")),
        ]
        masquerade += ("!", "-d", overlay_subnet)
    rules += [
        # Nothing else may enter the bridge: container addresses are not routable from outside,
        # only published ports are (as Docker >= 28 does).
        Rule("filter", CHAIN_FORWARD, ("-o", bridge) + c + ("-j", "DROP")),
        Rule("nat", CHAIN_POSTROUTING, masquerade + c + ("-j", "MASQUERADE")),
        # 127.0.0.1 port mappings: the source must become the gateway address to leave the host.
        Rule("nat", CHAIN_POSTROUTING, ("-s", "127.0.0.0/8", "-o", bridge) + c + ("-j", "MASQUERADE")),
        # Hairpin: a container reaching a published port of its own network through a host
        # address must see replies come from that address, not from the neighbour directly.
        Rule(
            "nat",
            CHAIN_POSTROUTING,
            ("-s", subnet, "-d", subnet, "-o", bridge, "-m", "conntrack", "--ctstate", "DNAT")
            + c
            + ("-j", "MASQUERADE"),
        ),
    ]
    return rules


def port_rules(
    *, container_id: str, host_ip: str | None, host_port: int, container_ip: str, container_port: int, protocol: str
) -> list[Rule]:
    spec: tuple[str, ...] = ()
    if host_ip:
        spec += ("-d", f"{host_ip}/32")
    spec += ("-p", protocol, "-m", protocol, "--dport", str(host_port))
    spec += _c(container_comment(container_id))
    spec += ("-j", "DNAT", "--to-destination", f"{container_ip}:{container_port}")
    return [Rule("nat", CHAIN_DNAT, spec)]


def restore_input(
    rules: list[Rule],
    action: str,
    *,
    new_chains: dict[str, tuple[str, ...]] | None = None,
    delete_chains: dict[str, tuple[str, ...]] | None = None,
) -> str:
    """Text for `iptables-restore --noflush`: one atomic transaction per table."""
    out: list[str] = []
    for table in TABLE_ORDER:
        table_rules = [r for r in rules if r.table == table]
        creating = (new_chains or {}).get(table, ())
        deleting = (delete_chains or {}).get(table, ())
        if not (table_rules or creating or deleting):
            continue
        out.append(f"*{table}")
        out += [f":{chain} - [0:0]" for chain in creating]
        for r in table_rules:
            out.append(r.line(action))
        out += [f"-X {chain}" for chain in deleting]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def restore(text: str) -> Command:
    return cmd("iptables-restore", "-w", "--noflush", stdin=text)


def rules_add(rules: list[Rule], summary: str) -> Step:
    """Append rules in one transaction; the undo deletes exactly them."""
    return Step(
        summary=summary,
        do=restore(restore_input(rules, "-A")),
        undo=(restore(restore_input(rules, "-D")),),
    )


def rules_remove(rules: list[Rule], summary: str) -> Step:
    """Teardown of rules_add(): delete them in one transaction; if that fails because some rule
    is already gone, the fallback deletes them one by one (errors tolerated). No undo: a teardown
    rolls forward."""
    return Step(summary=summary, do=restore(restore_input(rules, "-D")), fallback=tuple(single_deletes(rules)))


def single_deletes(rules: list[Rule]) -> list[Command]:
    """Per-rule fallback when a batched delete fails because some rule is already gone."""
    return [cmd(*r.argv("-D")) for r in rules]


def base_create(leftovers: dict[tuple[str, str], list[tuple[tuple[str, ...], str]]] | None = None) -> Step:
    """The base chains, their rules and one jump from each built-in chain.

    `leftovers`: (table, built-in chain) -> (spec, delete line) of each cnet rule found there, left
    by an earlier life (the database lost, the kernel kept its rules). The chains are declared
    again, which empties them (with no network left, nothing in them belongs to a row); a built-in
    chain holding exactly the jump keeps it, any other cnet rules there are replaced by the one
    jump: never a second one."""
    found = leftovers or {}
    text = restore_input(base_rules(), "-A", new_chains=BASE_CHAINS)
    # iptables-restore processes a table block in order: the jump lines go after the chains exist.
    by_table: dict[str, list[str]] = {}
    for j in base_jumps():
        have = found.get((j.table, j.chain), [])
        if [spec for spec, _line in have] == [j.spec]:
            continue
        lines = by_table.setdefault(j.table, [])
        lines += [line for _spec, line in have]
        lines.append(j.line("-I").replace(f"-I {j.chain} ", f"-I {j.chain} 1 ", 1))
    return Step(
        summary="install cnet base chains and one jump from each built-in chain",
        do=restore(_merge(text, by_table)),
        undo=(base_delete_command(),),
    )


def _merge(text: str, extra: dict[str, list[str]]) -> str:
    out: list[str] = []
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        if line == "COMMIT" and table in extra:
            out += extra[table]
        out.append(line)
    return "\n".join(out) + "\n"


def base_delete_command() -> Command:
    """Remove the jumps, then the (emptied) chains: the host's built-in chains as before."""
    out: list[str] = []
    jumps = base_jumps()
    for table in TABLE_ORDER:
        out.append(f"*{table}")
        out += [j.line("-D") for j in jumps if j.table == table]
        # Flush first so the chains can be deleted even if a stray rule was left in them.
        out += [f"-F {chain}" for chain in BASE_CHAINS[table]]
        out += [f"-X {chain}" for chain in BASE_CHAINS[table]]
        out.append("COMMIT")
    return restore("\n".join(out) + "\n")


def conntrack_flush_udp(host_port: int) -> Command:
    return cmd("conntrack", "-D", "-p", "udp", "--orig-port-dst", str(host_port))


def jump_hooks() -> set[tuple[str, str]]:
    """The (table, built-in chain) pairs cnet jumps from."""
    return {(j.table, j.chain) for j in base_jumps()}
