"""Reconciliation: compare the database with the kernel and repair both ways.

    cnet gc            orphans out (cnet-named kernel objects no row owns), missing objects back
    cnet net restore   missing objects back only (what a reboot took away); run at boot by systemd

The kernel is read first (`ip -j addr`, `ip netns list`, `iptables-save`, `ebtables-nft-save`:
four processes), the database second: every object present at observation time was created by an
operation whose rows were committed before its first command, so nothing a concurrent `cnet run`
is building can look like an orphan. Containers and networks that an unfinished (or newer)
operation touches are "busy" and neither cleaned nor repaired. Only cnet's own objects are ever
changed: links named cnet*, netns cnet-*, chains CNET-*, rules inside CNET-* chains, rules of
built-in chains that carry a `cnet:` comment, and anti-spoofing rules (ebtables CNET-SPOOF) of
veths named cnet*. A foreign rule, even one in a built-in chain next to cnet's jump, is never
touched. The plans themselves are pure (cnet.plans.reconcile).
"""

from __future__ import annotations

import shutil

from .. import procs
from ..commands import Step, cmd
from ..db import journal_store, store
from ..db.connection import Connection
from ..errors import CommandFailed
from ..kernel import ebtables as eb
from ..kernel import parse
from ..netdev import bridge_ready
from ..plans.reconcile import NETNS_PREFIX, Desired, Kernel, busy, dead_release_steps, plan_reconcile
from ..records import NetworkState, OpKind
from .apply import Change, Outcome, apply
from .context import Context
from .hostfacts import sysctl, sysctl_writable


def observe(ctx: Context) -> Kernel:
    run = ctx.runner
    netns_text = run.read(cmd("ip", "netns", "list"))
    return Kernel(
        # -d: each bridge port's hairpin flag (attachments are checked, not only existence)
        links=parse.links(run.read(cmd("ip", "-d", "-j", "addr"))),
        netns=parse.netns_names(netns_text),
        netns_ids=parse.netns_ids(netns_text),
        rules=parse.iptables_save(run.read(cmd("iptables-save"))),
        rules6=parse.iptables_save(run.read(cmd("ip6tables-save"))),
        bridge_rules=parse.ebtables_save(run.read(eb.save())),
        ip_forward=sysctl("/proc/sys/net/ipv4/ip_forward"),
        ip6_forward=sysctl("/proc/sys/net/ipv6/conf/all/forwarding"),
        sysctl_writable=sysctl_writable(),
    )


def _observe_host(ctx: Context, k: Kernel, d: Desired, *, clean: bool) -> None:
    """The /proc facts the plan needs: route_localnet of each bridge, which container processes
    and watchers live, and (gc only) the processes left in orphan namespaces."""
    for net in d.ready_networks:
        k.route_localnet[net.bridge] = sysctl(f"/proc/sys/net/ipv4/conf/{net.bridge}/route_localnet")
    for cid, c in d.containers.items():
        if c.pid and procs.alive(c.pid, c.pid_start_time):
            k.live_containers.add(cid)
        if c.watcher_pid and procs.alive(c.watcher_pid, c.watcher_start_time):
            k.live_watchers.add(cid)
    if clean:
        live = d.live_netns()
        for ns in k.netns:
            if ns.startswith(NETNS_PREFIX) and ns not in live:
                try:
                    k.netns_pids[ns] = [int(p) for p in ctx.runner.read(cmd("ip", "netns", "pids", ns)).split()]
                except (CommandFailed, ValueError):
                    k.netns_pids[ns] = []


def desired(conn: Connection, since_op: int) -> Desired:
    containers = {c.id: c for c in store.containers(conn)}
    ports = store.ports_by_container(conn)
    busy_c, busy_n = busy(journal_store.busy_operations(conn, since_op))
    return Desired(
        store.all_networks(conn),
        containers,
        store.all_endpoints(conn),
        {cid: p for cid, p in ports.items() if cid in containers},
        busy_c,
        busy_n,
    )


def _state(ctx: Context, *, clean: bool) -> tuple[Kernel, Desired]:
    since = journal_store.last_operation_id(ctx.store)
    k = observe(ctx)
    with ctx.store.read() as conn:
        d = desired(conn, since)
    _observe_host(ctx, k, d, clean=clean)
    return k, d


def reconcile(ctx: Context, *, clean: bool, force: bool = False) -> Outcome[list[str]]:
    """gc (clean=True) or net restore (clean=False). Recovery has run already (cli.common).
    The network lock is taken exclusively: every operation that changes the kernel (run, rm,
    connect, release...) holds it shared (apply), so gc never sees one half done."""
    ctx.require_root()
    with ctx.network_lock():
        return _reconcile_locked(ctx, clean=clean, force=force)


def _reconcile_locked(ctx: Context, *, clean: bool, force: bool = False) -> Outcome[list[str]]:
    released: list[str] = []
    if clean:
        # CNI attachments whose runtime lost their namespace without a DEL: released first (each
        # its own operation, as a DEL would), so the kernel is then compared with what remains.
        from .cni_release import release_vanished

        released, planned = release_vanished(ctx)
    k, d = _state(ctx, clean=clean)
    plan, notes = plan_reconcile(k, d, clean=clean, force=force)
    notes = released + notes
    if clean:
        notes += _orphan_container_dirs(ctx, set(d.containers))
        notes += revive_log_writers(ctx)
        if ctx.dry_run:
            plan.steps[:0] = planned
    if ctx.dry_run:
        plan.steps[:0] = dead_release_steps(k, d)
    kind, title = (OpKind.GC, "gc finished") if clean else (OpKind.NET_RESTORE, "net restore finished")
    change = Change(kind, "host", plan, notes, title=title)
    return apply(ctx, lambda _conn: change)


def revive_log_writers(ctx: Context) -> list[str]:
    """Running detached containers whose log writer was killed get a new one (gc)."""
    from .containers import logs
    from .containers.process import cnet_env

    with ctx.store.read() as conn:
        live = [c for c in store.containers(conn, all_=False) if c.detached and c.log_path and not c.is_cni]
    if ctx.dry_run:
        return [f"start the log writer of {c.name} again" for c in live if logs.writer_gone(c)]
    return [f"started the log writer of {c.name} again" for c in live if logs.revive_writer(ctx, c, cnet_env())]


def _orphan_container_dirs(ctx: Context, known: set[str]) -> list[str]:
    """Log folders whose container row is gone (an `rm -f` killed before its last step)."""
    root = ctx.state_dir / "containers"
    notes: list[str] = []
    if not root.is_dir():
        return notes
    with ctx.store.read() as conn:
        rows = store.container_ids(conn)
    for entry in sorted(root.iterdir()):
        if entry.name in rows or entry.name in known:
            continue
        notes.append(f"remove orphan container folder {entry}")
        if not ctx.dry_run:
            shutil.rmtree(entry, ignore_errors=True)
    return notes


# --- the repair on the run/connect path ----------------------------------------------------------
def ensure_networks(ctx: Context, names: tuple[str, ...] | list[str]) -> list[Step]:
    """Before a run/connect: re-create the kernel objects of any named network whose bridge is gone
    (the host rebooted, someone deleted it). A real run does it as its own journaled operation
    under the network lock, so two runs never both create it; --dry-run returns the steps so the
    printed plan shows them. Unknown names are left to the caller's own error."""
    with ctx.store.read() as conn:
        nets = [store.find_network(conn, n) for n in names]
    missing = [
        n for n in nets if n is not None and n.state == NetworkState.READY and not bridge_ready(n.bridge, n.bridge_mac)
    ]
    if not missing:
        return []
    if ctx.dry_run:
        k, d = _state(ctx, clean=False)
        return plan_reconcile(k, d, clean=False)[0].steps
    with ctx.network_lock():
        if all(bridge_ready(n.bridge, n.bridge_mac) for n in missing):
            return []  # someone else restored them while we waited for the lock
        out = _reconcile_locked(ctx, clean=False)
        listed = ", ".join(n.name for n in missing)
        ctx.say(
            f"cnet: network {listed} restored (its kernel objects were gone or not as recorded): "
            f"{len(out.plan.steps)} repair step(s)"
        )
        for note in out.result:  # a restore repairs everything it finds, not only these networks
            ctx.say(f"cnet: {note}")
    return []
