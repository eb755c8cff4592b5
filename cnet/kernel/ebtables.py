"""Builders for cnet's anti-spoofing rules on the bridges (ebtables, nf_tables bridge family).

Docker and the CNI bridge plugin let a container send with a neighbour's IP or MAC address, or
answer ARP for a neighbour's address, and so take over its traffic or its published ports. cnet
pins every endpoint to the addresses it was given:

  filter  INPUT    -> CNET-SPOOF   (frames from a port to the host: gateway, published ports)
  filter  FORWARD  -> CNET-SPOOF   (frames from a port to another port)

  CNET-SPOOF, per endpoint (matched by its host-side veth, whose name starts with "cnet"):
    -i VETH -s ! MAC                     -j DROP   Ethernet source must be the endpoint's MAC
    -i VETH -p IPv4 --ip-src ! IP        -j DROP   IPv4 source must be the endpoint's address
    -i VETH -p ARP --arp-mac-src ! MAC   -j DROP   ARP may only announce its own MAC...
    -i VETH -p ARP --arp-ip-src ! IP     -j DROP   ...and its own address (no answering for others)

Rules are applied with `ebtables-restore --noflush`, one atomic transaction per change, like the
iptables rules. ebtables has no comments: a rule's owner is its `-i` veth, which cnet names.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..commands import Command, Step, cmd
from ..naming import CHAIN_SPOOF

# The built-in chains that jump into CNET-SPOOF.
HOOKS = ("INPUT", "FORWARD")


@dataclass(frozen=True)
class BridgeRule:
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
        return ("ebtables", "-t", "filter", action, self.chain) + self.spec


def jumps() -> list[BridgeRule]:
    return [BridgeRule(hook, ("-j", CHAIN_SPOOF)) for hook in HOOKS]


def endpoint_rules(*, host_veth: str, mac: str, ip: str) -> list[BridgeRule]:
    """What one endpoint may send: frames from its own MAC, IPv4 from its own address, ARP only
    about itself. Everything else arriving on its veth is dropped before the bridge sees it."""
    i = ("-i", host_veth)
    return [
        BridgeRule(CHAIN_SPOOF, i + ("-s", "!", mac, "-j", "DROP")),
        BridgeRule(CHAIN_SPOOF, ("-p", "IPv4") + i + ("--ip-src", "!", ip, "-j", "DROP")),
        BridgeRule(CHAIN_SPOOF, ("-p", "ARP") + i + ("--arp-mac-src", "!", mac, "-j", "DROP")),
        BridgeRule(CHAIN_SPOOF, ("-p", "ARP") + i + ("--arp-ip-src", "!", ip, "-j", "DROP")),
    ]


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
    return cmd("ebtables-restore", "--noflush", stdin=text)


def base_create() -> Step:
    """The CNET-SPOOF chain and a jump into it from INPUT and FORWARD; undo removes both."""
    return Step(
        summary="install the anti-spoofing chain and its jumps (ebtables)",
        do=restore(restore_input(jumps(), "-A", create_chain=True)),
        undo=(base_delete_command(),),
    )


def base_delete_command() -> Command:
    """Jumps out, chain flushed (a stray rule must not keep it alive) and deleted."""
    text = "*filter\n" + "".join(j.line("-D") + "\n" for j in jumps()) + f"-F {CHAIN_SPOOF}\n-X {CHAIN_SPOOF}\n"
    return restore(text)


def base_delete_fallback() -> tuple[Command, ...]:
    """One command per change, for when the batch fails because part of it is already gone."""
    return tuple(cmd(*j.argv("-D")) for j in jumps()) + (
        cmd("ebtables", "-t", "filter", "-F", CHAIN_SPOOF),
        cmd("ebtables", "-t", "filter", "-X", CHAIN_SPOOF),
    )


def endpoint_add(*, host_veth: str, mac: str, ip: str) -> Step:
    rules = endpoint_rules(host_veth=host_veth, mac=mac, ip=ip)
    return Step(
        summary=f"pin {host_veth} to {ip} and {mac} (anti-spoofing)",
        do=restore(restore_input(rules, "-A")),
        undo=(restore(restore_input(rules, "-D")),),
    )


def endpoint_remove(*, host_veth: str, mac: str, ip: str) -> Step:
    """Teardown: one transaction, with a per-rule fallback when some rule is already gone."""
    rules = endpoint_rules(host_veth=host_veth, mac=mac, ip=ip)
    return Step(
        summary=f"remove the anti-spoofing rules of {host_veth}",
        do=restore(restore_input(rules, "-D")),
        fallback=tuple(cmd(*r.argv("-D")) for r in rules),
    )
