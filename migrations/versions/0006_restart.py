"""restart policies: restart_policy, restart_max, restart_count, last_exit_code, manually_stopped;
state 'restarting'; v_containers shows the restart columns

Revision ID: 0006_restart
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_restart"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

# Frozen copies of v_containers before and after this revision (see 0001_initial).
V_CONTAINERS_OLD = "\n        SELECT c.name, c.id, c.state, c.pid, c.exit_code, c.hostname,\n               (SELECT group_concat(n.name || ':' || e.ip, ' ') FROM endpoints e\n                  JOIN networks n ON n.id = e.network_id WHERE e.container_id = c.id) AS ips,\n               (SELECT group_concat(p.host_ip || ':' || p.host_port || '->' || p.container_port || '/' || p.protocol, ' ')\n                  FROM port_mappings p WHERE p.container_id = c.id) AS ports,\n               c.command, datetime(c.created_at, 'unixepoch') AS created\n        FROM containers c"
V_CONTAINERS = "\n        SELECT c.name, c.id, c.state, c.pid, c.exit_code, c.restart_policy, c.restart_count,\n               c.last_exit_code, c.hostname,\n               (SELECT group_concat(n.name || ':' || e.ip, ' ') FROM endpoints e\n                  JOIN networks n ON n.id = e.network_id WHERE e.container_id = c.id) AS ips,\n               (SELECT group_concat(p.host_ip || ':' || p.host_port || '->' || p.container_port || '/' || p.protocol, ' ')\n                  FROM port_mappings p WHERE p.container_id = c.id) AS ports,\n               c.command, datetime(c.created_at, 'unixepoch') AS created\n        FROM containers c"

# The other views that read containers: SQLite's batch rebuild (rename of the new table) fails
# while a view names the old one, so they are dropped and made again, unchanged.
OTHER_VIEWS = {'v_endpoints': '\n        SELECT n.name AS network, c.name AS container, c.id AS container_id, e.interface, e.ip,\n               n.prefix_len, n.gateway, e.mac, e.host_veth, n.bridge\n        FROM endpoints e JOIN networks n ON n.id = e.network_id JOIN containers c ON c.id = e.container_id', 'v_ip_allocations': '\n        SELECT n.name AS network, a.address, a.kind, c.name AS container, c.id AS container_id\n        FROM ip_allocations a JOIN networks n ON n.id = a.network_id\n        LEFT JOIN endpoints e ON e.id = a.endpoint_id LEFT JOIN containers c ON c.id = e.container_id', 'v_port_mappings': '\n        SELECT p.host_ip, p.host_port, p.protocol, c.name AS container, c.id AS container_id,\n               e.ip AS container_ip, p.container_port, n.name AS network\n        FROM port_mappings p JOIN containers c ON c.id = p.container_id\n        JOIN endpoints e ON e.id = p.endpoint_id JOIN networks n ON n.id = e.network_id'}

OLD_STATES = "state IN ('creating', 'running', 'exited', 'removing')"
NEW_STATES = "state IN ('creating', 'running', 'restarting', 'exited', 'removing')"


def _drop_views() -> None:
    for name in ("v_containers", *OTHER_VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")


def _create_views(v_containers: str) -> None:
    op.execute(f"CREATE VIEW v_containers AS {v_containers}")
    for name, sql in OTHER_VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {sql}")


def upgrade() -> None:
    _drop_views()
    with op.batch_alter_table("containers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "restart_policy",
                sa.String(length=16),
                server_default="no",
                nullable=False,
                comment="--restart: no | on-failure | always | unless-stopped (carried out by the watcher)",
            )
        )
        batch_op.add_column(
            sa.Column(
                "restart_max",
                sa.Integer(),
                server_default="0",
                nullable=False,
                comment="on-failure:N: at most N restarts (0 = no limit)",
            )
        )
        batch_op.add_column(
            sa.Column(
                "restart_count",
                sa.Integer(),
                server_default="0",
                nullable=False,
                comment="restarts by the restart policy since the last run/start",
            )
        )
        batch_op.add_column(
            sa.Column(
                "last_exit_code",
                sa.Integer(),
                nullable=True,
                comment="exit code of the last run of PID 1 that ended, also while a restart runs the next",
            )
        )
        batch_op.add_column(
            sa.Column(
                "manually_stopped",
                sa.Integer(),
                server_default="0",
                nullable=False,
                comment="1 = stopped by cnet stop / rm -f / Ctrl-C: the restart policy leaves it stopped",
            )
        )
        batch_op.alter_column(
            "state",
            existing_type=sa.String(length=16),
            comment="creating | running | restarting (its watcher restarts the program) | exited | removing",
            existing_comment="creating | running | exited | removing",
            existing_nullable=False,
        )
        batch_op.drop_constraint(op.f("ck_containers_state"), type_="check")
        batch_op.create_check_constraint("state", NEW_STATES)
    _create_views(V_CONTAINERS)


def downgrade() -> None:
    _drop_views()
    op.execute("UPDATE containers SET state = 'exited' WHERE state = 'restarting'")
    with op.batch_alter_table("containers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_containers_state"), type_="check")
        batch_op.create_check_constraint("state", OLD_STATES)
        batch_op.alter_column(
            "state",
            existing_type=sa.String(length=16),
            comment="creating | running | exited | removing",
            existing_nullable=False,
        )
        for col in ("manually_stopped", "last_exit_code", "restart_count", "restart_max", "restart_policy"):
            batch_op.drop_column(col)
    _create_views(V_CONTAINERS_OLD)
