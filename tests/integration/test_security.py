"""Security: what must stay unreachable, and what must stay private.

- 127.0.0.1 port mappings and the host's loopback-only services are unreachable from containers
  and from other hosts that send packets to 127.0.0.0/8 through the bridge or the host's
  interfaces (CVE-2020-8558, moby#45610). The attackers here really route 127.0.0.0/8 to the
  host (loopback address flushed, route via the host, route_localnet on their interface); each
  test shows the raw-table guard's DROP counter rising, and a control with the guard removed
  shows the same packets do get through, so the guard is what stops them.
- Networks are isolated from each other; an --internal network has no route out and no NAT.
- Nothing the user types reaches a shell; state dir 0700, files 0600; `cnet sql` cannot write.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shlex
import sqlite3
import stat
import textwrap

import pytest

from .conftest import add_client, answers, del_client, inspect, probe, run_server

pytestmark = pytest.mark.root

# A host service bound to 127.0.0.1 only; it records every peer it accepts.
LOOPBACK_SERVER = textwrap.dedent(
    """
    import socket, sys
    port, log = int(sys.argv[1]), sys.argv[2]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    while True:
        c, peer = s.accept()
        with open(log, "a") as f:
            f.write(peer[0] + "\\n")
        c.sendall(b"secret " + peer[0].encode() + b" x")
        c.close()
    """
)


def _guard_line(sb) -> str:
    lines = [
        line
        for line in sb.iptables_save().splitlines()
        if line.startswith("-A CNET-PREROUTING ") and "127.0.0.0/8" in line
    ]
    assert len(lines) == 1, lines
    return lines[0]


def _guard_drops(sb) -> int:
    out = sb.run(["iptables", "-w", "-t", "raw", "-L", "CNET-PREROUTING", "-v", "-x", "-n"], check=True).stdout
    rows = [line.split() for line in out.splitlines() if "DROP" in line and "127.0.0.0/8" in line]
    assert len(rows) == 1, out
    return int(rows[0][0])


@contextlib.contextmanager
def _guard_removed(sb):
    """The control experiment: the same attack with cnet's raw-table guard taken out."""
    line = _guard_line(sb)
    sb.run(["iptables", "-w", "-t", "raw", "-D", *shlex.split(line)[1:]], check=True)
    try:
        yield
    finally:
        sb.run(["iptables", "-w", "-t", "raw", *shlex.split(line)], check=True)


def _route_loopback_to(sb, netns: str, dev: str, via: str) -> None:
    """Make `netns` send 127.0.0.0/8 to `via` instead of its own lo: no loopback address (else
    replies from 127.0.0.1 are martians), a route via the host, route_localnet on `dev`."""
    sb.sh(
        f"ip -n {netns} addr flush dev lo && ip -n {netns} route add 127.0.0.0/8 via {via} && "
        f"ip netns exec {netns} sysctl -q -w net.ipv4.conf.{dev}.route_localnet=1"
    )


def test_host_loopback_service_unreachable_from_containers_and_other_hosts(sandbox, tools, tmp_path):
    sb = sandbox
    ext = add_client(sb)
    sb.cnet("net", "create", "n1", "--subnet", "10.60.0.0/24")
    sb.cnet("run", "-d", "--name", "c1", "--net", "n1", "--", "sleep", "100000")
    c1 = inspect(sb, "c1")
    _route_loopback_to(sb, c1["netns"], "eth0", "10.60.0.1")
    _route_loopback_to(sb, ext.netns, "eth0", ext.host_ip)

    server, log = tmp_path / "lo_server.py", tmp_path / "accepted"
    server.write_text(LOOPBACK_SERVER)
    log.write_text("")
    srv = sb.popen(["python3", str(server), "6000", str(log)])
    try:
        target = ["tcp:127.0.0.1:6000"]
        # The service works for the host itself.
        assert sb.wait_for(lambda: probe(sb, tools, target, timeout=0.5)[0], timeout=10)
        log.write_text("")

        for attacker in (c1["netns"], ext.netns):
            drops = _guard_drops(sb)
            assert probe(sb, tools, target, netns=attacker, timeout=1) == [None], attacker
            assert _guard_drops(sb) > drops, f"packets from {attacker} to 127.0.0.1 were not dropped by the guard"
        assert log.read_text() == "", "the loopback-only service accepted a connection from outside"

        # Control: without the guard, route_localnet on the bridge lets the container in.
        with _guard_removed(sb):
            got = probe(sb, tools, target, netns=c1["netns"], timeout=2)
        assert got == ["secret 10.60.0.2 x"], got
        assert log.read_text() == "10.60.0.2\n"
    finally:
        srv.kill()
        srv.wait()

    sb.cnet("rm", "-f", "c1")
    sb.cnet("net", "rm", "n1")
    del_client(sb, ext)


def test_loopback_port_mapping_unreachable_from_other_hosts(sandbox, tools):
    sb = sandbox
    ext = add_client(sb)
    _route_loopback_to(sb, ext.netns, "eth0", ext.host_ip)
    sb.cnet("net", "create", "n1", "--subnet", "10.60.0.0/24")
    run_server(sb, tools, "web", "--net", "n1", "-p", "127.0.0.1:8085:80")
    target = ["tcp:127.0.0.1:8085"]
    assert probe(sb, tools, target)[0].split()[0] == "web"  # the mapping works on the host

    drops = _guard_drops(sb)
    assert probe(sb, tools, target, netns=ext.netns, timeout=1) == [None]
    assert _guard_drops(sb) > drops
    # Bound to 127.0.0.1 only: the host's other addresses do not forward it either.
    assert probe(sb, tools, [f"tcp:{ext.host_ip}:8085"], netns=ext.netns, timeout=1) == [None]

    # Control (moby#45610): without the guard, the DNAT rule would serve the other host.
    with _guard_removed(sb):
        got = probe(sb, tools, target, netns=ext.netns, timeout=2)
    assert got[0] and got[0].split()[0] == "web", got

    sb.cnet("rm", "-f", "web")
    sb.cnet("net", "rm", "n1")
    del_client(sb, ext)


def test_networks_are_isolated_and_internal_has_no_way_out(sandbox, tools):
    sb = sandbox
    ext = add_client(sb)
    outside = sb.popen(["nsenter", f"--net=/run/netns/{ext.netns}", "python3", str(tools.server), "7000"])
    try:
        sb.cnet("net", "create", "a", "--subnet", "10.61.0.0/24")
        sb.cnet("net", "create", "b", "--subnet", "10.62.0.0/24")
        sb.cnet("net", "create", "in", "--subnet", "10.63.0.0/24", "--internal")
        a1, a2 = run_server(sb, tools, "a1", "--net", "a"), run_server(sb, tools, "a2", "--net", "a")
        b1 = run_server(sb, tools, "b1", "--net", "b")
        i1, i2 = run_server(sb, tools, "i1", "--net", "in"), run_server(sb, tools, "i2", "--net", "in")
        ip = {c["name"]: c["networks"][0]["ip"] for c in (a1, a2, b1, i1, i2)}
        ext_target = f"tcp:{ext.ip}:7000"

        # Controls: a network's members reach each other, and a normal network reaches the
        # outside host through NAT (it sees the host's address, not the container's).
        assert probe(sb, tools, [f"tcp:{ip['a1']}:80"], netns=a2["netns"])[0].split()[0] == "a1"
        assert probe(sb, tools, [f"tcp:{ip['i1']}:80"], netns=i2["netns"])[0].split()[0] == "i1"
        assert probe(sb, tools, [ext_target], netns=a1["netns"])[0].split()[1] == ext.host_ip

        # Different networks cannot reach each other directly, in either direction.
        assert probe(sb, tools, [f"tcp:{ip['a1']}:80"], netns=b1["netns"], timeout=1) == [None]
        assert probe(sb, tools, [f"tcp:{ip['b1']}:80"], netns=a1["netns"], timeout=1) == [None]
        assert probe(sb, tools, [f"tcp:{ip['a1']}:80", f"tcp:{ip['b1']}:80"], netns=i1["netns"], timeout=1) == [
            None,
            None,
        ]
        assert probe(sb, tools, [f"tcp:{ip['i1']}:80"], netns=a1["netns"], timeout=1) == [None]

        # Internal: no default route, nothing reaches the outside host, no NAT rule.
        routes = json.loads(sb.run(["ip", "-n", i1["netns"], "-j", "route"], check=True).stdout)
        assert [r for r in routes if r["dst"] == "default"] == []
        assert probe(sb, tools, [ext_target], netns=i1["netns"], timeout=1) == [None]
        # ...not even with a default route planted inside the container: the bridge drops it.
        sb.run(["ip", "-n", i1["netns"], "route", "add", "default", "via", "10.63.0.1"], check=True)
        assert probe(sb, tools, [ext_target], netns=i1["netns"], timeout=1) == [None]
        masq = [rule for rule in sb.iptables_save().splitlines() if "MASQUERADE" in rule]
        assert any("-s 10.61.0.0/24" in rule for rule in masq)
        assert not any("10.63.0.0/24" in rule for rule in masq), masq
    finally:
        outside.kill()
        outside.wait()

    sb.cnet("rm", "-f", "a1", "a2", "b1", "i1", "i2")
    sb.cnet("net", "rm", "a", "b", "in")
    del_client(sb, ext)


def _creation_orders() -> list[tuple[str, ...]]:
    """Every order of: ordinary network `a`, a container on it publishing a port, internal
    network `in`, a container on it (each container after its network)."""
    events = ("net-a", "publish", "net-in", "inner")
    orders = []
    for perm in itertools.permutations(events):
        if perm.index("net-a") < perm.index("publish") and perm.index("net-in") < perm.index("inner"):
            orders.append(perm)
    return orders


@pytest.mark.parametrize("order", _creation_orders(), ids=lambda o: ",".join(o))
def test_internal_network_reaches_no_published_port_whatever_the_creation_order(sandbox, tools, order):
    """An --internal network reaches nothing outside itself: not another network's published port
    through its own gateway, the other network's gateway or another host address, nor the
    container directly. The same verdict for every order in which things were created."""
    sb = sandbox
    ext = add_client(sb)
    steps = {
        "net-a": lambda: sb.cnet("net", "create", "a", "--subnet", "10.61.0.0/24"),
        "publish": lambda: run_server(sb, tools, "web", "--net", "a", "-p", "8080:80"),
        "net-in": lambda: sb.cnet("net", "create", "in", "--subnet", "10.63.0.0/24", "--internal"),
        "inner": lambda: run_server(sb, tools, "inner", "--net", "in"),
    }
    for event in order:
        steps[event]()
    web, inner = inspect(sb, "web"), inspect(sb, "inner")
    web_ip = web["networks"][0]["ip"]

    # Control: the published port answers from another host, so the port is really there.
    assert answers(sb, tools, [f"tcp:{ext.host_ip}:8080"], netns=ext.netns) == {f"tcp:{ext.host_ip}:8080": "web"}
    targets = ["tcp:10.63.0.1:8080", "tcp:10.61.0.1:8080", f"tcp:{ext.host_ip}:8080", f"tcp:{web_ip}:80"]
    assert probe(sb, tools, targets, netns=inner["netns"], timeout=1) == [None] * len(targets)
    # ...and nothing from outside the internal network reaches in (not even the published side).
    inner_ip = inner["networks"][0]["ip"]
    assert probe(sb, tools, [f"tcp:{inner_ip}:80"], netns=web["netns"], timeout=1) == [None]
    assert "nothing to do" in sb.cnet("gc").stdout  # the rules are exactly what cnet expects

    sb.cnet("rm", "-f", "web", "inner")
    sb.cnet("net", "rm", "a", "in")
    del_client(sb, ext)
    assert sb.snapshot() == sb.baseline


def test_user_input_never_reaches_a_shell(sandbox, tmp_path):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.60.0.0/24")
    marker = tmp_path / "pwned"
    hostile = [f"$(touch {marker}1)", f"`touch {marker}2`", f"; touch {marker}3", f"' \" | touch {marker}4"]
    res = sb.cnet("run", "--rm", "--net", "n1", "-e", f"X=$(touch {marker}5)", "--", "printf", "%s\\n", *hostile)
    assert res.stdout.splitlines() == hostile
    res = sb.cnet("run", "--rm", "--net", "n1", "-e", f"X=$(touch {marker}5)", "--", "printenv", "X")
    assert res.stdout == f"$(touch {marker}5)\n"
    assert not list(tmp_path.glob("pwned*"))
    sb.cnet("net", "rm", "n1")


def _db_dump(sb) -> dict:
    conn = sqlite3.connect(f"file:{sb.state_dir / 'cnet.db'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def test_state_is_private_and_sql_cannot_write(sandbox, tmp_path):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.60.0.0/24")
    sb.cnet("run", "-d", "--name", "c1", "--net", "n1", "--", "sh", "-c", "echo hello; sleep 100000")
    assert sb.wait_for(lambda: sb.cnet("logs", "c1").stdout == "hello\n", timeout=10)

    paths = [sb.state_dir, *sb.state_dir.rglob("*")]
    names = {p.name for p in paths}
    assert {"cnet.db", "log"} <= names, names
    assert {"hosts", "resolv.conf"} <= names, names
    for p in paths:
        mode = stat.S_IMODE(p.stat().st_mode)
        if p.is_dir():
            assert mode == 0o700, f"{p} is {oct(mode)}"
        elif p.name in ("hosts", "resolv.conf") and p.parent.parent.name == "containers":
            # Bind-mounted over /etc/hosts and /etc/resolv.conf: readable by the container's own
            # users, as Docker's; no other host user reaches them (the folders above are 0700).
            assert mode == 0o644, f"{p} is {oct(mode)}"
        else:
            assert mode == 0o600, f"{p} is {oct(mode)}"

    before = _db_dump(sb)
    writes = [
        "INSERT INTO settings (key, value) VALUES ('x', 'y')",
        "UPDATE containers SET state = 'exited'",
        "DELETE FROM networks",
        "DROP VIEW v_containers",
        f"ATTACH DATABASE '{tmp_path}/attached.db' AS a",
        f"VACUUM INTO '{tmp_path}/copy.db'",
        "PRAGMA journal_mode = DELETE",
        "REPLACE INTO settings (key, value) VALUES ('x', 'y')",
        "WITH x AS (SELECT 1) DELETE FROM containers",
    ]
    for query in writes:
        res = sb.cnet("sql", query, check=False)
        assert res.returncode == 1, (query, res.stdout, res.stderr)
        assert res.stderr.startswith("cnet: error: ") and len(res.stderr.splitlines()) == 1, res.stderr
    assert list(tmp_path.glob("*.db")) == [], "cnet sql created a file"
    assert _db_dump(sb) == before
    # Reading still works, views and schema pragmas included.
    rows = json.loads(sb.cnet("sql", "SELECT name, state FROM v_containers", "--json").stdout)
    assert rows == [{"name": "c1", "state": "running"}]
    assert sb.cnet("sql", "PRAGMA table_info(networks)").returncode == 0

    sb.cnet("rm", "-f", "c1")
    sb.cnet("net", "rm", "n1")
