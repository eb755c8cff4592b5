"""The SQL views that answer the common questions (`cnet sql "SELECT * FROM v_containers"`).
Created by migrations (Alembic does not manage views), each revision keeping a frozen copy; kept
here, apart from the tables in schema.py, so tests and docs share one definition."""

from __future__ import annotations

# Views answering the common questions. Created by migrations (Alembic does not manage views);
# kept here so tests and docs share one definition.
VIEWS: dict[str, str] = {
    "v_containers": """
        SELECT c.name, c.id, c.kind, c.state, c.pid, c.exit_code, c.restart_policy, c.restart_count,
               c.last_exit_code, c.hostname,
               (SELECT group_concat(n.name || ':' || e.ip, ' ') FROM endpoints e
                  JOIN networks n ON n.id = e.network_id WHERE e.container_id = c.id) AS ips,
               (SELECT group_concat(p.host_ip || ':' || p.host_port || '->' || p.container_port || '/' || p.protocol, ' ')
                  FROM port_mappings p WHERE p.container_id = c.id) AS ports,
               c.command, datetime(c.created_at, 'unixepoch') AS created
        FROM containers c""",  # noqa: E501 -- view SQL: migrations keep a byte-equal frozen copy
    "v_cni_attachments": """
        SELECT n.name AS network, c.cni_container_id AS container_id, c.cni_ifname AS ifname, c.netns,
               e.ip, n.prefix_len, e.mac, e.host_veth, c.state, c.name, c.id,
               (SELECT group_concat(p.host_ip || ':' || p.host_port || '->' || p.container_port || '/' || p.protocol, ' ')
                  FROM port_mappings p WHERE p.container_id = c.id) AS ports,
               datetime(c.created_at, 'unixepoch') AS created
        FROM containers c LEFT JOIN endpoints e ON e.container_id = c.id LEFT JOIN networks n ON n.id = e.network_id
        WHERE c.kind = 'cni'""",  # noqa: E501
    "v_endpoints": """
        SELECT n.name AS network, c.name AS container, c.id AS container_id, e.interface, e.ip,
               n.prefix_len, n.gateway, e.mac, e.host_veth, n.bridge, e.ip6, n.gateway6
        FROM endpoints e JOIN networks n ON n.id = e.network_id JOIN containers c ON c.id = e.container_id""",
    "v_ip_allocations": """
        SELECT n.name AS network, a.address, a.kind, c.name AS container, c.id AS container_id, 4 AS family
        FROM ip_allocations a JOIN networks n ON n.id = a.network_id
        LEFT JOIN endpoints e ON e.id = a.endpoint_id LEFT JOIN containers c ON c.id = e.container_id
        UNION ALL
        SELECT n.name, a.address, a.kind, c.name, c.id, 6
        FROM ip6_allocations a JOIN networks n ON n.id = a.network_id
        LEFT JOIN endpoints e ON e.id = a.endpoint_id LEFT JOIN containers c ON c.id = e.container_id""",
    "v_port_mappings": """
        SELECT p.host_ip, p.host_port, p.protocol, c.name AS container, c.id AS container_id,
               e.ip AS container_ip, p.container_port, n.name AS network
        FROM port_mappings p JOIN containers c ON c.id = p.container_id
        JOIN endpoints e ON e.id = p.endpoint_id JOIN networks n ON n.id = e.network_id""",
    "v_operation_commands": """
        SELECT o.id AS operation, o.kind, o.target, o.status AS operation_status, s.seq, s.summary,
               s.command, s.undo_json, s.status, s.duration_ms, s.exit_code, s.error
        FROM operations o JOIN operation_steps s ON s.operation_id = o.id""",
    # The names each running container answers to on each of its networks: what the other
    # containers on that network find in their /etc/hosts.
    "v_names": """
        SELECT n.name AS network, c.name AS name, 'name' AS kind, e.ip, c.name AS container, c.id AS container_id
        FROM endpoints e JOIN networks n ON n.id = e.network_id JOIN containers c ON c.id = e.container_id
        UNION ALL
        SELECT n.name, c.hostname, 'hostname', e.ip, c.name, c.id
        FROM endpoints e JOIN networks n ON n.id = e.network_id JOIN containers c ON c.id = e.container_id
        WHERE c.hostname != c.name
        UNION ALL
        SELECT n.name, a.value, 'alias', e.ip, c.name, c.id
        FROM endpoints e JOIN json_each(e.aliases) a JOIN networks n ON n.id = e.network_id
        JOIN containers c ON c.id = e.container_id""",
    "v_labels": """
        SELECT 'container' AS kind, c.name, l.key, l.value
        FROM container_labels l JOIN containers c ON c.id = l.container_id
        UNION ALL
        SELECT 'network', n.name, l.key, l.value FROM network_labels l JOIN networks n ON n.id = l.network_id""",
}
