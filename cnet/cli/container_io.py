"""Container commands that talk to a running container: exec (its namespaces, environment and
terminal) and logs (its output)."""

import shlex
import shutil
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from . import common

if TYPE_CHECKING:
    from ..services.context import Context


def exec_(
    cli: typer.Context,
    container: Annotated[str, typer.Argument(help="Container name or id.", autocompletion=common.complete_containers)],
    command: Annotated[list[str], typer.Argument(help="Command and arguments; cnet's options may also come first.")],
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Keep stdin open.")] = False,
    tty: Annotated[
        bool, typer.Option("-t", "--tty", help="A pseudo-terminal: Ctrl-C and job control act inside (with -i).")
    ] = False,
    env: Annotated[
        Optional[list[str]], typer.Option("-e", "--env", help="KEY=VALUE environment variable (repeatable).")
    ] = None,
    workdir: Annotated[Optional[str], typer.Option("-w", "--workdir", help="Working directory (absolute).")] = None,
    user: Annotated[Optional[str], typer.Option("-u", "--user", help="USER[:GROUP], a name or a number.")] = None,
) -> None:
    """Run a command inside all of a running container's namespaces; exits with its exit code.
    -i, -t, -e, -w and -u are cnet's wherever they come before the command (`cnet exec CTR -it sh`)."""

    from .. import exec_args, procs
    from ..errors import Conflict
    from ..kernel.netns import enter_argv
    from ..services import containers
    from ..services.containers.process import exec_user

    args = exec_args.exec_args(command, env or [], workdir, user)
    ctx = common.reading(cli)
    row = common.load_container(ctx, container)
    target = containers.live_pid(row) if row.state == "running" else None
    if target is None or not procs.alive(*target):
        raise Conflict(f"container {row.name} is not running")
    argv_command = list(args.command)
    if not argv_command:
        raise typer.BadParameter("a command is needed", param_hint="'COMMAND...'")
    who = exec_user(args.user) if args.user else None
    interactive = interactive or args.interactive
    tty = tty or args.tty
    if tty:
        argv_command = [shutil.which("setsid") or "/usr/bin/setsid", "--ctty", *argv_command]
    if ctx.dry_run:
        env_path = containers.env_file(ctx, row.id)
        print(shlex.join(enter_argv(target[0], argv_command, str(env_path), workdir=args.workdir, user=who)))
        return
    ctx.require_root()
    # The command gets the container's environment (from the file PID 1 read) plus exec's -e;
    # nsenter and setpriv keep cnet's.
    env_path = containers.write_exec_env_file(ctx, row, args.env)
    try:
        argv = enter_argv(target[0], argv_command, str(env_path), workdir=args.workdir, user=who)
        code = _exec_run(ctx, argv, containers.cnet_env(), interactive=interactive, tty=tty)
    finally:
        if env_path != containers.env_file(ctx, row.id):
            env_path.unlink(missing_ok=True)
    raise typer.Exit(code)


def _exec_run(ctx: "Context", argv: list[str], env: dict[str, str], *, interactive: bool, tty: bool) -> int:
    import os

    if not tty:
        with open(os.devnull, "rb") as null:
            proc = ctx.runner.spawn(argv, env=env, new_session=False, stdin=None if interactive else null)
        return proc.wait()
    from .. import tty as ttys

    master, slave = ttys.open_pty(0)
    try:
        proc = ctx.runner.spawn(argv, env=env, stdin=slave, stdout=slave, stderr=slave)
    finally:
        os.close(slave)
    proxy = ttys.Proxy(master)
    try:
        with ttys.raw(0):
            while proc.poll() is None:
                proxy.pump(0.05)
            proxy.drain()
    finally:
        proxy.close()
        os.close(master)
    code = proc.returncode
    return code if 0 <= code <= 255 else 128 - code


def logs(
    cli: typer.Context,
    container: Annotated[str, typer.Argument(help="Container name or id.", autocompletion=common.complete_containers)],
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new output until the container exits.")
    ] = False,
    tail: Annotated[Optional[int], typer.Option("-n", "--tail", help="Only the last N lines.")] = None,
) -> None:
    """Print the output of a detached container."""
    from ..errors import CnetError
    from ..services import containers

    ctx = common.reading(cli)
    row = common.load_container(ctx, container)
    if not row.log_path:
        raise CnetError(f"container {row.name} runs in the foreground: its output went to its terminal")
    if tail is not None:
        common.not_negative(tail, "--tail")
    out = sys.stdout.buffer
    try:
        f = open(row.log_path, "rb")  # noqa: SIM115 -- closed by the with below; no log yet is no output
    except FileNotFoundError:
        return
    with f:
        if tail is not None:
            out.write(_last_lines(f, tail))
            out.flush()
        while True:
            chunk = f.read(65536)
            if chunk:
                out.write(chunk)
                out.flush()
                continue
            if not follow:
                return
            with ctx.store.read() as conn:
                running = containers.is_running(conn, row.id)
            if not running:
                rest = f.read()
                out.write(rest)
                out.flush()
                return
            time.sleep(0.2)


def _last_lines(f: Any, n: int) -> bytes:
    """The last n lines of a file, read backwards in blocks; leaves f at its end."""
    end = f.seek(0, 2)
    pos, data = end, b""
    while pos > 0 and data.count(b"\n") <= n:
        step = min(65536, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + data
    f.seek(end)
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-n:]) if n else b""
