"""Shell completion, driven as the shells drive it: the generated scripts set _CNET_COMPLETE and
COMP_WORDS/COMP_CWORD (bash) or _TYPER_COMPLETE_ARGS (zsh, fish) and run cnet."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnet.db import connection, migrate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    d = tmp_path_factory.mktemp("state")
    connection.ensure_state_dir(d)
    conn = connection.open_state(d)
    migrate.upgrade(conn)
    for cid, name in (("a" * 12, "web1"), ("b" * 12, "web2"), ("c" * 12, "db_1")):
        conn.insert(
            "containers",
            {"id": cid, "name": name, "state": "exited", "command": "[]", "hostname": name, "env": "{}",
             "spec": "{}", "detached": 0, "netns": "x", "created_at": 0},
        )  # fmt: skip
    conn.insert(
        "networks",
        {"id": "d" * 12, "name": "front", "driver": "bridge", "subnet": "10.9.0.0/24", "subnet_first_int": 1,
         "subnet_last_int": 2, "prefix_len": 24, "gateway": "10.9.0.1", "range_first_int": 1, "range_last_int": 2,
         "alloc_cursor_int": 0, "bridge": "cnet-x", "mtu": 1500, "internal": 0, "state": "ready", "created_at": 0},
    )  # fmt: skip
    conn.close()
    return d


def complete(state_dir: Path, env: dict) -> str:
    full = dict(os.environ) | {"CNET_STATE_DIR": str(state_dir)} | env
    res = subprocess.run([sys.executable, "-m", "cnet"], capture_output=True, text=True, env=full, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def bash(state_dir: Path, line: str) -> list[str]:
    words = line.split(" ")
    env = {"_CNET_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    return complete(state_dir, env).split()


def test_bash_completes_container_and_network_names(state):
    assert bash(state, "cnet rm we") == ["web1", "web2"]
    assert bash(state, "cnet exec ") == ["db_1", "web1", "web2"]
    assert bash(state, "cnet stop db_") == ["db_1"]  # `_` is not a LIKE wildcard here
    assert bash(state, "cnet net rm ") == ["front"]
    assert bash(state, "cnet network connect f") == ["front"]
    assert bash(state, "cnet network connect front w") == ["web1", "web2"]
    assert bash(state, "cnet run --net ") == ["none", "front"]
    assert bash(state, "cnet inspect ") == ["db_1", "web1", "web2", "front"]
    assert "prune" in bash(state, "cnet net p")
    assert "--filter" in bash(state, "cnet ps --f")


def test_zsh_and_fish_complete_names(state):
    zsh = complete(state, {"_CNET_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "cnet logs "})
    assert '"web1"' in zsh and '"web2"' in zsh
    fish = complete(
        state,
        {
            "_CNET_COMPLETE": "complete_fish",
            "_TYPER_COMPLETE_ARGS": "cnet rm ",
            "_TYPER_COMPLETE_FISH_ACTION": "get-args",
        },
    )
    assert fish.split() == ["db_1", "web1", "web2"]


def test_no_database_completes_nothing(tmp_path):
    assert bash(tmp_path / "none", "cnet rm ") == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell):
    res = subprocess.run(
        [sys.executable, "-m", "cnet", "completion", shell], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert res.returncode == 0 and "_CNET_COMPLETE" in res.stdout and f"complete_{shell}" in res.stdout


def test_completion_rejects_other_shells():
    res = subprocess.run(
        [sys.executable, "-m", "cnet", "completion", "tcsh"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert res.returncode == 2 and "tcsh" in res.stderr


def test_bash_runs_the_generated_script(state, tmp_path):
    """The script as bash sources it: its function, called as `complete -F` calls it (command, word, previous)."""
    if not shutil.which("bash"):
        pytest.skip("no bash")
    wrapper = tmp_path / "cnet"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m cnet "$@"\n')
    wrapper.chmod(0o755)
    script = (
        'eval "$(cnet completion bash)"; COMP_WORDS=(cnet rm we); COMP_CWORD=2; _cnet_completion cnet rm we; '
        'echo "${COMPREPLY[@]}"'
    )
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", CNET_STATE_DIR=str(state), PYTHONPATH=str(REPO))
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert res.stdout.split() == ["web1", "web2"], res.stderr
