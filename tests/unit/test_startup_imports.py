"""Commands on an up-to-date database never import SQLAlchemy or Alembic (a large share of every
command's start-up, scripts/bench): cnet talks to SQLite through cnet.db.connection (stdlib sqlite3),
and only migrating or checking the schema needs them."""

import os
import subprocess
import sys

import pytest

# pydantic: typer 0.29 and later import it to convert option values (pyproject.toml pins typer below
# that; this fails loudly the day the pin is lifted).
HEAVY = ("sqlalchemy", "alembic", "pydantic")


def cnet(state_dir, *args, importtime=False):
    argv = [
        sys.executable,
        *(["-X", "importtime"] if importtime else []),
        "-m",
        "cnet",
        "--state-dir",
        str(state_dir),
        *args,
    ]
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


def imported(stderr: str) -> set[str]:
    """Top-level packages named in -X importtime's report (`import time: self | cumulative | name`)."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("`cnet db upgrade` creates the database as root")
    d = tmp_path_factory.mktemp("state")
    r = cnet(d, "db", "upgrade")
    assert r.returncode == 0, r.stderr
    return d


@pytest.mark.parametrize(
    "args",
    [
        ("ps",),
        ("ps", "-a", "--json"),
        ("net", "ls"),
        ("--dry-run", "net", "create", "x", "--subnet", "10.5.0.0/24"),
        ("--dry-run", "run", "--stop-timeout", "2", "-e", "A=1", "--", "true"),
    ],
    ids=lambda a: " ".join(a),
)
def test_no_sqlalchemy_on_an_up_to_date_database(state_dir, args):
    r = cnet(state_dir, *args, importtime=True)
    assert r.returncode == 0, r.stderr[-2000:]
    names = imported(r.stderr)
    assert "cnet" in names, "the import report was not captured"
    assert names.isdisjoint(HEAVY), f"`cnet {' '.join(args)}` imported {sorted(names & set(HEAVY))}"


def test_dry_run_without_a_database_still_migrates_in_memory(tmp_path):
    """The other side: with no database at all, --dry-run builds the schema in memory (through
    Alembic) and plans as usual, writing nothing."""
    d = tmp_path / "none"
    r = cnet(d, "--dry-run", "net", "create", "x", "--subnet", "10.5.0.0/24", importtime=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "alembic" in imported(r.stderr)
    assert not d.exists()
