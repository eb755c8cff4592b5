"""Overlay networks (driver vxlan): networks.overlay_subnet, vni, vtep_mac, underlay_ip,
underlay_dev, and the table overlay_peers

Revision ID: 0009_overlay
Revises: 0006_restart
Create Date: 2026-12-01 14:30:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0009_overlay"
down_revision = "0007_ipv6"
branch_labels = None
depends_on = None

COLUMNS = (
    ("overlay_subnet", sa.String(length=18), "driver vxlan: the whole overlay's subnet in etcd (subnet is this host's share); NULL for bridges"),
    ("vni", sa.Integer(), "driver vxlan: VXLAN network identifier; NULL for bridges"),
    ("vtep_mac", sa.String(length=17), "driver vxlan: MAC of this host's vxlan device"),
    ("underlay_ip", sa.String(length=15), "driver vxlan: this host's VXLAN source address"),
    ("underlay_dev", sa.String(length=15), "driver vxlan: the link the underlay address is on"),
)


def upgrade() -> None:
    # Plain ADD COLUMNs, never a table copy: with foreign keys on, dropping the old networks
    # table would cascade into ip_allocations and endpoints.
    for name, type_, comment in COLUMNS:
        op.execute(f"ALTER TABLE networks ADD COLUMN {name} {type_.compile(dialect=op.get_bind().dialect)}")
        del comment  # SQLite keeps no column comments; the model (cnet/db/schema_overlay.py) has them
    op.create_table(
        "overlay_peers",
        sa.Column("network_id", sa.String(length=12), nullable=False, comment="overlay network (driver vxlan) the peer is on"),
        sa.Column("host_subnet", sa.String(length=18), nullable=False, comment="the peer host's share of the overlay subnet"),
        sa.Column("host_id", sa.String(length=32), nullable=False, comment="the peer host's id in etcd"),
        sa.Column("underlay_ip", sa.String(length=15), nullable=False, comment="the peer's VXLAN endpoint address (fdb dst)"),
        sa.Column("vtep_mac", sa.String(length=17), nullable=False, comment="the peer's vxlan device MAC (neighbour and fdb)"),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_overlay_peers_network_id_networks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("network_id", "host_subnet", name=op.f("pk_overlay_peers")),
        comment="Peers of overlay networks as last applied here: one route, neighbour and fdb entry each.",
    )


def downgrade() -> None:
    op.drop_table("overlay_peers")
    for name, _type, _comment in reversed(COLUMNS):
        op.execute(f"ALTER TABLE networks DROP COLUMN {name}")
