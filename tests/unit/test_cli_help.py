"""Every command answers --help; `cnet --help` stays cheap (no sqlalchemy, no sh)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from cnet.cli.main import PARTS, register

app = register()  # every command (a `cnet` process registers only the invoked one's part)

REPO = Path(__file__).resolve().parents[2]


def command_paths() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    paths: list[tuple[str, ...]] = []

    def walk(cmd, path: tuple[str, ...]) -> None:
        paths.append(path)
        # Duck-typed: recent typer vendors its own click, so isinstance(click.Group) would miss.
        if getattr(cmd, "commands", None):
            for name, sub in cmd.commands.items():
                walk(sub, path + (name,))

    walk(root, ())
    return paths


PATHS = command_paths()


def test_command_tree_is_complete():
    names = {" ".join(p) for p in PATHS}
    expected = {
        "",
        "net",
        "net create",
        "net ls",
        "net inspect",
        "net rm",
        "net connect",
        "net disconnect",
        "run",
        "ps",
        "inspect",
        "exec",
        "logs",
        "stop",
        "rm",
        "sql",
        "journal",
        "db",
        "db upgrade",
        "db check",
        "net prune",
        "network",
        "network ls",
        "container prune",
        "completion",
    }
    assert expected <= names


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "cnet")
def test_help(path):
    res = CliRunner().invoke(app, [*path, "--help"], prog_name="cnet")
    assert res.exit_code == 0, res.output
    assert "Usage: cnet" in res.output
    hidden = path and path[-1].startswith("_")
    if not hidden:
        # A real description, not just a usage line.
        assert len(res.output.strip().splitlines()) > 2


def _imported_modules(*args: str) -> tuple[int, set[str]]:
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cnet", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    mods = set()
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            mods.add(line.rsplit("|", 1)[1].strip())
    return res.returncode, mods


@pytest.mark.parametrize("args", [("--help",), ("net", "create", "--help"), ("net", "--help")])
def test_help_does_not_import_heavy_modules(args):
    code, mods = _imported_modules(*args)
    assert code == 0
    assert "cnet.cli.entry" in mods  # the measurement works
    for heavy in ("sqlalchemy", "sh", "alembic", "tabulate"):
        assert heavy not in mods, f"`cnet {' '.join(args)}` imports {heavy}"


def test_version():
    res = subprocess.run(
        [sys.executable, "-m", "cnet", "--version"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert res.returncode == 0 and res.stdout.startswith("cnet ")


def test_usage_error_is_one_line_exit_2():
    res = subprocess.run(
        [sys.executable, "-m", "cnet", "net", "create"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args", [(), ("net",), ("network",), ("container",)], ids=["cnet", "cnet net", "cnet network", "cnet container"]
)
def test_no_command_prints_the_help_and_exits_2(args):
    res = subprocess.run([sys.executable, "-m", "cnet", *args], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 2
    assert res.stderr.startswith("Usage: cnet") and "Commands:" in res.stderr


def test_cli_uses_only_public_typer_names():
    """typer vendors click as the private typer._click, which its docs say will change: the CLI
    uses typer's public names only (errors: typer.Exit, typer.Abort, typer.TyperException)."""
    for path in sorted((REPO / "cnet" / "cli").glob("*.py")):
        text = path.read_text()
        assert "typer._" not in text and "_click" not in text and "_coercion" not in text, path.name


PART_PROBE = """
import json, sys
import typer.main
from typer.testing import CliRunner
from cnet.cli.main import register
word = sys.argv[1]
app = register(word)
root = typer.main.get_command(app)
out = {}
def walk(cmd, path):
    if path and path[0] == word:
        out[" ".join(path)] = CliRunner().invoke(app, [*path, "--help"], prog_name="cnet").output
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        walk(sub, path + (name,))
walk(root, ())
print(json.dumps(out))
"""


def _helps(paths: list[tuple[str, ...]]) -> dict[str, str]:
    return {" ".join(p): CliRunner().invoke(app, [*p, "--help"], prog_name="cnet").output for p in paths}


@pytest.mark.parametrize("word", sorted({p[0] for p in PATHS if p}))
def test_a_command_registered_alone_is_the_same_command(word):
    """`cnet WORD ...` registers only the parts of the command line that name WORD (PARTS): every
    command under WORD must then exist and read (its --help) exactly as in the full command line."""
    r = subprocess.run([sys.executable, "-c", PART_PROBE, word], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout) == _helps([p for p in PATHS if p and p[0] == word])


def test_every_word_belongs_to_a_part():
    words = {w for ws, _ in PARTS for w in ws}
    assert {p[0] for p in PATHS if p} == words


TYPER_RENDERS = "import sys; sys.argv = ['cnet', *sys.argv[1:]]; from cnet.cli.main import main; main()"


@pytest.mark.parametrize("columns", [None, "80", "100", "250", "79", "60"])
@pytest.mark.parametrize("args", [("--help",), ("-h",), ("--state-dir", "/nowhere", "-v", "--dry-run", "--help")])
def test_pre_rendered_help_is_what_typer_renders(columns, args):
    """`cnet --help` prints cnet/cli/help_text.py without importing typer (cnet/cli/entry.py): byte
    for byte what typer prints at that width (80 columns and more), and typer's own below 80."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "PYTHONPROFILEIMPORTTIME")}
    if columns is not None:
        env["COLUMNS"] = columns

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=REPO, env=env, timeout=60)

    fast, typer_ = run("-X", "importtime", "-m", "cnet", *args), run("-c", TYPER_RENDERS, *args)
    assert fast.returncode == typer_.returncode == 0, fast.stderr[-2000:]
    assert fast.stdout == typer_.stdout and "Commands:" in fast.stdout
    pre_rendered = columns is None or int(columns) >= 80
    assert ("typer" not in {ln.rsplit("|", 1)[1].strip() for ln in fast.stderr.splitlines() if "|" in ln}) == (
        pre_rendered
    )


def test_help_text_is_current():
    """scripts/help-text --check: the committed text is what typer renders now."""
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "help-text"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "args, word",
    [
        (["--help"], "--help"),
        (["--state-dir", "--help"], None),  # the state dir's value: typer's to answer
        (["--state-dir=x", "--dry-run", "-h"], "-h"),
        (["--help", "ps"], None),
        (["ps", "--help"], "ps"),
        (["--etcd", "x", "--help"], "--etcd"),
    ],
)
def test_command_word(args, word):
    from cnet.cli.argv import command_word

    assert command_word(args) == word


@pytest.mark.parametrize("columns", [None, "", "abc", "0", "-5", "79", "80", "120"])
def test_terminal_columns_are_shutils(monkeypatch, columns):
    """The width `cnet --help` decides with is shutil.get_terminal_size()'s (click's), computed
    without importing shutil."""
    import shutil

    from cnet.cli.entry import terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns


@pytest.mark.parametrize("width", [60, 100])
def test_terminal_columns_read_the_terminal_as_shutil_does(monkeypatch, width):
    import fcntl
    import pty
    import shutil
    import struct
    import termios

    from cnet.cli.entry import terminal_columns

    leader, follower = pty.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, width, 0, 0))
        with os.fdopen(os.dup(follower), "w") as tty:
            monkeypatch.setattr(sys, "__stdout__", tty)
            monkeypatch.delenv("COLUMNS", raising=False)
            assert terminal_columns() == shutil.get_terminal_size().columns == width
    finally:
        os.close(leader)
        os.close(follower)
