"""Container commands: run, ps, inspect, exec, logs, stop, rm."""

from __future__ import annotations

import shlex
import sys
import time
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from . import common

if TYPE_CHECKING:
    from ..commands import Plan
    from ..services.containers import Wired
    from ..services.context import Context
    from .foreground import Caught


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": False})(run)
    app.command("ps")(ps)
    app.command("inspect")(inspect)
    app.command("exec", context_settings={"allow_interspersed_args": False})(exec_)
    app.command("logs")(logs)
    app.command("stop")(stop)
    app.command("start")(start)
    app.command("restart")(restart)
    app.command("rm")(rm)
    app.command("_reap", hidden=True)(reap)
    app.command("_started", hidden=True)(started)


def run(
    cli: typer.Context,
    command: Annotated[Optional[list[str]], typer.Argument(help="Command and arguments (default: /bin/sh).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Container name (default: its 12-hex id).")] = None,
    net: Annotated[
        Optional[list[str]],
        typer.Option("--net", help="Network to attach (repeatable; the first one gets the default route)."),
    ] = None,
    publish: Annotated[
        Optional[list[str]],
        typer.Option("-p", "--publish", help="[HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|/udp] (repeatable)."),
    ] = None,
    ip: Annotated[Optional[str], typer.Option("--ip", help="Static address on the first network.")] = None,
    hostname: Annotated[Optional[str], typer.Option("--hostname", help="Hostname (default: the name).")] = None,
    env: Annotated[
        Optional[list[str]], typer.Option("-e", "--env", help="KEY=VALUE environment variable (repeatable).")
    ] = None,
    detach: Annotated[
        bool, typer.Option("-d", "--detach", help="Run in the background; output goes to `cnet logs`.")
    ] = False,
    remove: Annotated[bool, typer.Option("--rm", help="Remove the container's record when it exits.")] = False,
    stop_timeout: Annotated[
        float,
        typer.Option(
            "--stop-timeout",
            help="Foreground: seconds after Ctrl-C (passed on to the program) before cnet's stop "
            "takes over (SIGTERM, then SIGKILL after as long again); a second Ctrl-C does it at once.",
        ),
    ] = 10.0,
    restart: Annotated[
        str,
        typer.Option(
            "--restart",
            help="no | on-failure[:N] | always | unless-stopped: the watcher restarts the program on the "
            "same address and ports, with a growing back-off (100 ms, doubled, reset after 10 s up).",
        ),
    ] = "no",
    init: Annotated[
        bool, typer.Option("--init", help="Run tini (or catatonit) as PID 1: it passes signals on and reaps zombies.")
    ] = False,
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Keep stdin open (foreground).")] = False,
    tty: Annotated[
        bool, typer.Option("-t", "--tty", help="A pseudo-terminal: Ctrl-C and job control act inside (with -i).")
    ] = False,
) -> None:
    """Run a command in new net/uts/ipc/pid/mount namespaces, wired to networks, with port mappings.
    In the foreground, the first Ctrl-C goes to the program; cnet exits with its status."""
    from ..services import containers

    _not_negative(stop_timeout, "--stop-timeout")
    if tty and detach:
        raise typer.BadParameter("a detached container has no terminal", param_hint="'-t'")
    req = containers.parse_run_request(
        name=name,
        networks=net or [],
        ports=publish or [],
        ip=ip,
        hostname=hostname,
        env=env or [],
        command=command or [],
        restart=restart,
        init=init,
        interactive=interactive,
        tty=tty,
        remove=remove,
    )
    ctx = common.mutating(cli)
    out = containers.run_container(ctx, req, detached=detach, remove=remove)
    if ctx.dry_run:
        common.print_plan(out.plan, f"cnet run {out.result.container.name}")
        return
    wired = out.result
    caught = None
    if not detach:
        from .foreground import Caught

        caught = Caught()
    master = slave = None
    if tty:
        from .. import tty as ttys

        master, slave = ttys.open_pty(0)
    try:
        proc, pid = containers.start_process(
            ctx, wired.container, foreground=not detach, held=wired.held, stdio=slave, stdin_open=interactive
        )
    finally:
        containers.release_ports(wired.held)
        if slave is not None:
            import os

            os.close(slave)
    if detach:
        print(wired.container.id)
        return
    assert caught is not None
    _foreground(ctx, containers, wired, pid, proc, stop_timeout, remove, caught, master)


def _info_lines(wired: Wired, pid: int | None) -> list[str]:
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


def _foreground(
    ctx: Context,
    containers: ModuleType,
    wired: Wired,
    pid: int | None,
    proc: Any,
    stop_timeout: float,
    remove: bool,
    caught: Caught,
    master: int | None,
) -> None:
    from .foreground import supervise

    for line in _info_lines(wired, pid):
        print(line, file=sys.stderr, flush=True)
    code = supervise(ctx, containers, wired, proc, stop_timeout, caught, master)
    if remove:
        containers.remove_record(ctx, wired.container.id)
    raise typer.Exit(code)


def ps(
    cli: typer.Context,
    all_: Annotated[bool, typer.Option("-a", "--all", help="Show exited containers too.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List running containers (-a: all)."""
    from ..services import containers

    ctx = common.reading(cli)
    with ctx.store.read() as conn:
        rows = containers.list_containers(conn, all_)
    if json_:
        common.print_json(rows)
        return
    for r in rows:  # the table shortens long commands; --json keeps them whole
        if len(r["command"]) > 40:
            r["command"] = r["command"][:39] + "…"
    common.print_table(rows, ["name", "id", "state", "pid", "ips", "ports", "command"])


def inspect(
    cli: typer.Context, refs: Annotated[list[str], typer.Argument(help="Container (or network) names or ids.")]
) -> None:
    """Show containers (or networks) as JSON, with the nsenter command to enter a container."""
    from ..errors import NotFound
    from ..services import containers, networks

    ctx = common.reading(cli)
    out = []
    with ctx.store.read() as conn:
        for ref in refs:
            try:
                out.append(containers.describe(conn, containers.get_container(conn, ref)))
            except NotFound:
                try:
                    out.append(networks.inspect_network(conn, ref))
                except NotFound:
                    raise NotFound(f"no container or network named {ref!r}") from None
    common.print_json(out[0] if len(out) == 1 else out)


def exec_(
    cli: typer.Context,
    container: Annotated[str, typer.Argument(help="Container name or id.")],
    command: Annotated[list[str], typer.Argument(help="Command and arguments.")],
    interactive: Annotated[bool, typer.Option("-i", "--interactive", help="Keep stdin open.")] = False,
    tty: Annotated[
        bool, typer.Option("-t", "--tty", help="A pseudo-terminal: Ctrl-C and job control act inside (with -i).")
    ] = False,
) -> None:
    """Run a command inside all of a running container's namespaces; exits with its exit code."""
    import os

    from .. import procs
    from ..errors import Conflict
    from ..kernel.netns import enter_argv
    from ..services import containers

    ctx = common.reading(cli)
    row = common.load_container(ctx, container)
    target = containers.live_pid(row) if row.state == "running" else None
    if target is None or not procs.alive(*target):
        raise Conflict(f"container {row.name} is not running")
    argv = enter_argv(target[0], ["setsid", "--ctty", *command] if tty else command)
    if ctx.dry_run:
        print(shlex.join(argv))
        return
    ctx.require_root()
    env = containers.container_env(row)
    if not tty:
        with open(os.devnull, "rb") as null:
            proc = ctx.runner.spawn(argv, env=env, new_session=False, stdin=None if interactive else null)
        raise typer.Exit(proc.wait())
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
    raise typer.Exit(code if 0 <= code <= 255 else 128 - code)


def logs(
    cli: typer.Context,
    container: Annotated[str, typer.Argument(help="Container name or id.")],
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new output until the container exits.")
    ] = False,
    tail: Annotated[Optional[int], typer.Option("-n", "--tail", help="Only the last N lines.")] = None,
) -> None:
    """Print the output of a detached container (from its rotated file first, when there is one)."""
    from ..errors import CnetError
    from ..services import containers

    ctx = common.reading(cli)
    row = common.load_container(ctx, container)
    if not row.log_path:
        raise CnetError(f"container {row.name} runs in the foreground: its output went to its terminal")
    if tail is not None:
        _not_negative(tail, "--tail")
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


def stop(
    cli: typer.Context,
    containers_: Annotated[list[str], typer.Argument(metavar="CONTAINER...", help="Container names or ids.")],
    time_: Annotated[float, typer.Option("-t", "--time", help="Seconds to wait after SIGTERM before SIGKILL.")] = 10.0,
) -> None:
    """Stop containers: SIGTERM to all of them at once, wait for them together, then SIGKILL (PID 1
    ignores SIGTERM without a handler; --init gives it one). Their restart policies leave them stopped."""
    from ..errors import CnetError
    from ..services import containers

    _not_negative(time_, "-t / --time")
    ctx = common.mutating(cli)
    if ctx.dry_run:

        def stop_one(ref: str) -> tuple[str, Plan | None]:
            out = containers.stop_container(ctx, ref, timeout=time_)
            return out.result.name, out.plan

        common.for_each(ctx, containers_, stop_one, "stop")
        return
    failed = False
    for _ref, got in containers.stop_containers(ctx, containers_, time_):
        if isinstance(got, CnetError):
            print(f"cnet: error: {got}", file=sys.stderr)
            failed = True
        else:
            print(got.name)
    if failed:
        raise typer.Exit(1)


def start(
    cli: typer.Context,
    containers_: Annotated[list[str], typer.Argument(metavar="CONTAINER...", help="Container names or ids.")],
) -> None:
    """Start exited containers again, detached (output in `cnet logs`): the same networks, ports and
    command, on the old addresses when they are free."""
    from ..services import containers

    ctx = common.mutating(cli)

    def start_one(ref: str) -> tuple[str, Plan | None]:
        out = containers.start_container(ctx, ref)
        return out.result.name, out.plan

    common.for_each(ctx, containers_, start_one, "start")


def restart(
    cli: typer.Context,
    containers_: Annotated[list[str], typer.Argument(metavar="CONTAINER...", help="Container names or ids.")],
    time_: Annotated[float, typer.Option("-t", "--time", help="Seconds to wait after SIGTERM before SIGKILL.")] = 10.0,
) -> None:
    """Stop (if running) and start containers again, detached."""
    from ..services import containers

    _not_negative(time_, "-t / --time")
    ctx = common.mutating(cli)

    def restart_one(ref: str) -> tuple[str, Plan | None]:
        out = containers.restart_container(ctx, ref, timeout=time_)
        return out.result.name, out.plan

    common.for_each(ctx, containers_, restart_one, "restart")


def rm(
    cli: typer.Context,
    containers_: Annotated[list[str], typer.Argument(metavar="CONTAINER...", help="Container names or ids.")],
    force: Annotated[bool, typer.Option("-f", "--force", help="Kill a running container first.")] = False,
) -> None:
    """Remove containers' records (-f: kill and release running ones first)."""
    from ..services import containers

    ctx = common.mutating(cli)

    def remove_one(ref: str) -> tuple[str, Plan | None]:
        out = containers.remove_container(ctx, ref, force=force)
        return out.result.name, out.plan

    common.for_each(ctx, containers_, remove_one, "rm")


def _not_negative(value: float, option: str) -> None:
    # Checked here rather than with typer's min=: the message reads like cnet's other errors, and
    # a bounded option is what made typer >= 0.29 import pydantic on every run (the start-up test
    # guards that).
    if value < 0:
        raise typer.BadParameter(f"must be 0 or more, not {value:g}", param_hint=f"'{option}'")


def reap(
    cli: typer.Context,
    container_id: Annotated[str, typer.Argument()],
    exit_code: Annotated[int, typer.Argument()],
    backoff_ms: Annotated[int, typer.Argument()] = 0,
) -> None:
    """Internal: called by a container's watcher when its PID 1 exits."""
    from ..services import containers

    ctx = common.context(cli)
    containers.reap(ctx, container_id, exit_code, backoff_ms)


def started(
    cli: typer.Context,
    container_id: Annotated[str, typer.Argument()],
    pid: Annotated[int, typer.Argument()],
) -> None:
    """Internal: called by a container's watcher after a restart with its new PID 1."""
    from ..services import containers

    containers.started(common.context(cli), container_id, pid)
