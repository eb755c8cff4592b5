"""Concurrency: many cnet processes started at the same moment on one host.

Each test Popen()s all its cnet processes first, then waits for them, so they really overlap:
SQLite's write lock (BEGIN IMMEDIATE + busy_timeout) must serialize allocation, the xtables lock
must serialize iptables, and every loser must fail with one clear line and leave nothing behind.
After each race the kernel is compared with the database: netns, veths, addresses and DNAT rules.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

pytestmark = pytest.mark.root

PARALLEL_RUNS = 20
PARALLEL_CREATES = 10
PARALLEL_PORT_RUNS = 5
RM_RUN_RACES = 10

# What must never appear in any stderr of a concurrent cnet: SQLite lock timeouts, xtables lock
# failures, nft transaction conflicts, and Python tracebacks.
FORBIDDEN = (
    "database is locked",
    "another app is currently holding the xtables lock",
    "resource temporarily unavailable",
    "traceback",
    "internal error",
)


def _race(sb, argvs: list[list[str]], timeout: float = 180) -> list[tuple[int, str, str]]:
    """Start every command before waiting for any; returns (code, stdout, stderr) in order."""
    procs = [sb.popen(sb.cnet_argv(*a), stdout=-1, stderr=-1, text=True) for a in argvs]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        results.append((p.returncode, out, err))
    for code, _out, err in results:
        low = err.lower()
        for bad in FORBIDDEN:
            assert bad not in low, f"{bad!r} in stderr of a concurrent cnet (exit {code}):\n{err}"
    return results


def _assert_clean_failure(code: int, err: str, *expected: str) -> None:
    lines = err.strip().splitlines()
    assert code == 1, err
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("cnet: error: "), lines[0]
    assert any(e in lines[0] for e in expected), lines[0]


def _db(sb, query: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{sb.state_dir / 'cnet.db'}?mode=ro", uri=True)
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()


def _dnat_comments(sb) -> list[str]:
    """cnet:ctr:<id> comments of the DNAT rules, one entry per rule."""
    out = []
    for line in sb.iptables_save().splitlines():
        if line.startswith("-A CNET-DNAT") and "cnet:ctr:" in line:
            out.append(line.split("cnet:ctr:", 1)[1].split()[0].strip('"'))
    return sorted(out)


def _netns_names(sb) -> list[str]:
    # `ip netns list` prints "NAME (id: N)" once a netns has a peer: keep the first word.
    return sorted(
        line.split()[0] for line in sb.run(["ip", "netns", "list"], check=True).stdout.splitlines() if line.strip()
    )


def assert_kernel_matches_db(sb) -> None:
    """Every running container's netns, veth, bridge port, address and DNAT rules exist, and
    nothing cnet-named exists that no row owns."""
    eps = _db(
        sb,
        "SELECT c.id, c.netns, e.interface, e.ip, n.prefix_len, e.host_veth, n.bridge FROM endpoints e "
        "JOIN containers c ON c.id = e.container_id JOIN networks n ON n.id = e.network_id",
    )
    running = _db(sb, "SELECT id, netns FROM containers WHERE state = 'running'")
    bridges = {r[0] for r in _db(sb, "SELECT bridge FROM networks")}
    links = {link["ifname"]: link for link in sb.links()}

    assert _netns_names(sb) == sorted(r[1] for r in running)
    veths = {name for name in links if name.startswith("cnetv")}
    assert veths == {e[5] for e in eps}
    assert {name for name in links if name.startswith("cnet-")} == bridges
    for _cid, netns, iface, ip, plen, veth, bridge in eps:
        assert links[veth].get("master") == bridge, (veth, links[veth])
        data = json.loads(sb.run(["ip", "-n", netns, "-j", "addr", "show", "dev", iface], check=True).stdout)
        addrs = [f"{a['local']}/{a['prefixlen']}" for d in data for a in d["addr_info"] if a["family"] == "inet"]
        assert addrs == [f"{ip}/{plen}"], (netns, addrs, ip)
    mapped = _db(sb, "SELECT container_id FROM port_mappings")
    assert _dnat_comments(sb) == sorted(r[0] for r in mapped)


def _without_cursor(snap: dict) -> dict:
    snap = dict(snap)
    snap["db"] = {t: rows for t, rows in snap["db"].items() if t != "networks"}
    return snap


def test_parallel_runs_get_distinct_addresses(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.60.0.0/24")
    # Each publishes its own port, so 20 iptables-restore transactions overlap as well.
    results = _race(
        sb, [["run", "-d", "--net", "n1", "-p", f"{9000 + i}:80", "--", "sleep", "1000"] for i in range(PARALLEL_RUNS)]
    )
    for code, _out, err in results:
        assert code == 0, err
    ids = [out.strip() for _, out, _ in results]
    assert len(set(ids)) == PARALLEL_RUNS

    rows = _db(
        sb, "SELECT c.id, e.ip FROM containers c JOIN endpoints e ON e.container_id = c.id WHERE c.state = 'running'"
    )
    assert sorted(r[0] for r in rows) == sorted(ids)
    ips = [r[1] for r in rows]
    assert len(set(ips)) == PARALLEL_RUNS, ips
    assert "10.60.0.1" not in ips  # the gateway is never handed out
    allocated = _db(sb, "SELECT address FROM ip_allocations WHERE kind = 'dynamic'")
    assert sorted(r[0] for r in allocated) == sorted(ips)
    ports = _db(sb, "SELECT host_port FROM port_mappings")
    assert sorted(r[0] for r in ports) == list(range(9000, 9000 + PARALLEL_RUNS))
    assert_kernel_matches_db(sb)

    # Tear down concurrently too: rm -f and the watchers' reapers race for each container.
    results = _race(sb, [["rm", "-f", cid] for cid in ids])
    for code, _out, err in results:
        assert code == 0, err
    sb.cnet("net", "rm", "n1")


def test_parallel_net_create_same_name_one_wins(sandbox):
    sb = sandbox
    argvs = [["net", "create", "same", "--subnet", f"10.70.{i}.0/24"] for i in range(PARALLEL_CREATES)]
    results = _race(sb, argvs)
    winners = [i for i, r in enumerate(results) if r[0] == 0]
    assert len(winners) == 1, results
    for i, (code, _out, err) in enumerate(results):
        if i not in winners:
            _assert_clean_failure(code, err, "already exists")
    nets = _db(sb, "SELECT name, subnet FROM networks")
    assert nets == [("same", f"10.70.{winners[0]}.0/24")]
    assert [link for link in sb.link_names() if link.startswith("cnet")] == [
        _db(sb, "SELECT bridge FROM networks")[0][0]
    ]
    assert_kernel_matches_db(sb)
    sb.cnet("net", "rm", "same")


def test_parallel_net_create_same_subnet_one_wins(sandbox):
    sb = sandbox
    argvs = [["net", "create", f"sub{i}", "--subnet", "10.71.0.0/24"] for i in range(PARALLEL_CREATES)]
    results = _race(sb, argvs)
    winners = [i for i, r in enumerate(results) if r[0] == 0]
    assert len(winners) == 1, results
    for i, (code, _out, err) in enumerate(results):
        if i not in winners:
            _assert_clean_failure(code, err, "overlaps")
    assert _db(sb, "SELECT name FROM networks") == [(f"sub{winners[0]}",)]
    bridges = [link for link in sb.link_names() if link.startswith("cnet")]
    assert len(bridges) == 1
    assert "10.71.0.1/24" in sb.addrs(bridges[0])
    assert_kernel_matches_db(sb)
    sb.cnet("net", "rm", f"sub{winners[0]}")


def test_parallel_runs_same_host_port_one_wins(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "pn", "--subnet", "10.72.0.0/24")
    before = sb.snapshot()
    argvs = [
        ["run", "-d", "--name", f"p{i}", "--net", "pn", "-p", "8080:80", "--", "sleep", "1000"]
        for i in range(PARALLEL_PORT_RUNS)
    ]
    results = _race(sb, argvs)
    winners = [i for i, r in enumerate(results) if r[0] == 0]
    assert len(winners) == 1, results
    for i, (code, _out, err) in enumerate(results):
        if i not in winners:
            _assert_clean_failure(code, err, "already mapped")
    assert _db(sb, "SELECT c.name, p.host_port FROM port_mappings p JOIN containers c ON c.id = p.container_id") == [
        (f"p{winners[0]}", 8080)
    ]
    assert _db(sb, "SELECT name FROM containers") == [(f"p{winners[0]}",)]
    assert len(_dnat_comments(sb)) == 1
    assert_kernel_matches_db(sb)
    sb.cnet("rm", "-f", f"p{winners[0]}")
    # Back to the state right after `net create`, but for the network's next-fit cursor.
    assert sb.wait_for(lambda: _without_cursor(sb.snapshot()) == _without_cursor(before), timeout=10)
    sb.cnet("net", "rm", "pn")


def test_net_rm_racing_run_never_strands_a_container(sandbox):
    """Either the run wins (then the rm is refused: the network has a container) or the rm wins
    (then the run fails cleanly: network not found / being removed). Never a running container
    whose bridge is gone."""
    sb = sandbox
    for i in range(RM_RUN_RACES):
        sb.cnet("net", "create", "racy", "--subnet", "10.73.0.0/24")
        # Alternate who is started first, so both orders are exercised.
        rm_argv = ["net", "rm", "racy"]
        run_argv = ["run", "-d", "--name", f"r{i}", "--net", "racy", "--", "sleep", "1000"]
        if i % 2:
            (run_code, _, run_err), (rm_code, _, rm_err) = results = _race(sb, [run_argv, rm_argv])
        else:
            (rm_code, _, rm_err), (run_code, _, run_err) = results = _race(sb, [rm_argv, run_argv])
        assert (rm_code == 0) != (run_code == 0), (results,)
        if run_code == 0:
            _assert_clean_failure(rm_code, rm_err, "still has containers", "is creating", "try again")
            net = _db(sb, "SELECT bridge FROM networks WHERE name = 'racy'")
            assert net, "the container's network row is gone"
            assert net[0][0] in sb.link_names()
            assert_kernel_matches_db(sb)
            sb.cnet("rm", "-f", f"r{i}")
            sb.wait_for(lambda: not _db(sb, "SELECT 1 FROM endpoints"), timeout=10)
            sb.cnet("net", "rm", "racy")
        else:
            _assert_clean_failure(run_code, run_err, "not found", "is removing", "is creating")
            assert _db(sb, "SELECT * FROM containers") == []
        assert sb.snapshot() == sb.baseline, f"race {i}: {results}"
