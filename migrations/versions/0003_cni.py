"""CNI attachments: containers rows of kind cni (the runtime's container id and ifname)

Revision ID: 0003_cni
Revises: 0001_initial
Create Date: 2026-12-01 11:45:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0003_cni'
down_revision = '0001_initial'
branch_labels = None
depends_on = None

# Frozen copies of cnet.db.schema.VIEWS at this revision (see 0001_initial).
VIEWS = {
    'v_containers': "\n        SELECT c.name, c.id, c.kind, c.state, c.pid, c.exit_code, c.hostname,\n               (SELECT group_concat(n.name || ':' || e.ip, ' ') FROM endpoints e\n                  JOIN networks n ON n.id = e.network_id WHERE e.container_id = c.id) AS ips,\n               (SELECT group_concat(p.host_ip || ':' || p.host_port || '->' || p.container_port || '/' || p.protocol, ' ')\n                  FROM port_mappings p WHERE p.container_id = c.id) AS ports,\n               c.command, datetime(c.created_at, 'unixepoch') AS created\n        FROM containers c",
    'v_cni_attachments': "\n        SELECT n.name AS network, c.cni_container_id AS container_id, c.cni_ifname AS ifname, c.netns,\n               e.ip, n.prefix_len, e.mac, e.host_veth, c.state, c.name, c.id,\n               (SELECT group_concat(p.host_ip || ':' || p.host_port || '->' || p.container_port || '/' || p.protocol, ' ')\n                  FROM port_mappings p WHERE p.container_id = c.id) AS ports,\n               datetime(c.created_at, 'unixepoch') AS created\n        FROM containers c LEFT JOIN endpoints e ON e.container_id = c.id LEFT JOIN networks n ON n.id = e.network_id\n        WHERE c.kind = 'cni'",
}
# The views of the previous revision that this one replaces or drops (restored by downgrade).
PREVIOUS_VIEWS = {
    'v_containers': "\n        SELECT c.name, c.id, c.state, c.pid, c.exit_code, c.hostname,\n               (SELECT group_concat(n.name || ':' || e.ip, ' ') FROM endpoints e\n                  JOIN networks n ON n.id = e.network_id WHERE e.container_id = c.id) AS ips,\n               (SELECT group_concat(p.host_ip || ':' || p.host_port || '->' || p.container_port || '/' || p.protocol, ' ')\n                  FROM port_mappings p WHERE p.container_id = c.id) AS ports,\n               c.command, datetime(c.created_at, 'unixepoch') AS created\n        FROM containers c",
}

STATE_BEFORE = "state IN ('creating', 'running', 'exited', 'removing')"
STATE_AFTER = "state IN ('creating', 'running', 'exited', 'removing', 'attached')"


def _views_referencing_containers(conn) -> dict[str, str]:
    rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'view'").fetchall()
    return {name: sql for name, sql in rows if 'containers' in sql}


class _ForeignKeysOff:
    """SQLite rebuilds the table (copy, drop, rename): with foreign keys on, dropping the old
    containers table would cascade into endpoints and port_mappings and delete every row of
    them. SQLite's own recipe turns them off for the rebuild (possible only outside a
    transaction: cnet migrates in autocommit) and checks the references afterwards."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.was = self.conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
        self.conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
        if self.conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
            raise RuntimeError("cannot turn foreign keys off inside a transaction: the rebuild would delete endpoints")
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            bad = self.conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if bad:
                raise RuntimeError(f"foreign key check failed after rebuilding containers: {bad[:5]}")
        if self.was:
            self.conn.exec_driver_sql("PRAGMA foreign_keys = ON")


def upgrade() -> None:
    conn = op.get_bind()
    with _ForeignKeysOff(conn):
        _upgrade(conn)


def downgrade() -> None:
    conn = op.get_bind()
    with _ForeignKeysOff(conn):
        _downgrade(conn)


def _upgrade(conn) -> None:
    # SQLite re-checks every view when the rebuilt table is renamed into place: views on it go
    # first and come back after.
    saved = _views_referencing_containers(conn)
    for name in saved:
        op.execute(f"DROP VIEW {name}")
    with op.batch_alter_table('containers', schema=None, recreate='always') as batch_op:
        batch_op.alter_column('netns', existing_type=sa.String(length=32), type_=sa.Text(), existing_nullable=False,
                              comment="name of the pinned network namespace under /run/netns; kind cni: the runtime's netns path (CNI_NETNS)")
        batch_op.alter_column('state', existing_type=sa.String(length=16), existing_nullable=False,
                              comment='creating | running | exited | removing; kind cni: creating | attached | removing')
        batch_op.add_column(sa.Column('kind', sa.String(length=8), server_default='cnet', nullable=False,
                                      comment='cnet = a process started by `cnet run`; cni = an attachment a CNI runtime made (ADD), released by its DEL'))
        batch_op.add_column(sa.Column('cni_container_id', sa.Text(), nullable=True, comment="kind cni: the runtime's container id (CNI_CONTAINERID)"))
        batch_op.add_column(sa.Column('cni_ifname', sa.String(length=15), nullable=True, comment="kind cni: the interface name in the runtime's netns (CNI_IFNAME)"))
        batch_op.drop_constraint(op.f('ck_containers_state'), type_='check')
        batch_op.create_check_constraint('state', STATE_AFTER)
        batch_op.create_check_constraint('kind', "kind IN ('cnet', 'cni')")
        batch_op.create_unique_constraint('uq_containers_cni_attachment', ['cni_container_id', 'cni_ifname'])
    for name, sql in saved.items():
        if name not in VIEWS:
            op.execute(sql)
    for name, sql in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {sql}")


def _downgrade(conn) -> None:
    conn.exec_driver_sql("DELETE FROM port_mappings WHERE container_id IN (SELECT id FROM containers WHERE kind = 'cni')")
    conn.exec_driver_sql("DELETE FROM endpoints WHERE container_id IN (SELECT id FROM containers WHERE kind = 'cni')")
    conn.exec_driver_sql("DELETE FROM containers WHERE kind = 'cni'")  # the old schema cannot hold them
    saved = _views_referencing_containers(conn)
    for name in saved:
        op.execute(f"DROP VIEW {name}")
    with op.batch_alter_table('containers', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint('uq_containers_cni_attachment', type_='unique')
        batch_op.drop_constraint(op.f('ck_containers_kind'), type_='check')
        batch_op.drop_constraint(op.f('ck_containers_state'), type_='check')
        batch_op.create_check_constraint('state', STATE_BEFORE)
        batch_op.drop_column('cni_ifname')
        batch_op.drop_column('cni_container_id')
        batch_op.drop_column('kind')
        batch_op.alter_column('state', existing_type=sa.String(length=16), existing_nullable=False,
                              comment='creating | running | exited | removing')
        batch_op.alter_column('netns', existing_type=sa.Text(), type_=sa.String(length=32), existing_nullable=False,
                              comment='name of the pinned network namespace under /run/netns')
    for name, sql in saved.items():
        if name not in VIEWS:
            op.execute(sql)
    for name, sql in PREVIOUS_VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {sql}")
