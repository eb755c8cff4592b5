"""Container commands that talk to a running container: exec (its namespaces, environment and
terminal) and logs (its output)."""

import os
import shlex
import shutil
import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from . import common

if TYPE_CHECKING:
    from ..services.context import Context


def exec_(
    cli: typer.Context,
    container: Annotated[
        str,
        typer.Argument(metavar="CONTAINER", help="Container name or id.", autocompletion=common.complete_containers),
    ],
    command: Annotated[
        list[str],
        typer.Argument(metavar="COMMAND...", help="Command and arguments; cnet's options may also come first."),
    ],
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Keep stdin open.")] = False,
    tty: Annotated[
        bool, typer.Option("-t", "--tty", help="A pseudo-terminal: Ctrl-C and job control act inside (with -i).")
    ] = False,
    env: Annotated[
        Optional[list[str]],
        typer.Option("-e", "--env", metavar="KEY=VALUE", help="KEY=VALUE environment variable (repeatable)."),
    ] = None,
    workdir: Annotated[
        Optional[str], typer.Option("-w", "--workdir", metavar="DIR", help="Working directory (absolute).")
    ] = None,
    user: Annotated[
        Optional[str], typer.Option("-u", "--user", metavar="USER[:GROUP]", help="USER[:GROUP], a name or a number.")
    ] = None,
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
    container: Annotated[
        str,
        typer.Argument(metavar="CONTAINER", help="Container name or id.", autocompletion=common.complete_containers),
    ],
    follow: Annotated[
        bool,
        typer.Option("-f", "--follow", help="Keep printing new output (across a rotation) until the container exits."),
    ] = False,
    tail: Annotated[Optional[int], typer.Option("-n", "--tail", metavar="N", help="Only the last N lines.")] = None,
    since: Annotated[
        Optional[str],
        typer.Option(
            "--since",
            metavar="TIME",
            help="Only lines since: a duration (10m, 1h30m), an RFC 3339 time or a Unix timestamp.",
        ),
    ] = None,
    until: Annotated[
        Optional[str], typer.Option("--until", metavar="TIME", help="Only lines until: the same forms as --since.")
    ] = None,
    timestamps: Annotated[
        bool, typer.Option("-t", "--timestamps", help="Prefix each line with the time it was written (UTC).")
    ] = False,
) -> None:
    """Print the output of a detached container: its stdout on stdout, its stderr on stderr, the
    rotated log.1 first. Times are kept to a hundredth of a second."""
    import time

    from .. import validate
    from ..errors import CnetError
    from ..services import containers
    from ..services.containers import logs as logsvc

    if tail is not None:
        common.not_negative(tail, "--tail")
    now = time.time_ns()
    query = logsvc.Query(
        since=logsvc.stamp(validate.log_time(since, now, "--since")) if since is not None else None,
        until=logsvc.stamp(validate.log_time(until, now, "--until")) if until is not None else None,
        tail=tail,
        follow=follow,
    )
    ctx = common.reading(cli)
    row = common.load_container(ctx, container)
    if not row.log_path:
        raise CnetError(f"container {row.name} runs in the foreground: its output went to its terminal")
    outs = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    at_start = {"stdout": True, "stderr": True}
    last = ["stdout"]

    def emit(rec: logsvc.Record) -> None:
        when, stream, data = rec
        out = outs[stream]
        if stream != last[0]:  # the order between the streams holds in `cnet logs CTR 2>&1`
            outs[last[0]].flush()
            last[0] = stream
        if timestamps and when is not None:
            # A prefix at the start of each line (a line in pieces gets the first piece's time).
            if at_start[stream]:
                out.write(when + b" ")
            at_start[stream] = data.endswith(b"\n")
        out.write(data)
        if follow:
            out.flush()

    if row.live and not ctx.dry_run and os.geteuid() == 0:
        from ..services.containers.process import cnet_env

        if logsvc.revive_writer(ctx, row, cnet_env()):
            print(
                f"cnet: container {row.name} had lost its log writer: a new one logs its output again", file=sys.stderr
            )

    def still_running() -> bool:
        with ctx.store.read() as conn:
            return containers.is_running(conn, row.id)

    try:
        logsvc.read(row.log_path, query, emit, still_running if row.live else lambda: False)
    finally:
        for out in outs.values():
            out.flush()
