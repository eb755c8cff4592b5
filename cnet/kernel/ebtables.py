"""Builders for cnet's anti-spoofing rules on the bridges (ebtables, nf_tables bridge family).

Docker and the CNI bridge plugin let a container send with a neighbour's IP or MAC address, or
answer ARP for a neighbour's address, and so take over its traffic or its published ports. cnet
pins every endpoint to the addresses it was given:

  filter  INPUT    -> CNET-SPOOF   (frames from a port to the host: gateway, published ports)
  filter  FORWARD  -> CNET-SPOOF   (frames from a port to another port)

  CNET-SPOOF, per endpoint (matched by its host-side veth, whose name starts with "cnet"):
    -s ! MAC -i VETH                     -j DROP   Ethernet source must be the endpoint's MAC
    -p IPv4 -i VETH --ip-src ! IP        -j DROP   IPv4 source must be the endpoint's address
    -p ARP -i VETH --arp-mac-src ! MAC   -j DROP   ARP may only announce its own MAC...
    -p ARP -i VETH --arp-ip-src ! IP     -j DROP   ...and its own address (no answering for others)
  and on a dual-stack network:
    -p IPv6 -i VETH ... router-advertisement -j DROP     no container acts as a router for the others
    -p IPv6 -i VETH --ip6-src IP6          -j RETURN     its own IPv6 address,
    -p IPv6 -i VETH --ip6-src fe80::/10    -j RETURN     its link-local address (neighbour discovery)
    -p IPv6 -i VETH --ip6-src ::           -j RETURN     and duplicate address detection's probes
    -p IPv6 -i VETH                        -j DROP       every other IPv6 source

The tokens are in the order `ebtables-save` prints them, so a saved rule compares equal to the one
built here. Rules are applied with `ebtables-nft-restore --noflush`, one atomic transaction per
change (a single table), like the iptables rules. The nft binaries are named explicitly: the
`ebtables` alternative may point at ebtables-legacy, whose rules live elsewhere. ebtables has no
comments: a rule's owner is its `-i` veth, which cnet names.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..commands import Command, Step, cmd
from ..frozen_record import FrozenRecord
from ..naming import CHAIN_SPOOF

EBTABLES = "ebtables-nft"
EBTABLES_RESTORE = "ebtables-nft-restore"
EBTABLES_SAVE = "ebtables-nft-save"

# The built-in chains that jump into CNET-SPOOF.
HOOKS = ("INPUT", "FORWARD")
JUMP_SPEC = ("-j", CHAIN_SPOOF)


class BridgeRule(FrozenRecord):
    chain: str
    spec: tuple[str, ...]

    def __post_init__(self) -> None:
        # ebtables-restore tokenizes on whitespace: every value reaching a rule was validated
        # (kernel names, addresses); this is the last guard.
        for arg in self.spec:
            if not arg or any(c.isspace() or c in "\"'\\#" for c in arg):
                raise ValueError(f"unsafe ebtables argument: {arg!r}")

    def line(self, action: str) -> str:
        return " ".join((action, self.chain) + self.spec)

    def argv(self, action: str) -> tuple[str, ...]:
        return (EBTABLES, "-t", "filter", action, self.chain) + self.spec


class SpoofTarget(FrozenRecord):
    """What one endpoint may send as: its host-side veth, MAC, IPv4 (and IPv6) address."""

    host_veth: str
    mac: str
    ip: str
    ip6: str | None = None


def jumps() -> list[BridgeRule]:
    return [BridgeRule(hook, JUMP_SPEC) for hook in HOOKS]


def endpoint_rules(*, host_veth: str, mac: str, ip: str, ip6: str | None = None) -> list[BridgeRule]:
    """What one endpoint may send: frames from its own MAC, IPv4 from its own address, ARP only
    about itself. Everything else arriving on its veth is dropped before the bridge sees it."""
    i = ("-i", host_veth)
    return [
        BridgeRule(CHAIN_SPOOF, ("-s", "!", mac) + i + ("-j", "DROP")),
        BridgeRule(CHAIN_SPOOF, ("-p", "IPv4") + i + ("--ip-src", "!", ip, "-j", "DROP")),
        BridgeRule(CHAIN_SPOOF, ("-p", "ARP") + i + ("--arp-mac-src", "!", mac, "-j", "DROP")),
        BridgeRule(CHAIN_SPOOF, ("-p", "ARP") + i + ("--arp-ip-src", "!", ip, "-j", "DROP")),
    ] + (endpoint_rules6(i, ip6) if ip6 else [])


def endpoint_rules6(i: tuple[str, ...], ip6: str) -> list[BridgeRule]:
    """IPv6 from its own address, its link-local address or `::` only, and never a router
    advertisement (accepting RAs in a neighbour would let a container become its router)."""
    v6 = ("-p", "IPv6") + i
    ra = ("--ip6-proto", "ipv6-icmp", "--ip6-icmp-type", "router-advertisement")
    return [
        BridgeRule(CHAIN_SPOOF, v6 + ra + ("-j", "DROP")),
        *(BridgeRule(CHAIN_SPOOF, v6 + ("--ip6-src", src, "-j", "RETURN")) for src in (ip6, "fe80::/10", "::")),
        BridgeRule(CHAIN_SPOOF, v6 + ("-j", "DROP")),
    ]


def targets_rules(targets: Sequence[SpoofTarget]) -> list[BridgeRule]:
    rules: list[BridgeRule] = []
    for t in targets:
        rules += endpoint_rules(host_veth=t.host_veth, mac=t.mac, ip=t.ip, ip6=t.ip6)
    return rules


def restore_input(
    rules: list[BridgeRule], action: str, *, create_chain: bool = False, delete_chain: bool = False
) -> str:
    out = ["*filter"]
    if create_chain:
        out.append(f":{CHAIN_SPOOF} RETURN")
    out += [r.line(action) for r in rules]
    if delete_chain:
        out.append(f"-X {CHAIN_SPOOF}")
    return "\n".join(out) + "\n"


def restore(text: str) -> Command:
    return cmd(EBTABLES_RESTORE, "--noflush", stdin=text)


def save() -> Command:
    return cmd(EBTABLES_SAVE)


def insert_jump_line(hook: str) -> str:
    # First in its built-in chain: no foreign ACCEPT placed earlier lets a spoofed frame through.
    return f"-I {hook} 1 " + " ".join(JUMP_SPEC)


def base_create(*, chain_present: bool = False, jump_counts: dict[str, int] | None = None) -> Step:
    """The CNET-SPOOF chain and exactly one jump into it from INPUT and FORWARD; undo removes them.

    Adopts what an earlier life left (the database lost, the kernel kept its rules): an existing
    chain is flushed rather than declared again (nothing in it can belong to a row: this runs with
    the first network), a single existing jump is kept and duplicates are removed."""
    counts = jump_counts or {}
    lines = ["*filter", f"-F {CHAIN_SPOOF}" if chain_present else f":{CHAIN_SPOOF} RETURN"]
    for hook in HOOKS:
        n = counts.get(hook, 0)
        if n == 1:
            continue
        lines += [f"-D {hook} " + " ".join(JUMP_SPEC)] * n
        lines.append(insert_jump_line(hook))
    return Step(
        summary="install the anti-spoofing chain and its jumps (ebtables)",
        do=restore("\n".join(lines) + "\n"),
        undo=(base_delete_command(),),
        atomic=True,
    )


def base_delete_command() -> Command:
    """Jumps out, chain flushed (a stray rule must not keep it alive) and deleted."""
    text = "*filter\n" + "".join(j.line("-D") + "\n" for j in jumps()) + f"-F {CHAIN_SPOOF}\n-X {CHAIN_SPOOF}\n"
    return restore(text)


def base_delete_fallback() -> tuple[Command, ...]:
    """One command per change, for when the batch fails because part of it is already gone."""
    return tuple(cmd(*j.argv("-D")) for j in jumps()) + (
        cmd(EBTABLES, "-t", "filter", "-F", CHAIN_SPOOF),
        cmd(EBTABLES, "-t", "filter", "-X", CHAIN_SPOOF),
    )


def base_remove() -> Step:
    """Teardown of base_create() with the last network."""
    return Step(
        summary="remove the anti-spoofing chain and its jumps (ebtables)",
        do=base_delete_command(),
        fallback=base_delete_fallback(),
    )


def _names(targets: Sequence[SpoofTarget]) -> str:
    return ", ".join(t.host_veth for t in targets)


def endpoints_add(targets: Sequence[SpoofTarget]) -> Step:
    """Pin each endpoint to its IP and MAC, in one transaction; the undo deletes exactly them."""
    rules = targets_rules(targets)
    what = "; ".join(f"{t.host_veth} to {t.ip} and {t.mac}" for t in targets)
    # The undo deletes rule by rule: after a crash nobody knows whether the step ran, and a batch
    # delete of rules that are not there fails as a whole ("final implicit COMMIT failed"),
    # where a single delete says "does a matching rule exist", which the journal takes as gone.
    return Step(
        summary=f"pin {what} (anti-spoofing)",
        do=restore(restore_input(rules, "-A")),
        undo=tuple(cmd(*r.argv("-D")) for r in rules),
        atomic=True,
    )


def endpoints_remove(targets: Sequence[SpoofTarget]) -> Step:
    """Teardown: one transaction, with a per-rule fallback when some rule is already gone."""
    rules = targets_rules(targets)
    return Step(
        summary=f"remove the anti-spoofing rules of {_names(targets)}",
        do=restore(restore_input(rules, "-D")),
        fallback=tuple(cmd(*r.argv("-D")) for r in rules),
    )


def endpoint_add(*, host_veth: str, mac: str, ip: str) -> Step:
    return endpoints_add([SpoofTarget(host_veth, mac, ip)])


def endpoint_remove(*, host_veth: str, mac: str, ip: str) -> Step:
    return endpoints_remove([SpoofTarget(host_veth, mac, ip)])
