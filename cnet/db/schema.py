"""The database schema, as SQLAlchemy Core tables (not the ORM: sqlalchemy.orm is a heavy import,
and only migrating or checking the schema imports this module; Core tables give Alembic the same
metadata). Every column carries a comment (docs/schema.md is generated from them). Addresses are
stored twice: as text for people and SQL, and as integers (`*_int`; IPv6: 32 hex digits) for IPAM."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from .schema_data import IPV6_NETWORK_COLUMNS, NAMING_CONVENTION
from .schema_overlay import network_overlay_columns, overlay_peers_table
from .views import VIEWS as VIEWS  # the views belong to the schema's definition; kept in views.py

metadata = MetaData(naming_convention=NAMING_CONVENTION)

networks = Table(
    "networks",
    metadata,
    Column("id", String(12), primary_key=True, comment="12-hex network id; the bridge name is derived from it"),
    Column(
        "name", String(64), nullable=False, unique=True, comment="user-chosen name, [a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}"
    ),
    Column("driver", String(16), nullable=False, default="bridge", comment="network driver: bridge or vxlan"),
    Column("subnet", String(18), nullable=False, comment="IPv4 subnet in CIDR form, e.g. 175.50.0.0/24"),
    Column(
        "subnet_first_int", Integer, nullable=False, comment="the subnet's network address as integer (overlap checks)"
    ),
    Column(
        "subnet_last_int", Integer, nullable=False, comment="the subnet's broadcast address as integer (overlap checks)"
    ),
    Column("prefix_len", Integer, nullable=False, comment="prefix length of the subnet"),
    Column("gateway", String(15), nullable=False, comment="gateway address, held by the bridge"),
    Column(
        "ip_range", String(18), nullable=True, comment="sub-range for dynamic allocation (CIDR), NULL = whole subnet"
    ),
    Column(
        "range_first_int", Integer, nullable=False, comment="first address IPAM may hand out dynamically, as an integer"
    ),
    Column(
        "range_last_int", Integer, nullable=False, comment="last address IPAM may hand out dynamically, as an integer"
    ),
    Column(
        "alloc_cursor_int",
        Integer,
        nullable=False,
        comment="next-fit cursor: the address handed out last; the search resumes after it",
    ),
    Column("bridge", String(15), nullable=False, unique=True, comment="kernel bridge name (<= 15 bytes, cnet-...)"),
    Column("mtu", Integer, nullable=False, comment="MTU of the bridge and of every veth on it"),
    Column(
        "internal",
        Integer,
        nullable=False,
        default=0,
        comment="1 = no route out, no NAT: only traffic inside the bridge",
    ),
    Column(
        "state",
        String(16),
        nullable=False,
        comment="creating | ready | removing (creating/removing only while an operation runs)",
    ),
    Column("created_at", Float, nullable=False, comment="creation time, Unix seconds"),
    Column(
        "bridge_mac",
        String(17),
        nullable=False,
        server_default="",  # only for the migration's ADD COLUMN: every insert gives the MAC
        comment="the bridge's own MAC, set at creation and on re-creation (0a: + the bridge name's hex digits)",
    ),
    *(Column(name, String(length), nullable=True, comment=text) for name, length, text in IPV6_NETWORK_COLUMNS),
    *network_overlay_columns(),
    CheckConstraint("internal IN (0, 1)", name="internal_bool"),
    CheckConstraint("state IN ('creating', 'ready', 'removing')", name="state"),
    comment="Bridge networks (one row per `cnet net create`; an overlay's row is this host's share of it).",
)
overlay_peers = overlay_peers_table(metadata)

containers = Table(
    "containers",
    metadata,
    Column("id", String(12), primary_key=True, comment="12-hex container id"),
    Column("name", String(64), nullable=False, unique=True, comment="user-chosen name, or the id when none was given"),
    Column(
        "state",
        String(16),
        nullable=False,
        comment="creating | running | restarting (its watcher restarts the program) | exited | removing; "
        "kind cni: creating | attached | removing",
    ),
    Column("command", Text, nullable=False, comment="JSON list: the argv run as PID 1 of the container"),
    Column("hostname", String(64), nullable=False, comment="hostname inside the container's UTS namespace"),
    Column("env", Text, nullable=False, default="{}", comment="JSON object of environment variables given with -e"),
    Column(
        "spec",
        Text,
        nullable=False,
        default="{}",
        comment="JSON: the request as given, and the addresses it got (addresses, addresses6), kept after exit",
    ),
    Column("detached", Integer, nullable=False, default=0, comment="1 = started with -d (output in log_path)"),
    Column(
        "netns",
        Text,
        nullable=False,
        comment="name of the pinned network namespace under /run/netns; kind cni: the runtime's netns path (CNI_NETNS)",
    ),
    Column("pid", Integer, nullable=True, comment="host PID of the container's PID 1 while it runs"),
    Column(
        "pid_start_time",
        Integer,
        nullable=True,
        comment="start time of pid (clock ticks since boot), guards against PID reuse",
    ),
    Column(
        "watcher_pid",
        Integer,
        nullable=True,
        comment="host PID of the light watcher that releases the network when PID 1 exits",
    ),
    Column("watcher_start_time", Integer, nullable=True, comment="start time of watcher_pid (clock ticks since boot)"),
    Column(
        "boot_id", String(36), nullable=True, comment="kernel boot id when started: another one means the host rebooted"
    ),
    Column(
        "exit_code",
        Integer,
        nullable=True,
        comment="exit code of PID 1 (128+N if killed by signal N), NULL while running",
    ),
    Column("log_path", Text, nullable=True, comment="file holding stdout/stderr of a detached container"),
    Column("created_at", Float, nullable=False, comment="creation time, Unix seconds"),
    Column("started_at", Float, nullable=True, comment="time PID 1 was started, Unix seconds"),
    Column("finished_at", Float, nullable=True, comment="time PID 1 was seen to exit, Unix seconds"),
    Column(
        "kind",
        String(8),
        nullable=False,
        server_default="cnet",
        comment="cnet = a process started by `cnet run`; cni = an attachment a CNI runtime made (ADD), "
        "released by its DEL",
    ),
    Column("cni_container_id", Text, nullable=True, comment="kind cni: the runtime's container id (CNI_CONTAINERID)"),
    Column(
        "cni_ifname",
        String(15),
        nullable=True,
        comment="kind cni: the interface name in the runtime's netns (CNI_IFNAME)",
    ),
    Column(
        "restart_policy",
        String(16),
        nullable=False,
        server_default="no",
        comment="--restart: no | on-failure | always | unless-stopped (carried out by the watcher)",
    ),
    Column(
        "restart_max",
        Integer,
        nullable=False,
        server_default="0",
        comment="on-failure:N: at most N restarts (0 = no limit)",
    ),
    Column(
        "restart_count",
        Integer,
        nullable=False,
        server_default="0",
        comment="restarts by the restart policy since the last run/start",
    ),
    Column(
        "last_exit_code",
        Integer,
        nullable=True,
        comment="exit code of the last run of PID 1 that ended, also while a restart runs the next",
    ),
    Column(
        "manually_stopped",
        Integer,
        nullable=False,
        server_default="0",
        comment="1 = stopped by cnet stop / rm -f / Ctrl-C: the restart policy leaves it stopped",
    ),
    CheckConstraint("state IN ('creating', 'running', 'restarting', 'exited', 'removing', 'attached')", name="state"),
    CheckConstraint("kind IN ('cnet', 'cni')", name="kind"),
    # NULLs are distinct: only CNI attachments are constrained, one per (container, ifname).
    UniqueConstraint("cni_container_id", "cni_ifname", name="uq_containers_cni_attachment"),
    comment="Containers: processes in fresh namespaces (one row per `cnet run`, until `cnet rm`), "
    "and attachments CNI runtimes made (state attached, from ADD to DEL).",
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="endpoint id"),
    Column(
        "container_id",
        String(12),
        ForeignKey("containers.id", ondelete="CASCADE"),
        nullable=False,
        comment="container this interface belongs to",
    ),
    Column(
        "network_id",
        String(12),
        ForeignKey("networks.id", ondelete="RESTRICT"),
        nullable=False,
        comment="network the interface is attached to",
    ),
    Column("interface", String(15), nullable=False, comment="interface name inside the container: eth0, eth1, ..."),
    Column(
        "host_veth",
        String(15),
        nullable=False,
        unique=True,
        comment="host end of the veth pair, enslaved to the bridge",
    ),
    Column("ip", String(15), nullable=False, comment="the container's address on this network"),
    Column("ip_int", Integer, nullable=False, comment="the same address as an integer"),
    Column("mac", String(17), nullable=False, comment="MAC address of the container's interface (derived from the IP)"),
    Column(
        "is_default_route",
        Integer,
        nullable=False,
        default=0,
        comment="1 = the container's default route goes via this network's gateway",
    ),
    Column("created_at", Float, nullable=False, comment="time of attachment, Unix seconds"),
    Column(
        "aliases",
        Text,
        nullable=False,
        server_default="[]",
        comment="JSON list of extra names (--network-alias, net connect --alias) the container has on this network",
    ),
    Column("ip6", String(39), nullable=True, comment="the container's IPv6 address on this network, or NULL"),
    UniqueConstraint("container_id", "network_id", name="uq_endpoints_container_network"),
    UniqueConstraint("container_id", "interface", name="uq_endpoints_container_interface"),
    comment=(
        "A container's attachment to a network: one veth pair and one address. "
        "Deleted when the container's process ends."
    ),
)


def _allocations(name: str, address: Column, comment: str, width: int = 15, what: str = "dotted") -> Table:
    return Table(
        name,
        metadata,
        Column(
            "network_id",
            String(12),
            ForeignKey("networks.id", ondelete="CASCADE"),
            primary_key=True,
            comment="network the address belongs to",
        ),
        address,
        Column("address", String(width), nullable=False, comment=f"allocated address in {what} form"),
        Column("kind", String(16), nullable=False, comment="gateway | dynamic | static"),
        Column(
            "endpoint_id",
            Integer,
            ForeignKey("endpoints.id", ondelete="CASCADE"),
            nullable=True,
            unique=True,
            comment="endpoint holding the address; NULL for the gateway",
        ),
        Column("allocated_at", Float, nullable=False, comment="allocation time, Unix seconds"),
        CheckConstraint("kind IN ('gateway', 'dynamic', 'static')", name="kind"),
        comment=comment,
    )


ip_allocations = _allocations(
    "ip_allocations",
    Column(
        "address_int", Integer, primary_key=True, comment="allocated address as an integer (IPAM works on integers)"
    ),
    "Addresses in use per network. The primary key makes a double allocation impossible.",
)
ip6_allocations = _allocations(
    "ip6_allocations",
    Column("address_hex", String(32), primary_key=True, comment="allocated IPv6 address as 32 lower-case hex digits"),
    "IPv6 addresses in use per dual-stack network, as ip_allocations for IPv4.",
    39,
    "compressed IPv6",
)

port_mappings = Table(
    "port_mappings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="mapping id"),
    Column(
        "container_id",
        String(12),
        ForeignKey("containers.id", ondelete="CASCADE"),
        nullable=False,
        comment="container the port is published for",
    ),
    Column(
        "endpoint_id",
        Integer,
        ForeignKey("endpoints.id", ondelete="CASCADE"),
        nullable=False,
        comment="endpoint (network address) the traffic is sent to",
    ),
    Column(
        "host_ip", String(15), nullable=False, comment="host address the mapping listens on; 0.0.0.0 = every address"
    ),
    Column("host_port", Integer, nullable=False, comment="host port"),
    Column("container_port", Integer, nullable=False, comment="port inside the container"),
    Column("protocol", String(3), nullable=False, comment="tcp | udp"),
    Column("created_at", Float, nullable=False, comment="time the rules were installed, Unix seconds"),
    UniqueConstraint("host_ip", "host_port", "protocol", name="uq_port_mappings_host_ip_port_protocol"),
    CheckConstraint("protocol IN ('tcp', 'udp')", name="protocol"),
    CheckConstraint("host_port BETWEEN 1 AND 65535 AND container_port BETWEEN 1 AND 65535", name="port_range"),
    comment="Published host ports (DNAT rules) of running containers. Deleted when the container's process ends.",
)

operations = Table(
    "operations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="operation id, shown by `cnet journal`"),
    Column("kind", String(32), nullable=False, comment="net-create, net-rm, run, release, net-connect, ..."),
    Column("target", String(64), nullable=False, comment="name or id of the network/container the operation acts on"),
    Column(
        "direction",
        String(8),
        nullable=False,
        comment="create = roll back on failure/crash; destroy = roll forward (finish it)",
    ),
    Column("status", String(16), nullable=False, comment="running | done | rolled_back | failed"),
    Column(
        "owner_pid",
        Integer,
        nullable=True,
        comment="PID of the cnet process running it; a dead owner means it was interrupted",
    ),
    Column("owner_start_time", Integer, nullable=True, comment="start time of owner_pid, guards against PID reuse"),
    Column("started_at", Float, nullable=False, comment="start time, Unix seconds"),
    Column("finished_at", Float, nullable=True, comment="end time, Unix seconds"),
    Column("error", Text, nullable=True, comment="the error that ended it, if any"),
    Column(
        "recovered",
        Integer,
        nullable=False,
        default=0,
        comment="1 = finished by crash recovery in a later cnet process",
    ),
    CheckConstraint("status IN ('running', 'done', 'rolled_back', 'failed')", name="status"),
    CheckConstraint("direction IN ('create', 'destroy')", name="direction"),
    comment="The journal: one row per mutating operation.",
)

operation_steps = Table(
    "operation_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="step id"),
    Column(
        "operation_id",
        Integer,
        ForeignKey("operations.id", ondelete="CASCADE"),
        nullable=False,
        comment="operation the step belongs to",
    ),
    Column("seq", Integer, nullable=False, comment="order of the step within the operation, from 0"),
    Column("summary", Text, nullable=False, comment="what the step does, in words"),
    Column(
        "command", Text, nullable=False, comment="the command as a shell line (quoted, with its stdin as a heredoc)"
    ),
    Column("do_json", Text, nullable=False, comment="JSON {argv, stdin} of the command"),
    Column("undo_json", Text, nullable=False, comment="JSON list of {argv, stdin}: the commands that undo the step"),
    Column(
        "fallback_json",
        Text,
        nullable=False,
        default="[]",
        comment="JSON list of {argv, stdin}: run one by one, errors tolerated, when a teardown command fails",
    ),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="pending | started | done | failed | undone | undo_failed | skipped",
    ),
    Column("started_at", Float, nullable=True, comment="when the command was started, Unix seconds"),
    Column("finished_at", Float, nullable=True, comment="when it ended, Unix seconds"),
    Column("duration_ms", Float, nullable=True, comment="run time of the command in milliseconds"),
    Column("exit_code", Integer, nullable=True, comment="exit code of the command"),
    Column("error", Text, nullable=True, comment="stderr of a failed command or undo"),
    UniqueConstraint("operation_id", "seq", name="uq_operation_steps_operation_seq"),
    CheckConstraint(
        "status IN ('pending', 'started', 'done', 'failed', 'undone', 'undo_failed', 'skipped')", name="status"
    ),
    comment="The journal's steps: each command run, its undo, timing and outcome.",
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True, comment="setting name"),
    Column("value", Text, nullable=False, comment="setting value"),
    comment="Host facts cnet must restore, e.g. ip_forward before the first network.",
)


def _labels(name: str, owner: str, table: str, noun: str, option: str, comment: str) -> Table:
    return Table(
        name,
        metadata,
        Column(owner, String(12), ForeignKey(f"{table}.id", ondelete="CASCADE"), primary_key=True, comment=noun),
        Column("key", String(255), primary_key=True, comment=f"label key (`{option} --label KEY=VALUE`)"),
        Column("value", Text, nullable=False, comment="label value ('' for `--label KEY`)"),
        comment=comment,
    )


container_labels = _labels(
    "container_labels",
    "container_id",
    "containers",
    "container the label is on",
    "cnet run",
    "Labels of containers (`cnet run --label`), for `ps --filter label=...` and SQL.",
)
network_labels = _labels(
    "network_labels",
    "network_id",
    "networks",
    "network the label is on",
    "cnet net create",
    "Labels of networks (`cnet net create --label`).",
)

Index("ix_operations_status", operations.c.status)
Index("ix_endpoints_network_id", endpoints.c.network_id)
Index("ix_port_mappings_container_id", port_mappings.c.container_id)
Index("ix_containers_state", containers.c.state)
