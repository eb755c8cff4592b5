"""Container processes: the launch command, its environment, starting it, finding and signalling
its PID 1. No plan and no journal here: the process is the container itself."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cnet

from ... import procs
from ...db import store
from ...kernel import netns as nsk
from ...records import Container
from ..context import Context, container_dir

if TYPE_CHECKING:
    import subprocess

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The folder holding the cnet package: the watcher's reaper runs `python -m cnet` from there.
PYTHONPATH = str(Path(cnet.__file__).resolve().parents[1])


def container_env(c: Container) -> dict[str, str]:
    """What the container's program sees (and only it: see env_file)."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": c.hostname, "HOME": "/root"}
    if os.environ.get("TERM"):
        env["TERM"] = os.environ["TERM"]
    env.update(c.env)
    return env


def cnet_env() -> dict[str, str]:
    """The watcher, nsenter/unshare/setpriv and the reaper run with cnet's own environment, never
    the container's: a `-e PATH=` or `-e PYTHONHOME=` must not break them (the reaper runs as root
    in the host's namespaces)."""
    return dict(os.environ)


def env_file(ctx: Context, container_id: str) -> Path:
    return container_dir(ctx, container_id) / "env"


def write_env_file(ctx: Context, c: Container) -> Path:
    """The container's environment, read by its init shell (and by `cnet exec`) inside the
    container: a root-only file in the container's folder, not argv (which any user can read in
    /proc) nor the environment of cnet's processes."""
    path = env_file(ctx, c.id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(nsk.env_file_text(container_env(c)))
    return path


def write_exec_env_file(ctx: Context, c: Container, extra: dict[str, str]) -> Path:
    """`cnet exec -e`: the container's environment plus the exec's variables, in a file of its own
    (removed by the caller after the command); without -e, the container's own file."""
    if not extra:
        return write_env_file(ctx, c)
    path = container_dir(ctx, c.id) / f"exec-{os.getpid()}.env"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(nsk.env_file_text(container_env(c) | extra))
    return path


def exec_user(spec: str) -> tuple[str, str, bool]:
    """`-u USER[:GROUP]` (names or numbers, looked up in the host's databases, which the container
    shares): (user, gid, whether to load the user's supplementary groups)."""
    import grp
    import pwd

    from ...errors import ValidationError

    user, _, group = spec.partition(":")
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        if not user.isdigit():
            raise ValidationError(f"no such user {user!r}") from None
        entry = None
    gid = str(entry.pw_gid) if entry else "0"
    if group:
        try:
            gid = group if group.isdigit() else str(grp.getgrnam(group).gr_gid)
        except KeyError:
            raise ValidationError(f"no such group {group!r}") from None
    return (entry.pw_name if entry else user, gid, entry is not None)


def launch_argv(ctx: Context, container_id: str, hostname: str, command: tuple[str, ...] | list[str]) -> list[str]:
    cdir = container_dir(ctx, container_id).resolve()
    return nsk.launch_argv(
        container_id=container_id,
        hostname=hostname,
        hosts_file=str(cdir / "hosts"),
        resolv_file=str(cdir / "resolv.conf"),
        command=list(command),
        python=sys.executable,
        pythonpath=PYTHONPATH,
        state_dir=str(ctx.state_dir.resolve()),
        reap_log=str(container_dir(ctx, container_id) / "reap.log"),
        env_file=str(env_file(ctx, container_id).resolve()),
    )


def start_process(
    ctx: Context, c: Container, *, foreground: bool, network_ids: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], int | None]:
    """Start the watcher (which starts the container) and record the PIDs. Returns the watcher's
    Popen and the container's PID 1 (None if it exited at once). The container's hosts file (and
    those of its peers on `network_ids`) and resolv.conf are written first."""
    from .. import names

    cdir = container_dir(ctx, c.id)
    cdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_env_file(ctx, c)
    names.prepare(ctx, c.id, network_ids)
    argv = launch_argv(ctx, c.id, c.hostname, c.command)
    if foreground:
        proc = ctx.runner.spawn(argv, env=cnet_env())
    else:
        assert c.log_path is not None
        fd = os.open(c.log_path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            with open(os.devnull, "rb") as devnull:
                proc = ctx.runner.spawn(argv, env=cnet_env(), stdin=devnull, stdout=fd, stderr=fd)
        finally:
            os.close(fd)
    store.set_watcher(ctx.store, c.id, proc.pid, procs.start_time(proc.pid))
    pid = find_container_pid(proc)
    if pid is not None:
        store.set_pid(ctx.store, c.id, pid, procs.start_time(pid))
    return proc, pid


def find_container_pid(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int | None:
    """The watcher's only child is the container's PID 1 (nsenter, unshare, setpriv and the init
    shell all exec() into the next)."""
    deadline = time.monotonic() + timeout
    delay = 0.0002
    while time.monotonic() < deadline:
        kids = procs.children(proc.pid)
        if kids:
            return kids[0]
        if proc.poll() is not None:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.01)
    return None


def wait_dead(pid: int, start: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while time.monotonic() < deadline:
        if not procs.alive(pid, start):
            return True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return not procs.alive(pid, start)


def is_watcher_shell(pid: int) -> bool:
    """The watcher shell itself (its $0 is cnet-watch): never the `cnet run` standing in for it
    before it is spawned, nor a reaper it has already exec'd."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return len(argv) > 3 and argv[3] == b"cnet-watch"


def kill_now(ctx: Context, c: Container) -> None:
    if c.pid and procs.alive(c.pid, c.pid_start_time):
        ctx.runner.signal(c.pid, signal.SIGKILL)
        wait_dead(c.pid, c.pid_start_time, 5.0)


def stop_process(ctx: Context, c: Container, timeout: float) -> None:
    """PID 1 of a pid namespace ignores SIGTERM unless it installed a handler: escalate."""
    if c.pid and procs.alive(c.pid, c.pid_start_time):
        ctx.runner.signal(c.pid, signal.SIGTERM)
        if not wait_dead(c.pid, c.pid_start_time, timeout):
            ctx.runner.signal(c.pid, signal.SIGKILL)
            wait_dead(c.pid, c.pid_start_time, 5.0)
