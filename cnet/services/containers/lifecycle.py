"""A container's life after `run`: its network released when its process ends (watcher, stop,
rm, or a later command finding it dead), stop and rm."""

from __future__ import annotations

import shutil
import signal

from ... import procs
from ...commands import Plan
from ...db import store
from ...db.connection import Connection
from ...errors import CnetError, Conflict, TeardownIncomplete
from ...plans import container as plans
from ...records import Container, ContainerState, Direction, OpKind
from ..apply import Change, Outcome, apply
from ..context import Context, container_dir
from ..endpoints import overlay_counts_changed
from . import ports, restart
from .process import (
    in_backoff,
    is_watcher_shell,
    kill_now,
    kill_watcher,
    stop_processes,
    wait_all_dead,
)

KILLED_EXIT = 137  # 128 + SIGKILL: what `rm -f` records


def claim_and_release(
    ctx: Context, container_id: str, exit_code: int | None, *, new_state: ContainerState = ContainerState.EXITED
) -> bool:
    """Atomically take the container out of `running` and release its network resources.
    Exactly one of the racing parties (watcher, stop, rm, a recovering command) wins: True."""

    networks: list[str] = []

    def prepare(conn: Connection) -> Change[bool]:
        if not store.claim_running(conn, container_id, new_state, exit_code):
            return Change(OpKind.RELEASE, container_id, Plan(), False)  # no steps: no operation
        c = store.container_by_id(conn, container_id)
        assert c is not None
        endpoints = store.endpoints_of(conn, container_id)
        networks[:] = [ep.network_id for ep in endpoints]
        plan = plans.release(c, store.ports_of(conn, container_id), endpoints)
        return Change(OpKind.RELEASE, container_id, plan, True, title=f"release of container {c.name} finished")

    try:
        released = apply(ctx, prepare).result
    except TeardownIncomplete as exc:
        # Released either way (the journal completed the operation and the rows are gone); what
        # the kernel kept is listed by `cnet journal` and removed by `cnet gc`.
        ctx.say(f"cnet: warning: {exc}")
        released = True
    if released and networks:
        from .. import names  # imported by the commands that change a network's members only

        names.refresh(ctx, networks)  # its names vanish from its peers' hosts files
    return released


def reap(ctx: Context, container_id: str, exit_code: int, backoff_ms: int = 0) -> None:
    """Called by the watcher when the container's PID 1 has exited: restart it in place when its
    policy says so (this call then never returns), else release its network."""
    held = restart.take_held_fd()  # before anything opens a file on its number
    ctx.journal.recover()
    restart.restart_in_place(ctx, container_id, exit_code, backoff_ms, held)
    # Not restarting: the held ports go first, so whoever maps them next can bind them.
    ports.release(held)
    released = claim_and_release(ctx, container_id, exit_code)
    with ctx.store.write() as conn:
        # Whoever released first (stop, rm -f) may not have known the real exit code.
        store.set_exit_codes(conn, container_id, exit_code)
        c = store.container_by_id(conn, container_id)
    if c is not None and c.spec.get("rm") and c.state == ContainerState.EXITED:
        remove_record(ctx, container_id)
    if released:
        ctx.say(f"cnet: container {container_id} exited with {exit_code}; network released")


def refuse_attachment(c: Container, verb: str) -> None:
    if c.is_cni:
        raise Conflict(
            f"cannot {verb} {c.name}: it is a CNI attachment, owned by its runtime (its DEL releases it; "
            "`cnet gc` does once its network namespace is gone)"
        )


def stop_container(ctx: Context, ref: str, timeout: float = 10.0) -> Outcome[Container]:
    ctx.require_root()
    with ctx.store.read() as conn:
        c = store.get_container(conn, ref)
        refuse_attachment(c, "stop")
        if ctx.dry_run:
            return Outcome(
                plans.teardown(
                    c, store.ports_of(conn, c.id), timeout=timeout, endpoints=store.endpoints_of(conn, c.id)
                ),
                c,
            )
    stop_many(ctx, [c], timeout)
    return Outcome(Plan(direction=Direction.DESTROY), c)


def mark_manually_stopped(ctx: Context, container_id: str) -> None:
    with ctx.store.write() as conn:
        store.mark_manually_stopped(conn, container_id)


def stop_containers(ctx: Context, refs: list[str], timeout: float) -> list[tuple[str, Container | CnetError]]:
    """`cnet stop A B C` for real (--dry-run goes through stop_container): (ref, container or error)."""
    ctx.require_root()
    found: list[tuple[str, Container | CnetError]] = []
    with ctx.store.read() as conn:
        for ref in refs:
            try:
                c = store.get_container(conn, ref)
                refuse_attachment(c, "stop")
                found.append((ref, c))
            except CnetError as exc:
                found.append((ref, exc))
    unique = {c.id: c for _, c in found if isinstance(c, Container)}
    stop_many(ctx, list(unique.values()), timeout)
    return found


def stop_many(ctx: Context, cs: list[Container], timeout: float) -> None:
    """`cnet stop A B C`: marked stopped by hand (no restart policy brings them back), SIGTERM to
    all at once, waited for together, SIGKILL to the rest; then their watchers release them."""
    live = [c for c in cs if c.live]
    if not live:
        return
    with ctx.store.write() as conn:
        for c in live:
            store.mark_manually_stopped(conn, c.id)
    by_watcher = {c.watcher_pid: c for c in live if c.watcher_pid}

    def end_backoff(pid: int) -> None:
        # Between two runs of its restart policy: nothing runs that could exit by itself.
        if in_backoff(pid):
            kill_watcher(ctx, by_watcher[pid])

    for pid in by_watcher:
        end_backoff(pid)
    stop_processes(ctx, live, timeout)
    # Each watcher knows the real exit code and releases the network itself within moments; wait
    # for them, and release here only what they left (killed, or the host rebooted).
    watchers = [(c.watcher_pid, c.watcher_start_time) for c in live if c.watcher_pid]
    wait_all_dead(watchers, 5.0, meanwhile=end_backoff)
    for c in live:
        kill_watcher(ctx, c)
        claim_and_release(ctx, c.id, None)


def remove_container(ctx: Context, ref: str, force: bool = False) -> Outcome[Container]:
    ctx.require_root()
    with ctx.store.read() as conn:
        c = store.get_container(conn, ref)
    refuse_attachment(c, "remove")
    if (c.live or c.state == ContainerState.CREATING) and not force:
        raise Conflict(f"container {c.name} is {c.state}: stop it first or use rm -f")
    if ctx.dry_run:
        with ctx.store.read() as conn:
            return Outcome(
                plans.teardown(c, store.ports_of(conn, c.id), timeout=None, endpoints=store.endpoints_of(conn, c.id)),
                c,
            )
    if c.live:
        with ctx.store.write() as conn:
            store.mark_manually_stopped(conn, c.id)  # a reaper deciding right now won't restart it
        # The record is going away and this command releases the network itself: stop the
        # watcher first, so it does not exec cnet's reaper (a whole Python start-up competing
        # with this command for the CPU) only to find nothing left to do; one between two runs
        # of its restart policy goes with its back-off.
        if c.state == ContainerState.RESTARTING:
            kill_watcher(ctx, c)
        elif c.watcher_pid and procs.alive(c.watcher_pid, c.watcher_start_time) and is_watcher_shell(c.watcher_pid):
            ctx.runner.signal(c.watcher_pid, signal.SIGKILL)
        kill_now(ctx, c)
        claim_and_release(ctx, c.id, KILLED_EXIT, new_state=ContainerState.REMOVING)
    remove_record(ctx, c.id)
    return Outcome(Plan(direction=Direction.DESTROY), c)


def remove_record(ctx: Context, container_id: str) -> None:
    with ctx.store.write() as conn:
        store.delete_finished_container(conn, container_id)
    shutil.rmtree(container_dir(ctx, container_id), ignore_errors=True)
    overlay_counts_changed(ctx)
