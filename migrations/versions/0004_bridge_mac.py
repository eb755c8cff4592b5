"""networks.bridge_mac: every bridge gets a MAC of its own

Revision ID: 0004_bridge_mac
Revises: 0001_initial
Create Date: 2026-12-01 12:30:00.000000

A bridge without an address of its own copies the lowest MAC of its ports and changes it when that
port leaves, which leaves the neighbours' ARP entries for the gateway stale. Existing networks get
the MAC that cnet.naming.bridge_mac() gives new ones, derived here in SQL (frozen: a later change to
naming must not change what this revision wrote): 0a: followed by the first ten hex digits of the
network id, the digits of the bridge name. `cnet gc` / `cnet net restore` then set it on the bridge.
"""

from alembic import op
import sqlalchemy as sa

revision = "0004_bridge_mac"
down_revision = '0003_cni'
branch_labels = None
depends_on = None

COMMENT = "the bridge's own MAC, set at creation and on re-creation (0a: + the bridge name's hex digits)"
DERIVE = (
    "UPDATE networks SET bridge_mac = '0a:' || substr(id, 1, 2) || ':' || substr(id, 3, 2) || ':' || "
    "substr(id, 5, 2) || ':' || substr(id, 7, 2) || ':' || substr(id, 9, 2) WHERE bridge_mac = ''"
)


def upgrade() -> None:
    # A plain ADD COLUMN (NOT NULL needs a default there), never a table copy: with foreign keys
    # on, dropping the old networks table would cascade into ip_allocations.
    with op.batch_alter_table("networks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("bridge_mac", sa.String(length=17), server_default="", nullable=False, comment=COMMENT)
        )
    op.execute(DERIVE)


def downgrade() -> None:
    # SQLite's own DROP COLUMN (3.35+), for the same reason as above: no table copy.
    op.execute("ALTER TABLE networks DROP COLUMN bridge_mac")
