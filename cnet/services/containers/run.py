"""`cnet run`: validate, allocate and wire, as one journaled operation; the CLI then starts the
process with process.start_process()."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ... import ipam, ipam6, naming, procs, validate
from ...commands import Plan, Step
from ...db import names_store, store
from ...db.connection import Connection
from ...errors import CnetError, Conflict, ValidationError
from ...frozen_record import replace
from ...plans import container as plans
from ...records import (
    Container,
    ContainerState,
    Endpoint,
    NetworkState,
    OpKind,
    PortMapping,
    RunRequest,
)
from ..apply import Change, Outcome, apply
from ..context import Context, container_dir
from ..endpoints import (
    attach,
    check_host_ips,
    check_ports,
    kept_addresses,
    overlays_first,
    restore_missing_networks,
    usable_network,
)
from . import ports
from .ports import hold as hold_ports
from .process import init_program, launch_argv, mount_template_steps

REQUIRED_TOOLS = {
    "ip": "iproute2",
    "iptables-restore": "iptables",
    "ebtables-nft-restore": "iptables",  # Debian's iptables package ships the ebtables-nft tools
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "setpriv": "util-linux",
    "env": "coreutils",
    "perl": "perl-base",  # the log writer of detached containers (perl-base is Essential in Debian)
}

parse_run_request = validate.run_request


@dataclass
class Wired:
    """A container whose network is in place (what `run` shows, and what start_process needs)."""

    container: Container
    endpoints: list[Endpoint] = field(default_factory=list)
    ports: list[PortMapping] = field(default_factory=list)
    # The descriptor holding the published host ports (ports.hold), for the watcher to keep.
    held: int | None = None


def require_tools(udp: bool = False, detached: bool = True) -> None:
    """A missing tool would otherwise surface only as the container's exit code 127 (or, for the
    log writer of a detached container, as a log that stays empty)."""
    tools = dict(REQUIRED_TOOLS, conntrack="conntrack") if udp else dict(REQUIRED_TOOLS)
    if not detached:
        del tools["perl"]
    for tool, package in tools.items():
        if shutil.which(tool) is None:
            raise CnetError(f"the command {tool!r} is missing: install {package}")


def ensure_default_network(ctx: Context, names: tuple[str, ...]) -> list[Step]:
    """The default network is created the first time a container needs it (as Docker's `bridge`
    and podman's `podman` always exist): its own journaled operation, a free subnet from the
    default pools. One lookup when it exists. Returns the steps a --dry-run shows."""
    if validate.DEFAULT_NETWORK not in names:
        return []
    with ctx.store.read() as conn:
        if store.find_network(conn, validate.DEFAULT_NETWORK) is not None:
            return []
    from ..networks import create_network

    try:
        out = create_network(ctx, name=validate.DEFAULT_NETWORK)
    except Conflict:  # a concurrent first run created it
        return []
    if ctx.dry_run:  # the in-memory copy: the network is as good as made
        with ctx.store.write() as conn:
            store.set_network_state(conn, out.result.id, NetworkState.READY)
    return list(out.plan.steps)


def launch_steps(c: Container, launch: list[str]) -> list[Step]:
    """What --dry-run shows to start the container: its log writer (detached), its watcher."""
    if not c.detached:
        return [plans.launch_step(launch)]
    from .logs import writer_argv

    return [plans.log_writer_step(writer_argv(c)), plans.launch_step(launch)]


def _valid_hostname(name: str) -> bool:
    try:
        validate.hostname(name)
        return True
    except ValidationError:
        return False


def allocate(
    ctx: Context,
    conn: Connection,
    req: RunRequest,
    *,
    detached: bool,
    remove: bool,
    held: list[int | None],
    before: Sequence[Step] = (),
) -> tuple[Wired, Plan, list[str]]:
    """One container's checks, rows and wiring plan, inside the caller's write transaction (the
    write lock is held: nobody allocates meanwhile): `run` applies it alone, `up` merges many
    (plans.batch). Returns the container, its wiring plan and the watcher's argv; its held ports
    are appended to `held` (for the caller to close)."""
    # Every check first, then the rows.
    cid = naming.new_id()
    name = req.name or cid
    if store.container_name_taken(conn, name):
        raise Conflict(f"container name {name!r} is already in use")
    nets = [usable_network(conn, n) for n in req.networks]
    if req.ports and nets[0].internal:
        raise ValidationError(f"network {nets[0].name} is internal: it cannot publish ports")
    if req.ip:
        ipam.check_static(nets[0], req.ip)
    if req.ip6:
        ipam6.check_static(nets[0], req.ip6)
    if any(":" in p.host_ip for p in req.ports) and not nets[0].subnet6:
        raise ValidationError(f"network {nets[0].name} has no IPv6: it cannot publish on an IPv6 host address")
    check_ports(conn, req.ports, host_check=ctx.dry_run)
    hostname = req.hostname or (name if _valid_hostname(name) else cid)
    container = Container(
        id=cid,
        name=name,
        state=ContainerState.CREATING,
        command=req.command,
        hostname=hostname,
        env=dict(req.env),
        detached=detached,
        netns=naming.netns_name(cid),
        created_at=time.time(),
        spec={
            "networks": list(req.networks),
            "ports": [p.render() for p in req.ports],
            "ip": req.ip,
            "ip6": req.ip6,
            "rm": remove,
            "aliases": list(req.aliases),
            "init": req.init,
            "tty": req.tty,
            **({"log_max_size": req.log_max_size} if detached else {}),
        },
        log_path=str(container_dir(ctx, cid) / "log") if detached else None,
        restart_policy=req.restart,
        restart_max=req.restart_max,
    )
    store.insert_container(conn, container)
    names_store.insert_labels(conn, "container_labels", "container_id", cid, req.labels)
    # The default route goes via the first network that is not internal (as Docker does).
    default_index = next((i for i, n in enumerate(nets) if not n.internal), None)
    eps = [
        attach(
            conn,
            cid,
            net,
            f"eth{i}",
            req.ip if i == 0 else None,
            default_route=(i == default_index),
            aliases=req.aliases,
            static_ip6=req.ip6 if i == 0 else None,
        )
        for i, net in enumerate(nets)
    ]
    ports = [store.insert_port(conn, cid, eps[0], spec) for spec in req.ports]
    # `cnet start` comes back on these addresses when they are free.
    container = replace(container, spec={**container.spec, **kept_addresses(eps)})
    store.set_spec(conn, cid, container.spec)
    if not ctx.dry_run:
        held.append(hold_ports(req.ports, ipv6=bool(nets and nets[0].subnet6)))  # last: everything else is checked
    wiring = plans.wiring(
        container, eps, ports, before=before, after=mount_template_steps(ctx), ipv6_host=ctx.ipv6_host
    )
    launch = launch_argv(ctx, cid, hostname, req.command, init=req.init, tty=req.tty, template=True)
    return Wired(container, eps, ports, held[-1] if held else None), wiring, launch


def _existing_networks(ctx: Context, names: Sequence[str]) -> list[str]:
    names = [n for n in names if n != validate.NO_NETWORK]
    if not names:
        return []
    with ctx.store.read() as conn:
        return [n for n in names if store.find_network(conn, n) is not None]


def run_container(ctx: Context, req: RunRequest, *, detached: bool, remove: bool = False) -> Outcome[Wired]:
    """Validate, allocate and wire; the caller then starts the process with start_process()
    and hands it `result.held` (then closes it: ports.release)."""
    ctx.require_root()
    if not ctx.dry_run:
        require_tools(udp=any(p.protocol == "udp" for p in req.ports), detached=detached)
        if req.init:
            init_program()  # missing: one clear line now, not exit 127 from the container
    check_host_ips(ctx, req.ports)
    # A dry run plans a join or the default network's creation in its in-memory state only: the
    # kernel has none of it, and a restore of those networks would print them a second time.
    existing = _existing_networks(ctx, req.networks) if ctx.dry_run else list(req.networks)
    overlays, joins = overlays_first(ctx, req.networks)
    default_steps = joins + ensure_default_network(ctx, req.networks)
    restore_steps = restore_missing_networks(ctx, existing)
    held: list[int | None] = []
    try:
        out = _run(ctx, req, detached, remove, restore_steps, held, shown_before=default_steps)
        if overlays:
            from ..overlay_use import after_change

            after_change(ctx, overlays)
        return out
    except BaseException:
        for fd in held:
            ports.release(fd)
        raise


def _run(
    ctx: Context,
    req: RunRequest,
    detached: bool,
    remove: bool,
    restore_steps: list[Step],
    held: list[int | None],
    *,
    shown_before: list[Step],
) -> Outcome[Wired]:
    """shown_before: steps already applied as their own operation (the default network's first
    creation) that --dry-run shows ahead of this plan."""

    def prepare(conn: Connection) -> Change[Wired]:
        wired, wiring, launch = allocate(
            ctx, conn, req, detached=detached, remove=remove, held=held, before=restore_steps
        )
        cid = wired.container.id
        shown = Plan([*shown_before, *wiring.steps, *launch_steps(wired.container, launch)])

        def mark_running(c: Connection) -> None:
            # Until the watcher exists, this `cnet run` process stands in for it: if it dies before
            # starting the container, the next command sees a dead watcher and releases the network
            # at once instead of waiting out a grace period.
            me, me_start = procs.self_identity()
            store.mark_running(c, cid, boot_id=procs.boot_id(), watcher_pid=me, watcher_start=me_start)

        return Change(OpKind.RUN, cid, shown, wired, journaled=wiring, on_success=mark_running)

    out = apply(ctx, prepare)
    if not ctx.dry_run:
        out.result.container = replace(out.result.container, state=ContainerState.RUNNING)
    return out
