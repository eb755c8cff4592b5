"""`cnet net ...` commands."""

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from . import common

if TYPE_CHECKING:
    from ..commands import Plan

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@app.command("create")
def create(
    cli: typer.Context,
    name: Annotated[str, typer.Argument(help="Network name: 1-64 characters [a-zA-Z0-9_.-].")],
    subnet: Annotated[
        Optional[str],
        typer.Option(help="IPv4 subnet in CIDR form; default: a free /24 from 10.91.0.0/16-10.99.0.0/16."),
    ] = None,
    gateway: Annotated[Optional[str], typer.Option(help="Gateway address (default: first usable address).")] = None,
    ip_range: Annotated[
        Optional[str], typer.Option("--ip-range", help="Allocate container addresses only from this sub-range (CIDR).")
    ] = None,
    mtu: Annotated[int, typer.Option(help="MTU of the bridge and its veths.")] = 1500,
    internal: Annotated[
        bool, typer.Option("--internal", help="No route out and no NAT: traffic stays on the bridge.")
    ] = False,
    driver: Annotated[str, typer.Option(help="Network driver (only 'bridge').")] = "bridge",
    label: Annotated[Optional[list[str]], typer.Option("--label", help="KEY=VALUE label (repeatable).")] = None,
) -> None:
    """Create a bridge network (bridge, gateway address, NAT and isolation rules)."""
    from .. import validate
    from ..services import networks

    labels = validate.labels(label or [])
    ctx = common.mutating(cli)
    out = networks.create_network(
        ctx,
        name=name,
        subnet=subnet,
        gateway=gateway,
        ip_range=ip_range,
        mtu=mtu,
        internal=internal,
        driver=driver,
        labels=labels,
    )
    if ctx.dry_run:
        n = out.result
        common.print_plan(
            out.plan, f"cnet net create {name}: subnet {n.subnet}, gateway {n.gateway}, bridge {n.bridge}"
        )
        return
    print(out.result.id)


@app.command("ls")
def ls(
    cli: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only the names.")] = False,
) -> None:
    """List networks."""
    from ..services import networks

    ctx = common.reading(cli)
    with ctx.store.read() as conn:
        if json_:
            common.print_json(networks.inspect_all(conn))
            return
        rows = networks.list_networks(conn)
    if quiet:
        for r in rows:
            print(r["name"])
        return
    for r in rows:
        r["internal"] = "yes" if r["internal"] else ""
    common.print_table(rows, ["name", "id", "driver", "subnet", "gateway", "bridge", "internal", "containers"])


@app.command("inspect")
def inspect(
    cli: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Network names or ids.", autocompletion=common.complete_networks)],
) -> None:
    """Show networks as JSON."""
    from ..services import networks

    ctx = common.reading(cli)
    with ctx.store.read() as conn:
        data = [networks.inspect_network(conn, n) for n in names]
    common.print_json(data[0] if len(data) == 1 else data)


@app.command("rm")
def rm(
    cli: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Network names or ids.", autocompletion=common.complete_networks)],
) -> None:
    """Remove networks (refused while containers are attached). The last one removes cnet's base chains."""
    from ..services import networks

    ctx = common.mutating(cli)

    def remove_one(ref: str) -> "tuple[str, Plan]":
        out = networks.remove_network(ctx, ref)
        return out.result.name, out.plan

    common.for_each(ctx, names, remove_one, "net rm")


@app.command("connect")
def connect(
    cli: typer.Context,
    network: Annotated[str, typer.Argument(help="Network name.", autocompletion=common.complete_networks)],
    container: Annotated[str, typer.Argument(help="Container name or id.", autocompletion=common.complete_containers)],
    ip: Annotated[Optional[str], typer.Option(help="Static address on that network.")] = None,
    alias: Annotated[
        Optional[list[str]], typer.Option("--alias", help="One more name on that network (repeatable).")
    ] = None,
) -> None:
    """Attach a running container to one more network (next ethN)."""
    from ..services import containers

    ctx = common.mutating(cli)
    out = containers.connect(ctx, network, container, ip, tuple(alias or ()))
    if ctx.dry_run:
        common.print_plan(out.plan, f"cnet net connect {network} {container}")
    else:
        print(f"{out.result.interface} {out.result.ip}")


@app.command("disconnect")
def disconnect(
    cli: typer.Context,
    network: Annotated[str, typer.Argument(help="Network name.", autocompletion=common.complete_networks)],
    container: Annotated[str, typer.Argument(help="Container name or id.", autocompletion=common.complete_containers)],
) -> None:
    """Detach a container from a network (its mappings on that network go too)."""
    from ..services import containers

    ctx = common.mutating(cli)
    out = containers.disconnect(ctx, network, container)
    if ctx.dry_run:
        common.print_plan(out.plan, f"cnet net disconnect {network} {container}")


@app.command("prune")
def prune(cli: typer.Context) -> None:
    """Remove every network no container is attached to."""
    from ..services import networks

    ctx = common.mutating(cli)
    with ctx.store.read() as conn:
        unused = networks.unused_networks(conn)
    removed = 0

    def remove_one(ref: str) -> "tuple[str, Plan]":
        nonlocal removed
        out = networks.remove_network(ctx, ref)
        removed += 1
        return out.result.name, out.plan

    try:
        common.for_each(ctx, unused, remove_one, "net rm")
    finally:
        print(f"{'would remove' if ctx.dry_run else 'removed'} {removed} network(s)", file=sys.stderr)
