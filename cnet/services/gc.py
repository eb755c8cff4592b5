"""Reconciliation: compare the database with the kernel and repair both ways.

    cnet gc            orphans out (cnet-named kernel objects no row owns), missing objects back
    cnet net restore   missing objects back only (what a reboot took away); run at boot by systemd

The kernel is read first (`ip -j addr`, `ip netns list`, `iptables-save`: three processes), the
database second: every object present at observation time was created by an operation whose rows
were committed before its first command, so nothing a concurrent `cnet run` is building can look
like an orphan. Containers and networks that an unfinished (or newer) operation touches are "busy"
and neither cleaned nor repaired. Only cnet's own objects are ever changed: links named cnet*,
netns cnet-*, chains CNET-*, rules inside CNET-* chains, and rules of built-in chains that carry a
`cnet:` comment. A foreign rule, even one in a built-in chain next to cnet's jump, is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

from .. import naming, procs
from ..commands import Plan, Step, cmd
from ..kernel import ip as ipk
from ..kernel import iptables as ipt
from ..kernel import parse
from .context import Context
from .networks import Outcome, _net_rules, network_steps, row_to_dict

CNET_CHAIN_PREFIX = "CNET-"
COMMENT_PREFIX = "cnet:"


# --- observing ------------------------------------------------------------------------------------
@dataclass
class Kernel:
    links: dict[str, parse.Link]
    netns: set[str]
    rules: parse.Ruleset
    netns_pids: dict[str, list[int]] = field(default_factory=dict)


def observe(ctx: Context) -> Kernel:
    run = ctx.runner
    return Kernel(
        links=parse.links(run.read(cmd("ip", "-j", "addr"))),
        netns=parse.netns_names(run.read(cmd("ip", "netns", "list"))),
        rules=parse.iptables_save(run.read(cmd("iptables-save"))),
    )


def _sysctl(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


# --- what the database says -----------------------------------------------------------------------
@dataclass
class Desired:
    networks: list[dict]
    containers: dict[str, dict]
    endpoints: list[dict]
    ports_by_container: dict[str, list[dict]]
    busy_containers: set[str]
    busy_networks: set[str]

    @property
    def ready_networks(self) -> list[dict]:
        return [n for n in self.networks if n["state"] == "ready" and n["id"] not in self.busy_networks]

    def stable_container(self, cid: str) -> bool:
        c = self.containers.get(cid)
        return c is not None and c["state"] == "running" and cid not in self.busy_containers


def _busy(conn: sa.Connection, since_op: int) -> tuple[set[str], set[str]]:
    rows = conn.exec_driver_sql(
        "SELECT kind, target FROM operations WHERE status = 'running' OR id > ?", (since_op,)
    ).fetchall()
    ctrs, nets = set(), set()
    for kind, target in rows:
        if kind in ("net-create", "net-rm"):
            nets.add(target)
        elif kind in ("run", "release", "net-connect", "net-disconnect"):
            ctrs.add(target.split("/")[0])
    return ctrs, nets


def last_op(conn: sa.Connection) -> int:
    return conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM operations").scalar()


def desired(conn: sa.Connection, since_op: int) -> Desired:
    from .containers import ports_of

    nets = [row_to_dict(r) for r in conn.exec_driver_sql("SELECT * FROM networks ORDER BY created_at, id")]
    ctrs = {r.id: row_to_dict(r) for r in conn.exec_driver_sql("SELECT * FROM containers ORDER BY created_at, id")}
    eps = [
        row_to_dict(r)
        for r in conn.exec_driver_sql(
            "SELECT e.*, n.name AS network, n.bridge, n.gateway, n.prefix_len, n.mtu FROM endpoints e "
            "JOIN networks n ON n.id = e.network_id ORDER BY e.container_id, e.interface"
        )
    ]
    ports = {cid: ports_of(conn, cid) for cid in ctrs}
    busy_c, busy_n = _busy(conn, since_op)
    return Desired(nets, ctrs, eps, {k: v for k, v in ports.items() if v}, busy_c, busy_n)


# --- the expected firewall ------------------------------------------------------------------------
def expected_rules(d: Desired) -> dict[str, list[ipt.Rule]]:
    """owner comment -> the rules it should have, in order (only stable owners)."""
    from .containers import _port_rules

    out: dict[str, list[ipt.Rule]] = {}
    if d.networks:
        out[naming.BASE_COMMENT] = ipt.base_rules()
        out[naming.BASE_COMMENT + ":jumps"] = ipt.base_jumps()
    for net in d.ready_networks:
        out[naming.network_comment(net["name"])] = _net_rules(net)
    for cid, ports in d.ports_by_container.items():
        if d.stable_container(cid):
            out[naming.container_comment(cid)] = _port_rules(cid, ports)
    return out


def owned_comments(d: Desired) -> set[str]:
    """Comments some row owns (stable or busy): anything else with a cnet: comment is an orphan."""
    owned = set()
    if d.networks:
        owned.add(naming.BASE_COMMENT)
    owned |= {naming.network_comment(n["name"]) for n in d.networks}
    owned |= {naming.container_comment(cid) for cid in d.ports_by_container}
    owned |= {naming.container_comment(cid) for cid in d.busy_containers}
    return owned


def _is_cnet_rule(r: parse.SavedRule) -> bool:
    return r.chain.startswith(CNET_CHAIN_PREFIX) or (r.comment or "").startswith(COMMENT_PREFIX)


def firewall_diff(k: parse.Ruleset, d: Desired, *, clean: bool) -> tuple[str, list[str]]:
    """iptables-restore --noflush text that turns cnet's part of `k` into what `d` says, plus one
    summary line per change. Empty text: nothing to do."""
    expected = expected_rules(d)
    owned = owned_comments(d)
    want_chains = ipt.BASE_CHAINS if d.networks else {}
    deletes: dict[str, list[str]] = {}
    adds: dict[str, list[str]] = {}
    new_chains: dict[str, list[str]] = {}
    drop_chains: dict[str, list[str]] = {}
    notes: list[str] = []

    for table, chains in want_chains.items():
        for chain in chains:
            if not k.has_chain(table, chain):
                new_chains.setdefault(table, []).append(chain)
                notes.append(f"create missing chain {table}/{chain}")
    if clean:
        for table, chains in k.chains.items():
            for chain in chains:
                if chain.startswith(CNET_CHAIN_PREFIX) and chain not in want_chains.get(table, ()):
                    drop_chains.setdefault(table, []).append(chain)
                    notes.append(f"remove orphan chain {table}/{chain}")

    # Group what is there by (table, chain, owner).
    actual: dict[tuple[str, str, str | None], list[parse.SavedRule]] = {}
    for r in k.rules:
        if _is_cnet_rule(r):
            actual.setdefault((r.table, r.chain, r.comment), []).append(r)

    def dropped(table: str, chain: str) -> bool:
        return chain in drop_chains.get(table, ())

    # Orphans: cnet-commented rules no row owns, foreign rules inside cnet's chains, rules in chains
    # that go away (they must be emptied before -X), jumps into chains that go away.
    for (table, chain, comment), rules in actual.items():
        orphan = (
            comment is None
            or not comment.startswith(COMMENT_PREFIX)
            or comment not in owned
            or dropped(table, chain)
            or any(dropped(table, r.target or "") for r in rules)
        )
        if orphan and clean:
            deletes.setdefault(table, []).extend(r.delete_line() for r in rules)
            notes.append(f"remove {len(rules)} orphan rule(s) {comment or '(no comment)'} from {table}/{chain}")

    # Rules of a stable owner in a chain where it wants none (a layout from an earlier cnet, e.g.
    # the DNAT exception that used to sit in isolation stage 1): removed, or they would keep
    # their old effect.
    wanted_chains: dict[str, set[tuple[str, str]]] = {}
    for owner, rules in expected.items():
        comment = naming.BASE_COMMENT if owner.endswith(":jumps") else owner
        wanted_chains.setdefault(comment, set()).update((r.table, r.chain) for r in rules)
    for (table, chain, comment), rules in actual.items():
        if comment in wanted_chains and (table, chain) not in wanted_chains[comment] and not dropped(table, chain):
            deletes.setdefault(table, []).extend(r.delete_line() for r in rules)
            notes.append(f"remove {len(rules)} stale rule(s) {comment} from {table}/{chain}")

    # Missing or altered rules of stable owners: replace that owner's rules in that chain.
    for owner, rules in expected.items():
        comment = naming.BASE_COMMENT if owner.endswith(":jumps") else owner
        by_chain: dict[tuple[str, str], list[ipt.Rule]] = {}
        for r in rules:
            by_chain.setdefault((r.table, r.chain), []).append(r)
        for (table, chain), want in by_chain.items():
            have = actual.get((table, chain, comment), [])
            if [h.spec for h in have] == [w.spec for w in want]:
                continue
            if comment.startswith("cnet:ctr:") and sorted(h.spec for h in have) == sorted(w.spec for w in want):
                continue  # port mappings match disjoint traffic: their order does not matter
            if owner == naming.BASE_COMMENT + ":jumps" or comment == naming.BASE_COMMENT:
                # Jumps and base rules come first in their chains (the isolation jump must
                # precede every network's ACCEPT): insert at the top, in order.
                lines = [w.line("-I").replace(f"-I {w.chain} ", f"-I {w.chain} {i} ", 1) for i, w in enumerate(want, 1)]
            else:
                lines = [w.line("-A") for w in want]
            deletes.setdefault(table, []).extend(h.delete_line() for h in have)
            adds.setdefault(table, []).extend(lines)
            what = "restore" if not have else "rewrite"
            notes.append(f"{what} {len(want)} rule(s) {comment} in {table}/{chain}")

    out: list[str] = []
    for table in ipt.TABLE_ORDER:
        body = [f":{c} - [0:0]" for c in new_chains.get(table, ())]
        body += deletes.get(table, [])
        body += adds.get(table, [])
        body += [f"-F {c}" for c in drop_chains.get(table, ())]
        body += [f"-X {c}" for c in drop_chains.get(table, ())]
        if body:
            out += [f"*{table}", *body, "COMMIT"]
    return ("\n".join(out) + "\n") if out else "", notes


# --- the plan -------------------------------------------------------------------------------------
def plan_reconcile(ctx: Context, k: Kernel, d: Desired, *, clean: bool) -> tuple[Plan, list[str]]:
    plan = Plan()
    notes: list[str] = []
    bridges = {n["bridge"] for n in d.networks}
    veths = {e["host_veth"] for e in d.endpoints}
    live_netns = {c["netns"] for cid, c in d.containers.items() if c["state"] in ("creating", "running") or cid in d.busy_containers}

    if clean:
        # Orphan namespaces first (their processes killed, so the veths inside go too), then links.
        for ns in sorted(k.netns):
            if ns.startswith("cnet-") and ns not in live_netns:
                pids = k.netns_pids.get(ns) or []
                if pids:
                    plan.add(Step(summary=f"kill the {len(pids)} orphan process(es) in {ns}", do=cmd("kill", "-KILL", *map(str, pids))))
                plan.add(Step(summary=f"remove orphan network namespace {ns}", do=ipk.netns_del(ns)))
        for name in sorted(k.links):
            if name.startswith("cnet") and name not in bridges and name not in veths:
                plan.add(Step(summary=f"remove orphan link {name}", do=ipk.link_del(name)))

    # Networks: bridge, gateway address, up, route_localnet; forwarding for all of them.
    ready = d.ready_networks
    if ready and _sysctl("/proc/sys/net/ipv4/ip_forward") != "1":
        plan.add(Step(summary="enable IPv4 forwarding (cnet networks exist)", do=ipk.sysctl_set("net.ipv4.ip_forward", "1")))
    for net in ready:
        link = k.links.get(net["bridge"])
        gw = f"{net['gateway']}/{net['prefix_len']}"
        if link is None:
            plan.extend(network_steps(net)[:2])  # bridge with address, route_localnet; rules below
            notes.append(f"network {net['name']}: bridge {net['bridge']} re-created")
            continue
        if gw not in link.addrs:
            plan.add(Step(summary=f"restore gateway {gw} on {net['bridge']}", do=cmd("ip", "addr", "add", gw, "dev", net["bridge"])))
        if not link.up:
            plan.add(Step(summary=f"bring {net['bridge']} up", do=cmd("ip", "link", "set", net["bridge"], "up")))
        if _sysctl(f"/proc/sys/net/ipv4/conf/{net['bridge']}/route_localnet") != "1":
            plan.add(ipk.route_localnet(net["bridge"]))

    # Live containers whose namespace name or veth was removed by hand.
    from .containers import endpoint_steps

    for cid, c in d.containers.items():
        if not d.stable_container(cid) or not c["pid"] or not procs.alive(c["pid"], c["pid_start_time"]):
            continue
        if c["netns"] not in k.netns:
            plan.add(Step(summary=f"re-pin network namespace {c['netns']} of container {c['name']}", do=cmd("ip", "netns", "attach", c["netns"], str(c["pid"]))))
        for ep in (e for e in d.endpoints if e["container_id"] == cid):
            if ep["host_veth"] in k.links or ep["network_id"] in d.busy_networks:
                continue
            plan.extend(endpoint_steps(c["netns"], ep, first=bool(ep["is_default_route"]), create_netns=False))
            notes.append(f"container {c['name']}: endpoint on {ep['network']} re-created")

    text, fw_notes = firewall_diff(k.rules, d, clean=clean)
    if text:
        plan.add(Step(summary="; ".join(fw_notes), do=ipt.restore(text)))
    return plan, notes + fw_notes


def _orphan_pids(ctx: Context, k: Kernel, live_netns: set[str]) -> None:
    for ns in k.netns:
        if ns.startswith("cnet-") and ns not in live_netns:
            try:
                k.netns_pids[ns] = [int(p) for p in ctx.runner.read(cmd("ip", "netns", "pids", ns)).split()]
            except Exception:
                k.netns_pids[ns] = []


def _dead_release_steps(ctx: Context, d: Desired) -> list[Step]:
    """--dry-run only (a real run has released them in recovery already): dead containers."""
    from .containers import release_steps

    steps: list[Step] = []
    with ctx.store.read() as conn:
        for cid, c in d.containers.items():
            if d.stable_container(cid) and c["pid"] and not procs.alive(c["pid"], c["pid_start_time"]):
                if c["watcher_pid"] and procs.alive(c["watcher_pid"], c["watcher_start_time"]):
                    continue
                for s in release_steps(conn, c):
                    steps.append(Step(summary=f"release dead container {c['name']}: {s.summary}", do=s.do, fallback=s.fallback))
    return steps


def reconcile(ctx: Context, *, clean: bool) -> Outcome:
    """gc (clean=True) or net restore (clean=False). Recovery has run already (cli.common)."""
    ctx.require_root()
    with ctx.network_lock():
        return _reconcile_locked(ctx, clean=clean)


def _reconcile_locked(ctx: Context, *, clean: bool) -> Outcome:
    since = last_op(ctx.store.conn)
    k = observe(ctx)
    with ctx.store.read() as conn:
        d = desired(conn, since)
    if clean:
        live = {c["netns"] for cid, c in d.containers.items() if c["state"] in ("creating", "running") or cid in d.busy_containers}
        _orphan_pids(ctx, k, live)
    plan, notes = plan_reconcile(ctx, k, d, clean=clean)
    if clean:
        notes += _orphan_container_dirs(ctx, set(d.containers))
    if ctx.dry_run:
        dead = _dead_release_steps(ctx, d)
        plan.steps[:0] = dead
        return Outcome(plan, notes)
    if not plan.steps:
        return Outcome(plan, notes)
    with ctx.store.write() as conn:
        op = ctx.journal.begin(conn, "gc" if clean else "net-restore", "host", "destroy", plan)
    ctx.journal.execute(op)
    if op.errors:
        from ..errors import CnetError

        raise CnetError(f"{'gc' if clean else 'net restore'} finished with errors: {'; '.join(op.errors)}")
    return Outcome(plan, notes)


def _orphan_container_dirs(ctx: Context, known: set[str]) -> list[str]:
    """Log folders whose container row is gone (an `rm -f` killed before its last step)."""
    import shutil

    root = ctx.state_dir / "containers"
    notes = []
    if not root.is_dir():
        return notes
    with ctx.store.read() as conn:
        rows = {r[0] for r in conn.exec_driver_sql("SELECT id FROM containers")}
    for entry in sorted(root.iterdir()):
        if entry.name in rows or entry.name in known:
            continue
        notes.append(f"remove orphan container folder {entry}")
        if not ctx.dry_run:
            shutil.rmtree(entry, ignore_errors=True)
    return notes


# --- the cheap check on the run/connect path --------------------------------------------------------
def bridge_present(bridge: str) -> bool:
    # No process spawn: run and connect pay one stat() per network. /proc/sys/net follows the
    # caller's network namespace (/sys/class/net follows the one /sys was mounted in).
    return Path("/proc/sys/net/ipv4/conf", bridge).exists()


def ensure_networks(ctx: Context, names: list[str]) -> list[Step]:
    """Before a run/connect: re-create the kernel objects of any named network whose bridge is gone
    (the host rebooted, someone deleted it). A real run does it as its own journaled operation
    under the network lock, so two runs never both create it; --dry-run returns the steps so the
    printed plan shows them. Unknown names are left to the caller's own error."""
    with ctx.store.read() as conn:
        rows = [conn.exec_driver_sql("SELECT * FROM networks WHERE name = ? OR id = ?", (n, n)).first() for n in names]
    missing = [row_to_dict(r) for r in rows if r is not None and r.state == "ready" and not bridge_present(r.bridge)]
    if not missing:
        return []
    if ctx.dry_run:
        k = observe(ctx)
        with ctx.store.read() as conn:
            d = desired(conn, last_op(conn))
        return plan_reconcile(ctx, k, d, clean=False)[0].steps
    with ctx.network_lock():
        if all(bridge_present(n["bridge"]) for n in missing):
            return []  # someone else restored them while we waited for the lock
        out = _reconcile_locked(ctx, clean=False)
        names = ", ".join(n["name"] for n in missing)
        ctx.say(f"cnet: network {names} restored (its kernel objects were gone): {len(out.plan.steps)} repair step(s)")
        for note in out.result:  # a restore repairs everything it finds, not only these networks
            ctx.say(f"cnet: {note}")
    return []
