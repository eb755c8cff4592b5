"""Lookups and writes on the state database, in records: the only module above the journal and
IPAM that runs SQL (every statement from cnet.db.queries). Functions take the caller's
`Connection`, so the caller decides the transaction (`conn.write()` / `conn.read()`)."""

from __future__ import annotations

import json
import sqlite3
import time

from ..errors import NotFound
from ..records import Container, ContainerKind, ContainerState, Endpoint, Network, NetworkState, PortMapping, PortSpec
from . import queries as q
from .connection import Connection

IP_FORWARD_SETTING = "ip_forward_before_cnet"
IP6_FORWARD_SETTING = "ip6_forward_before_cnet"  # with the first dual-stack network
# Exit code recorded when nobody saw the real one (the watcher was killed, the host rebooted).
UNKNOWN_EXIT = 255


# --- networks ---------------------------------------------------------------------------------------
def find_network(conn: Connection, ref: str) -> Network | None:
    row = conn.one(q.NETWORK_BY_REF, (ref,))
    return None if row is None else Network.from_row(row)


def get_network(conn: Connection, ref: str) -> Network:
    net = find_network(conn, ref)
    if net is None:
        raise NotFound(f"network {ref!r} not found")
    return net


def network_name_taken(conn: Connection, name: str) -> bool:
    return conn.one(q.NETWORK_NAME_TAKEN, (name,)) is not None


def overlapping_network(conn: Connection, first: int, last: int) -> tuple[str, str] | None:
    """(name, subnet) of a network whose subnet overlaps [first, last], if any."""
    row = conn.one(q.NETWORK_OVERLAPPING, (last, first))
    return None if row is None else (row["name"], row["subnet"])


def network_count(conn: Connection) -> int:
    return int(conn.scalar(q.NETWORK_COUNT))


def other_network_count(conn: Connection, network_id: str) -> int:
    return int(conn.scalar(q.NETWORK_COUNT_OTHERS, (network_id,)))


def insert_network(conn: Connection, net: Network) -> None:
    conn.insert("networks", net.columns())


def set_network_state(conn: Connection, network_id: str, state: NetworkState) -> None:
    conn.execute(q.NETWORK_SET_STATE, (state, network_id))


def forget_network(conn: Connection, network_id: str) -> None:
    """Delete a network's row; with the last network goes the remembered ip_forward setting (the
    IPv6 one with the last dual-stack network)."""
    conn.execute(q.NETWORK_DELETE, (network_id,))
    if network_count(conn) == 0:
        conn.execute(q.SETTING_DELETE, (IP_FORWARD_SETTING,))
        conn.execute(q.SETTING_DELETE, (IP6_FORWARD_SETTING,))


def network_users(conn: Connection, network_id: str) -> tuple[list[str], list[str]]:
    """Names of the containers on a network, and of the CNI attachments on it."""
    rows = conn.all(q.NETWORK_USERS, (network_id,))
    return (
        [r["name"] for r in rows if r["kind"] != ContainerKind.CNI],
        [r["name"] for r in rows if r["kind"] == ContainerKind.CNI],
    )


def network_members(conn: Connection, network_id: str) -> list[sqlite3.Row]:
    """(name, id, interface, ip, mac, host_veth) of each attached container, by name."""
    return conn.all(q.NETWORK_MEMBERS, (network_id,))


def networks_with_counts(conn: Connection) -> list[tuple[Network, int]]:
    """Every network by name, with the number of endpoints on it."""
    return [(Network.from_row(r), r["containers"]) for r in conn.all(q.NETWORKS_BY_NAME_WITH_COUNTS)]


def all_networks(conn: Connection) -> list[Network]:
    return [Network.from_row(r) for r in conn.all(q.NETWORKS_ALL)]


def ready_bridge(conn: Connection, ref: str) -> tuple[str, str] | None:
    """(bridge, its MAC) of a ready network."""
    row = conn.one(q.NETWORK_READY_BRIDGE_BY_REF, (ref,))
    return None if row is None else (row[0], row[1])


def get_setting(conn: Connection, key: str) -> str | None:
    value: str | None = conn.scalar(q.SETTING_GET, (key,))
    return value


def put_setting(conn: Connection, key: str, value: str) -> None:
    conn.execute(q.SETTING_PUT, (key, value))


# --- containers -------------------------------------------------------------------------------------
def find_container(conn: Connection, ref: str) -> Container | None:
    """By name, id, or an unambiguous id prefix of at least 3 hex digits."""
    row = conn.one(q.CONTAINER_BY_REF, (ref,))
    if row is None and len(ref) >= 3 and all(c in "0123456789abcdef" for c in ref):
        rows = conn.all(q.CONTAINERS_BY_ID_PREFIX, (ref + "%",))
        if len(rows) == 1:
            row = rows[0]
    return None if row is None else Container.from_row(row)


def get_container(conn: Connection, ref: str) -> Container:
    c = find_container(conn, ref)
    if c is None:
        raise NotFound(f"container {ref!r} not found")
    return c


def container_by_id(conn: Connection, container_id: str) -> Container | None:
    row = conn.one(q.CONTAINER_BY_ID, (container_id,))
    return None if row is None else Container.from_row(row)


def container_name_taken(conn: Connection, name: str) -> bool:
    return conn.one(q.CONTAINER_NAME_TAKEN, (name,)) is not None


def insert_container(conn: Connection, c: Container) -> None:
    conn.insert("containers", c.columns())


def mark_running(
    conn: Connection, container_id: str, *, boot_id: str, watcher_pid: int, watcher_start: int | None
) -> None:
    conn.execute(q.CONTAINER_MARK_RUNNING, (time.time(), boot_id, watcher_pid, watcher_start, container_id))


def set_watcher(conn: Connection, container_id: str, pid: int, start: int | None) -> None:
    conn.execute(q.CONTAINER_SET_WATCHER, (pid, start, container_id))


def set_pid(conn: Connection, container_id: str, pid: int, start: int | None) -> None:
    conn.execute(q.CONTAINER_SET_PID, (pid, start, container_id))


def claim_running(conn: Connection, container_id: str, new_state: ContainerState, exit_code: int | None) -> bool:
    """Take the container out of `running` (True for exactly one caller)."""
    cur = conn.execute(q.CONTAINER_CLAIM_RUNNING, (new_state, exit_code, time.time(), container_id))
    return cur.rowcount == 1


def set_exit_code(conn: Connection, container_id: str, exit_code: int) -> None:
    conn.execute(q.CONTAINER_SET_EXIT_CODE, (exit_code, container_id))


def set_exit_codes(conn: Connection, container_id: str, exit_code: int) -> None:
    """The real exit code, seen by the watcher: the final one and the last one."""
    conn.execute(q.CONTAINER_SET_EXIT_CODES, (exit_code, exit_code, container_id))


def set_spec(conn: Connection, container_id: str, spec: dict) -> None:
    conn.execute(q.CONTAINER_SET_SPEC, (json.dumps(spec), container_id))


def mark_manually_stopped(conn: Connection, container_id: str) -> None:
    conn.execute(q.CONTAINER_MARK_MANUALLY_STOPPED, (container_id,))


def begin_restart(conn: Connection, container_id: str, exit_code: int, *, expected_start: float) -> bool:
    """running -> restarting (True), unless a stop or rm came first. started_at becomes the time
    the next run is due (the back-off's measure of its run time, should nobody record it)."""
    cur = conn.execute(q.CONTAINER_BEGIN_RESTART, (exit_code, time.time(), expected_start, container_id))
    return cur.rowcount == 1


def restarted(conn: Connection, container_id: str, pid: int, start: int | None) -> bool:
    """restarting -> running with its new PID 1 (False when a stop came first)."""
    return conn.execute(q.CONTAINER_RESTARTED, (pid, start, time.time(), container_id)).rowcount == 1


def begin_start(conn: Connection, container_id: str, log_path: str) -> bool:
    return conn.execute(q.CONTAINER_BEGIN_START, (log_path, container_id)).rowcount == 1


def undo_start(conn: Connection, container_id: str) -> None:
    """A `cnet start` rolled back: its endpoints and mappings go (allocations with them), the
    container is exited again."""
    conn.execute(q.PORTS_DELETE_OF, (container_id,))
    conn.execute(q.ENDPOINTS_DELETE_OF, (container_id,))
    conn.execute(q.CONTAINER_UNDO_START, (container_id,))


def containers_to_restore(conn: Connection) -> list[Container]:
    """Exited containers that `cnet restore` starts: always / unless-stopped, not stopped by hand."""
    return [Container.from_row(r) for r in conn.all(q.CONTAINERS_TO_RESTORE)]


def delete_container(conn: Connection, container_id: str) -> None:
    conn.execute(q.CONTAINER_DELETE, (container_id,))


def delete_finished_container(conn: Connection, container_id: str) -> None:
    conn.execute(q.CONTAINER_DELETE_FINISHED, (container_id,))


def finish_release(conn: Connection, container_id: str) -> None:
    """The container's network is released: its endpoints and mappings go, it is exited (and
    deleted when `rm -f` claimed it as removing: finishing the release finishes the rm)."""
    conn.execute(q.PORTS_DELETE_OF, (container_id,))
    conn.execute(q.ENDPOINTS_DELETE_OF, (container_id,))
    conn.execute(q.CONTAINER_RELEASED, (time.time(), UNKNOWN_EXIT, container_id))
    conn.execute(q.CONTAINER_DELETE_IF_REMOVING, (container_id,))


def containers(conn: Connection, *, all_: bool = True) -> list[Container]:
    """Containers in creation order (all, or only the running ones)."""
    return [Container.from_row(r) for r in conn.all(q.CONTAINERS_ALL if all_ else q.CONTAINERS_RUNNING)]


def container_ids(conn: Connection) -> set[str]:
    return {r[0] for r in conn.all(q.CONTAINER_IDS)}


def exit_code(conn: Connection, container_id: str) -> int | None:
    code: int | None = conn.scalar(q.CONTAINER_EXIT_CODE, (container_id,))
    return code


def container_state(conn: Connection, container_id: str) -> ContainerState | None:
    state = conn.scalar(q.CONTAINER_STATE, (container_id,))
    return None if state is None else ContainerState(state)


def set_container_state(conn: Connection, container_id: str, state: ContainerState) -> None:
    conn.execute(q.CONTAINER_SET_STATE, (state, container_id))


# --- CNI attachments ---------------------------------------------------------------------------------
def attachment(conn: Connection, cni_container_id: str, ifname: str) -> Container | None:
    """The attachment a runtime made for (CNI_CONTAINERID, CNI_IFNAME), if any."""
    row = conn.one(q.ATTACHMENT_BY_RUNTIME, (cni_container_id, ifname))
    return None if row is None else Container.from_row(row)


def attachments(conn: Connection) -> list[Container]:
    return [Container.from_row(r) for r in conn.all(q.ATTACHMENTS_ALL)]


def attachments_on(conn: Connection, network_id: str) -> list[Container]:
    return [Container.from_row(r) for r in conn.all(q.ATTACHMENTS_ON_NETWORK, (network_id,))]


def claim_attachment(conn: Connection, attachment_id: str) -> bool:
    """Take an attachment out of `attached` for releasing it (True for exactly one caller)."""
    return conn.execute(q.ATTACHMENT_CLAIM, (attachment_id,)).rowcount == 1


def cni_has_default_route(conn: Connection, cni_container_id: str) -> bool:
    """Whether one of the runtime container's cnet attachments holds its default route."""
    return conn.one(q.ATTACHMENT_HAS_DEFAULT_ROUTE, (cni_container_id,)) is not None


# --- endpoints ---------------------------------------------------------------------------------------
def endpoints_of(conn: Connection, container_id: str) -> list[Endpoint]:
    return [Endpoint.from_row(r) for r in conn.all(q.ENDPOINTS_OF, (container_id,))]


def all_endpoints(conn: Connection) -> list[Endpoint]:
    return [Endpoint.from_row(r) for r in conn.all(q.ENDPOINTS_ALL)]


def endpoint_on(conn: Connection, container_id: str, network_id: str) -> Endpoint | None:
    row = conn.one(q.ENDPOINT_ON, (container_id, network_id))
    return None if row is None else Endpoint.from_row(row)


def has_default_route(conn: Connection, container_id: str) -> bool:
    return conn.one(q.ENDPOINT_HAS_DEFAULT_ROUTE, (container_id,)) is not None


def next_interface(conn: Connection, container_id: str) -> str:
    used = {r[0] for r in conn.all(q.ENDPOINT_INTERFACES, (container_id,))}
    i = 0
    while f"eth{i}" in used:
        i += 1
    return f"eth{i}"


def insert_endpoint(
    conn: Connection,
    *,
    container_id: str,
    network: Network,
    interface: str,
    host_veth: str,
    ip: str,
    ip_int: int,
    mac: str,
    default_route: bool,
    aliases: tuple[str, ...] = (),
    ip6: str | None = None,
) -> Endpoint:
    now = time.time()
    ep_id = conn.insert(
        "endpoints",
        {
            "container_id": container_id,
            "network_id": network.id,
            "interface": interface,
            "host_veth": host_veth,
            "ip": ip,
            "ip_int": ip_int,
            "mac": mac,
            "is_default_route": int(default_route),
            "created_at": now,
            "aliases": json.dumps(list(aliases)),
            "ip6": ip6,
        },
    )
    return Endpoint(
        id=ep_id,
        container_id=container_id,
        network_id=network.id,
        interface=interface,
        host_veth=host_veth,
        ip=ip,
        ip_int=ip_int,
        mac=mac,
        is_default_route=default_route,
        created_at=now,
        network=network.name,
        bridge=network.bridge,
        gateway=network.gateway,
        prefix_len=network.prefix_len,
        mtu=network.mtu,
        aliases=aliases,
        ip6=ip6,
        gateway6=network.gateway6 if ip6 else None,
        prefix6_len=network.prefix6_len if ip6 else None,
        bridge_mac=network.bridge_mac,
    )


def forget_endpoint(conn: Connection, container_id: str, network_id: str) -> None:
    conn.execute(q.ENDPOINT_DELETE, (container_id, network_id))


# --- port mappings -------------------------------------------------------------------------------------
def ports_of(conn: Connection, container_id: str) -> list[PortMapping]:
    return [PortMapping.from_row(r) for r in conn.all(q.PORTS_OF, (container_id,))]


def ports_by_container(conn: Connection) -> dict[str, list[PortMapping]]:
    out: dict[str, list[PortMapping]] = {}
    for r in conn.all(q.PORTS_ALL):
        out.setdefault(r["container_id"], []).append(PortMapping.from_row(r))
    return out


def port_holder(conn: Connection, spec: PortSpec) -> str | None:
    """Name of the container already mapping this host port (same address, or 0.0.0.0 on
    either side), if any."""
    row = conn.one(q.PORT_CONFLICT, (spec.protocol, spec.host_port, spec.host_ip))
    return None if row is None else row[0]


def insert_port(conn: Connection, container_id: str, endpoint: Endpoint, spec: PortSpec) -> PortMapping:
    port_id = conn.insert(
        "port_mappings",
        {
            "container_id": container_id,
            "endpoint_id": endpoint.id,
            "host_ip": spec.host_ip,
            "host_port": spec.host_port,
            "container_port": spec.container_port,
            "protocol": spec.protocol,
            "created_at": time.time(),
        },
    )
    return PortMapping(
        id=port_id,
        container_id=container_id,
        endpoint_id=endpoint.id,
        host_ip=spec.host_ip,
        host_port=spec.host_port,
        container_port=spec.container_port,
        protocol=spec.protocol,
        container_ip=endpoint.ip,
        container_ip6=endpoint.ip6,
    )
