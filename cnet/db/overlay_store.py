"""Overlay networks in the state database: this host's shares of them (networks rows with
overlay columns), the peers last applied, and the settings that identify this host in etcd.
Every statement from cnet.db.queries."""

from __future__ import annotations

from ..records import Network
from . import queries as q
from .connection import Connection
from .store import get_setting, put_setting

HOST_ID_SETTING = "overlay_host_id"
MEMBER_LEASE_SETTING = "overlay_member_lease"
SUBNET_LEASE_SETTING = "overlay_subnet_lease"
TTL_SETTING = "overlay_ttl"
ETCD_SETTING = "overlay_etcd"  # the endpoints this host joined through
# A file in the state dir while this host has joined an overlay network (a stat, no statement).
MARKER = "overlay-joined"


def overlay_networks(conn: Connection) -> list[Network]:
    return [Network.from_row(r) for r in conn.all(q.NETWORKS_OVERLAY)]


def overlay_subnets(conn: Connection) -> dict[str, str]:
    """Local overlay networks' names -> their whole overlay subnets."""
    return {r["name"]: r["overlay_subnet"] for r in conn.all(q.NETWORKS_OVERLAY_SUBNETS)}


def peers(conn: Connection, network_id: str) -> list[tuple[str, str, str, str]]:
    """(host_subnet, host_id, underlay_ip, vtep_mac) as last applied."""
    return [tuple(r) for r in conn.all(q.OVERLAY_PEERS_OF, (network_id,))]


def set_peers(conn: Connection, network_id: str, rows: list[tuple[str, str, str, str]]) -> None:
    conn.execute(q.OVERLAY_PEERS_CLEAR, (network_id,))
    for subnet, host_id, underlay, mac in rows:
        conn.insert(
            "overlay_peers",
            {
                "network_id": network_id,
                "host_subnet": subnet,
                "host_id": host_id,
                "underlay_ip": underlay,
                "vtep_mac": mac,
            },
        )


def endpoint_count(conn: Connection, network_id: str) -> int:
    n: int = conn.scalar(q.OVERLAY_ENDPOINT_COUNT, (network_id,))
    return n


def setting(conn: Connection, key: str) -> str | None:
    return get_setting(conn, key)


def set_setting(conn: Connection, key: str, value: str) -> None:
    put_setting(conn, key, value)


def forget_host(conn: Connection) -> list[int]:
    """This host left its last overlay network: its id, leases and etcd endpoints go (the host is
    as before its first join). Returns the leases to revoke."""
    found = [get_setting(conn, k) for k in (MEMBER_LEASE_SETTING, SUBNET_LEASE_SETTING)]
    for key in (HOST_ID_SETTING, MEMBER_LEASE_SETTING, SUBNET_LEASE_SETTING, TTL_SETTING, ETCD_SETTING):
        conn.execute(q.SETTING_DELETE, (key,))
    return [int(v) for v in found if v]
