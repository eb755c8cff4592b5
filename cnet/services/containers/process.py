"""Container processes: the launch command, its environment, starting it, finding and signalling
its PID 1. No plan and no journal here: the process is the container itself."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cnet

from ... import procs
from ...commands import Step
from ...db import store
from ...errors import CnetError
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


INIT_PROGRAMS = ("tini", "catatonit")  # Debian's packages of the same names


def init_program() -> str:
    """--init: the small init that runs as PID 1, forwards signals and reaps zombies."""
    for name in INIT_PROGRAMS:
        path = shutil.which(name)
        if path:
            return path
    raise CnetError("--init needs tini or catatonit: apt-get install tini")


def program_argv(command: tuple[str, ...] | list[str], *, init: bool, tty: bool) -> list[str]:
    """What PID 1 exec()s: the command, under the init with --init, as a session leader owning
    the terminal with -t (job control inside: `setsid --ctty`)."""
    argv = list(command)
    if init:
        argv = [init_program(), "--", *argv]
    if tty:
        argv = ["setsid", "--ctty", *argv]
    return argv


def mount_template(ctx: Context) -> str:
    """The pin of the mount namespace containers start from (kernel.netns.MOUNT_TEMPLATE_SCRIPT)."""
    return nsk.mount_template_paths(str(ctx.state_dir.resolve()))[0]


def mount_template_steps(ctx: Context) -> list[Step]:
    """The step that makes the template, when it is not there or not known clean (first start,
    after a reboot, after a maker killed half-way): it goes after the host side of the wiring (so
    /run/netns is a mount by then)."""
    pin, ready, _lock = nsk.mount_template_paths(str(ctx.state_dir.resolve()))
    if os.path.exists(ready) and os.path.ismount(pin):
        return []
    return [nsk.mount_template_step(str(ctx.state_dir.resolve()))]


def launch_argv(
    ctx: Context,
    container_id: str,
    hostname: str,
    command: tuple[str, ...] | list[str],
    *,
    init: bool = False,
    tty: bool = False,
    backoff_ms: int = 0,
    template: bool | None = None,
) -> list[str]:
    """`template`: start from the mount namespace template (True: --dry-run's view, where the
    plan makes it), from a copy of the host's own (False), or from the template if it is there
    (None: a start, after the plan made it; unmounted by hand since, the host's)."""
    if template is None:
        template = os.path.ismount(mount_template(ctx))
    cdir = container_dir(ctx, container_id).resolve()
    return nsk.launch_argv(
        container_id=container_id,
        hostname=hostname,
        hosts_file=str(cdir / "hosts"),
        resolv_file=str(cdir / "resolv.conf"),
        command=program_argv(command, init=init, tty=tty),
        python=sys.executable,
        pythonpath=PYTHONPATH,
        state_dir=str(ctx.state_dir.resolve()),
        reap_log=str(container_dir(ctx, container_id) / "reap.log"),
        env_file=str(env_file(ctx, container_id).resolve()),
        backoff_ms=backoff_ms,
        template=mount_template(ctx) if template else "",
    )


def container_launch_argv(
    ctx: Context, c: Container, *, backoff_ms: int = 0, template: bool | None = None
) -> list[str]:
    spec = c.spec
    return launch_argv(
        ctx,
        c.id,
        c.hostname,
        c.command,
        init=bool(spec.get("init")),
        tty=bool(spec.get("tty")) and not c.detached,
        backoff_ms=backoff_ms,
        template=template,
    )


def start_process(
    ctx: Context,
    c: Container,
    *,
    foreground: bool,
    network_ids: Sequence[str] = (),
    held: int | None = None,
    stdio: int | None = None,
    stdin_open: bool = True,
) -> tuple[subprocess.Popen[bytes], int | None]:
    """Start the watcher (which starts the container) and record the PIDs. Returns the watcher's
    Popen and the container's PID 1 (None if it exited at once). The container's environment
    file, hosts file (and those of its peers on `network_ids`) and resolv.conf are written first.
    `held`: the descriptor holding the published ports (ports.hold), which the watcher keeps;
    `stdio`: a terminal for all three (-t); `stdin_open`: keep cnet's stdin (-i) rather than
    /dev/null."""
    from .. import names

    cdir = container_dir(ctx, c.id)
    cdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_env_file(ctx, c)
    names.prepare(ctx, c.id, network_ids)
    argv = container_launch_argv(ctx, c)
    if foreground:
        with open(os.devnull, "rb") as null:
            stdin = stdio if stdio is not None else (None if stdin_open else null)
            proc = ctx.runner.spawn(argv, env=cnet_env(), hold=held, stdin=stdin, stdout=stdio, stderr=stdio)
    else:
        # Detached: stdout and stderr go through pipes to the log writer (services/containers/logs.py).
        from .logs import start_writer

        out, err = start_writer(ctx, c, cnet_env())
        try:
            with open(os.devnull, "rb") as null:
                proc = ctx.runner.spawn(argv, env=cnet_env(), stdin=null, stdout=out, stderr=err, hold=held)
        finally:
            os.close(out)
            os.close(err)
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


def _dollar_zero(pid: int) -> bytes | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return argv[3] if len(argv) > 3 else None


def is_watcher_shell(pid: int) -> bool:
    """The watcher shell itself (its $0 is cnet-watch): never the `cnet run` standing in for it
    before it is spawned, nor a reaper it has already exec'd."""
    return _dollar_zero(pid) == b"cnet-watch"


def in_backoff(pid: int) -> bool:
    """The watcher is waiting out a restart's back-off (nothing of the container runs)."""
    return _dollar_zero(pid) == nsk.BACKOFF_NAME.encode()


def kill_now(ctx: Context, c: Container) -> None:
    target = live_pid(c)
    if target:
        ctx.runner.signal(target[0], signal.SIGKILL)
        wait_dead(target[0], target[1], 5.0)


def kill_watcher(ctx: Context, c: Container) -> None:
    """The watcher and what it runs (its process group: a back-off's `sleep`, PID 1): for a
    container between two runs of its restart policy, or whose watcher must not reap."""
    if c.watcher_pid and procs.alive(c.watcher_pid, c.watcher_start_time):
        if not ctx.runner.signal_group(c.watcher_pid, signal.SIGKILL):
            ctx.runner.signal(c.watcher_pid, signal.SIGKILL)
        wait_dead(c.watcher_pid, c.watcher_start_time, 5.0)


def live_pid(c: Container) -> tuple[int, int | None] | None:
    """The container's PID 1 now: the recorded one, or after a restart by its watcher (which the
    record may not show yet) the watcher shell's first child."""
    if c.pid and procs.alive(c.pid, c.pid_start_time):
        return c.pid, c.pid_start_time
    if c.watcher_pid and procs.alive(c.watcher_pid, c.watcher_start_time) and is_watcher_shell(c.watcher_pid):
        kids = procs.children(c.watcher_pid)
        if kids:
            return kids[0], procs.start_time(kids[0])
    return None


def wait_exec(c: Container, pid: int, timeout: float = 2.0) -> None:
    """Until PID 1 runs the container's program: before, it is cnet's launcher (nsenter, unshare,
    setpriv, env, the hostname shell), and the shell, run with -c, would die of a SIGINT that the
    program might have ignored or handled."""
    want = "\0".join(program_argv(c.command, init=bool(c.spec.get("init")), tty=False)[:1])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            return
        if argv0 == want or (c.spec.get("tty") and argv0 == "setsid"):
            return
        time.sleep(0.002)


def wait_all_dead(
    pids: list[tuple[int, int | None]], timeout: float, meanwhile: Callable[[int], None] | None = None
) -> list[tuple[int, int | None]]:
    """Wait for all of them together (calling `meanwhile(pid)` for each live one on every round);
    the ones still alive at the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    left = [p for p in pids if procs.alive(*p)]
    while left and time.monotonic() < deadline:
        if meanwhile:
            for pid, _start in left:
                meanwhile(pid)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
        left = [p for p in left if procs.alive(*p)]
    return left


def stop_processes(ctx: Context, cs: list[Container], timeout: float) -> None:
    """SIGTERM to every PID 1 at once, wait for them together, SIGKILL what is left (PID 1 of a
    pid namespace ignores SIGTERM unless it installed a handler)."""
    targets = [p for p in (live_pid(c) for c in cs) if p is not None]
    for pid, _start in targets:
        ctx.runner.signal(pid, signal.SIGTERM)
    left = wait_all_dead(targets, timeout)
    for pid, _start in left:
        ctx.runner.signal(pid, signal.SIGKILL)
    wait_all_dead(left, 5.0)


def stop_process(ctx: Context, c: Container, timeout: float) -> None:
    stop_processes(ctx, [c], timeout)
