"""What `cnet ps` shows of containers (plain dicts for the CLI) and its --filter rules, without
records or the store: `ps` loads this and cnet/db/listing_store.py only (and the formats for details)
(tests/unit/test_startup_imports.py)."""

from __future__ import annotations

from ... import states
from ...db import listing_store

# typing itself is not imported: `cnet ps` loads this module (tests/unit/test_startup_imports.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ...db.connection import Connection


def list_containers(conn: Connection, all_: bool, *, details: bool = False) -> list[dict[str, Any]]:
    """One typed row per container for `ps` (numbers as numbers, lists as lists). `state` reads
    as the table shows it ("exited (3)"); `details` adds networks and labels (filters, --format,
    --json), which the plain table does not pay for."""
    rows = listing_store.container_lines(conn, all_=all_)
    ips = listing_store.endpoint_ips(conn)
    ports = listing_store.port_lines(conn)
    nets = listing_store.endpoint_networks(conn) if details else {}
    labels = listing_store.all_container_labels(conn) if details else {}
    if details:
        from ..formats import iso  # the plain table shows no dates
    out = []
    for cid, name, status, pid, exit_code, last_exit_code, command, kind, hostname, created_at in rows:
        state = status
        if status == states.EXITED:
            state = f"exited ({exit_code})"
        elif status == states.RESTARTING:
            state = f"restarting ({last_exit_code})"
        row: dict[str, Any] = {
            "name": name,
            "id": cid,
            "state": state,
            "pid": pid,
            "ips": ips.get(cid, []),
            "ports": ports.get(cid, []),
            "command": list(command),
            "kind": kind,
        }
        if details:
            row |= {
                "status": status,
                "exit_code": exit_code,
                "hostname": hostname,
                "networks": nets.get(cid, []),
                "labels": labels.get(cid, {}),
                "created": iso(created_at),
            }
        out.append(row)
    return out


def matches(row: dict[str, Any], filters: list[tuple[str, str]]) -> bool:
    """Docker's `ps --filter` rules: values of one key are alternatives (OR), different keys must
    all match (AND); every `label` filter must match. name: a substring of the name; label: KEY or
    KEY=VALUE; status: creating|running|exited|removing; network: a network name; id: an id prefix;
    stack: a stack name (`cnet up`)."""
    by_key: dict[str, list[str]] = {}
    for key, value in filters:
        by_key.setdefault(key, []).append(value)
    for key, values in by_key.items():
        if key == "label":
            if not all(_label_matches(row["labels"], v) for v in values):
                return False
        elif not any(_one(row, key, v) for v in values):
            return False
    return True


def _label_matches(labels: dict[str, str], want: str) -> bool:
    key, eq, value = want.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _one(row: dict[str, Any], key: str, value: str) -> bool:
    if key == "name":
        return value in row["name"]
    if key == "status":
        return bool(row["status"] == value)
    if key == "network":
        return value in row["networks"]
    if key == "stack":  # `cnet up`'s stack label (services/stack/spec.py STACK_LABEL)
        return bool(row["labels"].get("cnet.stack") == value)
    return bool(row["id"].startswith(value))  # id
