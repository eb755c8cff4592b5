"""`cnet run`: validate, allocate and wire, as one journaled operation; the CLI then starts the
process with process.start_process()."""

from __future__ import annotations

import errno
import shutil
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ... import ipam, naming, procs, validate
from ...commands import Plan, Step
from ...db import store
from ...db.connection import Connection
from ...errors import CnetError, Conflict, ValidationError
from ...kernel import ip as ipk
from ...plans import container as plans
from ...records import (
    Container,
    ContainerState,
    Endpoint,
    Network,
    NetworkState,
    OpKind,
    PortMapping,
    PortSpec,
    RunRequest,
)
from ..apply import Change, Outcome, apply
from ..context import Context
from . import ports
from .ports import hold as hold_ports
from .process import container_dir, init_program, launch_argv

REQUIRED_TOOLS = {
    "ip": "iproute2",
    "iptables-restore": "iptables",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "setpriv": "util-linux",
    "env": "coreutils",
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


def _require_tools() -> None:
    """A missing tool would otherwise surface only as the container's exit code 127."""
    for tool, package in REQUIRED_TOOLS.items():
        if shutil.which(tool) is None:
            raise CnetError(f"the command {tool!r} is missing: install {package}")


def host_port_state(host_ip: str, port: int, protocol: str) -> str:
    """'free', 'in-use' (a host process listens there: the DNAT rule would shadow it) or
    'not-local' (no such address on this host: the mapping could never be reached), found by
    binding a throwaway socket, which changes nothing."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        s.bind((host_ip, port))
        return "free"
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return "in-use"
        if exc.errno == errno.EADDRNOTAVAIL:
            return "not-local"
        return "free"  # EACCES: a non-root --dry-run may not bind low ports; not a conflict
    finally:
        s.close()


def check_ports(conn: Connection, specs: tuple[PortSpec, ...], *, probe: bool = True) -> None:
    """No container maps them, and (probe) no host process holds them. A real run binds them
    instead of probing (ports.hold): the binding is the check."""
    for spec in specs:
        holder = store.port_holder(conn, spec)
        if holder:
            raise Conflict(
                f"host port {spec.host_ip}:{spec.host_port}/{spec.protocol} is already mapped by container {holder}"
            )
        if not probe:
            continue
        state = host_port_state(spec.host_ip, spec.host_port, spec.protocol)
        if state == "in-use":
            raise Conflict(
                f"host port {spec.host_ip}:{spec.host_port}/{spec.protocol} is already in use by a host process"
            )
        if state == "not-local":
            raise ValidationError(f"host IP {spec.host_ip} in port mapping is not an address of this host")


def usable_network(conn: Connection, ref: str) -> Network:
    net = store.get_network(conn, ref)
    if net.state != NetworkState.READY:
        raise Conflict(f"network {net.name} is {net.state}")
    return net


def attach(
    conn: Connection, container_id: str, net: Network, interface: str, static_ip: str | None, *, default_route: bool
) -> Endpoint:
    """Allocate an address on the network and record the endpoint holding it."""
    addr = ipam.allocate_static(conn, net, static_ip) if static_ip else ipam.allocate(conn, net)
    ip = ipam.int_to_ip(addr)
    ep = store.insert_endpoint(
        conn,
        container_id=container_id,
        network=net,
        interface=interface,
        host_veth=naming.host_veth_name(container_id, net.id),
        ip=ip,
        ip_int=addr,
        mac=ipk.mac_for_ip(ip),
        default_route=default_route,
    )
    ipam.bind(conn, net.id, addr, ep.id)
    return ep


def restore_missing_networks(ctx: Context, names: tuple[str, ...] | list[str]) -> list[Step]:
    """A network whose bridge is gone (the host rebooted) is re-created before it is used. The
    check is one stat() per network; the reconciler is imported only when a bridge is really
    missing (start-up time of every run: tests/unit/test_startup_imports.py, scripts/bench)."""
    with ctx.store.read() as conn:
        bridges = [b for b in (store.ready_bridge(conn, n) for n in names) if b is not None]
    if all(Path("/proc/sys/net/ipv4/conf", b).exists() for b in bridges):
        return []
    from ..reconcile import ensure_networks

    return ensure_networks(ctx, names)


def _valid_hostname(name: str) -> bool:
    try:
        validate.hostname(name)
        return True
    except ValidationError:
        return False


def run_container(ctx: Context, req: RunRequest, *, detached: bool, remove: bool = False) -> Outcome[Wired]:
    """Validate, allocate and wire; the caller then starts the process with start_process()
    and hands it `result.held` (then closes it: ports.release)."""
    ctx.require_root()
    if not ctx.dry_run:
        _require_tools()
        if req.init:
            init_program()  # missing: one clear line now, not exit 127 from the container
    restore_steps = restore_missing_networks(ctx, req.networks)
    held: list[int | None] = []
    try:
        return _run(ctx, req, detached, remove, restore_steps, held)
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
) -> Outcome[Wired]:
    def prepare(conn: Connection) -> Change[Wired]:
        # Every check first, then the rows (the write lock is held: nobody allocates meanwhile).
        cid = naming.new_id()
        name = req.name or cid
        if store.container_name_taken(conn, name):
            raise Conflict(f"container name {name!r} is already in use")
        nets = [usable_network(conn, n) for n in req.networks]
        if req.ports and nets[0].internal:
            raise ValidationError(f"network {nets[0].name} is internal: it cannot publish ports")
        if req.ip:
            ipam.check_static(nets[0], req.ip)
        check_ports(conn, req.ports, probe=ctx.dry_run)
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
                "rm": remove,
                "init": req.init,
                "tty": req.tty,
            },
            log_path=str(container_dir(ctx, cid) / "log") if detached else None,
            restart_policy=req.restart,
            restart_max=req.restart_max,
        )
        store.insert_container(conn, container)
        # The default route goes via the first network that is not internal (as Docker does).
        default_index = next((i for i, n in enumerate(nets) if not n.internal), None)
        eps = [
            attach(conn, cid, net, f"eth{i}", req.ip if i == 0 else None, default_route=(i == default_index))
            for i, net in enumerate(nets)
        ]
        ports = [store.insert_port(conn, cid, eps[0], spec) for spec in req.ports]
        # `cnet start` comes back on these addresses when they are free.
        container = replace(container, spec={**container.spec, "addresses": [ep.ip for ep in eps]})
        store.set_spec(conn, cid, container.spec)
        if not ctx.dry_run:
            held.append(hold_ports(req.ports))  # last: everything else is checked
        wiring = plans.wiring(container, eps, ports, before=restore_steps)
        launch = launch_argv(ctx, cid, hostname, req.command, init=req.init, tty=req.tty)
        shown = Plan([*wiring.steps, plans.launch_step(launch)])

        def mark_running(c: Connection) -> None:
            # Until the watcher exists, this `cnet run` process stands in for it: if it dies before
            # starting the container, the next command sees a dead watcher and releases the network
            # at once instead of waiting out a grace period.
            me, me_start = procs.self_identity()
            store.mark_running(c, cid, boot_id=procs.boot_id(), watcher_pid=me, watcher_start=me_start)

        wired = Wired(container, eps, ports, held[-1] if held else None)
        return Change(OpKind.RUN, cid, shown, wired, journaled=wiring, on_success=mark_running)

    out = apply(ctx, prepare)
    if not ctx.dry_run:
        out.result.container = replace(out.result.container, state=ContainerState.RUNNING)
    return out
