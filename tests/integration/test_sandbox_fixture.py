"""The sandbox fixture's teardown check can fail: it is run on inner test files in a child pytest
(with this repository's conftest), so a leftover shows up as an error of the inner session."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.sandbox import REPO, Sandbox, left_behind

pytestmark = pytest.mark.root


def run_inner(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import *  # noqa: F403\n"
        "from tests.conftest import pytest_runtest_makereport  # noqa: F401\n"
    )
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-o",
            "markers=leaves_state",
            str(tmp_path / "test_inner.py"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


def test_a_leftover_link_fails_teardown_and_the_opt_out_and_a_failed_test_do_not(tmp_path):
    pid_file = tmp_path / "sandbox.pid"
    res = run_inner(
        tmp_path,
        f"""
        import pytest

        def test_leaks_a_link(sandbox):
            sandbox.sh("ip link add cnetleak0 type veth peer name cnetleak1")

        @pytest.mark.leaves_state
        def test_leaks_on_purpose(sandbox):
            sandbox.sh("ip link add cnetleak0 type veth peer name cnetleak1")

        def test_fails_and_leaks(sandbox):
            sandbox.sh("ip link add cnetleak0 type veth peer name cnetleak1")
            open({str(pid_file)!r}, "w").write(str(sandbox.proc.pid))
            assert False, "the test's own failure"
    """,
    )
    out = res.stdout
    # The leaking test passes its own call, then errors at teardown: counted as passed and as error.
    assert "1 failed, 2 passed, 1 error" in out, out + res.stderr
    assert "ERROR at teardown of test_leaks_a_link" in out and "the test left things behind" in out, out
    assert "links: expected" in out and "cnetleak0" in out, out
    # The failed test is reported once (no teardown error) and its sandbox was killed all the same.
    assert "ERROR at teardown of test_fails_and_leaks" not in out, out
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists(), f"the failed test's sandbox (pid {pid}) is still alive"


def test_left_behind_names_state_rows_and_unfinished_operations(tmp_path):
    sb = Sandbox(tmp_path / "state")
    try:
        sb.baseline = sb.snapshot()
        assert left_behind(sb) == []
        sb.cnet("net", "create", "a", "--subnet", "10.81.0.0/24")
        sb.baseline = sb.snapshot()  # a baseline that holds a network still does not excuse it
        problems = left_behind(sb, timeout=0)
        assert any(p.startswith("table networks still has rows") for p in problems), problems
        assert any(p.startswith("table ip_allocations still has rows") for p in problems), problems
        sb.cnet("net", "rm", "a")
    finally:
        sb.close()
