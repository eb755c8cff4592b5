"""`cnet up`'s new containers in one batch: one write transaction allocates them all (each as
`cnet run` does: services.containers.run.allocate), their wiring plans merge into one journaled
operation (plans.batch), then every watcher is spawned before any is waited for."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ... import procs
from ...commands import Plan, Step
from ...db import store
from ...db.connection import Connection
from ...plans import batch
from ...records import OpKind
from ..apply import Change, Outcome, apply
from ..containers import ports
from ..containers.logs import start_writer
from ..containers.process import cnet_env, container_launch_argv, find_container_pid, write_env_file
from ..containers.run import Wired, allocate, launch_steps
from ..context import Context, container_dir
from .spec import ContainerDef


def create_containers(
    ctx: Context, stack: str, defs: Sequence[ContainerDef], *, before: Sequence[Step] = ()
) -> Outcome[list[Wired]]:
    """Allocate and wire every container of `defs` as one operation (kind stack-up): a failure
    or a crash at any step rolls all of them back. `before`: steps that must come first (networks
    whose bridge a reboot took, as `cnet run` re-creates them), kept as they are."""
    held: list[int | None] = []
    what = f"{len(defs)} container(s) of stack {stack}"

    def prepare(conn: Connection) -> Change[list[Wired]]:
        wired: list[Wired] = []
        wirings: list[Plan] = []
        launches: list[list[str]] = []
        for d in defs:
            w, wiring, launch = allocate(ctx, conn, d.request, detached=True, remove=False, held=held)
            wired.append(w)
            wirings.append(wiring)
            launches.append(launch)
        merged = Plan([*before, *batch.merge(wirings, what).steps])
        shown = Plan(
            [
                *merged.steps,
                *(step for w, a in zip(wired, launches, strict=True) for step in launch_steps(w.container, a)),
            ]
        )

        def mark_running(c: Connection) -> None:
            # This process stands in for every watcher until it is spawned (as `cnet run` does):
            # killed before, the next command finds the containers' watcher dead and releases them.
            me, me_start = procs.self_identity()
            boot = procs.boot_id()
            for w in wired:
                store.mark_running(c, w.container.id, boot_id=boot, watcher_pid=me, watcher_start=me_start)

        return Change(
            OpKind.STACK_UP, stack, shown, wired, journaled=merged, on_success=mark_running, title=f"up of {what}"
        )

    try:
        return apply(ctx, prepare)
    except BaseException:
        for fd in held:
            ports.release(fd)
        raise


def start_all(ctx: Context, wired: Sequence[Wired]) -> list[tuple[Wired, str]]:
    """Start every watcher (which starts its container) without waiting for any, then find their
    PID 1s. Returns the containers that could not be started, with why (their network is
    released)."""
    from ...plans import names as name_plans
    from .. import names

    failed: list[tuple[Wired, str]] = []
    spawned = []
    try:
        for w in wired:
            cdir = container_dir(ctx, w.container.id)
            cdir.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_env_file(ctx, w.container)
            names.write_resolv(ctx, w.container.id)
            names.write_in_place(names.hosts_path(ctx, w.container.id), name_plans.HOSTS_HEADER)
        # One pass over the hosts files of everyone on these networks (per container: N times).
        network_ids = dict.fromkeys(ep.network_id for w in wired for ep in w.endpoints)
        names.refresh(ctx, list(network_ids), [w.container.id for w in wired])
        with open(os.devnull, "rb") as null:
            env = cnet_env()
            for w in wired:
                # stdout and stderr through pipes to the container's log writer, as `cnet run -d`.
                ends: tuple[int, ...] = ()
                try:
                    ends = start_writer(ctx, w.container, env)
                    argv = container_launch_argv(ctx, w.container)
                    proc = ctx.runner.spawn(argv, env=env, stdin=null, stdout=ends[0], stderr=ends[1], hold=w.held)
                    spawned.append((w, proc))
                    # At once, as `cnet run` does: from here on the watcher answers for it.
                    store.set_watcher(ctx.store, w.container.id, proc.pid, procs.start_time(proc.pid))
                except OSError as exc:
                    failed.append((w, str(exc)))
                finally:
                    for fd in ends:
                        os.close(fd)
                    ports.release(w.held)  # the watcher has its copy
                    w.held = None
    finally:
        for w in wired:
            ports.release(w.held)
            w.held = None
    found = [(w, find_container_pid(proc)) for w, proc in spawned]
    with ctx.store.write() as conn:
        for w, pid in found:
            if pid is not None:
                store.set_pid(conn, w.container.id, pid, procs.start_time(pid))
    if failed:
        from ..containers.lifecycle import claim_and_release

        for w, _why in failed:
            claim_and_release(ctx, w.container.id, 127)
    return failed
