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
    assert run["kernel_commands"] == 3  # host side, inside the netns, the port mapping
    sql = run["statements"]
    # 3 pragmas, the schema check, recovery (3), the network's bridge, the write transaction
    # (checks, rows, journal: 16), 2 journal updates per step, the finishing transaction (4), the
    # watcher's and PID 1's identities.
    assert len(sql) == 36, "\n".join(sql)
    assert sum(s.startswith("UPDATE operation_steps") for s in sql) == 6
    assert sql.count("BEGIN IMMEDIATE") == 2 and "BEGIN" not in sql
    r = sb.cnet("rm", "-f", "c1", "warm", env={"CNET_PROFILE": "sql"})
    rm = _profile(r.stderr)
    assert (rm["kernel_commands"], len(rm["statements"])) == (3, 54), "\n".join(
        rm["statements"]
    )  # c1: ports, netns; warm: netns
    sb.cnet("net", "rm", "n1")
