"""Container commands: run, ps, inspect, exec, logs, stop, rm."""

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from . import common, container_io

if TYPE_CHECKING:
    from ..commands import Plan


LOG_MAX_SIZE_HELP = "With -d: rotate the log at this size (512k, 10m, 1g, bytes; default 10m), keeping one log.1."


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": False})(run)
    app.command("ps")(ps)
    app.command("inspect")(inspect)
    app.command("exec", context_settings={"allow_interspersed_args": False})(container_io.exec_)
    app.command("logs")(container_io.logs)
    app.command("stop")(stop)
    app.command("start")(start)
    app.command("restart")(restart)
    app.command("rm")(rm)
    app.command("_reap", hidden=True)(reap)
    container_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)
    container_app.command("prune")(prune)
    app.add_typer(container_app, name="container", help="Container housekeeping: prune.")
    app.command("_started", hidden=True)(started)


def run(
    cli: typer.Context,
    command: Annotated[
        Optional[list[str]], typer.Argument(metavar="[COMMAND]...", help="Command and arguments (default: /bin/sh).")
    ] = None,
    name: Annotated[
        Optional[str], typer.Option("--name", metavar="NAME", help="Container name (default: its 12-hex id).")
    ] = None,
    net: Annotated[
        Optional[list[str]],
        typer.Option(
            "--net",
            "--network",
            autocompletion=common.complete_run_networks,
            metavar="NETWORK",
            help="Network to attach (repeatable; the first one gets the default route). Default: the network "
            "'cnet', created on first use; 'none': loopback only.",
        ),
    ] = None,
    network_alias: Annotated[
        Optional[list[str]],
        typer.Option(
            "--network-alias", metavar="NAME", help="One more name the container has on its networks (repeatable)."
        ),
    ] = None,
    label: Annotated[
        Optional[list[str]], typer.Option("-l", "--label", metavar="KEY=VALUE", help="KEY=VALUE label (repeatable).")
    ] = None,
    publish: Annotated[
        Optional[list[str]],
        typer.Option(
            "-p",
            "--publish",
            metavar="SPEC",
            help="Publish a port: [HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END], "
            "then /tcp (default) or /udp (repeatable).",
        ),
    ] = None,
    ip: Annotated[
        Optional[str], typer.Option("--ip", metavar="IP", help="Static address on the first network.")
    ] = None,
    ip6: Annotated[
        Optional[str], typer.Option("--ip6", metavar="IP6", help="Static IPv6 address (dual-stack first network).")
    ] = None,
    hostname: Annotated[
        Optional[str], typer.Option("--hostname", metavar="NAME", help="Hostname (default: the name).")
    ] = None,
    env: Annotated[
        Optional[list[str]],
        typer.Option("-e", "--env", metavar="KEY=VALUE", help="KEY=VALUE environment variable (repeatable)."),
    ] = None,
    detach: Annotated[
        bool, typer.Option("-d", "--detach", help="Run in the background; output goes to `cnet logs`.")
    ] = False,
    remove: Annotated[bool, typer.Option("--rm", help="Remove the container's record when it exits.")] = False,
    stop_timeout: Annotated[
        float,
        typer.Option(
            "--stop-timeout",
            metavar="SECONDS",
            help="Foreground: seconds after Ctrl-C (passed on to the program) before cnet's stop "
            "takes over (SIGTERM, then SIGKILL after as long again); a second Ctrl-C does it at once.",
        ),
    ] = 10.0,
    restart: Annotated[
        str,
        typer.Option(
            "--restart",
            metavar="POLICY",
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
    log_max_size: Annotated[
        Optional[str], typer.Option("--log-max-size", metavar="SIZE", help=LOG_MAX_SIZE_HELP)
    ] = None,
) -> None:
    """Run a command in new net/uts/ipc/pid/mount namespaces, wired to networks, with port mappings.
    In the foreground, the first Ctrl-C goes to the program; cnet exits with its status."""
    # The checks cli/plain_args.py leaves to this path, then the body both paths run.
    from . import container_run

    common.not_negative(stop_timeout, "--stop-timeout")
    if tty and detach:
        raise typer.BadParameter("a detached container has no terminal", param_hint="'-t'")
    code = container_run.run(
        lambda: common.mutating(cli),
        command=command,
        name=name,
        net=net,
        network_alias=network_alias,
        label=label,
        publish=publish,
        ip=ip,
        ip6=ip6,
        hostname=hostname,
        env=env,
        detach=detach,
        remove=remove,
        stop_timeout=stop_timeout,
        restart=restart,
        init=init,
        interactive=interactive,
        tty=tty,
        log_max_size=log_max_size,
    )
    if code is not None:  # the foreground container's status
        raise typer.Exit(code)


def ps(
    cli: typer.Context,
    all_: Annotated[bool, typer.Option("-a", "--all", help="Show exited containers too.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only the ids.")] = False,
    filter_: Annotated[
        Optional[list[str]],
        typer.Option(
            "-f",
            "--filter",
            metavar="KEY=VALUE",
            help="KEY=VALUE, KEY one of name (substring), label (KEY or KEY=VALUE), status, network, id "
            "(prefix), stack (cnet up); repeatable: one key's values are alternatives, different keys must all match.",
        ),
    ] = None,
    format_: Annotated[
        Optional[str],
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="'json' (one typed object per line) or a Go template, e.g. '{{.Name}} {{.State}}'.",
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print a JSON list (typed values).")] = False,
) -> None:
    """List running containers (-a: all)."""
    from . import listing  # the body `ps`'s typer-free path runs too (cli/entry.py)

    listing.ps(lambda: common.reading(cli).store, all_, quiet, list(filter_ or ()), format_, json_)


def inspect(
    cli: typer.Context,
    refs: Annotated[
        list[str],
        typer.Argument(
            metavar="NAME...", help="Container (or network) names or ids.", autocompletion=common.complete_refs
        ),
    ],
    format_: Annotated[
        Optional[str],
        typer.Option(
            "-f",
            "--format",
            metavar="FORMAT",
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


def stop(
    cli: typer.Context,
    containers_: Annotated[
        list[str],
        typer.Argument(
            metavar="CONTAINER...", help="Container names or ids.", autocompletion=common.complete_containers
        ),
    ],
    time_: Annotated[
        float, typer.Option("-t", "--time", metavar="SECONDS", help="Seconds to wait after SIGTERM before SIGKILL.")
    ] = 10.0,
) -> None:
    """Stop containers: SIGTERM to all of them at once, wait for them together, then SIGKILL (PID 1
    ignores SIGTERM without a handler; --init gives it one). Their restart policies leave them stopped."""
    from ..errors import CnetError
    from ..services import containers

    common.not_negative(time_, "-t / --time")
    ctx = common.mutating(cli)
    if ctx.dry_run:

        def stop_one(ref: str) -> "tuple[str, Plan | None]":
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

    def start_one(ref: str) -> "tuple[str, Plan | None]":
        out = containers.start_container(ctx, ref)
        return out.result.name, out.plan

    common.for_each(ctx, containers_, start_one, "start")


def restart(
    cli: typer.Context,
    containers_: Annotated[list[str], typer.Argument(metavar="CONTAINER...", help="Container names or ids.")],
    time_: Annotated[
        float, typer.Option("-t", "--time", metavar="SECONDS", help="Seconds to wait after SIGTERM before SIGKILL.")
    ] = 10.0,
) -> None:
    """Stop (if running) and start containers again, detached."""
    from ..services import containers

    common.not_negative(time_, "-t / --time")
    ctx = common.mutating(cli)

    def restart_one(ref: str) -> "tuple[str, Plan | None]":
        out = containers.restart_container(ctx, ref, timeout=time_)
        return out.result.name, out.plan

    common.for_each(ctx, containers_, restart_one, "restart")


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

    def remove_one(ref: str) -> "tuple[str, Plan | None]":
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

    def remove_one(ref: str) -> "tuple[str, Plan | None]":
        nonlocal removed
        out = containers.remove_container(ctx, ref)
        removed += 1
        return out.result.name, out.plan

    try:
        common.for_each(ctx, exited, remove_one, "rm")
    finally:
        print(f"{'would remove' if ctx.dry_run else 'removed'} {removed} container(s)", file=sys.stderr)


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
    # The watcher exec()ed this process, so `cnet run` in the foreground sees this code as its
    # child's: the container's code even when --rm removed the record before it could be read.
    raise typer.Exit(exit_code if 0 <= exit_code <= 255 else 1)


def started(
    cli: typer.Context,
    container_id: Annotated[str, typer.Argument()],
    pid: Annotated[int, typer.Argument()],
) -> None:
    """Internal: called by a container's watcher after a restart with its new PID 1."""
    from ..services import containers

    containers.started(common.context(cli), container_id, pid)
