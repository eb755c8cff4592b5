"""Reconciling the anti-spoofing rules (ebtables, bridge family) with the database: the ebtables
half of `gc` and `net restore`. Pure: cnet.plans.reconcile passes in what the kernel showed and
what the rows say.

A rule's owner is its `-i` veth. Only veths named cnet* are ever touched; a foreign rule in
CNET-SPOOF (no `-i`, or another interface) stays, like foreign rules in the built-in chains.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..kernel import ebtables as eb
from ..kernel import parse
from ..naming import CHAIN_SPOOF

LINK_PREFIX = "cnet"
TABLE = "filter"


def jump_count(rules: parse.Ruleset, hook: str) -> int:
    return sum(1 for r in rules.in_chain(TABLE, hook) if r.spec == eb.JUMP_SPEC)


def spoof_diff(
    rules: parse.Ruleset,
    *,
    base_wanted: bool,
    expected: Mapping[str, eb.SpoofTarget],
    owned: set[str],
    clean: bool,
) -> tuple[str, list[str]]:
    """ebtables-nft-restore --noflush text that brings CNET-SPOOF and its jumps to what the rows
    say, and one note per change. Empty text: nothing to do.

    base_wanted: networks exist (the chain and one jump from each hook belong there).
    expected: host veth -> target, for the endpoints of stable containers (repaired).
    owned: every endpoint's host veth, stable or busy (never removed)."""
    chain = CHAIN_SPOOF
    present = rules.has_chain(TABLE, chain)
    head: list[str] = []
    body: list[str] = []
    notes: list[str] = []
    if not base_wanted:
        if clean and present:
            body += [
                f"-D {hook} " + " ".join(eb.JUMP_SPEC) for hook in eb.HOOKS for _ in range(jump_count(rules, hook))
            ]
            body += [f"-F {chain}", f"-X {chain}"]
            notes.append(f"remove orphan chain bridge {TABLE}/{chain} and its jumps")
        return _text(head + body), notes

    if not present:
        head.append(f":{chain} RETURN")
        notes.append(f"create missing chain bridge {TABLE}/{chain}")
    for hook in eb.HOOKS:
        n = jump_count(rules, hook)
        if n == 1:
            continue
        body += [f"-D {hook} " + " ".join(eb.JUMP_SPEC)] * n
        body.append(eb.insert_jump_line(hook))
        notes.append(f"{'restore' if n == 0 else 'deduplicate'} the jump from bridge {TABLE}/{hook} to {chain}")

    actual: dict[str | None, list[parse.SavedRule]] = {}
    for r in rules.in_chain(TABLE, chain):
        actual.setdefault(r.in_iface, []).append(r)
    if clean:
        for veth, have in sorted(actual.items(), key=lambda kv: kv[0] or ""):
            if veth and veth.startswith(LINK_PREFIX) and veth not in owned:
                body += [h.delete_line() for h in have]
                notes.append(f"remove {len(have)} orphan anti-spoofing rule(s) of {veth}")
    for veth, target in sorted(expected.items()):
        want = eb.endpoint_rules(host_veth=target.host_veth, mac=target.mac, ip=target.ip, ip6=target.ip6)
        have = actual.get(veth, [])
        if sorted(h.spec for h in have) == sorted(w.spec for w in want):
            continue
        body += [h.delete_line() for h in have]
        body += [w.line("-A") for w in want]
        notes.append(f"{'rewrite' if have else 'restore'} the anti-spoofing rules of {veth}")
    return _text(head + body), notes


def _text(lines: list[str]) -> str:
    return "*filter\n" + "\n".join(lines) + "\n" if lines else ""
