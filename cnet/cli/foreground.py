"""A container in the foreground: cnet waits for it, passes signals on, and exits with its status.

The first SIGINT (Ctrl-C), SIGTERM or SIGHUP that cnet receives goes to the container's PID 1 as
it is (`docker run` does the same); if it still runs after --stop-timeout, or when a second one
arrives, cnet's stop takes over: SIGTERM, then after the same timeout (or a third signal) SIGKILL.
The container is marked stopped by hand at the first one, so its restart policy leaves it be.
With -t, Ctrl-C is a byte sent to the container's terminal instead (cnet's is in raw mode).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..services.containers import Wired
    from ..services.context import Context

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Escalation:
    """The ladder: the signal received, then SIGTERM, then SIGKILL."""

    def __init__(self, ctx: Context, containers: Any, wired: Wired, stop_timeout: float):
        self.ctx, self.containers, self.wired, self.stop_timeout = ctx, containers, wired, stop_timeout
        self.ladder: list[int] | None = None
        self.deadline: float | None = None

    def step(self, received: int | None) -> None:
        c = self.wired.container
        if self.ladder is None:
            self.containers.mark_manually_stopped(self.ctx, c.id)
            first = received or signal.SIGTERM
            self.ladder = [s for s in (signal.SIGTERM, signal.SIGKILL) if s != first]
            self._send(first, "again to stop it" if received == signal.SIGINT else "")
        elif self.ladder:
            self._send(self.ladder.pop(0), "")
        self.deadline = time.monotonic() + self.stop_timeout if self.ladder else None

    def due(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _send(self, sig: int, hint: str) -> None:
        c = self.wired.container
        with self.ctx.store.read() as conn:
            now = self.containers.get_container(conn, c.id)
        target = self.containers.live_pid(now)
        if target is None:
            return
        self.containers.wait_exec(now, target[0])
        self.ctx.runner.signal(target[0], sig)
        name = signal.Signals(sig).name
        print(f"\r\ncnet: {name} sent to {c.name}{'; ' + hint if hint else ''}", file=sys.stderr, flush=True)


class Caught:
    """The signals to pass on, caught from before the container starts (one arriving meanwhile
    would otherwise end cnet and leave the container running unwatched by anyone)."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.previous = {s: signal.signal(s, lambda sig, _f: self.pending.append(sig)) for s in FORWARDED}

    def restore(self) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)


def supervise(
    ctx: Context,
    containers: Any,
    wired: Wired,
    proc: Any,
    stop_timeout: float,
    caught: Caught,
    master: int | None = None,
) -> int:
    """Wait for the watcher (it ends after the release), passing signals on; the exit status."""
    from .. import tty

    pending = caught.pending
    esc = Escalation(ctx, containers, wired, stop_timeout)
    proxy = tty.Proxy(master) if master is not None else None
    try:
        with tty.raw(0) if proxy is not None else _nothing():
            while proc.poll() is None:
                if pending or esc.due():
                    esc.step(pending.pop(0) if pending else None)
                    continue
                wait = 0.05 if esc.deadline is None else max(0.0, min(0.05, esc.deadline - time.monotonic()))
                if proxy is not None:
                    proxy.pump(wait)
                else:
                    try:
                        proc.wait(timeout=wait)
                    except subprocess.TimeoutExpired:
                        pass
            if proxy is not None:
                proxy.drain()
    finally:
        if proxy is not None:
            proxy.close()
            os.close(master)  # type: ignore[arg-type]
        caught.restore()
    with ctx.store.read() as conn:
        got = containers.exit_code(conn, wired.container.id)
    code = got if got is not None else (proc.returncode or 0)
    return code if 0 <= code <= 255 else 1


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def info_lines(wired: Wired, pid: int | None) -> list[str]:
    from ..kernel.netns import enter_hint

    c = wired.container
    lines = [f"container {c.name} (id {c.id}) pid {pid or '- (it exited at once)'}"]
    for ep in wired.endpoints:
        lines.append(f"  {ep.interface} {ep.ip}/{ep.prefix_len} on network {ep.network}")
    for p in wired.ports:
        lines.append(f"  port {p.host_ip}:{p.host_port} -> {p.container_ip}:{p.container_port}/{p.protocol}")
    if pid:
        lines.append(f"  enter it with: {enter_hint(pid)}")
    return lines


def attached(
    ctx: Context,
    containers: Any,
    wired: Wired,
    pid: int | None,
    proc: Any,
    stop_timeout: float,
    remove: bool,
    caught: Caught,
    master: int | None,
) -> int:
    """`cnet run` without -d: the container's lines on stderr, then wait for it, passing signals
    on; --rm removes its record. The container's status: cnet's exit code."""
    for line in info_lines(wired, pid):
        print(line, file=sys.stderr, flush=True)
    code = supervise(ctx, containers, wired, proc, stop_timeout, caught, master)
    if remove:
        containers.remove_record(ctx, wired.container.id)
    return code
