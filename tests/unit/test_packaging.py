"""The wheel must carry every subpackage and the Alembic migrations: an installed cnet (not only a
checkout) creates and upgrades its own database."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {res.stderr.strip()[-300:]}")
    (whl,) = out.glob("cnet-*.whl")
    return set(zipfile.ZipFile(whl).namelist())


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
