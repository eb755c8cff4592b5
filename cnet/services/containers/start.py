"""`cnet start`, `cnet restart` and the containers of `cnet restore`: an exited container comes
back as it was run (networks, published ports, command), on its old addresses when they are
free, detached (its output goes to `cnet logs`)."""

from __future__ import annotations

import time

from ... import procs
from ...commands import Plan
from ...db import store
from ...db.connection import Connection
from ...errors import AllocationError, CnetError, Conflict, ValidationError
from ...frozen_record import replace
from ...plans import container as plans
from ...records import Container, ContainerState, Endpoint, OpKind, PortSpec
from ..apply import Change, Outcome, apply
from ..context import Context, container_dir
from ..endpoints import attach, check_ports, kept_addresses, restore_missing_networks, usable_network
from . import ports
from .lifecycle import stop_many
from .process import container_launch_argv, init_program, mount_template_steps, start_process
from .run import REQUIRED_TOOLS, Wired, launch_steps


def parse_port(rendered: str) -> PortSpec:
    """The inverse of PortSpec.render() (`HOST_IP:HOST_PORT->PORT/PROTO`, as kept in the spec)."""
    left, _, right = rendered.partition("->")
    host_ip, _, host_port = left.rpartition(":")
    port, _, proto = right.partition("/")
    return PortSpec(host_ip=host_ip, host_port=int(host_port), container_port=int(port), protocol=proto)


def _attach_preferred(conn: Connection, c: Container, i: int, net_ref: str, default_route: bool) -> Endpoint:
    net = usable_network(conn, net_ref)
    static = c.spec.get("ip") if i == 0 else None
    # A static --ip6 is the user's as --ip is: the container comes back on it (or not at all).
    static6 = c.spec.get("ip6") if i == 0 else None
    # A dynamic IPv6 address comes back too when it is still free (attach checks, no exception).
    kept6 = None if static6 else next(iter((c.spec.get("addresses6") or [])[i : i + 1]), None)

    def on(ip: str | None) -> Endpoint:
        return attach(conn, c.id, net, f"eth{i}", ip, default_route=default_route, static_ip6=static6, kept_ip6=kept6)

    if static:
        return on(static)
    old = (c.spec.get("addresses") or [])[i : i + 1]
    if old:
        try:
            return on(old[0])
        except (AllocationError, Conflict, ValidationError):
            pass  # taken meanwhile (or the network changed): a new one
    return on(None)


def wire_again(ctx: Context, ref: str) -> Outcome[Wired]:
    """The `run` operation again for an exited container (journaled as `start`)."""
    ctx.require_root()
    with ctx.store.read() as conn:
        c = store.get_container(conn, ref)
    if c.state != ContainerState.EXITED:
        raise Conflict(f"container {c.name} is {c.state}")
    if not ctx.dry_run:
        missing = [tool for tool in REQUIRED_TOOLS if not _which(tool)]
        if missing:
            raise CnetError(f"the command {missing[0]!r} is missing: install {REQUIRED_TOOLS[missing[0]]}")
        if c.spec.get("init"):
            init_program()
    networks = list(c.spec.get("networks") or [])
    specs = tuple(parse_port(p) for p in c.spec.get("ports") or [])
    restore_steps = restore_missing_networks(ctx, networks)
    held: list[int | None] = []

    def prepare(conn: Connection) -> Change[Wired]:
        now = store.get_container(conn, c.id)
        if now.state != ContainerState.EXITED:
            raise Conflict(f"container {now.name} is {now.state}")
        check_ports(conn, specs, host_check=ctx.dry_run)
        log_path = str(container_dir(ctx, c.id) / "log")
        store.begin_start(conn, c.id, log_path)
        fresh = store.container_by_id(conn, c.id)
        assert fresh is not None
        nets = [usable_network(conn, n) for n in networks]
        default_index = next((i for i, n in enumerate(nets) if not n.internal), None)
        eps = [_attach_preferred(conn, fresh, i, n.id, i == default_index) for i, n in enumerate(nets)]
        mapped = [store.insert_port(conn, c.id, eps[0], spec) for spec in specs]
        fresh = replace(fresh, spec={**fresh.spec, **kept_addresses(eps)})
        store.set_spec(conn, c.id, fresh.spec)
        if not ctx.dry_run:
            held.append(ports.hold(specs, ipv6=bool(nets and nets[0].subnet6)))
        wiring = plans.wiring(
            fresh, eps, mapped, before=restore_steps, after=mount_template_steps(ctx), ipv6_host=ctx.ipv6_host
        )
        shown = Plan([*wiring.steps, *launch_steps(fresh, container_launch_argv(ctx, fresh, template=True))])

        def mark_running(cn: Connection) -> None:
            me, me_start = procs.self_identity()
            store.mark_running(cn, c.id, boot_id=procs.boot_id(), watcher_pid=me, watcher_start=me_start)

        wired = Wired(fresh, eps, mapped, held[-1] if held else None)
        return Change(OpKind.START, c.id, shown, wired, journaled=wiring, on_success=mark_running)

    try:
        out = apply(ctx, prepare)
    except BaseException:
        for fd in held:
            ports.release(fd)
        raise
    return out


def _which(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None


def start_container(ctx: Context, ref: str) -> Outcome[Container]:
    """`cnet start`: wire the exited container again and start it detached."""
    out = wire_again(ctx, ref)
    wired = out.result
    if ctx.dry_run:
        return Outcome(out.plan, wired.container)
    c = replace(wired.container, state=ContainerState.RUNNING, started_at=time.time())
    try:
        start_process(ctx, c, foreground=False, held=wired.held)
    finally:
        ports.release(wired.held)
    return Outcome(out.plan, c)


def restart_container(ctx: Context, ref: str, timeout: float) -> Outcome[Container]:
    """`cnet restart`: stop (if running), then start."""
    ctx.require_root()
    with ctx.store.read() as conn:
        c = store.get_container(conn, ref)
    if ctx.dry_run:
        if c.state == ContainerState.EXITED:
            return start_container(ctx, c.id)
        # A running one: its stop (the start would wire it again exactly as `cnet start` shows).
        with ctx.store.read() as conn:
            plan = plans.teardown(c, store.ports_of(conn, c.id), timeout=timeout)
        return Outcome(plan, c)
    stop_many(ctx, [c], timeout)
    return start_container(ctx, c.id)


def restore_containers(ctx: Context) -> list[tuple[str, str | None]]:
    """`cnet restore`: start the exited always / unless-stopped containers nobody stopped by hand
    (they were running when the host went down, or their watcher was killed). (name, error)."""
    with ctx.store.read() as conn:
        todo = store.containers_to_restore(conn)
    out: list[tuple[str, str | None]] = []
    for c in todo:
        try:
            start_container(ctx, c.id)
            out.append((c.name, None))
        except CnetError as exc:
            out.append((c.name, str(exc)))
    return out
