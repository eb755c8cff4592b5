"""Names and labels in the state database: who sees whom on which network (the containers' hosts
files), and the labels of containers and networks. Every statement from cnet.db.queries."""

from __future__ import annotations

import json
import sqlite3

from . import queries as q
from .connection import Connection


def name_viewers(conn: Connection, network_ids: list[str]) -> list[str]:
    return [r[0] for r in conn.all(q.NAME_VIEWERS, (json.dumps(network_ids),))]


def name_members(conn: Connection, container_ids: list[str]) -> list[sqlite3.Row]:
    """(network_id, container_id, interface, ip, ip6, aliases, name, hostname) of every endpoint on a
    network one of the containers is attached to."""
    return conn.all(q.NAME_MEMBERS, (json.dumps(container_ids),))


def running_ids(conn: Connection) -> list[str]:
    """Live containers (running, or restarting in place: their endpoints and names stay)."""
    return [r[0] for r in conn.all(q.NAME_RUNNING_IDS)]


def names_starting(conn: Connection, kind: str, prefix: str) -> list[str]:
    """Container (kind 'container') or network names that start with `prefix` (shell completion)."""
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    sql = q.COMPLETE_CONTAINER_NAMES if kind == "container" else q.COMPLETE_NETWORK_NAMES
    return [r[0] for r in conn.all(sql, (like,))]


def insert_labels(conn: Connection, table: str, owner: str, owner_id: str, labels: dict[str, str]) -> None:
    for key, value in labels.items():
        conn.insert(table, {owner: owner_id, "key": key, "value": value})


def container_labels(conn: Connection, container_id: str) -> dict[str, str]:
    return {k: v for k, v in conn.all(q.CONTAINER_LABELS_OF, (container_id,))}


def network_labels(conn: Connection, network_id: str) -> dict[str, str]:
    return {k: v for k, v in conn.all(q.NETWORK_LABELS_OF, (network_id,))}


def exited_container_ids(conn: Connection) -> list[str]:
    return [r[0] for r in conn.all(q.CONTAINERS_EXITED_IDS)]


def unused_network_names(conn: Connection) -> list[str]:
    return [r[0] for r in conn.all(q.NETWORKS_UNUSED_NAMES)]
