"""Restart policies, carried out by the container's watcher without a daemon.

When PID 1 exits, the watcher exec()s the reaper (cnet/kernel/netns.py). If the policy says so,
the reaper marks the container `restarting`, counts the restart and exec()s the watcher again
after a back-off: the same process, still holding the published ports, with the pinned netns,
its addresses and rules untouched, so the program comes back on the same IP and ports. The
watcher then records the new PID 1 (`_started`). Docker's back-off: 100 ms, doubled on each
restart, at most a minute, back to 100 ms after a run of 10 s or more. The back-off is carried
in the watcher's arguments, like everything else the watcher knows.

A stop or rm marks the container `manually_stopped` before it signals anything; the reaper's
move to `restarting` and the watcher's back to `running` both require that flag unset, so a
container being stopped is never restarted.
"""

from __future__ import annotations

import os
import time

from ... import procs
from ...db import store
from ...errors import CnetError
from ...kernel import netns as nsk
from ...records import Container, RestartPolicy
from ..context import Context
from .process import cnet_env, container_launch_argv

FIRST_BACKOFF_MS = 100
MAX_BACKOFF_MS = 60_000
RESET_AFTER_S = 10.0


def next_backoff_ms(previous_ms: int, uptime_s: float) -> int:
    """Docker's restart manager: doubled each time, reset after a run of RESET_AFTER_S."""
    if previous_ms <= 0 or uptime_s >= RESET_AFTER_S:
        return FIRST_BACKOFF_MS
    return min(previous_ms * 2, MAX_BACKOFF_MS)


def wants_restart(c: Container, exit_code: int) -> bool:
    if c.manually_stopped or not c.live:
        return False
    if c.restart_policy in (RestartPolicy.ALWAYS, RestartPolicy.UNLESS_STOPPED):
        return True
    if c.restart_policy == RestartPolicy.ON_FAILURE:
        return exit_code != 0 and (c.restart_max == 0 or c.restart_count < c.restart_max)
    return False


def take_held_fd() -> int | None:
    """The reaper's held ports (fd 4, if the container publishes any), moved off that number."""
    try:
        held = os.dup(nsk.HELD_FD)
    except OSError:
        return None
    os.close(nsk.HELD_FD)
    return held


def restart_in_place(ctx: Context, container_id: str, exit_code: int, backoff_ms: int, held: int | None) -> None:
    """The reaper's first question. Returns if the container is not to be restarted; otherwise
    this process becomes the watcher again (after the back-off) and never returns."""
    with ctx.store.write() as conn:
        c = store.container_by_id(conn, container_id)
        if c is None or not wants_restart(c, exit_code):
            return
        uptime = time.time() - (c.started_at or 0.0)
        delay_ms = next_backoff_ms(backoff_ms, uptime)
        if not store.begin_restart(conn, container_id, exit_code, expected_start=time.time() + delay_ms / 1000):
            return
    ctx.say(
        f"cnet: container {c.name} exited with {exit_code}; restart {c.restart_count + 1} "
        f"({c.restart_policy}) in {delay_ms / 1000:g} s"
    )
    argv = nsk.backoff_argv(delay_ms / 1000, container_launch_argv(ctx, c, backoff_ms=delay_ms))
    # The container's stdin/stdout/stderr as the watcher had them (kept on fds 5-7 for this).
    for saved, fd in zip(nsk.SAVED_STDIO, (0, 1, 2), strict=True):
        try:
            os.dup2(saved, fd)
        except OSError:
            pass
    if c.detached and c.log_path:
        _revive_log_writer(ctx, c)
    ctx.close()
    if held is not None:
        os.dup2(held, nsk.HELD_FD)
        os.close(held)
    ctx.runner.replace_process(argv, cnet_env())


def _revive_log_writer(ctx: Context, c: Container) -> None:
    """A log writer that was killed: a new one on new pipes, so the restarted program's output is
    logged again (into the same log) instead of killing it with SIGPIPE."""
    from . import logs

    if not (logs.pipe_broken(1) or logs.pipe_broken(2)):
        return
    try:
        out, err = logs.start_writer(ctx, c, cnet_env())
    except (OSError, CnetError) as exc:
        ctx.say(f"cnet: container {c.name}: could not start its log writer again: {exc}")
        return
    for new, fds in ((out, (1, nsk.SAVED_STDIO[1])), (err, (2, nsk.SAVED_STDIO[2]))):
        for fd in fds:
            os.dup2(new, fd)
        os.close(new)


def started(ctx: Context, container_id: str, pid: int) -> None:
    """Called by the watcher after a restart with its new PID 1: the container is running again
    (unless a stop came in meanwhile, which then finishes the job)."""
    with ctx.store.write() as conn:
        store.restarted(conn, container_id, pid, procs.start_time(pid))
