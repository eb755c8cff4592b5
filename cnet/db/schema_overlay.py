"""Overlay networks' part of the schema (cnet/db/schema.py holds the rest): the columns a VXLAN
network adds to its `networks` row, and the peers each host last applied. The cluster's own truth
lives in etcd (cnet/cluster.py); these rows are what this host built from it, so that restore and
gc can re-create the kernel objects without etcd, and `cnet sql` shows them."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table


def network_overlay_columns() -> list[Column]:
    return [
        Column(
            "overlay_subnet",
            String(18),
            nullable=True,
            comment="driver vxlan: the whole overlay's subnet in etcd (subnet is this host's share); NULL for bridges",
        ),
        Column("vni", Integer, nullable=True, comment="driver vxlan: VXLAN network identifier; NULL for bridges"),
        Column("vtep_mac", String(17), nullable=True, comment="driver vxlan: MAC of this host's vxlan device"),
        Column("underlay_ip", String(15), nullable=True, comment="driver vxlan: this host's VXLAN source address"),
        Column("underlay_dev", String(15), nullable=True, comment="driver vxlan: the link the underlay address is on"),
    ]


def overlay_peers_table(metadata: MetaData) -> Table:
    return Table(
        "overlay_peers",
        metadata,
        Column(
            "network_id",
            String(12),
            ForeignKey("networks.id", ondelete="CASCADE"),
            primary_key=True,
            comment="overlay network (driver vxlan) the peer is on",
        ),
        Column("host_subnet", String(18), primary_key=True, comment="the peer host's share of the overlay subnet"),
        Column("host_id", String(32), nullable=False, comment="the peer host's id in etcd"),
        Column("underlay_ip", String(15), nullable=False, comment="the peer's VXLAN endpoint address (fdb dst)"),
        Column("vtep_mac", String(17), nullable=False, comment="the peer's vxlan device MAC (neighbour and fdb)"),
        comment="Peers of overlay networks as last applied here: one route, neighbour and fdb entry each.",
    )
