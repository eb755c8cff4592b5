"""The wheel must carry every subpackage and the Alembic migrations: an installed cnet (not only a
checkout) creates and upgrades its own database. Its `cnet` command is a script of ours
(cnet/cli/script/cnet), whose start-up an installed copy shows."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {res.stderr.strip()[-300:]}")
    (whl,) = out.glob("cnet-*.whl")
    return whl


@pytest.fixture(scope="module")
def wheel_names(wheel):
    return set(zipfile.ZipFile(wheel).namelist())


def test_wheel_has_every_subpackage(wheel_names):
    packages = {p.parent.relative_to(REPO).as_posix() for p in (REPO / "cnet").rglob("__init__.py")}
    for pkg in packages:
        assert f"{pkg}/__init__.py" in wheel_names, f"{pkg} is missing from the wheel (pyproject packages list)"


def test_wheel_ships_migrations(wheel_names):
    for version in (REPO / "migrations" / "versions").glob("*.py"):
        assert f"cnet/migrations/versions/{version.name}" in wheel_names
    assert "cnet/migrations/env.py" in wheel_names
    assert "cnet/migrations/script.py.mako" in wheel_names


def test_wheel_ships_the_empty_state_sql(wheel_names):
    assert "cnet/db/empty_state.sql" in wheel_names


def test_the_cnet_command_is_our_script_not_an_entry_point(wheel):
    """pip's wrapper for an entry point imports `re`; `cnet` is cnet/cli/script/cnet, whose `#!python`
    pip replaces with the environment's interpreter."""
    with zipfile.ZipFile(wheel) as z:
        (script_name,) = [n for n in z.namelist() if n.endswith(".data/scripts/cnet")]
        script = z.read(script_name).decode()
        assert "cnet/cli/script/cnet" not in z.namelist()  # a script, not package data too
        (entry_points,) = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entries = z.read(entry_points).decode().splitlines()
    assert script.startswith("#!python\n")
    assert "from cnet.cli.entry import main" in script
    assert not [e for e in entries if e.replace(" ", "").startswith("cnet=")]
    assert [e for e in entries if e.replace(" ", "").startswith("cnet-cni=")]


# What the hot commands never import (tests/unit/test_startup_imports.py pins cnet's own modules):
# `re` and the enum it loads, json, shlex, shutil, contextlib, and the heavier rest. (functools comes
# with sqlite3's collections.abc.)
NOT_ON_THE_HOT_PATH = {"re", "enum", "json", "shlex", "shutil", "contextlib", "typing", "pathlib", "dataclasses"}


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The wheel installed in a venv of its own as pip installs it: pip's `cnet` script, run by that
    venv's interpreter. The venv finds the dependencies through a .pth file naming this venv's
    site-packages (a path, so its own .pth files, the editable install's finder among them, are
    not run: that finder imports re and pathlib before any command starts)."""
    where = tmp_path_factory.mktemp("installed")
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    vpy = venv / "bin" / "python"
    site = subprocess.run(
        [str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", site, str(wheel)],
        check=True,
        capture_output=True,
    )
    Path(site, "cnet-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = Path(site, "bin", "cnet")
    assert script.read_text().startswith(f"#!{sys.executable}\n"), "pip did not write the interpreter"
    origin = subprocess.run(
        [str(vpy), "-c", "import cnet; print(cnet.__file__)"], capture_output=True, text=True, cwd=where
    )
    assert origin.stdout.strip() == str(Path(site, "cnet", "__init__.py")), origin
    state = where / "state"
    if os.geteuid() == 0:  # a database at the head revision: `ps` reads it on its lean path
        r = subprocess.run(
            [str(vpy), str(script), "--state-dir", str(state), "db", "upgrade"], capture_output=True, cwd=where
        )
        assert r.returncode == 0, r.stderr
    return vpy, script, state


def loaded_after_site(stderr: str) -> set[str]:
    names = [ln.rsplit("|", 1)[1].strip() for ln in stderr.splitlines() if ln.startswith("import time:")]
    names = [n for n in names if n != "package"]  # the report's header line
    return set(names[names.index("site") + 1 :]) if "site" in names else set(names)


@pytest.mark.parametrize("args", [("ps",), ("--help",), ("ps", "-a")], ids=" ".join)
def test_the_installed_command_starts_without_re(installed, args):
    vpy, script, state = installed
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1", COLUMNS="80")
    env.pop("PYTHONPATH", None)
    r = subprocess.run(
        [str(vpy), str(script), "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=state.parent,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    loaded = loaded_after_site(r.stderr)
    assert "cnet.cli.entry" in loaded, "the import report was not captured"
    assert not loaded & NOT_ON_THE_HOT_PATH, f"`cnet {' '.join(args)}` loaded {sorted(loaded & NOT_ON_THE_HOT_PATH)}"
