"""Many containers' plans merged into one plan of batched steps (`cnet up` / `cnet down`).

The per-container plans are the ones `cnet run` and `rm -f` apply (plans.container), so a stack
makes exactly the kernel objects single commands make; only the number of processes changes:

  host side      every `ip -batch -` and plain `ip ...` step -> one `ip -batch -`
                 (their undos -> one `ip -force -batch -`: best effort, as undos are)
  inside         one `nsenter --net=NS ip -batch -` per namespace: a batch line cannot name a
                 namespace, so these stay per container (the journal's per-container steps)
  iptables       every `iptables-restore` -> one transaction per table (undo likewise)
  ebtables       every `ebtables-nft-restore` -> one transaction (undos stay per rule: after a
                 crash a batched delete of rules that were never added fails as a whole)
  anything else  kept as it is (conntrack flushes once per port)

A merged step takes the place of the first step it absorbed; steps keep the order of their
position in the per-container plans, so every host-side batch runs before any inside step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..commands import Command, Plan, Step, cmd
from ..kernel import ebtables as eb
from ..kernel import iptables as ipt
from ..records import Direction

IP_BATCH = ("ip", "-batch", "-")
IP_FORCE_BATCH = ("ip", "-force", "-batch", "-")
IPT_RESTORE = ("iptables-restore", "-w", "--noflush")
EBT_RESTORE = (eb.EBTABLES_RESTORE, "--noflush")


def _kind(c: Command) -> str | None:
    """Which batch a command can join (None: it stays on its own)."""
    if c.argv in (IP_BATCH, IP_FORCE_BATCH):
        return "ip"
    if c.argv[0] == "ip" and c.stdin is None and len(c.argv) > 1 and not c.argv[1].startswith("-"):
        return "ip"  # `ip link del X` is the batch line `link del X`
    if c.argv == IPT_RESTORE:
        return "iptables"
    if c.argv == EBT_RESTORE:
        return "ebtables"
    return None


def _ip_lines(c: Command) -> list[str]:
    if c.stdin is not None:
        return [line for line in c.stdin.splitlines() if line.strip()]
    return [" ".join(c.argv[1:])]


def merge_restore(texts: Sequence[str], *, commit: bool) -> str:
    """Restore inputs (`*table` blocks, ending in COMMIT for iptables) merged into one block per
    table, tables in the order first seen, chain declarations first in each block."""
    decls: dict[str, list[str]] = {}
    body: dict[str, list[str]] = {}
    for text in texts:
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:]
                decls.setdefault(table, [])
                body.setdefault(table, [])
            elif line == "COMMIT" or not line.strip():
                continue
            elif line.startswith(":"):
                decls[table].append(line)
            else:
                body[table].append(line)
    order = [t for t in ipt.TABLE_ORDER if t in body] + [t for t in body if t not in ipt.TABLE_ORDER]
    out: list[str] = []
    for table in order:
        out += [f"*{table}", *decls[table], *body[table]]
        if commit:
            out.append("COMMIT")
    return "\n".join(out) + "\n"


@dataclass
class _Group:
    kind: str | None
    rank: int
    steps: list[Step] = field(default_factory=list)


def _merged_undo(kind: str, steps: list[Step]) -> tuple[Command, ...]:
    # Undos run newest step first: the merged undo takes the steps in reverse.
    undos = [u for s in reversed(steps) for u in s.undo]
    if kind == "ip":
        lines = [line for u in undos if _kind(u) == "ip" for line in _ip_lines(u)]
        rest = [u for u in undos if _kind(u) != "ip"]
        return ((cmd(*IP_FORCE_BATCH, stdin="\n".join(lines) + "\n"),) if lines else ()) + tuple(rest)
    if kind == "iptables":
        texts = [u.stdin or "" for u in undos if _kind(u) == "iptables"]
        rest = [u for u in undos if _kind(u) != "iptables"]
        return ((ipt.restore(merge_restore(texts, commit=True)),) if texts else ()) + tuple(rest)
    return tuple(undos)


SUMMARIES = {
    "ip": "host side of {n}: namespaces, veths on their bridges (one ip -batch)",
    "iptables": "rules of {n} (one iptables-restore transaction)",
    "ebtables": "anti-spoofing rules of {n} (one ebtables transaction)",
}


def _merge_group(g: _Group, what: str, teardown: bool) -> Step:
    if len(g.steps) == 1 or g.kind is None:
        return g.steps[0]
    assert g.kind is not None
    if g.kind == "ip":
        lines = [line for s in g.steps for line in _ip_lines(s.do)]
        # A teardown goes past a namespace already gone (best effort, as its steps one by one).
        force = teardown or any(s.do.argv == IP_FORCE_BATCH for s in g.steps)
        do = cmd(*(IP_FORCE_BATCH if force else IP_BATCH), stdin="\n".join(lines) + "\n")
    elif g.kind == "iptables":
        do = ipt.restore(merge_restore([s.do.stdin or "" for s in g.steps], commit=True))
    else:
        do = eb.restore(merge_restore([s.do.stdin or "" for s in g.steps], commit=False))
    return Step(
        summary=SUMMARIES[g.kind].format(n=what) + f" [{len(g.steps)} steps]",
        do=do,
        undo=_merged_undo(g.kind, g.steps),
        fallback=tuple(f for s in g.steps for f in s.fallback),
        atomic=all(s.atomic for s in g.steps),
        nothing_to_do=tuple(dict.fromkeys(m for s in g.steps for m in s.nothing_to_do)),
    )


def merge(plans: Sequence[Plan], what: str, direction: Direction | None = None) -> Plan:
    """One plan doing what all of `plans` do. `what` names them in the merged summaries ("12
    containers of stack web")."""
    groups: dict[object, _Group] = {}
    for p in plans:
        for rank, step in enumerate(p.steps):
            kind = _kind(step.do)
            # A step that cannot be batched is its own group; identical ones (a conntrack flush
            # of one port for two mappings) run once.
            key: object = kind if kind is not None else ("own", step.do, step.undo)
            g = groups.setdefault(key, _Group(kind, rank))
            g.steps.append(step)
    ordered = sorted(groups.values(), key=lambda g: g.rank)  # stable: first seen first on a tie
    if direction is None:
        direction = plans[0].direction if plans else Direction.CREATE
    teardown = direction == Direction.DESTROY
    return Plan([_merge_group(g, what, teardown) for g in ordered], direction=direction)
