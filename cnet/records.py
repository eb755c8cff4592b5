"""Typed records and state names: what the store hands to the plans and the use cases.

Frozen records (cnet/frozen_record.py) built from `sqlite3.Row`s with `from_row()` (one place
knows the column names of each table), and `StrEnum` states. A `StrEnum` member is a `str` equal
to the text stored in the database (`ContainerState.RUNNING == "running"`), so the schema needs no
migration and SQL parameters take the members as they are. Pure: no I/O, standard library only.
"""

from __future__ import annotations

import json
import sqlite3
from enum import StrEnum
from typing import Any

from . import states
from .frozen_record import FrozenRecord, field


class ContainerState(StrEnum):
    """containers.state: cnet/states.py's texts (and what each means), which `cnet ps` reads
    without enum."""

    CREATING = states.CREATING
    RUNNING = states.RUNNING
    RESTARTING = states.RESTARTING
    EXITED = states.EXITED
    REMOVING = states.REMOVING
    ATTACHED = states.ATTACHED


class ContainerKind(StrEnum):
    """containers.kind: what a row stands for (cnet/states.py)."""

    CNET = states.CNET
    CNI = states.CNI


class OpKind(StrEnum):
    """Kinds of journaled operations (operations.kind)."""

    NET_CREATE = "net-create"
    NET_RM = "net-rm"
    RUN = "run"
    START = "start"
    RELEASE = "release"
    NET_CONNECT = "net-connect"
    NET_DISCONNECT = "net-disconnect"
    GC = "gc"
    NET_RESTORE = "net-restore"
    CNI_ADD = "cni-add"  # a CNI runtime's ADD: wire an attachment (target: its containers row id)
    CNI_DEL = "cni-del"  # DEL, GC, or `cnet gc` for a vanished namespace: release one
    PEER_SYNC = "peer-sync"  # an overlay network's routes, neighbours and fdb entries towards its peers
    STACK_UP = "stack-up"  # `cnet up`: wire a stack's new containers (target: the stack name)
    STACK_DOWN = "stack-down"  # `cnet down`, or `up` replacing containers: release them


class Direction(StrEnum):
    """operations.direction: CREATE rolls back on failure or crash; DESTROY (teardown) is best
    effort and rolls forward."""

    CREATE = "create"
    DESTROY = "destroy"


class OpStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


class StepStatus(StrEnum):
    PENDING = "pending"
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    UNDONE = "undone"
    UNDO_FAILED = "undo_failed"
    SKIPPED = "skipped"


# States in which a container holds its network (netns, addresses, ports) and a watcher.
# A detached container's log is rotated at this size (`docker run --log-opt max-size=10m`).
DEFAULT_LOG_MAX_SIZE = 10 * 1024 * 1024

LIVE_STATES = (ContainerState.RUNNING, ContainerState.RESTARTING)


class RestartPolicy(StrEnum):
    """--restart, as Docker spells it."""

    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"
    UNLESS_STOPPED = "unless-stopped"


class NetworkState(StrEnum):
    CREATING = "creating"
    READY = "ready"
    REMOVING = "removing"


ALL_ADDRESSES = "0.0.0.0"
IPV6_COLUMNS = (
    "subnet6",
    "subnet6_first",
    "subnet6_last",
    "gateway6",
    "ip_range6",
    "range6_first",
    "range6_last",
    "alloc6_cursor",
)


class PortSpec(FrozenRecord):
    """One published port as requested (`-p`), before it is stored."""

    host_ip: str  # ALL_ADDRESSES = every address
    host_port: int
    container_port: int
    protocol: str

    def render(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.protocol}"


class Network(FrozenRecord):
    id: str
    name: str
    driver: str
    subnet: str
    subnet_first_int: int
    subnet_last_int: int
    prefix_len: int
    gateway: str
    ip_range: str | None
    range_first_int: int
    range_last_int: int
    alloc_cursor_int: int
    bridge: str
    mtu: int
    internal: bool
    state: NetworkState
    created_at: float
    bridge_mac: str
    # Driver vxlan only (an overlay network: `subnet` is this host's share of `overlay_subnet`).
    overlay_subnet: str | None = None
    vni: int | None = None
    vtep_mac: str | None = None
    underlay_ip: str | None = None
    underlay_dev: str | None = None

    @property
    def overlay(self) -> bool:
        return self.overlay_subnet is not None

    # Dual stack (`--ipv6`); None on an IPv4-only network. The *6_first/last/cursor values are
    # 32 hex digits (cnet.ipam6).
    subnet6: str | None = None
    subnet6_first: str | None = None
    subnet6_last: str | None = None
    gateway6: str | None = None
    ip_range6: str | None = None
    range6_first: str | None = None
    range6_last: str | None = None
    alloc6_cursor: str | None = None

    @property
    def prefix6_len(self) -> int | None:
        return int(self.subnet6.rsplit("/", 1)[1]) if self.subnet6 else None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Network:
        return cls(
            id=row["id"],
            name=row["name"],
            driver=row["driver"],
            subnet=row["subnet"],
            subnet_first_int=row["subnet_first_int"],
            subnet_last_int=row["subnet_last_int"],
            prefix_len=row["prefix_len"],
            gateway=row["gateway"],
            ip_range=row["ip_range"],
            range_first_int=row["range_first_int"],
            range_last_int=row["range_last_int"],
            alloc_cursor_int=row["alloc_cursor_int"],
            bridge=row["bridge"],
            mtu=row["mtu"],
            internal=bool(row["internal"]),
            state=NetworkState(row["state"]),
            created_at=row["created_at"],
            bridge_mac=row["bridge_mac"],
            overlay_subnet=row["overlay_subnet"],
            vni=row["vni"],
            vtep_mac=row["vtep_mac"],
            underlay_ip=row["underlay_ip"],
            underlay_dev=row["underlay_dev"],
            **{name: row[name] for name in IPV6_COLUMNS},
        )

    def columns(self) -> dict[str, Any]:
        """The row to insert (networks table)."""
        return {
            "id": self.id,
            "name": self.name,
            "driver": self.driver,
            "subnet": self.subnet,
            "subnet_first_int": self.subnet_first_int,
            "subnet_last_int": self.subnet_last_int,
            "prefix_len": self.prefix_len,
            "gateway": self.gateway,
            "ip_range": self.ip_range,
            "range_first_int": self.range_first_int,
            "range_last_int": self.range_last_int,
            "alloc_cursor_int": self.alloc_cursor_int,
            "bridge": self.bridge,
            "mtu": self.mtu,
            "internal": int(self.internal),
            "state": str(self.state),
            "created_at": self.created_at,
            "bridge_mac": self.bridge_mac,
            "overlay_subnet": self.overlay_subnet,
            "vni": self.vni,
            "vtep_mac": self.vtep_mac,
            "underlay_ip": self.underlay_ip,
            "underlay_dev": self.underlay_dev,
            **{name: getattr(self, name) for name in IPV6_COLUMNS},
        }


class Container(FrozenRecord):
    id: str
    name: str
    state: ContainerState
    command: tuple[str, ...]
    hostname: str
    env: dict[str, str]
    spec: dict[str, Any]  # the request as given (networks, ports, ip, rm), kept for inspect
    detached: bool
    netns: str
    created_at: float
    log_path: str | None = None
    pid: int | None = None
    pid_start_time: int | None = None
    watcher_pid: int | None = None
    watcher_start_time: int | None = None
    boot_id: str | None = None
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    kind: ContainerKind = ContainerKind.CNET
    cni_container_id: str | None = None  # kind cni: CNI_CONTAINERID
    cni_ifname: str | None = None  # kind cni: CNI_IFNAME

    @property
    def is_cni(self) -> bool:
        return self.kind == ContainerKind.CNI

    restart_policy: RestartPolicy = RestartPolicy.NO
    restart_max: int = 0
    restart_count: int = 0
    last_exit_code: int | None = None
    manually_stopped: bool = False

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Container:
        return cls(
            id=row["id"],
            name=row["name"],
            state=ContainerState(row["state"]),
            command=tuple(json.loads(row["command"])),
            hostname=row["hostname"],
            env=json.loads(row["env"]),
            spec=json.loads(row["spec"]),
            detached=bool(row["detached"]),
            netns=row["netns"],
            created_at=row["created_at"],
            log_path=row["log_path"],
            pid=row["pid"],
            pid_start_time=row["pid_start_time"],
            watcher_pid=row["watcher_pid"],
            watcher_start_time=row["watcher_start_time"],
            boot_id=row["boot_id"],
            exit_code=row["exit_code"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            kind=ContainerKind(row["kind"]),
            cni_container_id=row["cni_container_id"],
            cni_ifname=row["cni_ifname"],
            restart_policy=RestartPolicy(row["restart_policy"]),
            restart_max=row["restart_max"],
            restart_count=row["restart_count"],
            last_exit_code=row["last_exit_code"],
            manually_stopped=bool(row["manually_stopped"]),
        )

    def columns(self) -> dict[str, Any]:
        """The row to insert (containers table): what is known before the process starts."""
        return {
            "id": self.id,
            "name": self.name,
            "state": str(self.state),
            "command": json.dumps(list(self.command)),
            "hostname": self.hostname,
            "env": json.dumps(self.env),
            "spec": json.dumps(self.spec),
            "detached": int(self.detached),
            "netns": self.netns,
            "log_path": self.log_path,
            "created_at": self.created_at,
            "kind": str(self.kind),
            "cni_container_id": self.cni_container_id,
            "cni_ifname": self.cni_ifname,
            "restart_policy": str(self.restart_policy),
            "restart_max": self.restart_max,
        }


class Endpoint(FrozenRecord):
    """A container's attachment to a network, with the network facts its wiring needs."""

    id: int
    container_id: str
    network_id: str
    interface: str
    host_veth: str
    ip: str
    ip_int: int
    mac: str
    is_default_route: bool
    created_at: float
    network: str  # the network's name
    bridge: str
    gateway: str
    prefix_len: int
    mtu: int
    aliases: tuple[str, ...] = ()  # extra names on this network (--network-alias)
    ip6: str | None = None  # dual stack: the IPv6 address, with the network's gateway and prefix
    gateway6: str | None = None
    prefix6_len: int | None = None
    bridge_mac: str = ""  # the bridge's own MAC: the gateway's, as the container sees it

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Endpoint:
        return cls(
            id=row["id"],
            container_id=row["container_id"],
            network_id=row["network_id"],
            interface=row["interface"],
            host_veth=row["host_veth"],
            ip=row["ip"],
            ip_int=row["ip_int"],
            mac=row["mac"],
            is_default_route=bool(row["is_default_route"]),
            created_at=row["created_at"],
            network=row["network"],
            bridge=row["bridge"],
            gateway=row["gateway"],
            prefix_len=row["prefix_len"],
            mtu=row["mtu"],
            aliases=tuple(json.loads(row["aliases"])),
            ip6=row["ip6"],
            gateway6=row["gateway6"],
            prefix6_len=int(row["subnet6"].rsplit("/", 1)[1]) if row["subnet6"] else None,
            bridge_mac=row["bridge_mac"],
        )


class PortMapping(FrozenRecord):
    """A published port as stored, with the address of the endpoint it is sent to."""

    id: int
    container_id: str
    endpoint_id: int
    host_ip: str
    host_port: int
    container_port: int
    protocol: str
    container_ip: str
    container_ip6: str | None = None  # dual stack: where the IPv6 side of the mapping goes

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> PortMapping:
        return cls(
            id=row["id"],
            container_id=row["container_id"],
            endpoint_id=row["endpoint_id"],
            host_ip=row["host_ip"],
            host_port=row["host_port"],
            container_port=row["container_port"],
            protocol=row["protocol"],
            container_ip=row["container_ip"],
            container_ip6=row["container_ip6"],
        )


class RunRequest(FrozenRecord):
    """`cnet run` as the user typed it, validated (cnet.validate.run_request)."""

    name: str | None = None
    networks: tuple[str, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    ip: str | None = None
    hostname: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ("/bin/sh",)
    labels: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # --network-alias: extra names on every network joined at run
    restart: RestartPolicy = RestartPolicy.NO
    restart_max: int = 0  # on-failure:N
    init: bool = False  # --init: tini/catatonit as PID 1
    interactive: bool = False  # -i: keep stdin open
    tty: bool = False  # -t: a pseudo-terminal
    log_max_size: int = DEFAULT_LOG_MAX_SIZE  # --log-max-size: the log is rotated (once) at this size
    ip6: str | None = None  # --ip6: a static IPv6 address on the first network
