"""Commands on an up-to-date database never import SQLAlchemy or Alembic (a large share of every
command's start-up, scripts/bench): cnet talks to SQLite through cnet.db.connection (stdlib sqlite3),
and only migrating or checking the schema needs them."""

import json
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
        ("--dry-run", "run", "--net", "none", "--stop-timeout", "2", "-e", "A=1", "--", "true"),
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


@pytest.mark.parametrize("args", [("ps",), ("ps", "-a", "--json"), ("net", "ls")], ids=" ".join)
def test_read_only_commands_on_a_fresh_state_need_no_migration(tmp_path, args):
    """No database yet: a read-only command prints the empty state, built from the schema's SQL
    (cnet/db/empty_state.sql) rather than through Alembic, and creates nothing."""
    d = tmp_path / "fresh"
    r = cnet(d, *args, importtime=True)
    assert r.returncode == 0, r.stderr[-2000:]
    names = imported(r.stderr)
    assert "cnet" in names, "the import report was not captured"
    assert names.isdisjoint(HEAVY), f"`cnet {' '.join(args)}` imported {sorted(names & set(HEAVY))}"
    assert r.stdout.strip() in ("[]", "") or r.stdout.count("\n") == 2, r.stdout  # a table: its header only
    assert not d.exists()


# --- what each hot command may load (issue 16) -------------------------------------------------
def modules(stderr: str) -> set[str]:
    """Every module named in -X importtime's report (full dotted names) that the program imported:
    what the interpreter's `site` loaded first (.pth files of the environment, e.g. certifi or
    setuptools' hooks in some installs) is not cnet's doing. The report names a module when its
    import completes, so `site` closes that first block."""
    names = [
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line and "[us]" not in line
    ]
    start = names.index("site") + 1 if "site" in names else 0
    return set(names[start:])


# Paid by commands that run a kernel command, never by these: `sh` pulls asyncio (and ssl) and
# importlib.metadata; hashlib loads OpenSSL (only veth naming needs it).
RUNNER = {"sh", "asyncio", "importlib.metadata", "ssl", "cnet.runner", "cnet.journal"}
# Overlay networks' etcd client (requests, urllib3, ...): only commands that touch an overlay.
CLUSTER = {"etcd3gw", "requests", "urllib3", "cnet.cluster", "cnet.services.overlay", "cnet.services.overlay_use"}
# `re` (and the enum it loads) comes with json, shlex and shutil: `ps` and `--help` load none of them
# (their installed script neither, tests/unit/test_packaging.py; an editable install's import
# finder loads re before any command starts, so this test alone would not see it there).
RE = {"re", "enum", "json", "shlex", "shutil"}
FORBIDDEN: dict[tuple[str, ...], set[str]] = {
    ("--help",): RUNNER
    | CLUSTER
    | RE
    | {"sqlite3", "json", "cnet.db", "cnet.services", "cnet.records", "hashlib", "typer", "cnet.cli.main"},
    # Parsed without typer (cli/plain_args.py): typer (and the click it carries) is never imported.
    ("ps",): RUNNER
    | CLUSTER
    | RE
    | {"hashlib", "cnet.services.containers.run", "cnet.services.containers.connect", "cnet.services.networks"}
    | {"cnet.services.containers.lifecycle", "cnet.plans", "cnet.validate", "cnet.cli.networks", "socket"}
    | {"typer", "click", "cnet.cli.main", "cnet.cli.common", "cnet.cli.containers"}
    # The database opened directly (cnet/db/reading.py): no Context, store, records or recovery
    # while there is nothing to recover, and none of the modules they need.
    | {"cnet.services.context", "cnet.services.recovery", "cnet.db.store", "cnet.records", "cnet.db.names_store"}
    | {"cnet.services.containers.views", "cnet.services.containers.reaping", "dataclasses", "inspect", "pathlib"}
    | {"typing"},
    # --net none: the same path as a run on an existing network, without the first-use creation
    # of the default network (a network create, which does load the runner). Parsed without typer
    # too (cli/plain_args.py, cli/container_run.py).
    ("--dry-run", "run", "--net", "none", "--", "true"): RUNNER
    | CLUSTER
    | {"cnet.services.containers.connect", "cnet.services.networks", "cnet.kernel.parse", "secrets", "random"}
    | {"typer", "click", "cnet.cli.main", "cnet.cli.common", "cnet.cli.containers"},
}


@pytest.mark.parametrize("args", list(FORBIDDEN), ids=lambda a: " ".join(a))
def test_hot_commands_load_only_what_they_use(state_dir, args):
    r = cnet(state_dir, *args, importtime=True)
    assert r.returncode == 0, r.stderr[-2000:]
    loaded = modules(r.stderr)
    assert "cnet.cli.entry" in loaded, "the import report was not captured"
    assert not loaded & FORBIDDEN[args], f"`cnet {' '.join(args)}` loaded {sorted(loaded & FORBIDDEN[args])}"


# cnet's own modules each hot command loads, exactly: one more is a deliberate change (start-up is a
# target, scripts/bench). `--help` is pre-rendered and loads nothing else; `ps` is parsed and run
# without typer (cli/plain_args.py, cli/listing.py), opens the database directly (cnet/db/reading.py)
# after the liveness check of running containers, and loads its listing only (the Context, the
# recovery and the rest of the container use cases load only when there is something to recover).
PS_CLI = {
    "cnet",
    "cnet.cli",
    "cnet.cli.entry",
    "cnet.cli.argv",
    "cnet.cli.plain_args",
    "cnet.cli.invocation",
    "cnet.cli.listing",
    "cnet.cli.printing",
    "cnet.cli.shell_quote",
    "cnet.cli.process_end",
    "cnet.errors",
}
STORE = {"cnet.db", "cnet.db.connection", "cnet.db.migrate", "cnet.db.queries", "cnet.db.reading"}
LISTING = {"cnet.db.listing_store", "cnet.states", "cnet.services.containers.listing"}
CNET_MODULES: dict[tuple[str, ...], set[str]] = {
    # Pre-rendered (cli/entry.py, cli/help_text.py): not even typer.
    ("--help",): {"cnet", "cnet.cli", "cnet.cli.entry", "cnet.cli.argv", "cnet.cli.help_text", "cnet.cli.process_end"},
    ("ps",): PS_CLI
    | STORE
    | LISTING
    | {"cnet.procs", "cnet.db.recovery_store", "cnet.services", "cnet.services.containers"},
}


@pytest.mark.parametrize("args", list(CNET_MODULES), ids=lambda a: " ".join(a))
def test_hot_commands_load_exactly_these_cnet_modules(state_dir, args):
    r = cnet(state_dir, *args, importtime=True)
    assert r.returncode == 0, r.stderr[-2000:]
    loaded = {m for m in modules(r.stderr) if m == "cnet" or m.startswith("cnet.")}
    assert loaded == CNET_MODULES[args], (
        f"`cnet {' '.join(args)}`: more {sorted(loaded - CNET_MODULES[args])}, "
        f"fewer {sorted(CNET_MODULES[args] - loaded)}"
    )


def profile(stderr: str) -> dict:
    lines = [line for line in stderr.splitlines() if line.startswith("cnet-profile: ")]
    assert len(lines) == 1, stderr[-2000:]
    return json.loads(lines[0].removeprefix("cnet-profile: "))


def statements(sql: list[str]) -> list[str]:
    """SQLite's trace callback reports a statement again for each trigger program it runs (the
    foreign keys' ON DELETE CASCADE): count consecutive repeats once."""
    return [s for i, s in enumerate(sql) if i == 0 or s != sql[i - 1]]


def test_sql_statements_of_a_dry_run(state_dir):
    """`run --dry-run` on an up-to-date database: the pragmas, the schema check, one write
    transaction with the checks and rows. A new statement on this path must be argued for (the
    figure is scripts/bench's `sqlite statements`; a real run adds the journal's, see
    tests/integration/test_startup.py)."""
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnet",
            "--state-dir",
            str(state_dir),
            "--dry-run",
            "run",
            "--net",
            "none",
            "--",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, CNET_PROFILE="sql"),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    p = profile(r.stderr)
    sql = statements(p["sql"])
    assert p["sqlite_statements"] == len(p["sql"])
    assert sql[:2] == ["PRAGMA foreign_keys = ON", "SELECT version_num FROM alembic_version"]
    assert sql[2] == "BEGIN IMMEDIATE" and sql[-1] == "COMMIT"
    assert sql[3].startswith("SELECT 1 FROM containers WHERE name")  # the name check
    assert sql[4].startswith('INSERT INTO "containers"')
    # The addresses `cnet start` comes back on, known once the endpoints are allocated.
    assert sql[5].startswith("UPDATE containers SET spec =")
    assert len(sql) == 7, sql
    assert set(p["ms"]) == {"imports", "sqlite", "kernel", "watcher", "python"}
    assert p["kernel_commands"] == 0 and p["start"] <= p["end"]


# --- exit without the interpreter's teardown --------------------------------------------------
EXIT_PROBE = """
import atexit, sys, threading
atexit.register(lambda: print("TEARDOWN", file=sys.stderr))
done = threading.Event()
if sys.argv[1] == "thread":
    # Alive until main() is over, however slow the machine: cnet must see it and exit normally.
    threading.Thread(target=done.wait, args=(30,)).start()
if sys.argv[1] == "logging":
    import logging
    handler = logging.StreamHandler(sys.stderr)
    handler.flush = lambda: print("LOG-FLUSHED", file=sys.stderr)
    logging.getLogger("x").addHandler(handler)
sys.argv = ["cnet", "--help"]
from cnet.cli.main import main
try:
    main()
finally:
    done.set()
"""


@pytest.mark.parametrize("case", ["plain", "thread", "logging"])
def test_exit_skips_teardown_only_when_safe(case):
    r = subprocess.run([sys.executable, "-c", EXIT_PROBE, case], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (r.stdout.startswith("Usage: cnet") and r.stdout.rstrip().endswith("│")) or "Commands" in r.stdout
    # A live thread: the normal exit (which waits for it and runs atexit); otherwise none.
    assert ("TEARDOWN" in r.stderr) == (case == "thread")
    assert ("LOG-FLUSHED" in r.stderr) == (case == "logging")  # logging.shutdown() ran


def test_large_output_reaches_a_pipe_whole(tmp_path):
    """Everything printed is flushed before the process ends (os._exit drops unflushed buffers)."""
    d = tmp_path / "state"
    r = cnet(d, "--dry-run", "net", "create", "x", "--subnet", "10.5.0.0/24")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("#!/bin/sh") or r.stdout.startswith("#"), r.stdout[:200]
    assert r.stdout.endswith("\n") and len(r.stdout) > 2000
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cnet",
            "--state-dir",
            str(d),
            "--dry-run",
            "net",
            "create",
            "x",
            "--subnet",
            "10.5.0.0/24",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as p:
        first = p.stdout.read(10)  # a slow reader: the writer blocks on the full pipe, then flushes
        rest = p.stdout.read()
    out = (first + rest).decode()  # fresh random ids, same length and shape
    assert len(out) == len(r.stdout) and out.splitlines()[-1] == r.stdout.splitlines()[-1]
    assert p.returncode == 0


def test_container_use_cases_load_lazily_with_the_same_names():
    """services.containers loads each module on first use; `connect` (a function named like its
    module) stays the function whichever name is asked for first."""
    probe = (
        "import sys, cnet.services.containers as c; "
        "assert 'cnet.services.containers.run' not in sys.modules; "
        "c.disconnect; assert callable(c.connect), c.connect; "
        "from cnet.services.containers import connect; assert callable(connect); "
        "import cnet.services.containers.connect; assert callable(c.connect); "
        "assert c.list_containers.__module__ == 'cnet.services.containers.listing'; print('ok')"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "ok", r.stderr


TYPER_GROUP_PROBE = """
import builtins
compiled = []
original = builtins.compile
import typer.main
from cnet.cli.main import register
app = register()
# From here on: typer's own modules are loaded (some of their annotations are strings too).
builtins.compile = lambda source, *a, **k: (compiled.append(source), original(source, *a, **k))[1]
typer.main.get_command(app)
print(len(compiled), sorted({str(s) for s in compiled})[:5])
"""


def test_building_the_command_line_evaluates_no_string_annotations():
    """Every command builds typer's whole group of commands, which reads each command function's
    signature: string annotations (`from __future__ import annotations` in a module defining
    commands) are each compiled and evaluated then, twice, on every start (scripts/bench)."""
    r = subprocess.run([sys.executable, "-c", TYPER_GROUP_PROBE], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("0 "), f"annotations compiled while building the commands: {r.stdout}"


BUILT_PROBE = """
import sys
import typer.main
built = []
original = typer.main.get_command_from_info
def counted(*a, **k):
    info = a[0] if a else k["command_info"]
    built.append(info.name or info.callback.__name__)
    return original(*a, **k)
typer.main.get_command_from_info = counted
import atexit, os
_exit = os._exit
os._exit = lambda code: (print("BUILT", len(built), sorted(built)[:3], file=sys.stderr), sys.stderr.flush(), _exit(code))
sys.argv = ["cnet", *sys.argv[1:]]
from cnet.cli.main import main
main()
"""


@pytest.mark.parametrize(
    "args, built, code",
    [
        (("--state-dir", "{d}", "ps"), 1, 0),
        (("--state-dir={d}", "--dry-run", "-v", "net", "ls"), "group", 0),  # the net group's commands alone
        (("--state-dir", "{d}", "rnu"), None, 2),  # unknown: all built, click's suggestion intact
        (
            (
                "--state-dir",
                "{d}",
            ),
            None,
            2,
        ),  # no command: the usage lists them all
    ],
    ids=["ps", "net ls", "typo", "none"],
)
def test_only_the_invoked_command_is_built(tmp_path, args, built, code):
    """typer builds the click command of each registered command (all their parameters) on every
    start: cnet builds only the one named on the command line, and all of them otherwise."""
    argv = [a.format(d=tmp_path / "state") for a in args]
    r = subprocess.run([sys.executable, "-c", BUILT_PROBE, *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == code, r.stderr[-2000:]
    count = int(r.stderr.rsplit("BUILT ", 1)[1].split()[0])
    if built is None:
        assert count > 20, r.stderr[-2000:]
    elif built == "group":
        assert 1 < count < 15, r.stderr[-2000:]
    else:
        assert count == built, r.stderr[-2000:]
    if "rnu" in args:
        assert "No such command 'rnu'. Did you mean 'run'?" in r.stderr
