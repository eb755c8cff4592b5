"""What `inspect`, `ps` and the foreground `run` show of containers (plain dicts for the CLI)."""

from __future__ import annotations

import shlex
from typing import Any

from ...db import store
from ...db.connection import Connection
from ...kernel import netns as nsk
from ...records import LIVE_STATES, Container, ContainerState, RestartPolicy
from ..networks import iso


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
        "networks": [
            {
                "network": e.network,
                "interface": e.interface,
                "ip": e.ip,
                "prefix_len": e.prefix_len,
                "gateway": e.gateway,
                "mac": e.mac,
                "host_veth": e.host_veth,
            }
            for e in eps
        ],
        "ports": [
            {"host_ip": p.host_ip, "host_port": p.host_port, "container_port": p.container_port, "protocol": p.protocol}
            for p in ports
        ],
        "requested": c.spec,
        "nsenter": nsk.enter_hint(c.pid) if c.pid and c.live else None,
    }


def restart_policy(c: Container) -> str:
    """As given to --restart: `on-failure:3`."""
    if c.restart_policy == RestartPolicy.ON_FAILURE and c.restart_max:
        return f"{c.restart_policy}:{c.restart_max}"
    return str(c.restart_policy)


def list_containers(conn: Connection, all_: bool) -> list[dict[str, Any]]:
    rows = store.containers(conn, all_=all_)
    ips = store.endpoint_ips(conn)
    ports = store.port_lines(conn)
    out = []
    for c in rows:
        state = str(c.state)
        if c.state == ContainerState.EXITED:
            state = f"exited ({c.exit_code})"
        elif c.state == ContainerState.RESTARTING:
            state = f"restarting ({c.last_exit_code})"
        out.append(
            {
                "name": c.name,
                "id": c.id,
                "state": state,
                "pid": c.pid or "",
                "ips": ",".join(ips.get(c.id, [])),
                "ports": ",".join(ports.get(c.id, [])),
                "command": shlex.join(c.command),
            }
        )
    return out
