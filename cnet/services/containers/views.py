"""What `inspect`, `ps` and the foreground `run` show of containers (plain dicts for the CLI)."""

from __future__ import annotations

from typing import Any

from ...db import names_store, store
from ...db.connection import Connection
from ...kernel import netns as nsk
from ...records import DEFAULT_LOG_MAX_SIZE, LIVE_STATES, Container, RestartPolicy
from ..formats import iso


def get_container(conn: Connection, ref: str) -> Container:
    return store.get_container(conn, ref)


def exit_code(conn: Connection, container_id: str) -> int | None:
    return store.exit_code(conn, container_id)


def is_running(conn: Connection, container_id: str) -> bool:
    return store.container_state(conn, container_id) in LIVE_STATES


def describe(conn: Connection, c: Container) -> dict[str, Any]:
    eps = store.endpoints_of(conn, c.id)
    ports = store.ports_of(conn, c.id)
    return {
        "id": c.id,
        "name": c.name,
        "pid": c.pid,
        "state": str(c.state),
        "exit_code": c.exit_code,
        "restart_policy": restart_policy(c),
        "restart_count": c.restart_count,
        "last_exit_code": c.last_exit_code,
        "stopped_by_hand": c.manually_stopped,
        "command": list(c.command),
        "hostname": c.hostname,
        "created": iso(c.created_at),
        "started": iso(c.started_at),
        "finished": iso(c.finished_at),
        "netns": c.netns,
        "log_path": c.log_path,
        # Rotated at this size (--log-max-size), into log_path + ".1".
        "log_max_size": int(c.spec.get("log_max_size") or DEFAULT_LOG_MAX_SIZE) if c.log_path else None,
        "networks": [
            {
                "network": e.network,
                "interface": e.interface,
                "ip": e.ip,
                "prefix_len": e.prefix_len,
                "gateway": e.gateway,
                "ip6": e.ip6,
                "prefix6_len": e.prefix6_len,
                "gateway6": e.gateway6,
                "mac": e.mac,
                "host_veth": e.host_veth,
                "aliases": list(e.aliases),
                # What the other containers on this network resolve to this address.
                "dns_names": list(dict.fromkeys([c.name, c.hostname, *e.aliases])),
            }
            for e in eps
        ],
        "ports": [
            {"host_ip": p.host_ip, "host_port": p.host_port, "container_port": p.container_port, "protocol": p.protocol}
            for p in ports
        ],
        "labels": names_store.container_labels(conn, c.id),
        "requested": c.spec,
        "nsenter": nsk.enter_hint(c.pid) if c.pid and c.live else None,
        "kind": str(c.kind),
        "cni": {"container_id": c.cni_container_id, "ifname": c.cni_ifname, "netns": c.netns} if c.is_cni else None,
    }


def restart_policy(c: Container) -> str:
    """As given to --restart: `on-failure:3`."""
    if c.restart_policy == RestartPolicy.ON_FAILURE and c.restart_max:
        return f"{c.restart_policy}:{c.restart_max}"
    return str(c.restart_policy)


def exited_ids(conn: Connection) -> list[str]:
    return names_store.exited_container_ids(conn)
