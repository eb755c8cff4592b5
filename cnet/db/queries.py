"""Every SQL statement cnet runs, as a named constant (tests/unit/test_queries.py prepares each one
on a database migrated to head, so a misspelt column fails there, not at run time).

Grouped by table. Placeholders are `?` (or `?N` where one value is used twice). The only SQL built
at run time is `Connection.insert()`, which quotes the identifiers it is given.
"""

from __future__ import annotations

# --- networks -------------------------------------------------------------------------------------
NETWORK_BY_REF = "SELECT * FROM networks WHERE name = ?1 OR id = ?1"
NETWORK_NAME_TAKEN = "SELECT 1 FROM networks WHERE name = ?"
NETWORK6_OVERLAPPING = "SELECT name, subnet6 FROM networks WHERE subnet6_first <= ? AND subnet6_last >= ? LIMIT 1"
NETWORK6_COUNT_OTHERS = "SELECT count(*) FROM networks WHERE subnet6 IS NOT NULL AND id != ?"
NETWORK_OVERLAPPING = "SELECT name, subnet FROM networks WHERE subnet_first_int <= ? AND subnet_last_int >= ? LIMIT 1"
NETWORK_COUNT = "SELECT count(*) FROM networks"
NETWORK_COUNT_OTHERS = "SELECT count(*) FROM networks WHERE id != ?"
NETWORK_SET_STATE = "UPDATE networks SET state = ? WHERE id = ?"
NETWORK_DELETE = "DELETE FROM networks WHERE id = ?"
NETWORK_USERS = (
    "SELECT c.name, c.kind FROM endpoints e JOIN containers c ON c.id = e.container_id "
    "WHERE e.network_id = ? ORDER BY c.name"
)
NETWORK_MEMBERS = (
    "SELECT c.name, c.id, e.interface, e.ip, e.mac, e.host_veth, e.ip6 FROM endpoints e "
    "JOIN containers c ON c.id = e.container_id WHERE e.network_id = ? ORDER BY c.name"
)
NETWORKS_BY_NAME_WITH_COUNTS = (
    "SELECT n.*, (SELECT count(*) FROM endpoints e WHERE e.network_id = n.id) AS containers "
    "FROM networks n ORDER BY n.name"
)
NETWORKS_ALL = "SELECT * FROM networks ORDER BY created_at, id"
NETWORK_READY_BRIDGE_BY_REF = "SELECT bridge, bridge_mac FROM networks WHERE (name = ?1 OR id = ?1) AND state = 'ready'"
NETWORK_CURSOR = "SELECT alloc_cursor_int FROM networks WHERE id = ?"
NETWORK_SET_CURSOR = "UPDATE networks SET alloc_cursor_int = ? WHERE id = ?"

# --- settings -------------------------------------------------------------------------------------
SETTING_GET = "SELECT value FROM settings WHERE key = ?"
SETTING_PUT = "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)"
SETTING_DELETE = "DELETE FROM settings WHERE key = ?"

# --- containers -----------------------------------------------------------------------------------
CONTAINER_BY_REF = "SELECT * FROM containers WHERE name = ?1 OR id = ?1"
CONTAINERS_BY_ID_PREFIX = "SELECT * FROM containers WHERE id LIKE ? LIMIT 2"
CONTAINER_BY_ID = "SELECT * FROM containers WHERE id = ?"
CONTAINER_NAME_TAKEN = "SELECT 1 FROM containers WHERE name = ?1 OR id = ?1"
CONTAINER_MARK_RUNNING = (
    "UPDATE containers SET state = 'running', started_at = ?, boot_id = ?, watcher_pid = ?, "
    "watcher_start_time = ? WHERE id = ?"
)
CONTAINER_SET_WATCHER = "UPDATE containers SET watcher_pid = ?, watcher_start_time = ? WHERE id = ?"
CONTAINER_SET_PID = "UPDATE containers SET pid = ?, pid_start_time = ? WHERE id = ? AND state = 'running'"
# Exactly one of the racing parties (watcher, stop, rm, a recovering command) gets rowcount 1.
# Between two runs of a restart policy, the exit code is the last run's.
CONTAINER_CLAIM_RUNNING = (
    "UPDATE containers SET state = ?, "
    "exit_code = coalesce(?, CASE WHEN state = 'restarting' THEN last_exit_code END, exit_code), "
    "finished_at = coalesce(finished_at, ?) WHERE id = ? AND state IN ('running', 'restarting')"
)
# --- restart policies (services/containers/restart.py) ---
CONTAINER_SET_SPEC = "UPDATE containers SET spec = ? WHERE id = ?"
CONTAINER_MARK_MANUALLY_STOPPED = "UPDATE containers SET manually_stopped = 1 WHERE id = ?"
# The watcher's reaper takes the container from running to restarting (the policy said so);
# rowcount 0 when a stop or rm came first.
CONTAINER_BEGIN_RESTART = (
    "UPDATE containers SET state = 'restarting', restart_count = restart_count + 1, last_exit_code = ?, "
    "pid = NULL, pid_start_time = NULL, finished_at = ?, started_at = ? "
    "WHERE id = ? AND state IN ('running', 'restarting') AND manually_stopped = 0"
)
CONTAINER_RESTARTED = (
    "UPDATE containers SET state = 'running', pid = ?, pid_start_time = ?, started_at = ?, finished_at = NULL "
    "WHERE id = ? AND state = 'restarting' AND manually_stopped = 0"
)
CONTAINER_SET_EXIT_CODES = "UPDATE containers SET exit_code = ?, last_exit_code = ? WHERE id = ?"
# `cnet start`: an exited container becomes 'creating' again while its network is re-wired.
CONTAINER_BEGIN_START = (
    "UPDATE containers SET state = 'creating', pid = NULL, pid_start_time = NULL, exit_code = NULL, "
    "finished_at = NULL, manually_stopped = 0, restart_count = 0, detached = 1, log_path = coalesce(log_path, ?) "
    "WHERE id = ? AND state = 'exited'"
)
CONTAINER_UNDO_START = (
    "UPDATE containers SET state = 'exited', exit_code = coalesce(exit_code, last_exit_code) WHERE id = ?"
)
CONTAINERS_TO_RESTORE = (
    "SELECT * FROM containers WHERE state = 'exited' AND manually_stopped = 0 "
    "AND restart_policy IN ('always', 'unless-stopped') ORDER BY created_at, id"
)
CONTAINER_SET_EXIT_CODE = "UPDATE containers SET exit_code = ? WHERE id = ?"
CONTAINER_DELETE = "DELETE FROM containers WHERE id = ?"
CONTAINER_DELETE_FINISHED = "DELETE FROM containers WHERE id = ? AND state IN ('exited', 'removing')"
CONTAINER_DELETE_IF_REMOVING = "DELETE FROM containers WHERE id = ? AND state = 'removing'"
# A released container is exited, unless `rm -f` claimed it as 'removing'.
CONTAINER_RELEASED = (
    "UPDATE containers SET state = CASE WHEN state = 'removing' THEN 'removing' ELSE 'exited' END, "
    "pid = NULL, pid_start_time = NULL, finished_at = coalesce(finished_at, ?), "
    "exit_code = coalesce(exit_code, ?) WHERE id = ?"
)
# 'removing' rows no running operation owns: an `rm -f` killed between release and delete.
CONTAINER_ORPHAN_REMOVING_EXISTS = (
    "SELECT 1 FROM containers WHERE state = 'removing' "
    "AND id NOT IN (SELECT target FROM operations WHERE status = 'running') LIMIT 1"
)
CONTAINER_ORPHAN_REMOVING_DELETE = (
    "DELETE FROM containers WHERE state = 'removing' "
    "AND id NOT IN (SELECT target FROM operations WHERE status = 'running')"
)
CONTAINERS_RUNNING_PROCESSES = (
    "SELECT id, name, pid, pid_start_time, watcher_pid, watcher_start_time, boot_id "
    "FROM containers WHERE state IN ('running', 'restarting')"
)
CONTAINERS_ALL = "SELECT * FROM containers ORDER BY created_at, id"
# `cnet ps` without -a: running (or restarting) containers and the attachments CNI runtimes hold.
CONTAINERS_RUNNING = (
    "SELECT * FROM containers WHERE state IN ('running', 'restarting', 'attached') ORDER BY created_at, id"
)
# `cnet ps`: the columns it shows, without the JSON ones it does not (env, spec).
CONTAINER_LINE = "SELECT id, name, state, pid, exit_code, last_exit_code, kind, hostname, created_at FROM containers"
CONTAINER_LINES_ALL = CONTAINER_LINE + " ORDER BY created_at, id"
CONTAINER_LINES_RUNNING = (
    CONTAINER_LINE + " WHERE state IN ('running', 'restarting', 'attached') ORDER BY created_at, id"
)
# containers.command (a JSON array of strings) word by word, in order, for the same containers.
# As bytes: a word may hold a lone surrogate (an argument that was not UTF-8, which json.dumps
# wrote as \udcXX), and json_each gives it back as UTF-8 that sqlite3 would refuse to decode.
COMMAND_WORDS = "SELECT c.id, CAST(w.value AS BLOB) FROM containers c, json_each(c.command) w"
COMMAND_WORDS_ALL = COMMAND_WORDS + " ORDER BY c.id, w.key"
COMMAND_WORDS_RUNNING = COMMAND_WORDS + " WHERE c.state IN ('running', 'restarting', 'attached') ORDER BY c.id, w.key"
CONTAINER_IDS = "SELECT id FROM containers"
CONTAINER_EXIT_CODE = "SELECT exit_code FROM containers WHERE id = ?"
CONTAINER_STATE = "SELECT state FROM containers WHERE id = ?"
CONTAINER_SET_STATE = "UPDATE containers SET state = ? WHERE id = ?"

# --- CNI attachments (containers of kind cni) -------------------------------------------------------
ATTACHMENT_BY_RUNTIME = "SELECT * FROM containers WHERE kind = 'cni' AND cni_container_id = ? AND cni_ifname = ?"
ATTACHMENTS_ALL = "SELECT * FROM containers WHERE kind = 'cni' ORDER BY created_at, id"
ATTACHMENTS_ON_NETWORK = (
    "SELECT c.* FROM containers c JOIN endpoints e ON e.container_id = c.id "
    "WHERE c.kind = 'cni' AND e.network_id = ? ORDER BY c.created_at, c.id"
)
# Exactly one DEL (or GC, or `cnet gc`) takes an attachment out of `attached`.
ATTACHMENT_CLAIM = "UPDATE containers SET state = 'removing' WHERE id = ? AND state = 'attached'"
ATTACHMENT_HAS_DEFAULT_ROUTE = (
    "SELECT 1 FROM containers c JOIN endpoints e ON e.container_id = c.id "
    "WHERE c.kind = 'cni' AND c.cni_container_id = ? AND e.is_default_route = 1"
)

# --- endpoints (always with the network facts their wiring needs) ---------------------------------
_ENDPOINTS = (
    "SELECT e.*, n.name AS network, n.bridge, n.gateway, n.prefix_len, n.mtu, n.gateway6, n.subnet6, n.bridge_mac "
    "FROM endpoints e JOIN networks n ON n.id = e.network_id "
)
ENDPOINTS_OF = _ENDPOINTS + "WHERE e.container_id = ? ORDER BY e.interface"
ENDPOINTS_ALL = _ENDPOINTS + "ORDER BY e.container_id, e.interface"
ENDPOINT_ON = _ENDPOINTS + "WHERE e.container_id = ? AND e.network_id = ?"
ENDPOINT_HAS_DEFAULT_ROUTE = "SELECT 1 FROM endpoints WHERE container_id = ? AND is_default_route = 1"
ENDPOINT_INTERFACES = "SELECT interface FROM endpoints WHERE container_id = ?"
ENDPOINT_DELETE = "DELETE FROM endpoints WHERE container_id = ? AND network_id = ?"
ENDPOINTS_DELETE_OF = "DELETE FROM endpoints WHERE container_id = ?"
ENDPOINT_IPS = "SELECT container_id, ip, ip6 FROM endpoints ORDER BY interface"

ENDPOINT_NETWORK_NAMES = (
    "SELECT e.container_id, n.name FROM endpoints e JOIN networks n ON n.id = e.network_id ORDER BY e.interface"
)

# --- names (the hosts files of running containers) -------------------------------------------------
# Containers attached to any of the networks in the JSON list ?.
NAME_VIEWERS = "SELECT DISTINCT container_id FROM endpoints WHERE network_id IN (SELECT value FROM json_each(?))"
# Every endpoint on a network that one of the containers in the JSON list ? is attached to.
NAME_MEMBERS = (
    "SELECT e.network_id, e.container_id, e.interface, e.ip, e.ip6, e.aliases, c.name, c.hostname FROM endpoints e "
    "JOIN containers c ON c.id = e.container_id WHERE e.network_id IN "
    "(SELECT network_id FROM endpoints WHERE container_id IN (SELECT value FROM json_each(?))) "
    "ORDER BY e.network_id, c.name"
)
NAME_RUNNING_IDS = "SELECT id FROM containers WHERE state IN ('running', 'restarting')"

# --- shell completion (read-only) -------------------------------------------------------------------
COMPLETE_CONTAINER_NAMES = "SELECT name FROM containers WHERE name LIKE ? ESCAPE '\\' ORDER BY name"
COMPLETE_NETWORK_NAMES = "SELECT name FROM networks WHERE name LIKE ? ESCAPE '\\' ORDER BY name"

# --- labels ------------------------------------------------------------------------------------------
CONTAINER_LABELS_OF = "SELECT key, value FROM container_labels WHERE container_id = ? ORDER BY key"
CONTAINER_LABELS_ALL = "SELECT container_id, key, value FROM container_labels ORDER BY key"
NETWORK_LABELS_OF = "SELECT key, value FROM network_labels WHERE network_id = ? ORDER BY key"

# --- prune -------------------------------------------------------------------------------------------
CONTAINERS_EXITED_IDS = "SELECT id FROM containers WHERE state = 'exited' ORDER BY created_at, id"
NETWORKS_UNUSED_NAMES = (
    "SELECT name FROM networks n WHERE state = 'ready' "
    "AND NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.network_id = n.id) ORDER BY name"
)

# --- port mappings ----------------------------------------------------------------------------------
_PORTS = (
    "SELECT p.*, e.ip AS container_ip, e.ip6 AS container_ip6 FROM port_mappings p "
    "JOIN endpoints e ON e.id = p.endpoint_id "
)
PORTS_OF = _PORTS + "WHERE p.container_id = ? ORDER BY p.host_port, p.protocol"
PORTS_ALL = _PORTS + "ORDER BY p.container_id, p.host_port, p.protocol"
PORT_CONFLICT = (
    "SELECT c.name, p.host_ip FROM port_mappings p JOIN containers c ON c.id = p.container_id "
    "WHERE p.protocol = ?1 AND p.host_port = ?2 AND (p.host_ip = ?3 OR p.host_ip = '0.0.0.0' OR ?3 = '0.0.0.0') "
    "LIMIT 1"
)
PORTS_DELETE_OF = "DELETE FROM port_mappings WHERE container_id = ?"
PORT_LIST = "SELECT container_id, host_ip, host_port, container_port, protocol FROM port_mappings ORDER BY host_port"

# --- ip_allocations (cnet.ipam) ----------------------------------------------------------------------
ALLOC_TAKEN = "SELECT 1 FROM ip_allocations WHERE network_id = ? AND address_int = ?"
# First address after a run of taken ones, starting the walk at ?2; index order, stops early.
ALLOC_RUN_END = """
SELECT a.address_int + 1 FROM ip_allocations a
WHERE a.network_id = ?1 AND a.address_int >= ?2 AND a.address_int <= ?3
  AND NOT EXISTS (SELECT 1 FROM ip_allocations b WHERE b.network_id = ?1 AND b.address_int = a.address_int + 1)
ORDER BY a.address_int LIMIT 1
"""
ALLOC_INSERT = (
    "INSERT INTO ip_allocations (network_id, address_int, address, kind, endpoint_id, allocated_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# The primary key rejects a taken address; OR IGNORE turns that into rowcount 0.
ALLOC_INSERT_IF_FREE = (
    "INSERT OR IGNORE INTO ip_allocations (network_id, address_int, address, kind, endpoint_id, allocated_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
ALLOC_HOLDER = (
    "SELECT c.name FROM ip_allocations a LEFT JOIN endpoints e ON e.id = a.endpoint_id "
    "LEFT JOIN containers c ON c.id = e.container_id WHERE a.network_id = ? AND a.address_int = ?"
)
ALLOC_BIND = "UPDATE ip_allocations SET endpoint_id = ? WHERE network_id = ? AND address_int = ?"
ALLOC_DELETE = "DELETE FROM ip_allocations WHERE network_id = ? AND address_int = ?"

# --- ip6_allocations (cnet.ipam6): keys are 32 hex digits, whose text order is numeric order ---------
NETWORK6_CURSOR = "SELECT alloc6_cursor FROM networks WHERE id = ?"
NETWORK6_SET_CURSOR = "UPDATE networks SET alloc6_cursor = ? WHERE id = ?"
ALLOC6_TAKEN = "SELECT 1 FROM ip6_allocations WHERE network_id = ? AND address_hex = ?"
# Taken addresses from ?2 on, in index order: the caller walks them to the first gap and stops.
ALLOC6_FROM = (
    "SELECT address_hex FROM ip6_allocations WHERE network_id = ? AND address_hex >= ? AND address_hex <= ? "
    "ORDER BY address_hex"
)
ALLOC6_INSERT = (
    "INSERT INTO ip6_allocations (network_id, address_hex, address, kind, endpoint_id, allocated_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
ALLOC6_INSERT_IF_FREE = (
    "INSERT OR IGNORE INTO ip6_allocations (network_id, address_hex, address, kind, endpoint_id, allocated_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
ALLOC6_HOLDER = (
    "SELECT c.name FROM ip6_allocations a LEFT JOIN endpoints e ON e.id = a.endpoint_id "
    "LEFT JOIN containers c ON c.id = e.container_id WHERE a.network_id = ? AND a.address_hex = ?"
)
ALLOC6_BIND = "UPDATE ip6_allocations SET endpoint_id = ? WHERE network_id = ? AND address_hex = ?"
ALLOC6_DELETE = "DELETE FROM ip6_allocations WHERE network_id = ? AND address_hex = ?"

# --- the journal (cnet.journal) -----------------------------------------------------------------------
OP_INSERT = (
    "INSERT INTO operations (kind, target, direction, status, owner_pid, owner_start_time, started_at, recovered) "
    "VALUES (?, ?, ?, 'running', ?, ?, ?, 0)"
)
STEP_INSERT = (
    "INSERT INTO operation_steps (operation_id, seq, summary, command, do_json, undo_json, fallback_json, status) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')"
)
STEP_STARTED = "UPDATE operation_steps SET status = 'started', started_at = ? WHERE id = ?"
STEP_DONE = "UPDATE operation_steps SET status = 'done', finished_at = ?, duration_ms = ?, exit_code = 0 WHERE id = ?"
STEP_FAILED = (
    "UPDATE operation_steps SET status = 'failed', finished_at = ?, duration_ms = ?, exit_code = ?, error = ? "
    "WHERE id = ?"
)
STEP_UNDONE = "UPDATE operation_steps SET status = 'undone' WHERE id = ?"
STEP_UNDO_FAILED = "UPDATE operation_steps SET status = 'undo_failed', error = ? WHERE id = ?"
OP_FINISH = "UPDATE operations SET status = ?, finished_at = ?, error = ? WHERE id = ?"
OP_BY_ID = "SELECT id, kind, target, direction FROM operations WHERE id = ?"
OP_STEPS = (
    "SELECT id, seq, summary, do_json, undo_json, fallback_json, status FROM operation_steps "
    "WHERE operation_id = ? ORDER BY seq"
)
OPS_RUNNING_OWNERS = "SELECT id, owner_pid, owner_start_time FROM operations WHERE status = 'running'"
# Compare-and-swap the owner so two recovering processes never both act.
OP_CLAIM = (
    "UPDATE operations SET owner_pid = ?, owner_start_time = ?, recovered = 1 "
    "WHERE id = ? AND status = 'running' AND owner_pid IS ? AND owner_start_time IS ?"
)
OPS_BUSY = "SELECT kind, target FROM operations WHERE status = 'running' OR id > ?"
OP_LAST_ID = "SELECT coalesce(max(id), 0) FROM operations"

# --- `cnet journal` -----------------------------------------------------------------------------------
OPS_RECENT = (
    "SELECT o.id, o.kind, o.target, o.status, o.started_at, o.finished_at, o.error, o.recovered, "
    "(SELECT count(*) FROM operation_steps s WHERE s.operation_id = o.id) AS steps, "
    "(SELECT sum(duration_ms) FROM operation_steps s WHERE s.operation_id = o.id) AS ms "
    "FROM operations o ORDER BY o.id DESC LIMIT ?"
)
OP_DETAIL = (
    "SELECT id, kind, target, direction, status, started_at, finished_at, error, recovered FROM operations WHERE id = ?"
)
OP_DETAIL_STEPS = (
    "SELECT seq, summary, command, undo_json, fallback_json, status, duration_ms, exit_code, error "
    "FROM operation_steps WHERE operation_id = ? ORDER BY seq"
)

# --- overlay networks (driver vxlan) -------------------------------------------------------------------
NETWORKS_OVERLAY = "SELECT * FROM networks WHERE overlay_subnet IS NOT NULL ORDER BY name"
NETWORKS_OVERLAY_SUBNETS = "SELECT name, overlay_subnet FROM networks WHERE overlay_subnet IS NOT NULL"
OVERLAY_PEERS_OF = (
    "SELECT host_subnet, host_id, underlay_ip, vtep_mac FROM overlay_peers WHERE network_id = ? ORDER BY host_subnet"
)
OVERLAY_PEERS_CLEAR = "DELETE FROM overlay_peers WHERE network_id = ?"
OVERLAY_ENDPOINT_COUNT = "SELECT count(*) FROM endpoints WHERE network_id = ?"
# --- stacks (`cnet up` / `down`: membership is the label cnet.stack) -------------------------------
STACK_CONTAINERS = (
    "SELECT c.* FROM containers c JOIN container_labels l ON l.container_id = c.id "
    "WHERE l.key = 'cnet.stack' AND l.value = ? ORDER BY c.created_at, c.id"
)
STACK_NETWORKS = (
    "SELECT n.* FROM networks n JOIN network_labels l ON l.network_id = n.id "
    "WHERE l.key = 'cnet.stack' AND l.value = ? ORDER BY n.created_at, n.id"
)
STACK_LABELS = (
    "SELECT l.container_id, l.key, l.value FROM container_labels l WHERE l.container_id IN "
    "(SELECT container_id FROM container_labels WHERE key = 'cnet.stack' AND value = ?)"
)
# A rolled-back `up` (stack-up): the containers it was creating go, with their rows.
STACK_DELETE_CREATING = (
    "DELETE FROM containers WHERE state = 'creating' AND id IN "
    "(SELECT container_id FROM container_labels WHERE key = 'cnet.stack' AND value = ?)"
)
