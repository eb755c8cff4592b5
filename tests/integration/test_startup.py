"""What one real `cnet run -d` and `cnet rm -f` cost in SQLite statements and kernel commands,
from CNET_PROFILE=sql (cnet/_profile.py). The figures are pinned so that a new statement or
command on the hot path is a deliberate change (scripts/bench reports the timings)."""

import json

import pytest

pytestmark = pytest.mark.root


def _profile(stderr: str) -> dict:
    lines = [line for line in stderr.splitlines() if line.startswith("cnet-profile: ")]
    assert len(lines) == 1, stderr[-2000:]
    p = json.loads(lines[0].removeprefix("cnet-profile: "))
    # The trace callback repeats a statement for each trigger program it runs (ON DELETE CASCADE).
    p["statements"] = [s for i, s in enumerate(p["sql"]) if i == 0 or s != p["sql"][i - 1]]
    return p


def test_run_and_rm_statement_and_command_counts(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.1.0/24")
    sb.cnet("run", "-d", "--name", "warm", "--net", "n1", "--", "sleep", "600")  # steady state
    r = sb.cnet("run", "-d", "--name", "c1", "--net", "n1", "-p", "8080:80", "--", "sleep", "600",
                env={"CNET_PROFILE": "sql"})  # fmt: skip
    run = _profile(r.stderr)
    assert run["kernel_commands"] == 4  # host side, inside the netns, anti-spoofing rules, the port mapping
    sql = run["statements"]
    # 3 pragmas, the schema check, recovery (3), the network's bridge, the write transaction
    # (checks, rows, the addresses `start` comes back on, journal: 19), 2 journal updates per step,
    # the finishing transaction (4), the names read for the hosts files (5), the watcher's and
    # PID 1's identities.
    assert len(sql) == 45, "\n".join(sql)
    assert sum(s.startswith("UPDATE operation_steps") for s in sql) == 8
    assert sql.count("BEGIN IMMEDIATE") == 2
    # A plain BEGIN only opens a read (the names files): every write takes the lock first.
    plain = [i for i, s in enumerate(sql) if s == "BEGIN"]
    for i in plain:
        block = sql[i + 1 : sql.index("COMMIT", i)]
        assert all(s.startswith("SELECT") for s in block), block
    r = sb.cnet("rm", "-f", "c1", "warm", env={"CNET_PROFILE": "sql"})
    rm = _profile(r.stderr)
    # c1: ports, anti-spoofing rules, netns; warm: anti-spoofing rules, netns. The statements grew
    # with them, the by-hand stop marks (restart policies) and the hosts files' names read.
    assert (rm["kernel_commands"], len(rm["statements"])) == (5, 77), "\n".join(rm["statements"])
    sb.cnet("net", "rm", "n1")
