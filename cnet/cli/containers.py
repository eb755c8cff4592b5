"""Container commands: run, ps, inspect, exec, logs, stop, rm."""

from __future__ import annotations

import shlex
import signal
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


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": False})(run)
    app.command("ps")(ps)
    app.command("inspect")(inspect)
    app.command("exec", context_settings={"allow_interspersed_args": False})(exec_)
    app.command("logs")(logs)
    app.command("stop")(stop)
    app.command("rm")(rm)
    app.command("_reap", hidden=True)(reap)
    container_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)
    container_app.command("prune")(prune)
    app.add_typer(container_app, name="container", help="Container housekeeping: prune.")


def run(
    cli: typer.Context,
    command: Annotated[Optional[list[str]], typer.Argument(help="Command and arguments (default: /bin/sh).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Container name (default: its 12-hex id).")] = None,
    net: Annotated[
        Optional[list[str]],
        typer.Option(
            "--net",
            "--network",
            autocompletion=common.complete_run_networks,
            help="Network to attach (repeatable; the first one gets the default route). Default: the network "
            "'cnet', created on first use; 'none': loopback only.",
        ),
    ] = None,
    network_alias: Annotated[
        Optional[list[str]],
        typer.Option("--network-alias", help="One more name the container has on its networks (repeatable)."),
    ] = None,
    label: Annotated[Optional[list[str]], typer.Option("-l", "--label", help="KEY=VALUE label (repeatable).")] = None,
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
        float, typer.Option("--stop-timeout", help="Foreground: seconds between SIGTERM and SIGKILL on Ctrl-C.")
    ] = 3.0,
) -> None:
    """Run a command in new net/uts/ipc/pid/mount namespaces, wired to networks, with port mappings."""
    from ..services import containers

    _not_negative(stop_timeout, "--stop-timeout")
    req = containers.parse_run_request(
        name=name,
        networks=net or [],
        ports=publish or [],
        ip=ip,
        hostname=hostname,
        env=env or [],
        command=command or [],
        labels=label or [],
        aliases=network_alias or [],
    )
    ctx = common.mutating(cli)
    out = containers.run_container(ctx, req, detached=detach, remove=remove)
    if ctx.dry_run:
        common.print_plan(out.plan, f"cnet run {out.result.container.name}")
        return
    wired = out.result
    try:
        proc, pid = containers.start_process(
            ctx, wired.container, foreground=not detach, network_ids=[ep.network_id for ep in wired.endpoints]
        )
    except OSError as exc:
        # The network is wired but no process runs: release it now rather than leave a
        # "running" container holding its veth, address and ports.
        from ..errors import CnetError

        containers.claim_and_release(ctx, wired.container.id, 127)
        raise CnetError(f"cannot start container {wired.container.name}: {exc}") from None
    if detach:
        print(wired.container.id)
        return
    _foreground(ctx, containers, wired, pid, proc, stop_timeout, remove)


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
    ctx: Context, containers: ModuleType, wired: Wired, pid: int | None, proc: Any, stop_timeout: float, remove: bool
) -> None:

    def as_interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, as_interrupt)
    signal.signal(signal.SIGHUP, as_interrupt)
    cid = wired.container.id
    for line in _info_lines(wired, pid):
        print(line, file=sys.stderr, flush=True)
    try:
        proc.wait()
    except KeyboardInterrupt:
        print(f"cnet: stopping {wired.container.name}...", file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        containers.stop_container(ctx, cid, timeout=stop_timeout)
        proc.wait()
    with ctx.store.read() as conn:
        got = containers.exit_code(conn, cid)
    # With --rm the reaper may have removed the record already: it exits with the container's code.
    code = got if got is not None else (proc.returncode or 0)
    if remove:
        containers.remove_record(ctx, cid)
    raise typer.Exit(code if 0 <= code <= 255 else 1)


def ps(
    cli: typer.Context,
    all_: Annotated[bool, typer.Option("-a", "--all", help="Show exited containers too.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only the ids.")] = False,
    filter_: Annotated[
        Optional[list[str]],
        typer.Option(
            "-f",
            "--filter",
            help="KEY=VALUE, KEY one of name (substring), label (KEY or KEY=VALUE), status, network, id "
            "(prefix); repeatable: one key's values are alternatives, different keys must all match.",
        ),
    ] = None,
    format_: Annotated[
        Optional[str],
        typer.Option(
            "--format", help="'json' (one typed object per line) or a Go template, e.g. '{{.Name}} {{.State}}'."
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print a JSON list (typed values).")] = False,
) -> None:
    """List running containers (-a: all)."""
    from .. import validate
    from ..services import containers

    filters = [validate.ps_filter(f) for f in filter_ or []]
    # A status filter looks at every container (as Docker's does), whatever -a says.
    every = all_ or any(k == "status" for k, _ in filters)
    details = bool(filters or format_ or json_)
    ctx = common.reading(cli)
    with ctx.store.read() as conn:
        rows = containers.list_containers(conn, every, details=details)
    if filters:
        rows = [r for r in rows if containers.matches(r, filters)]
    if quiet:
        for r in rows:
            print(r["id"])
        return
    if format_ is not None:
        from . import output

        for line in output.format_rows(rows, format_):
            print(line)
        return
    if json_:
        common.print_json(rows)
        return
    table = []
    for r in rows:  # the table shortens long commands; --json keeps them whole
        command = shlex.join(r["command"])
        table.append(
            r
            | {
                "pid": r["pid"] or "",
                "ips": ",".join(r["ips"]),
                "ports": ",".join(r["ports"]),
                "command": command if len(command) <= 40 else command[:39] + "…",
            }
        )
    common.print_table(table, ["name", "id", "state", "pid", "ips", "ports", "command"])


def inspect(
    cli: typer.Context,
    refs: Annotated[
        list[str],
        typer.Argument(help="Container (or network) names or ids.", autocompletion=common.complete_refs),
    ],
    format_: Annotated[
        Optional[str],
        typer.Option(
            "-f",
            "--format",
            help="'json', or a Go template applied to each, e.g. '{{.State.Pid}}' or "
            "'{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}'.",
        ),
    ] = None,
) -> None:
    """Show containers (or networks) as JSON, with the nsenter command to enter a container."""
    from ..errors import NotFound
    from ..services import containers, networks
    from ..services.context import container_dir

    ctx = common.reading(cli)
    out = []
    with ctx.store.read() as conn:
        for ref in refs:
            try:
                c = containers.get_container(conn, ref)
            except NotFound:
                try:
                    out.append(networks.inspect_network(conn, ref))
                except NotFound:
                    raise NotFound(f"no container or network named {ref!r}") from None
                continue
            d = containers.describe(conn, c)
            cdir = container_dir(ctx, c.id)
            d["hosts_path"], d["resolv_conf_path"] = str(cdir / "hosts"), str(cdir / "resolv.conf")
            out.append(d)
    if format_ is not None and format_ != "json":
        from . import gotemplate, output

        nodes = gotemplate.parse(format_)
        for item in out:
            print(gotemplate.render(nodes, output.inspect_view(item)))
        return
    common.print_json(out[0] if len(out) == 1 and format_ is None else out)


def exec_(
    cli: typer.Context,
    container: Annotated[str, typer.Argument(help="Container name or id.", autocompletion=common.complete_containers)],
    command: Annotated[list[str], typer.Argument(help="Command and arguments; cnet's options may also come first.")],
    _interactive: Annotated[
        bool, typer.Option("-i", "--interactive", help="Accepted (stdin is always passed).")
    ] = False,
    _tty: Annotated[bool, typer.Option("-t", "--tty", help="Accepted (the terminal is always cnet's).")] = False,
    env: Annotated[
        Optional[list[str]], typer.Option("-e", "--env", help="KEY=VALUE environment variable (repeatable).")
    ] = None,
    workdir: Annotated[Optional[str], typer.Option("-w", "--workdir", help="Working directory (absolute).")] = None,
    user: Annotated[Optional[str], typer.Option("-u", "--user", help="USER[:GROUP], a name or a number.")] = None,
) -> None:
    """Run a command inside all of a running container's namespaces; exits with its exit code.
    -i, -t, -e, -w and -u are cnet's wherever they come before the command (`cnet exec CTR -it sh`)."""
    from .. import procs, validate
    from ..errors import Conflict
    from ..kernel.netns import enter_argv
    from ..services import containers
    from ..services.containers.process import exec_user

    args = validate.exec_args(command, env or [], workdir, user)
    ctx = common.reading(cli)
    row = common.load_container(ctx, container)
    if row.state != "running" or not row.pid or not procs.alive(row.pid, row.pid_start_time):
        raise Conflict(f"container {row.name} is not running")
    argv_command = list(args.command)
    if not argv_command:
        raise typer.BadParameter("a command is needed", param_hint="'COMMAND...'")
    who = exec_user(args.user) if args.user else None
    if ctx.dry_run:
        env_path = containers.env_file(ctx, row.id)
        print(shlex.join(enter_argv(row.pid, argv_command, str(env_path), workdir=args.workdir, user=who)))
        return
    ctx.require_root()
    # The command gets the container's environment (from the file PID 1 read) plus exec's -e;
    # nsenter and setpriv keep cnet's.
    env_path = containers.write_exec_env_file(ctx, row, args.env)
    try:
        argv = enter_argv(row.pid, argv_command, str(env_path), workdir=args.workdir, user=who)
        proc = ctx.runner.spawn(argv, env=containers.cnet_env(), new_session=False)
        code = proc.wait()
    finally:
        if env_path != containers.env_file(ctx, row.id):
            env_path.unlink(missing_ok=True)
    raise typer.Exit(code)


def logs(
    cli: typer.Context,
    container: Annotated[str, typer.Argument(help="Container name or id.", autocompletion=common.complete_containers)],
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new output until the container exits.")
    ] = False,
) -> None:
    """Print the output of a detached container."""
    from ..errors import CnetError
    from ..services import containers

    ctx = common.reading(cli)
    row = common.load_container(ctx, container)
    if not row.log_path:
        raise CnetError(f"container {row.name} runs in the foreground: its output went to its terminal")
    try:
        f = open(row.log_path, "rb")  # noqa: SIM115 -- closed by the with below; no log yet is no output
    except FileNotFoundError:
        return
    out = sys.stdout.buffer
    with f:
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


def stop(
    cli: typer.Context,
    containers_: Annotated[
        list[str],
        typer.Argument(
            metavar="CONTAINER...", help="Container names or ids.", autocompletion=common.complete_containers
        ),
    ],
    time_: Annotated[float, typer.Option("-t", "--time", help="Seconds to wait after SIGTERM before SIGKILL.")] = 10.0,
) -> None:
    """Stop containers: SIGTERM, wait, then SIGKILL (PID 1 ignores SIGTERM without a handler)."""
    from ..services import containers

    _not_negative(time_, "-t / --time")
    ctx = common.mutating(cli)

    def stop_one(ref: str) -> tuple[str, Plan | None]:
        out = containers.stop_container(ctx, ref, timeout=time_)
        return out.result.name, out.plan

    common.for_each(ctx, containers_, stop_one, "stop")


def rm(
    cli: typer.Context,
    containers_: Annotated[
        list[str],
        typer.Argument(
            metavar="CONTAINER...", help="Container names or ids.", autocompletion=common.complete_containers
        ),
    ],
    force: Annotated[bool, typer.Option("-f", "--force", help="Kill a running container first.")] = False,
) -> None:
    """Remove containers' records (-f: kill and release running ones first)."""
    from ..services import containers

    ctx = common.mutating(cli)

    def remove_one(ref: str) -> tuple[str, Plan | None]:
        out = containers.remove_container(ctx, ref, force=force)
        return out.result.name, out.plan

    common.for_each(ctx, containers_, remove_one, "rm")


def prune(cli: typer.Context) -> None:
    """Remove every exited container's record."""
    from ..services import containers

    ctx = common.mutating(cli)
    with ctx.store.read() as conn:
        exited = containers.exited_ids(conn)
    removed = 0

    def remove_one(ref: str) -> tuple[str, Plan | None]:
        nonlocal removed
        out = containers.remove_container(ctx, ref)
        removed += 1
        return out.result.name, out.plan

    try:
        common.for_each(ctx, exited, remove_one, "rm")
    finally:
        print(f"{'would remove' if ctx.dry_run else 'removed'} {removed} container(s)", file=sys.stderr)


def _not_negative(value: float, option: str) -> None:
    # Checked here rather than with typer's min=: the message reads like cnet's other errors, and
    # a bounded option is what made typer >= 0.29 import pydantic on every run (the start-up test
    # guards that). nan and inf are refused too (a wait that never ends, or never starts).
    import math

    if not math.isfinite(value) or value < 0:
        raise typer.BadParameter(f"must be a finite number, 0 or more, not {value:g}", param_hint=f"'{option}'")


def reap(
    cli: typer.Context,
    container_id: Annotated[str, typer.Argument()],
    exit_code: Annotated[int, typer.Argument()],
) -> None:
    """Internal: called by a container's watcher when its PID 1 exits."""
    from ..services import containers

    ctx = common.context(cli)
    containers.reap(ctx, container_id, exit_code)
    # The watcher exec()ed this process, so `cnet run` in the foreground sees this code as its
    # child's: the container's code even when --rm removed the record before it could be read.
    raise typer.Exit(exit_code if 0 <= exit_code <= 255 else 1)
