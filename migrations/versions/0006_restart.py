"""Restart policies: containers.restart_policy, restart_max, restart_count, last_exit_code,
manually_stopped and the state `restarting`

Revision ID: 0006_restart
Revises: 0005_names_labels
Create Date: 2026-12-01 13:25:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0006_restart"
down_revision = "0005_names_labels"
branch_labels = None
depends_on = None

# Frozen copies of the view this revision changes (see 0001_initial): before and after.
V_CONTAINERS_OLD = """
        SELECT c.name, c.id, c.kind, c.state, c.pid, c.exit_code, c.hostname,
               (SELECT group_concat(n.name || ':' || e.ip, ' ') FROM endpoints e
                  JOIN networks n ON n.id = e.network_id WHERE e.container_id = c.id) AS ips,
               (SELECT group_concat(p.host_ip || ':' || p.host_port || '->' || p.container_port || '/' || p.protocol, ' ')
                  FROM port_mappings p WHERE p.container_id = c.id) AS ports,
               c.command, datetime(c.created_at, 'unixepoch') AS created
        FROM containers c"""
V_CONTAINERS = """
        SELECT c.name, c.id, c.kind, c.state, c.pid, c.exit_code, c.restart_policy, c.restart_count,
               c.last_exit_code, c.hostname,
               (SELECT group_concat(n.name || ':' || e.ip, ' ') FROM endpoints e
                  JOIN networks n ON n.id = e.network_id WHERE e.container_id = c.id) AS ips,
               (SELECT group_concat(p.host_ip || ':' || p.host_port || '->' || p.container_port || '/' || p.protocol, ' ')
                  FROM port_mappings p WHERE p.container_id = c.id) AS ports,
               c.command, datetime(c.created_at, 'unixepoch') AS created
        FROM containers c"""

OLD_STATES = "state IN ('creating', 'running', 'exited', 'removing', 'attached')"
NEW_STATES = "state IN ('creating', 'running', 'restarting', 'exited', 'removing', 'attached')"
OLD_COMMENT = "creating | running | exited | removing; kind cni: creating | attached | removing"
NEW_COMMENT = (
    "creating | running | restarting (its watcher restarts the program) | exited | removing; "
    "kind cni: creating | attached | removing"
)
COLUMNS = ("manually_stopped", "last_exit_code", "restart_count", "restart_max", "restart_policy")


def _views_referencing_containers(conn) -> dict[str, str]:
    rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'view'").fetchall()
    return {name: sql for name, sql in rows if "containers" in sql}


class _ForeignKeysOff:
    """The table rebuild (copy, drop, rename) with foreign keys on would cascade the drop into
    endpoints and port_mappings (see 0003_cni): off for the rebuild, checked afterwards."""

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


def _rebuild(conn, change, v_containers: str) -> None:
    # SQLite re-checks every view when the rebuilt table is renamed into place: views on it go
    # first and come back after.
    saved = _views_referencing_containers(conn)
    for name in saved:
        op.execute(f"DROP VIEW {name}")
    with op.batch_alter_table("containers", schema=None, recreate="always") as batch_op:
        change(batch_op)
    for name, sql in saved.items():
        if name != "v_containers":
            op.execute(sql)
    op.execute(f"CREATE VIEW v_containers AS {v_containers}")


def _add(batch_op) -> None:
    batch_op.add_column(sa.Column("restart_policy", sa.String(length=16), server_default="no", nullable=False,
                                  comment="--restart: no | on-failure | always | unless-stopped (carried out by the watcher)"))
    batch_op.add_column(sa.Column("restart_max", sa.Integer(), server_default="0", nullable=False,
                                  comment="on-failure:N: at most N restarts (0 = no limit)"))
    batch_op.add_column(sa.Column("restart_count", sa.Integer(), server_default="0", nullable=False,
                                  comment="restarts by the restart policy since the last run/start"))
    batch_op.add_column(sa.Column("last_exit_code", sa.Integer(), nullable=True,
                                  comment="exit code of the last run of PID 1 that ended, also while a restart runs the next"))
    batch_op.add_column(sa.Column("manually_stopped", sa.Integer(), server_default="0", nullable=False,
                                  comment="1 = stopped by cnet stop / rm -f / Ctrl-C: the restart policy leaves it stopped"))
    batch_op.alter_column("state", existing_type=sa.String(length=16), existing_nullable=False, comment=NEW_COMMENT,
                          existing_comment=OLD_COMMENT)
    batch_op.drop_constraint(op.f("ck_containers_state"), type_="check")
    batch_op.create_check_constraint("state", NEW_STATES)


def _remove(batch_op) -> None:
    batch_op.drop_constraint(op.f("ck_containers_state"), type_="check")
    batch_op.create_check_constraint("state", OLD_STATES)
    batch_op.alter_column("state", existing_type=sa.String(length=16), existing_nullable=False, comment=OLD_COMMENT)
    for col in COLUMNS:
        batch_op.drop_column(col)


def upgrade() -> None:
    conn = op.get_bind()
    with _ForeignKeysOff(conn):
        _rebuild(conn, _add, V_CONTAINERS)


def downgrade() -> None:
    conn = op.get_bind()
    conn.exec_driver_sql("UPDATE containers SET state = 'exited' WHERE state = 'restarting'")
    with _ForeignKeysOff(conn):
        _rebuild(conn, _remove, V_CONTAINERS_OLD)
