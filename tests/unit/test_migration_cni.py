"""Migration 0003_cni rebuilds the containers table (new columns, the `attached` state): the rows
of the previous revision survive it, endpoints and port mappings included (a rebuild with foreign
keys on would cascade the old table's drop into them), and a downgrade drops only CNI rows."""

import pytest

from cnet.db import connection, migrate

ROWS = [
    "INSERT INTO networks (id, name, driver, subnet, subnet_first_int, subnet_last_int, prefix_len, gateway, "
    "range_first_int, range_last_int, alloc_cursor_int, bridge, mtu, internal, state, created_at) "
    "VALUES ('n1', 'blue', 'bridge', '10.5.0.0/24', 1, 2, 24, '10.5.0.1', 1, 2, 0, 'cnet-n1', 1500, 0, 'ready', 0)",
    "INSERT INTO containers (id, name, state, command, hostname, env, spec, detached, netns, created_at) "
    "VALUES ('c1', 'c1', 'running', '[]', 'h', '{}', '{}', 0, 'cnet-c1', 0)",
    "INSERT INTO endpoints (container_id, network_id, interface, host_veth, ip, ip_int, mac, is_default_route, created_at) "
    "VALUES ('c1', 'n1', 'eth0', 'v1', '10.5.0.2', 2, 'm', 1, 0)",
    "INSERT INTO ip_allocations (network_id, address_int, address, kind, endpoint_id, allocated_at) "
    "VALUES ('n1', 2, '10.5.0.2', 'dynamic', 1, 0)",
    "INSERT INTO port_mappings (container_id, endpoint_id, host_ip, host_port, container_port, protocol, created_at) "
    "VALUES ('c1', 1, '0.0.0.0', 80, 80, 'tcp', 0)",
]


def previous_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrate.alembic_config()).get_revision("0003_cni").down_revision


@pytest.fixture
def conn(tmp_path):
    connection.ensure_state_dir(tmp_path)
    conn = connection.open_state(tmp_path)
    yield conn
    conn.close()


def counts(conn) -> dict:
    return {
        t: conn.scalar("SELECT count(*) FROM " + t)
        for t in ("containers", "endpoints", "ip_allocations", "port_mappings")
    }


def test_upgrade_keeps_every_row(conn):
    migrate.upgrade(conn, previous_revision())
    for sql in ROWS:
        conn.execute(sql)
    migrate.upgrade(conn)
    assert counts(conn) == {"containers": 1, "endpoints": 1, "ip_allocations": 1, "port_mappings": 1}
    assert conn.scalar("SELECT kind FROM containers") == "cnet"
    assert conn.scalar("PRAGMA foreign_keys") == 1
    assert migrate.check(conn) == []


def test_new_constraints(conn):
    import sqlite3

    migrate.upgrade(conn)
    for sql in ROWS[:2]:
        conn.execute(sql)
    att = (
        "INSERT INTO containers (id, name, state, command, hostname, env, spec, detached, netns, created_at, kind, "
        "cni_container_id, cni_ifname) VALUES (?, ?, ?, '[]', 'h', '{}', '{}', 0, '/run/netns/x', 0, ?, 'abc', ?)"
    )
    conn.execute(att, ("a1", "a1", "attached", "cni", "eth0"))
    conn.execute(att, ("a2", "a2", "attached", "cni", "eth1"))
    for bad in (
        ("a3", "a3", "attached", "cni", "eth0"),
        ("a4", "a4", "attached", "docker", "eth9"),
        ("a5", "a5", "sleeping", "cni", "eth9"),
    ):
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(att, bad)


def test_downgrade_drops_only_cni_attachments(conn):
    from alembic import command

    migrate.upgrade(conn)
    for sql in ROWS:
        conn.execute(sql)
    conn.execute(
        "INSERT INTO containers (id, name, state, command, hostname, env, spec, detached, netns, created_at, kind, "
        "cni_container_id, cni_ifname) VALUES ('a1', 'a1', 'attached', '[]', 'h', '{}', '{}', 0, '/run/netns/x', 0, 'cni', 'abc', 'eth0')"
    )
    conn.execute(
        "INSERT INTO endpoints (container_id, network_id, interface, host_veth, ip, ip_int, mac, is_default_route, created_at) "
        "VALUES ('a1', 'n1', 'eth0', 'v2', '10.5.0.3', 3, 'm', 1, 0)"
    )
    with migrate.SqlalchemyConnection(conn) as sa_conn:
        command.downgrade(migrate.alembic_config(sa_conn), previous_revision())
    assert counts(conn) == {"containers": 1, "endpoints": 1, "ip_allocations": 1, "port_mappings": 1}
    assert conn.scalar("PRAGMA foreign_keys") == 1
