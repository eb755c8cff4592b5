"""A non-root user gets one line, never a traceback, from `ps` and `run` on root's state dir."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnet.db import connection, migrate

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


@pytest.fixture
def root_state(tmp_path):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to create root's state dir and to drop to another user")
    d = tmp_path / "state"
    connection.ensure_state_dir(d)  # 0700, as /var/lib/cnet
    conn = connection.open_state(d)
    migrate.upgrade(conn)
    conn.close()
    tmp_path.chmod(0o755)
    return d


@pytest.mark.parametrize(
    "args, expect",
    [
        (["ps"], "cannot read the state dir"),
        (["ps", "-a", "--json"], "cannot read the state dir"),
        (["net", "ls"], "cannot read the state dir"),
        (["run", "--", "true"], "must run as root"),
        (["--dry-run", "run", "--", "true"], "cannot read the state dir"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_one_line_as_a_normal_user(root_state, args, expect):
    res = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-m", "cnet", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env=dict(os.environ, CNET_STATE_DIR=str(root_state), PYTHONPATH=str(REPO)),
    )
    assert res.returncode == 1, res
    assert res.stderr.count("\n") == 1 and expect in res.stderr and "Traceback" not in res.stderr, res.stderr
