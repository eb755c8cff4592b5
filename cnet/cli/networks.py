"""`cnet net ...` commands."""

import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from . import common

if TYPE_CHECKING:
    from ..commands import Plan

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@app.command("create")
def create(
    cli: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Network name: 1-64 characters [a-zA-Z0-9_.-].")],
    subnet: Annotated[
        Optional[list[str]],
        typer.Option(
            metavar="CIDR",
            help="Subnet in CIDR form; default: a free IPv4 /24 from 10.91.0.0/16-10.99.0.0/16. "
            "Given again with --ipv6: the IPv6 subnet (dual stack).",
        ),
    ] = None,
    gateway: Annotated[
        Optional[list[str]],
        typer.Option(metavar="IP", help="Gateway address, per family (default: first usable address)."),
    ] = None,
    ip_range: Annotated[
        Optional[list[str]],
        typer.Option(
            "--ip-range",
            metavar="CIDR",
            help="Allocate container addresses only from this sub-range (CIDR), per family.",
        ),
    ] = None,
    ipv6: Annotated[
        bool, typer.Option("--ipv6", help="Dual stack: also an IPv6 subnet (--subnet V6), addresses, NAT, ports.")
    ] = False,
    mtu: Annotated[
        Optional[int],
        typer.Option(
            metavar="BYTES", help="MTU of the bridge and its veths [default: 1500; vxlan: the underlay's MTU - 50]."
        ),
    ] = None,
    internal: Annotated[
        bool, typer.Option("--internal", help="No route out and no NAT: traffic stays on the bridge.")
    ] = False,
    driver: Annotated[
        str,
        typer.Option(
            metavar="DRIVER", help="bridge (this host), or vxlan: an overlay network across hosts (needs --etcd)."
        ),
    ] = "bridge",
    label: Annotated[
        Optional[list[str]], typer.Option("--label", metavar="KEY=VALUE", help="KEY=VALUE label (repeatable).")
    ] = None,
    host_subnet_size: Annotated[
        int,
        typer.Option(
            "--host-subnet-size", metavar="PREFIXLEN", help="vxlan: prefix length of each host's share of --subnet."
        ),
    ] = 24,
    vni: Annotated[
        Optional[int], typer.Option(metavar="VNI", help="vxlan: VXLAN network identifier [default: lowest free].")
    ] = None,
    underlay_ip: Annotated[
        Optional[str],
        typer.Option(
            "--underlay-ip",
            metavar="IP",
            help="vxlan: this host's VXLAN address [default: source of the route to etcd].",
        ),
    ] = None,
) -> None:
    """Create a bridge network (bridge, gateway address, NAT and isolation rules), or with
    --driver vxlan an overlay network: defined in etcd, joined by this host (a host subnet leased
    in etcd, a bridge and a vxlan device); other hosts join on their first `run --net NAME`."""
    from .. import validate
    from ..services import networks

    labels = validate.labels(label or [])
    v4, v6 = validate.subnets(subnet or [], ipv6)
    gw4, gw6 = _by_family(gateway, "--gateway")
    rng4, rng6 = _by_family(ip_range, "--ip-range")
    ctx = common.mutating(cli)
    if driver == "vxlan":
        if gateway or ip_range or internal or labels or ipv6:
            from ..errors import ValidationError

            raise ValidationError("--gateway, --ip-range, --internal, --ipv6 and --label are for bridge networks")
        from ..services import overlay

        out = overlay.create(
            ctx,
            name=name,
            subnet=None if v4 is None else str(v4),
            host_subnet_size=host_subnet_size,
            vni=vni,
            mtu=mtu,
            underlay_ip=underlay_ip,
        )
    else:
        out = networks.create_network(
            ctx,
            name=name,
            subnet=None if v4 is None else str(v4),
            gateway=gw4,
            ip_range=rng4,
            subnet6=None if v6 is None else str(v6),
            gateway6=gw6,
            ip_range6=rng6,
            mtu=1500 if mtu is None else mtu,
            internal=internal,
            driver=driver,
            labels=labels,
        )
    if ctx.dry_run:
        n = out.result
        common.print_plan(
            out.plan,
            f"cnet net create {name}: subnet {n.subnet}, gateway {n.gateway}, bridge {n.bridge}"
            + (f", IPv6 subnet {n.subnet6}, gateway {n.gateway6}" if n.subnet6 else ""),
        )
        return
    print(out.result.id)


def _by_family(values: list[str] | None, option: str) -> tuple[str | None, str | None]:
    """A repeatable option's IPv4 and IPv6 values (Docker's dual-stack form: one of each)."""
    from ..errors import ValidationError

    v4 = [v for v in values or [] if ":" not in v]
    v6 = [v for v in values or [] if ":" in v]
    if len(v4) > 1 or len(v6) > 1:
        raise ValidationError(f"{option} is given twice for one address family")
    return (v4[0] if v4 else None), (v6[0] if v6 else None)


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
    if ctx.etcd:
        rows = _cluster_rows(ctx, rows)
    if quiet:
        for r in rows:
            print(r["name"])
        return
    for r in rows:
        r["internal"] = "yes" if r["internal"] else ""
    common.print_table(rows, ["name", "id", "driver", "subnet", "gateway", "bridge", "internal", "containers"])


def _cluster_rows(ctx: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """With --etcd: the overlay networks defined in etcd that this host has not joined yet."""
    from ..services import overlay

    local = {r["name"] for r in rows}
    return rows + [
        {
            "name": d.name,
            "id": "",
            "driver": "vxlan",
            "subnet": d.subnet,
            "gateway": "",
            "bridge": "",
            "internal": False,
            "containers": 0,
        }
        for d in overlay.cluster_networks(ctx)
        if d.name not in local
    ]


@app.command("inspect")
def inspect(
    cli: typer.Context,
    names: Annotated[
        list[str],
        typer.Argument(metavar="NETWORK...", help="Network names or ids.", autocompletion=common.complete_networks),
    ],
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
    names: Annotated[
        list[str],
        typer.Argument(metavar="NETWORK...", help="Network names or ids.", autocompletion=common.complete_networks),
    ],
) -> None:
    """Remove networks (refused while containers are attached). The last one removes cnet's base chains."""
    from ..services import networks

    ctx = common.mutating(cli)

    def remove_one(ref: str) -> "tuple[str, Plan]":
        from ..db import store

        with ctx.store.read() as conn:
            local = store.find_network(conn, ref)
        if (local is not None and local.overlay) or (local is None and ctx.etcd):
            from ..commands import Plan
            from ..services import overlay

            gone = overlay.remove(ctx, ref)  # cluster-wide
            return ref, gone.plan if gone is not None else Plan()
        out = networks.remove_network(ctx, ref)
        return out.result.name, out.plan

    common.for_each(ctx, names, remove_one, "net rm")


@app.command("connect")
def connect(
    cli: typer.Context,
    network: Annotated[
        str, typer.Argument(metavar="NETWORK", help="Network name.", autocompletion=common.complete_networks)
    ],
    container: Annotated[
        str,
        typer.Argument(metavar="CONTAINER", help="Container name or id.", autocompletion=common.complete_containers),
    ],
    ip: Annotated[Optional[str], typer.Option(metavar="IP", help="Static address on that network.")] = None,
    alias: Annotated[
        Optional[list[str]], typer.Option("--alias", metavar="NAME", help="One more name on that network (repeatable).")
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
    network: Annotated[
        str, typer.Argument(metavar="NETWORK", help="Network name.", autocompletion=common.complete_networks)
    ],
    container: Annotated[
        str,
        typer.Argument(metavar="CONTAINER", help="Container name or id.", autocompletion=common.complete_containers),
    ],
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
