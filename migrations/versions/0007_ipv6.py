"""IPv6 dual-stack networks: the networks' IPv6 columns, endpoints.ip6, the table ip6_allocations,
and the views v_endpoints and v_ip_allocations showing both families

Revision ID: 0007_ipv6
Revises: 0006_restart
Create Date: 2026-12-01 14:40:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0007_ipv6"
down_revision = "0006_restart"
branch_labels = None
depends_on = None

# Frozen copies (see 0001_initial): the columns as added, and the two views before and after.
NETWORK_COLUMNS = (
    ('subnet6', 43, 'IPv6 subnet in CIDR form (--ipv6), NULL = IPv4 only'),
    ('subnet6_first', 32, 'first address of subnet6 as 32 hex digits (overlap checks)'),
    ('subnet6_last', 32, 'last address of subnet6 as 32 hex digits (overlap checks)'),
    ('gateway6', 39, 'IPv6 gateway address, held by the bridge'),
    ('ip_range6', 43, 'IPv6 sub-range for dynamic allocation (CIDR), NULL = whole subnet6'),
    ('range6_first', 32, 'first IPv6 address IPAM may hand out dynamically, 32 hex digits'),
    ('range6_last', 32, 'last IPv6 address IPAM may hand out dynamically, 32 hex digits'),
    ('alloc6_cursor', 32, 'IPv6 next-fit cursor: the address handed out last, 32 hex digits'),
)
VIEWS_OLD = {
    "v_endpoints": '        SELECT n.name AS network, c.name AS container, c.id AS container_id, e.interface, e.ip,\n               n.prefix_len, n.gateway, e.mac, e.host_veth, n.bridge\n        FROM endpoints e JOIN networks n ON n.id = e.network_id JOIN containers c ON c.id = e.container_id',
    "v_ip_allocations": '        SELECT n.name AS network, a.address, a.kind, c.name AS container, c.id AS container_id\n        FROM ip_allocations a JOIN networks n ON n.id = a.network_id\n        LEFT JOIN endpoints e ON e.id = a.endpoint_id LEFT JOIN containers c ON c.id = e.container_id',
}
VIEWS_NEW = {
    "v_endpoints": '\n        SELECT n.name AS network, c.name AS container, c.id AS container_id, e.interface, e.ip,\n               n.prefix_len, n.gateway, e.mac, e.host_veth, n.bridge, e.ip6, n.gateway6\n        FROM endpoints e JOIN networks n ON n.id = e.network_id JOIN containers c ON c.id = e.container_id',
    "v_ip_allocations": '\n        SELECT n.name AS network, a.address, a.kind, c.name AS container, c.id AS container_id, 4 AS family\n        FROM ip_allocations a JOIN networks n ON n.id = a.network_id\n        LEFT JOIN endpoints e ON e.id = a.endpoint_id LEFT JOIN containers c ON c.id = e.container_id\n        UNION ALL\n        SELECT n.name, a.address, a.kind, c.name, c.id, 6\n        FROM ip6_allocations a JOIN networks n ON n.id = a.network_id\n        LEFT JOIN endpoints e ON e.id = a.endpoint_id LEFT JOIN containers c ON c.id = e.container_id',
}


def _views(views: dict[str, str]) -> None:
    for name, sql in views.items():
        op.execute(f"DROP VIEW IF EXISTS {name}")
        op.execute(f"CREATE VIEW {name} AS {sql}")


def upgrade() -> None:
    # Plain ADD COLUMNs (all nullable), never a table copy: with foreign keys on, dropping the old
    # networks or endpoints table would cascade into ip_allocations and port_mappings.
    for name, length, comment in NETWORK_COLUMNS:
        op.add_column("networks", sa.Column(name, sa.String(length=length), nullable=True, comment=comment))
    op.add_column(
        "endpoints",
        sa.Column("ip6", sa.String(length=39), nullable=True,
                  comment="the container's IPv6 address on this network, or NULL"),
    )
    op.create_table(
        "ip6_allocations",
        sa.Column("network_id", sa.String(length=12), nullable=False, comment="network the address belongs to"),
        sa.Column("address_hex", sa.String(length=32), nullable=False,
                  comment="allocated IPv6 address as 32 lower-case hex digits"),
        sa.Column("address", sa.String(length=39), nullable=False, comment="allocated address in compressed IPv6 form"),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="gateway | dynamic | static"),
        sa.Column("endpoint_id", sa.Integer(), nullable=True, comment="endpoint holding the address; NULL for the gateway"),
        sa.Column("allocated_at", sa.Float(), nullable=False, comment="allocation time, Unix seconds"),
        sa.CheckConstraint("kind IN ('gateway', 'dynamic', 'static')", name=op.f("ck_ip6_allocations_kind")),
        sa.ForeignKeyConstraint(["endpoint_id"], ["endpoints.id"],
                                name=op.f("fk_ip6_allocations_endpoint_id_endpoints"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"],
                                name=op.f("fk_ip6_allocations_network_id_networks"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("network_id", "address_hex", name=op.f("pk_ip6_allocations")),
        sa.UniqueConstraint("endpoint_id", name=op.f("uq_ip6_allocations_endpoint_id")),
        comment="IPv6 addresses in use per dual-stack network, as ip_allocations for IPv4.",
    )
    _views(VIEWS_NEW)


def downgrade() -> None:
    _views(VIEWS_OLD)  # first: the new views name the columns and the table that go
    op.drop_table("ip6_allocations")
    # SQLite's own DROP COLUMN (3.35+): no table copy (see upgrade).
    op.execute("ALTER TABLE endpoints DROP COLUMN ip6")
    for name, _length, _comment in reversed(NETWORK_COLUMNS):
        op.execute(f"ALTER TABLE networks DROP COLUMN {name}")
