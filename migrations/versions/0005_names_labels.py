"""names and labels: endpoint aliases, container and network labels, views v_names and v_labels

Revision ID: 0005_names_labels
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa

# Frozen copies of cnet.db.schema.VIEWS at this revision (see 0001_initial).
VIEWS = {
    'v_names': "\n        SELECT n.name AS network, c.name AS name, 'name' AS kind, e.ip, c.name AS container, c.id AS container_id\n        FROM endpoints e JOIN networks n ON n.id = e.network_id JOIN containers c ON c.id = e.container_id\n        UNION ALL\n        SELECT n.name, c.hostname, 'hostname', e.ip, c.name, c.id\n        FROM endpoints e JOIN networks n ON n.id = e.network_id JOIN containers c ON c.id = e.container_id\n        WHERE c.hostname != c.name\n        UNION ALL\n        SELECT n.name, a.value, 'alias', e.ip, c.name, c.id\n        FROM endpoints e JOIN json_each(e.aliases) a JOIN networks n ON n.id = e.network_id\n        JOIN containers c ON c.id = e.container_id",
    'v_labels': "\n        SELECT 'container' AS kind, c.name, l.key, l.value\n        FROM container_labels l JOIN containers c ON c.id = l.container_id\n        UNION ALL\n        SELECT 'network', n.name, l.key, l.value FROM network_labels l JOIN networks n ON n.id = l.network_id",
}

revision = '0005_names_labels'
down_revision = '0004_bridge_mac'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('aliases', sa.Text(), server_default='[]', nullable=False, comment='JSON list of extra names (--network-alias, net connect --alias) the container has on this network'))

    op.create_table('container_labels',
    sa.Column('container_id', sa.String(length=12), nullable=False, comment='container the label is on'),
    sa.Column('key', sa.String(length=255), nullable=False, comment='label key (`cnet run --label KEY=VALUE`)'),
    sa.Column('value', sa.Text(), nullable=False, comment="label value ('' for `--label KEY`)"),
    sa.ForeignKeyConstraint(['container_id'], ['containers.id'], name=op.f('fk_container_labels_container_id_containers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('container_id', 'key', name=op.f('pk_container_labels')),
    comment='Labels of containers (`cnet run --label`), for `ps --filter label=...` and SQL.'
    )
    op.create_table('network_labels',
    sa.Column('network_id', sa.String(length=12), nullable=False, comment='network the label is on'),
    sa.Column('key', sa.String(length=255), nullable=False, comment='label key (`cnet net create --label KEY=VALUE`)'),
    sa.Column('value', sa.Text(), nullable=False, comment="label value ('' for `--label KEY`)"),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_network_labels_network_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('network_id', 'key', name=op.f('pk_network_labels')),
    comment='Labels of networks (`cnet net create --label`).'
    )
    for name, sql in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {sql}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table('network_labels')
    op.drop_table('container_labels')
    # Not batch mode: its table copy would break the views over endpoints; SQLite >= 3.35 drops
    # a column in place.
    op.execute("ALTER TABLE endpoints DROP COLUMN aliases")
