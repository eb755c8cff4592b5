"""Container use cases: run, stop, rm, reap, connect/disconnect, inspect, ps."""

from __future__ import annotations

import errno
import json
import os
import shlex
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

from .. import ipam, journal as journal_mod, naming, procs, validate
from ..commands import Plan, Step, cmd
from ..errors import CnetError, Conflict, NotFound, ValidationError
from ..kernel import ip as ipk
from ..kernel import iptables as ipt
from ..kernel import netns as nsk
from .context import Context
from .networks import Outcome, _iso, get_network, row_to_dict

DEFAULT_COMMAND = ["/bin/sh"]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNKNOWN_EXIT = 255


# --- lookups --------------------------------------------------------------------------------------
def get_container(conn: sa.Connection, ref: str) -> dict:
    row = conn.exec_driver_sql("SELECT * FROM containers WHERE name = ? OR id = ?", (ref, ref)).first()
    if row is None and len(ref) >= 3 and all(c in "0123456789abcdef" for c in ref):
        rows = conn.exec_driver_sql("SELECT * FROM containers WHERE id LIKE ?", (ref + "%",)).fetchall()
        if len(rows) == 1:
            row = rows[0]
    if row is None:
        raise NotFound(f"container {ref!r} not found")
    return row_to_dict(row)


def endpoints_of(conn: sa.Connection, container_id: str) -> list[dict]:
    rows = conn.exec_driver_sql(
        "SELECT e.*, n.name AS network, n.bridge, n.gateway, n.prefix_len, n.mtu FROM endpoints e "
        "JOIN networks n ON n.id = e.network_id WHERE e.container_id = ? ORDER BY e.interface",
        (container_id,),
    ).fetchall()
    return [row_to_dict(r) for r in rows]


def ports_of(conn: sa.Connection, container_id: str) -> list[dict]:
    rows = conn.exec_driver_sql(
        "SELECT p.*, e.ip AS container_ip FROM port_mappings p JOIN endpoints e ON e.id = p.endpoint_id "
        "WHERE p.container_id = ? ORDER BY p.host_port, p.protocol",
        (container_id,),
    ).fetchall()
    return [row_to_dict(r) for r in rows]


def _port_rules(container_id: str, ports: list[dict]) -> list[ipt.Rule]:
    rules: list[ipt.Rule] = []
    for p in ports:
        rules += ipt.port_rules(
            container_id=container_id,
            host_ip=None if p["host_ip"] == "0.0.0.0" else p["host_ip"],
            host_port=p["host_port"],
            container_ip=p["container_ip"],
            container_port=p["container_port"],
            protocol=p["protocol"],
        )
    return rules


# --- run ------------------------------------------------------------------------------------------
def _host_port_state(host_ip: str, port: int, protocol: str) -> str:
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


def _port_conflict(conn: sa.Connection, spec: validate.PortSpec):
    return conn.exec_driver_sql(
        "SELECT c.name, p.host_ip FROM port_mappings p JOIN containers c ON c.id = p.container_id "
        "WHERE p.protocol = ? AND p.host_port = ? AND (p.host_ip = ? OR p.host_ip = '0.0.0.0' OR ? = '0.0.0.0') LIMIT 1",
        (spec.protocol, spec.host_port, spec.host_ip, spec.host_ip),
    ).first()


def _check_ports(conn: sa.Connection, specs: list[validate.PortSpec], check_host: bool = True) -> None:
    for spec in specs:
        clash = _port_conflict(conn, spec)
        if clash:
            raise Conflict(
                f"host port {spec.host_ip}:{spec.host_port}/{spec.protocol} is already mapped by container {clash[0]}"
            )
        state = _host_port_state(spec.host_ip, spec.host_port, spec.protocol) if check_host else "free"
        if state == "in-use":
            raise Conflict(
                f"host port {spec.host_ip}:{spec.host_port}/{spec.protocol} is already in use by a host process"
            )
        if state == "not-local":
            raise ValidationError(f"host IP {spec.host_ip} in port mapping is not an address of this host")


def parse_run_request(
    *, name, networks, ports, ip, hostname, env, command
) -> dict:
    if name is not None:
        validate.name(name, "container name")
    nets = [validate.name(n, "network name") for n in networks]
    if len(set(nets)) != len(nets):
        raise ValidationError("the same network is given twice")
    specs: list[validate.PortSpec] = []
    for p in ports:
        specs += validate.port_mapping(p)
    seen = set()
    for s in specs:
        key = (s.host_ip, s.host_port, s.protocol)
        if key in seen or any(k[1:] == key[1:] and "0.0.0.0" in (k[0], key[0]) for k in seen):
            raise ValidationError(f"host port {s.host_port}/{s.protocol} is given twice")
        seen.add(key)
    if specs and not nets:
        raise ValidationError("publishing ports (-p) needs a network (--net)")
    if ip is not None:
        if not nets:
            raise ValidationError("--ip needs a network (--net)")
        validate.ipv4_address(ip, "IP address")
    if hostname is not None:
        validate.hostname(hostname)
    env_pairs = dict(validate.env_pair(e) for e in env)
    cmdline = list(command) or list(DEFAULT_COMMAND)
    if any("\0" in a for a in cmdline):
        raise ValidationError("the command contains a NUL byte")
    return {"name": name, "networks": nets, "ports": specs, "ip": ip, "hostname": hostname, "env": env_pairs, "command": cmdline}


def _next_interface(conn: sa.Connection, container_id: str) -> str:
    used = {r[0] for r in conn.exec_driver_sql("SELECT interface FROM endpoints WHERE container_id = ?", (container_id,))}
    i = 0
    while f"eth{i}" in used:
        i += 1
    return f"eth{i}"


def _attach(conn: sa.Connection, container_id: str, net: dict, interface: str, static_ip: str | None, default_route: bool) -> dict:
    if static_ip:
        addr = ipam.allocate_static(conn, net, static_ip)
    else:
        addr = ipam.allocate(conn, net)
    ip = ipam.int_to_ip(addr)
    ep = {
        "container_id": container_id,
        "network_id": net["id"],
        "interface": interface,
        "host_veth": naming.host_veth_name(container_id, net["id"]),
        "ip": ip,
        "ip_int": addr,
        "mac": ipk.mac_for_ip(ip),
        "is_default_route": int(default_route),
        "created_at": time.time(),
    }
    ep_id = conn.exec_driver_sql(
        f"INSERT INTO endpoints ({', '.join(ep)}) VALUES ({', '.join('?' * len(ep))})", tuple(ep.values())
    ).lastrowid
    ipam.bind(conn, net["id"], addr, ep_id)
    ep.update(id=ep_id, network=net["name"], bridge=net["bridge"], gateway=net["gateway"], prefix_len=net["prefix_len"], mtu=net["mtu"])
    return ep


def endpoint_steps(netns: str, ep: dict, *, first: bool, create_netns: bool) -> list[Step]:
    return [
        ipk.endpoint_host_side(
            netns=netns, host_veth=ep["host_veth"], interface=ep["interface"], bridge=ep["bridge"],
            mtu=ep["mtu"], mac=ep["mac"], create_netns=create_netns,
        ),
        ipk.endpoint_container_side(
            netns=netns, interface=ep["interface"], ip=ep["ip"], prefix_len=ep["prefix_len"],
            # Internal networks never get the default route: they have no way out.
            gateway=ep["gateway"] if ep["is_default_route"] else None, loopback=first,
        ),
    ]


def _usable_network(conn: sa.Connection, name: str) -> dict:
    net = get_network(conn, name)
    if net["state"] != "ready":
        raise Conflict(f"network {net['name']} is {net['state']}")
    return net


def container_dir(ctx: Context, container_id: str) -> Path:
    return ctx.state_dir / "containers" / container_id


def _restore_missing_networks(ctx: Context, names: list[str]) -> list[Step]:
    """A network whose bridge is gone (the host rebooted) is re-created before it is used. The
    check is one stat() per network; the reconciler (cnet.services.gc, ~6 ms to import) is
    loaded only when a bridge is really missing."""
    with ctx.store.read() as conn:
        bridges = [
            r[0] for n in names
            for r in [conn.exec_driver_sql("SELECT bridge FROM networks WHERE (name = ? OR id = ?) AND state = 'ready'", (n, n)).first()]
            if r is not None
        ]
    if all(Path("/proc/sys/net/ipv4/conf", b).exists() for b in bridges):
        return []
    from .gc import ensure_networks

    return ensure_networks(ctx, names)


REQUIRED_TOOLS = {"ip": "iproute2", "iptables-restore": "iptables", "nsenter": "util-linux",
                  "unshare": "util-linux", "setpriv": "util-linux", "env": "coreutils"}


def _require_tools() -> None:
    """A missing tool would otherwise surface only as the container's exit code 127."""
    import shutil

    for tool, package in REQUIRED_TOOLS.items():
        if shutil.which(tool) is None:
            raise CnetError(f"the command {tool!r} is missing: install {package}")


def run_container(ctx: Context, req: dict, *, detached: bool, remove: bool = False) -> Outcome:
    """Validate, allocate and wire; the caller then starts the process with start_process()."""
    ctx.require_root()
    if not ctx.dry_run:
        _require_tools()
    restore_steps = _restore_missing_networks(ctx, req["networks"])
    with ctx.store.write() as conn:
        cid = naming.new_id()
        name = req["name"] or cid
        if conn.exec_driver_sql("SELECT 1 FROM containers WHERE name = ? OR id = ?", (name, name)).first():
            raise Conflict(f"container name {name!r} is already in use")
        nets = [_usable_network(conn, n) for n in req["networks"]]
        if req["ports"] and nets[0]["internal"]:
            raise ValidationError(f"network {nets[0]['name']} is internal: it cannot publish ports")
        if req["ip"]:
            ipam.check_static(nets[0], req["ip"])
        _check_ports(conn, req["ports"])
        hostname = req["hostname"] or (name if _valid_hostname(name) else cid)
        netns = naming.netns_name(cid)
        log_path = str(container_dir(ctx, cid) / "log") if detached else None
        spec = {"networks": req["networks"], "ports": [p.render() for p in req["ports"]], "ip": req["ip"], "rm": remove}
        row = {
            "id": cid, "name": name, "state": "creating", "command": json.dumps(req["command"]),
            "hostname": hostname, "env": json.dumps(req["env"]), "spec": json.dumps(spec),
            "detached": int(detached), "netns": netns, "log_path": log_path, "created_at": time.time(),
        }
        conn.exec_driver_sql(f"INSERT INTO containers ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
        plan = Plan(list(restore_steps))
        eps = []
        if not nets:
            plan.extend(ipk.loopback_only(netns))
        # The default route goes via the first network that is not internal (as Docker does).
        default_index = next((i for i, n in enumerate(nets) if not n["internal"]), None)
        for i, net in enumerate(nets):
            ep = _attach(conn, cid, net, f"eth{i}", req["ip"] if i == 0 else None, default_route=(i == default_index))
            eps.append(ep)
            plan.extend(endpoint_steps(netns, ep, first=(i == 0), create_netns=(i == 0)))
        ports = []
        for spec_ in req["ports"]:
            p = {"container_id": cid, "endpoint_id": eps[0]["id"], "host_ip": spec_.host_ip, "host_port": spec_.host_port,
                 "container_port": spec_.container_port, "protocol": spec_.protocol, "created_at": time.time()}
            conn.exec_driver_sql(f"INSERT INTO port_mappings ({', '.join(p)}) VALUES ({', '.join('?' * len(p))})", tuple(p.values()))
            p["container_ip"] = eps[0]["ip"]
            ports.append(p)
        if ports:
            plan.add(ipt.rules_add(_port_rules(cid, ports), f"publish {len(ports)} port(s) of container {name}"))
        row.update(endpoints=eps, ports=ports)
        launch = launch_argv(ctx, cid, hostname, req["command"])
        plan.add(Step(summary="start the watcher, which starts the command as PID 1 of new pid/mount/uts/ipc namespaces", do=cmd(*launch)))
        if ctx.dry_run:
            return Outcome(plan, row)
        wiring = Plan(plan.steps[:-1])  # the launch is not a journal step: its process is the container
        op = ctx.journal.begin(conn, "run", cid, "create", wiring)

    def mark_running(c: sa.Connection) -> None:
        # Until the watcher exists, this `cnet run` process stands in for it: if it dies before
        # starting the container, the next command sees a dead watcher and releases the network
        # at once instead of waiting out a grace period.
        me, me_start = procs.self_identity()
        c.exec_driver_sql(
            "UPDATE containers SET state = 'running', started_at = ?, boot_id = ?, watcher_pid = ?, "
            "watcher_start_time = ? WHERE id = ?",
            (time.time(), procs.boot_id(), me, me_start, cid),
        )

    ctx.journal.execute(op, on_success=mark_running)
    row["state"] = "running"
    return Outcome(plan, row)


def _valid_hostname(name: str) -> bool:
    try:
        validate.hostname(name)
        return True
    except ValidationError:
        return False


def _rolled_back_run(conn: sa.Connection, container_id: str) -> None:
    conn.exec_driver_sql("DELETE FROM containers WHERE id = ?", (container_id,))


journal_mod.register("run", rolled_back=_rolled_back_run)


def container_env(row: dict) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": row["hostname"], "HOME": "/root"}
    if os.environ.get("TERM"):
        env["TERM"] = os.environ["TERM"]
    env.update(json.loads(row["env"]))
    return env


def launch_argv(ctx: Context, cid: str, hostname: str, command: list[str]) -> list[str]:
    return nsk.launch_argv(
        container_id=cid, hostname=hostname, command=command, python=sys.executable,
        pythonpath=str(Path(__file__).resolve().parents[2]), state_dir=str(ctx.state_dir.resolve()),
        reap_log=str(container_dir(ctx, cid) / "reap.log"),
    )


def start_process(ctx: Context, row: dict, *, foreground: bool):
    """Start the watcher (which starts the container) and record the PIDs. Returns the Popen."""
    cid = row["id"]
    cdir = container_dir(ctx, cid)
    cdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = launch_argv(ctx, cid, row["hostname"], json.loads(row["command"]))
    if foreground:
        proc = ctx.runner.spawn(argv, env=container_env(row))
    else:
        fd = os.open(row["log_path"], os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            proc = ctx.runner.spawn(argv, env=container_env(row), stdin=open(os.devnull, "rb"), stdout=fd, stderr=fd)
        finally:
            os.close(fd)
    ctx.store.conn.exec_driver_sql(
        "UPDATE containers SET watcher_pid = ?, watcher_start_time = ? WHERE id = ?",
        (proc.pid, procs.start_time(proc.pid), cid),
    )
    pid = _find_container_pid(proc)
    if pid is not None:
        ctx.store.conn.exec_driver_sql(
            "UPDATE containers SET pid = ?, pid_start_time = ? WHERE id = ? AND state = 'running'",
            (pid, procs.start_time(pid), cid),
        )
    row["pid"] = pid
    return proc


def _find_container_pid(proc, timeout: float = 5.0) -> int | None:
    """The watcher's only child is the container's PID 1 (nsenter, unshare, setpriv and the init
    shell all exec() into the next)."""
    deadline = time.monotonic() + timeout
    delay = 0.0002
    while time.monotonic() < deadline:
        kids = procs.children(proc.pid)
        if kids:
            return kids[0]
        if proc.poll() is not None:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.01)
    return None


# --- release (the container's process is gone) ------------------------------------------------------
def release_steps(conn: sa.Connection, row: dict) -> list[Step]:
    ports = ports_of(conn, row["id"])
    steps: list[Step] = []
    if ports:
        rules = _port_rules(row["id"], ports)
        steps.append(Step(
            summary=f"remove published ports of container {row['name']}",
            do=ipt.restore(ipt.restore_input(rules, "-D")),
            fallback=tuple(ipt.single_deletes(rules)),
        ))
        for p in ports:
            if p["protocol"] == "udp":
                # Stale UDP conntrack entries would keep sending the port's traffic to the old IP.
                steps.append(Step(summary=f"flush UDP conntrack entries for port {p['host_port']}", do=ipt.conntrack_flush_udp(p["host_port"])))
    # Deleting the namespace once its processes are gone lets the kernel destroy the veths
    # asynchronously (an explicit `ip link del` costs ~35 ms more).
    steps.append(Step(summary=f"delete network namespace {row['netns']}", do=ipk.netns_del(row["netns"])))
    return steps


def _completed_release(conn: sa.Connection, container_id: str) -> None:
    conn.exec_driver_sql("DELETE FROM port_mappings WHERE container_id = ?", (container_id,))
    conn.exec_driver_sql("DELETE FROM endpoints WHERE container_id = ?", (container_id,))
    conn.exec_driver_sql(
        "UPDATE containers SET state = CASE WHEN state = 'removing' THEN 'removing' ELSE 'exited' END, "
        "pid = NULL, pid_start_time = NULL, finished_at = coalesce(finished_at, ?), "
        "exit_code = coalesce(exit_code, ?) WHERE id = ?",
        (time.time(), UNKNOWN_EXIT, container_id),
    )
    # `rm -f` claimed it as 'removing': finishing the release (also in crash recovery) finishes the rm.
    conn.exec_driver_sql("DELETE FROM containers WHERE id = ? AND state = 'removing'", (container_id,))


journal_mod.register("release", completed=_completed_release)


def claim_and_release(ctx: Context, container_id: str, exit_code: int | None, *, from_states=("running",), new_state="exited") -> bool:
    """Atomically take the container out of `running` and release its network resources.
    Exactly one of the racing parties (watcher, stop, rm, a recovering command) wins."""
    with ctx.store.write() as conn:
        states = ", ".join("?" * len(from_states))
        cur = conn.exec_driver_sql(
            f"UPDATE containers SET state = ?, exit_code = coalesce(?, exit_code), finished_at = coalesce(finished_at, ?) "
            f"WHERE id = ? AND state IN ({states})",
            (new_state, exit_code, time.time(), container_id, *from_states),
        )
        if cur.rowcount != 1:
            return False
        row = row_to_dict(conn.exec_driver_sql("SELECT * FROM containers WHERE id = ?", (container_id,)).first())
        plan = Plan(release_steps(conn, row), best_effort=True)
        op = ctx.journal.begin(conn, "release", container_id, "destroy", plan)
    ctx.journal.execute(op)
    return True


def reap(ctx: Context, container_id: str, exit_code: int) -> None:
    """Called by the watcher when the container's PID 1 has exited."""
    ctx.journal.recover()
    released = claim_and_release(ctx, container_id, exit_code)
    with ctx.store.write() as conn:
        # Whoever released first (stop, rm -f) may not have known the real exit code.
        conn.exec_driver_sql("UPDATE containers SET exit_code = ? WHERE id = ?", (exit_code, container_id))
        row = conn.exec_driver_sql("SELECT spec, state FROM containers WHERE id = ?", (container_id,)).first()
    if row and json.loads(row[0]).get("rm") and row[1] == "exited":
        remove_record(ctx, container_id)
    if released:
        ctx.say(f"cnet: container {container_id} exited with {exit_code}; network released")


def reap_dead(ctx: Context) -> list[str]:
    """Containers marked running whose processes are gone, and nobody is releasing them
    (watcher killed, host rebooted): release them now."""
    lines = []
    # An `rm -f` killed between releasing the network and deleting the record leaves a row in
    # 'removing' that no operation owns: finish the removal.
    orphan = "state = 'removing' AND id NOT IN (SELECT target FROM operations WHERE status = 'running')"
    if ctx.store.conn.exec_driver_sql(f"SELECT 1 FROM containers WHERE {orphan} LIMIT 1").first():
        with ctx.store.write() as conn:
            conn.exec_driver_sql(f"DELETE FROM containers WHERE {orphan}")
    rows = ctx.store.conn.exec_driver_sql(
        "SELECT id, name, pid, pid_start_time, watcher_pid, watcher_start_time, boot_id, started_at FROM containers WHERE state = 'running'"
    ).fetchall()
    if not rows:
        return lines
    boot = procs.boot_id()
    for cid, name, pid, pst, wpid, wst, row_boot, started in rows:
        rebooted = row_boot is not None and row_boot != boot
        if not rebooted:
            if pid and procs.alive(pid, pst):
                continue
            if wpid and procs.alive(wpid, wst):
                continue  # the watcher will release it within moments
        if claim_and_release(ctx, cid, None):
            why = "the host rebooted" if rebooted else "its process is gone"
            lines.append(f"cnet: container {name} marked exited ({why}); network released")
    return lines


# --- stop / rm ------------------------------------------------------------------------------------
def _signal(ctx: Context, pid: int, sig: int) -> None:
    ctx.runner.signal(pid, sig)


def _wait_dead(pid: int, start: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while time.monotonic() < deadline:
        if not procs.alive(pid, start):
            return True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return not procs.alive(pid, start)


def stop_container(ctx: Context, ref: str, timeout: float = 10.0) -> dict:
    ctx.require_root()
    with ctx.store.read() as conn:
        row = get_container(conn, ref)
        if ctx.dry_run:
            row["plan"] = teardown_plan(conn, row, timeout=timeout)
            return row
    if row["state"] == "running" and row["pid"] and procs.alive(row["pid"], row["pid_start_time"]):
        # PID 1 of a pid namespace ignores SIGTERM unless it installed a handler: escalate.
        _signal(ctx, row["pid"], signal.SIGTERM)
        if not _wait_dead(row["pid"], row["pid_start_time"], timeout):
            _signal(ctx, row["pid"], signal.SIGKILL)
            _wait_dead(row["pid"], row["pid_start_time"], 5.0)
    if row["state"] == "running":
        # The watcher knows the real exit code and releases the network itself within moments;
        # wait for it, and release here only if it is gone (killed, or the host rebooted).
        if row["watcher_pid"] and procs.alive(row["watcher_pid"], row["watcher_start_time"]):
            _wait_dead(row["watcher_pid"], row["watcher_start_time"], 5.0)
        claim_and_release(ctx, row["id"], None)
    return row


def teardown_plan(conn: sa.Connection, row: dict, timeout: float | None) -> Plan:
    """What stop (timeout given) or rm -f (timeout None) would do, for --dry-run. cnet signals
    with os.kill() and polls /proc; the script shows the equivalent commands."""
    plan = Plan(best_effort=True)
    if row["state"] == "running" and row["pid"]:
        pid = str(row["pid"])
        if timeout is not None:
            plan.add(Step(summary="ask PID 1 to stop", do=cmd("kill", "-s", "TERM", pid)))
            plan.add(Step(summary=f"give it {timeout:g} s (PID 1 ignores SIGTERM without a handler)", do=cmd("sleep", f"{timeout:g}")))
        plan.add(Step(summary="kill PID 1 (the kernel then kills the whole PID namespace)", do=cmd("kill", "-s", "KILL", pid)))
        plan.extend(release_steps(conn, row))
    return plan


def _is_watcher_shell(pid: int) -> bool:
    """The watcher shell itself (its $0 is cnet-watch): never the `cnet run` standing in for it
    before it is spawned, nor a reaper it has already exec'd."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return len(argv) > 3 and argv[3] == b"cnet-watch"


def kill_now(ctx: Context, row: dict) -> None:
    if row["pid"] and procs.alive(row["pid"], row["pid_start_time"]):
        _signal(ctx, row["pid"], signal.SIGKILL)
        _wait_dead(row["pid"], row["pid_start_time"], 5.0)


def remove_container(ctx: Context, ref: str, force: bool = False) -> dict:
    ctx.require_root()
    with ctx.store.read() as conn:
        row = get_container(conn, ref)
    if row["state"] in ("running", "creating") and not force:
        raise Conflict(f"container {row['name']} is {row['state']}: stop it first or use rm -f")
    if ctx.dry_run:
        with ctx.store.read() as conn:
            row["plan"] = teardown_plan(conn, row, timeout=None)
        return row
    if row["state"] == "running":
        # The record is going away and this command releases the network itself: stop the
        # watcher first, so it does not exec cnet's reaper (a whole Python start-up, ~0.3 s of
        # CPU competing with this command) only to find nothing left to do.
        if row.get("watcher_pid") and procs.alive(row["watcher_pid"], row.get("watcher_start_time")) \
                and _is_watcher_shell(row["watcher_pid"]):
            _signal(ctx, row["watcher_pid"], signal.SIGKILL)
        kill_now(ctx, row)
        claim_and_release(ctx, row["id"], 137, from_states=("running",), new_state="removing")
    remove_record(ctx, row["id"])
    return row


def remove_record(ctx: Context, container_id: str) -> None:
    with ctx.store.write() as conn:
        conn.exec_driver_sql("DELETE FROM containers WHERE id = ? AND state IN ('exited', 'removing')", (container_id,))
    import shutil

    shutil.rmtree(container_dir(ctx, container_id), ignore_errors=True)


# --- connect / disconnect -------------------------------------------------------------------------
def _rolled_back_connect(conn: sa.Connection, target: str) -> None:
    cid, nid = target.split("/")
    conn.exec_driver_sql("DELETE FROM endpoints WHERE container_id = ? AND network_id = ?", (cid, nid))


def _completed_disconnect(conn: sa.Connection, target: str) -> None:
    cid, nid = target.split("/")
    conn.exec_driver_sql("DELETE FROM endpoints WHERE container_id = ? AND network_id = ?", (cid, nid))


journal_mod.register("net-connect", rolled_back=_rolled_back_connect)
journal_mod.register("net-disconnect", completed=_completed_disconnect)


def connect(ctx: Context, network: str, ref: str, ip: str | None = None) -> Outcome:
    validate.name(network, "network name")
    if ip is not None:
        validate.ipv4_address(ip, "IP address")
    ctx.require_root()
    restore_steps = _restore_missing_networks(ctx, [network])
    with ctx.store.write() as conn:
        row = get_container(conn, ref)
        if row["state"] != "running":
            raise Conflict(f"container {row['name']} is not running")
        net = _usable_network(conn, network)
        if conn.exec_driver_sql("SELECT 1 FROM endpoints WHERE container_id = ? AND network_id = ?", (row["id"], net["id"])).first():
            raise Conflict(f"container {row['name']} is already connected to network {net['name']}")
        has_default = conn.exec_driver_sql("SELECT 1 FROM endpoints WHERE container_id = ? AND is_default_route = 1", (row["id"],)).first()
        ep = _attach(conn, row["id"], net, _next_interface(conn, row["id"]), ip, default_route=not has_default and not net["internal"])
        plan = Plan(list(restore_steps))
        plan.extend(endpoint_steps(row["netns"], ep, first=not has_default, create_netns=False))
        if ctx.dry_run:
            return Outcome(plan, ep)
        op = ctx.journal.begin(conn, "net-connect", f"{row['id']}/{net['id']}", "create", plan)
    ctx.journal.execute(op)
    return Outcome(plan, ep)


def disconnect(ctx: Context, network: str, ref: str) -> Outcome:
    ctx.require_root()
    with ctx.store.write() as conn:
        row = get_container(conn, ref)
        net = get_network(conn, network)
        ep = conn.exec_driver_sql("SELECT * FROM endpoints WHERE container_id = ? AND network_id = ?", (row["id"], net["id"])).first()
        if ep is None:
            raise NotFound(f"container {row['name']} is not connected to network {net['name']}")
        ep = row_to_dict(ep)
        ports = [p for p in ports_of(conn, row["id"]) if p["endpoint_id"] == ep["id"]]
        plan = Plan(best_effort=True)
        if ports:
            rules = _port_rules(row["id"], ports)
            plan.add(Step(summary="remove published ports on this network", do=ipt.restore(ipt.restore_input(rules, "-D")), fallback=tuple(ipt.single_deletes(rules))))
        plan.add(Step(summary=f"delete veth {ep['host_veth']}", do=ipk.link_del(ep["host_veth"])))
        if ctx.dry_run:
            return Outcome(plan, ep)
        op = ctx.journal.begin(conn, "net-disconnect", f"{row['id']}/{net['id']}", "destroy", plan)
    ctx.journal.execute(op)
    return Outcome(plan, ep)


# --- views ----------------------------------------------------------------------------------------
def describe(conn: sa.Connection, row: dict) -> dict:
    eps = endpoints_of(conn, row["id"])
    ports = ports_of(conn, row["id"])
    return {
        "id": row["id"],
        "name": row["name"],
        "pid": row["pid"],
        "state": row["state"],
        "exit_code": row["exit_code"],
        "command": json.loads(row["command"]),
        "hostname": row["hostname"],
        "created": _iso(row["created_at"]),
        "started": _iso(row["started_at"]),
        "finished": _iso(row["finished_at"]),
        "netns": row["netns"],
        "log_path": row["log_path"],
        "networks": [
            {"network": e["network"], "interface": e["interface"], "ip": e["ip"], "prefix_len": e["prefix_len"],
             "gateway": e["gateway"], "mac": e["mac"], "host_veth": e["host_veth"]}
            for e in eps
        ],
        "ports": [
            {"host_ip": p["host_ip"], "host_port": p["host_port"], "container_port": p["container_port"], "protocol": p["protocol"]}
            for p in ports
        ],
        "requested": json.loads(row["spec"]),
        "nsenter": nsk.enter_hint(row["pid"]) if row["pid"] and row["state"] == "running" else None,
    }


def list_containers(conn: sa.Connection, all_: bool) -> list[dict]:
    where = "" if all_ else "WHERE state = 'running'"
    rows = conn.exec_driver_sql(f"SELECT * FROM containers {where} ORDER BY created_at").fetchall()
    eps: dict[str, list[str]] = {}
    for cid, ip in conn.exec_driver_sql("SELECT container_id, ip FROM endpoints ORDER BY interface"):
        eps.setdefault(cid, []).append(ip)
    ports: dict[str, list[str]] = {}
    for cid, hip, hp, cp, pr in conn.exec_driver_sql("SELECT container_id, host_ip, host_port, container_port, protocol FROM port_mappings ORDER BY host_port"):
        ports.setdefault(cid, []).append(f"{hip}:{hp}->{cp}/{pr}")
    out = []
    for r in rows:
        r = row_to_dict(r)
        state = r["state"] if r["state"] != "exited" else f"exited ({r['exit_code']})"
        out.append({
            "name": r["name"], "id": r["id"], "state": state, "pid": r["pid"] or "",
            "ips": ",".join(eps.get(r["id"], [])), "ports": ",".join(ports.get(r["id"], [])),
            "command": shlex.join(json.loads(r["command"])),
        })
    return out
