"""Removing a stack's containers in one batch (`cnet down`, and `cnet up` replacing changed ones):
every watcher and PID 1 killed at once and waited for together, then one journaled operation
(kind stack-down) releasing them all with batched steps: `rm -f` of each, merged (plans.batch)."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Sequence

from ... import procs
from ...commands import Plan
from ...db import store
from ...db.connection import Connection
from ...errors import TeardownIncomplete
from ...plans import batch
from ...plans import container as plans
from ...records import Container, ContainerState, Direction, OpKind
from ..apply import Change, Outcome, apply
from ..containers.lifecycle import KILLED_EXIT
from ..containers.process import is_watcher_shell, kill_watcher, live_pid, wait_all_dead
from ..context import Context, container_dir


def _kill_all(ctx: Context, cs: Sequence[Container]) -> None:
    """Watchers first (a killed container's watcher would exec cnet's reaper, a whole Python
    start-up, only to find nothing left to do), then every PID 1; then wait for all together."""
    with ctx.store.write() as conn:
        for c in cs:
            store.mark_manually_stopped(conn, c.id)  # a reaper deciding right now won't restart it
    waits: list[tuple[int, int | None]] = []
    for c in cs:
        if c.state == ContainerState.RESTARTING:
            kill_watcher(ctx, c)
        elif c.watcher_pid and procs.alive(c.watcher_pid, c.watcher_start_time) and is_watcher_shell(c.watcher_pid):
            ctx.runner.signal(c.watcher_pid, signal.SIGKILL)
            waits.append((c.watcher_pid, c.watcher_start_time))
    for c in cs:
        target = live_pid(c)
        if target:
            ctx.runner.signal(target[0], signal.SIGKILL)
            waits.append(target)
    wait_all_dead(waits, 5.0)


def remove_containers(ctx: Context, stack: str, cs: Sequence[Container]) -> Outcome[list[str]]:
    """Kill and release `cs` (containers of `stack`) and delete their records; the names removed.
    Under --dry-run the same plan, against the in-memory copy of the database."""
    live = [c for c in cs if c.live]
    if live and not ctx.dry_run:
        _kill_all(ctx, live)
    what = f"{len(live)} container(s) of stack {stack}"
    with ctx.store.read() as conn:
        network_ids = list(dict.fromkeys(ep.network_id for c in cs for ep in store.endpoints_of(conn, c.id)))

    def prepare(conn: Connection) -> Change[list[str]]:
        released = []
        for c in live:
            if ctx.dry_run:
                # What `rm -f` shows: the kill, then the release.
                released.append(
                    plans.teardown(
                        c, store.ports_of(conn, c.id), timeout=None, endpoints=store.endpoints_of(conn, c.id)
                    )
                )
            elif store.claim_running(conn, c.id, ContainerState.EXITED, KILLED_EXIT):
                released.append(plans.release(c, store.ports_of(conn, c.id), store.endpoints_of(conn, c.id)))
        merged = batch.merge(released, what, Direction.DESTROY)
        return Change(OpKind.STACK_DOWN, stack, merged, [c.name for c in cs], title=f"release of {what} finished")

    try:
        out = apply(ctx, prepare)
    except TeardownIncomplete as exc:
        # Released either way; what the kernel kept is listed by `cnet journal`, `cnet gc` removes it.
        ctx.say(f"cnet: warning: {exc}")
        out = Outcome(Plan(direction=Direction.DESTROY), [c.name for c in cs])
    with ctx.store.write() as conn:
        for c in cs:
            if ctx.dry_run:
                store.finish_release(conn, c.id)
            store.delete_finished_container(conn, c.id)
    if not ctx.dry_run:
        for c in cs:
            shutil.rmtree(container_dir(ctx, c.id), ignore_errors=True)
        if network_ids:
            from .. import names

            names.refresh(ctx, network_ids)  # their names vanish from their peers' hosts files
    return out
