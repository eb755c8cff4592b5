"""A fresh Debian 12 / Ubuntu 24.04 machine (issue 10): the scripts install into a virtualenv of
this checkout, never into the externally managed system Python; the documented install and the
systemd unit agree on where `cnet` lives. No root, no network, no apt: install-deps is exercised
through `--check` and through its last guard, which fires before pip would run."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "cnet" / "systemd" / "cnet-restore.service"
BASE = os.path.realpath(sys.executable)  # the interpreter under the venv, if pytest runs in one


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def _install_block() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    return _shell_blocks(section)[0]


# --- the documented install and the systemd unit -----------------------------------------------------
def test_unit_runs_the_path_the_readme_install_creates():
    exec_start = re.search(r"^ExecStart=(.*)$", UNIT.read_text(), flags=re.M).group(1)
    argv = shlex.split(exec_start)
    assert argv[0].startswith("/") and "env" not in Path(argv[0]).name, (
        "systemd needs an absolute path, not a PATH lookup"
    )
    assert argv[1:] == ["restore"]
    links = [shlex.split(line) for line in _install_block().splitlines() if line.startswith("ln ")]
    assert len(links) == 1, "the README's install links cnet into root's PATH once"
    target, link = links[0][-2:]
    assert link == argv[0], f"the unit runs {argv[0]}, the README installs {link}"
    venv = target.removesuffix("/bin/cnet")
    assert f"-m venv {venv}" in _install_block(), "the link points into the venv the README makes"


def test_readme_never_pip_installs_into_a_system_python():
    for block in _shell_blocks((REPO / "README.md").read_text()):
        for line in block.splitlines():
            if re.search(r"\bpip3? install\b", line):
                assert re.match(r"\S+/bin/pip3? install ", line), f"not a venv's pip: {line}"


# --- the scripts ---------------------------------------------------------------------------------------
def _shell_scripts() -> list[Path]:
    found = [REPO / ".ci" / "run"]
    found += [
        p
        for p in sorted((REPO / "scripts").iterdir())
        if p.is_file() and p.read_text().startswith("#!/usr/bin/env bash")
    ]
    return found


def test_shell_scripts_are_strict():
    scripts = _shell_scripts()
    assert {p.name for p in scripts} >= {"run", "install-deps", "test", "demo", "sandbox", "bench"}
    for path in scripts:
        commands = [ln for ln in path.read_text().splitlines()[1:] if ln.strip() and not ln.startswith("#")]
        assert commands[0] == "set -euo pipefail", f"{path.relative_to(REPO)} must start with set -euo pipefail"


def test_scripts_pip_install_only_into_the_checkout_venv():
    for path in _shell_scripts():
        text = path.read_text()
        assert "--break-system-packages" not in text and "pip install --user" not in text
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            code = re.sub(r"\"[^\"]*\"|'[^']*'", '""', line)  # messages may name pip; commands may not
            if re.search(r"\bpip3?\b", code):
                assert '"$venv/bin/python" -m pip install ' in line, f"{path.name}: {line.strip()}"


def test_test_script_runs_pytest_from_the_venv():
    text = (REPO / "scripts" / "test").read_text()
    assert "scripts/install-deps\n" in text
    assert "exec .venv/bin/python -m pytest" in text


def test_gitignore_keeps_the_venv_out():
    assert "/.venv/" in (REPO / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize(("code", "expect"), [(0, 0), (1, 1), (5, 1)])
def test_ci_treats_no_tests_as_failure(tmp_path, code, expect):
    (tmp_path / ".ci").mkdir()
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "scripts" / "test").write_text(f"#!/bin/sh\nexit {code}\n")
    (tmp_path / "scripts" / "test").chmod(0o755)
    (tmp_path / "scripts" / "lint").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "scripts" / "lint").chmod(0o755)
    res = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, timeout=30)
    assert res.returncode == expect
    assert ("no tests" in res.stderr) == (code == 5)


def test_ci_fails_when_lint_fails(tmp_path):
    (tmp_path / ".ci").mkdir()
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / ".ci" / "run", tmp_path / ".ci" / "run")
    for name, code in (("test", 0), ("lint", 1)):
        (tmp_path / "scripts" / name).write_text(f"#!/bin/sh\nexit {code}\n")
        (tmp_path / "scripts" / name).chmod(0o755)
    res = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "scripts/lint did not" in res.stderr


# --- install-deps, in a throwaway checkout --------------------------------------------------------------
@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "install-deps", root / "scripts" / "install-deps")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root.resolve()


def install_deps(root: Path, *args: str, python: str = BASE) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=python)
    return subprocess.run(
        [str(root / "scripts" / "install-deps"), *args], capture_output=True, text=True, env=env, timeout=60
    )


def venv_lines(res: subprocess.CompletedProcess) -> list[str]:
    """--check's lines about .venv (the apt line depends on the machine)."""
    return [ln for ln in res.stderr.splitlines() if "apt-get" not in ln]


def fake_venv(root: Path, python: str, stamp: str | None = None) -> Path:
    """A virtualenv's shape, as `python -m venv` leaves it, without pip or anything in it."""
    venv = root / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {Path(python).parent}\ninclude-system-site-packages = false\n")
    (venv / "bin" / "python").symlink_to(python)
    if stamp is not None:
        (venv / "cnet-install.stamp").write_text(stamp + "\n")
    return venv


def tree(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.lstat().st_mtime_ns) for p in root.rglob("*"))


def test_check_on_a_fresh_checkout_plans_a_venv_and_changes_nothing(checkout):
    before = tree(checkout)
    res = install_deps(checkout, "--check")
    assert res.returncode == 1
    assert venv_lines(res) == [
        f"install-deps: would create .venv with {BASE} (python {sys.version_info[0]}.{sys.version_info[1]}), "
        "then pip install -e .[test,lint] into it"
    ]
    assert tree(checkout) == before


def test_a_venv_made_by_another_python_is_rebuilt(checkout):
    fake_venv(checkout, "/bin/sh", stamp=f"checkout={checkout} python={os.path.realpath('/bin/sh')}")
    res = install_deps(checkout, "--check")
    assert res.returncode == 1
    (line,) = venv_lines(res)
    assert f"would rebuild .venv (it was made by {os.path.realpath('/bin/sh')}, not {BASE})" in line


def test_a_venv_of_another_checkout_is_rebuilt(checkout):
    fake_venv(checkout, BASE, stamp=f"checkout=/somewhere/else python={BASE}")
    (line,) = venv_lines(install_deps(checkout, "--check"))
    assert "would rebuild .venv (it was made for another checkout" in line


def test_a_venv_without_a_stamp_is_rebuilt(checkout):
    fake_venv(checkout, BASE)
    (line,) = venv_lines(install_deps(checkout, "--check"))
    assert "would rebuild .venv" in line


def test_a_changed_pyproject_reinstalls(checkout):
    venv = fake_venv(checkout, BASE, stamp=f"checkout={checkout} python={BASE}")
    os.utime(venv / "cnet-install.stamp", (1_000_000_000, 1_000_000_000))
    (line,) = venv_lines(install_deps(checkout, "--check"))
    assert (
        line
        == "install-deps: would pip install -e .[test,lint] into .venv (pyproject.toml changed since the last install)"
    )


def test_a_venv_whose_cnet_is_elsewhere_reinstalls(checkout):
    venv = fake_venv(checkout, BASE, stamp=f"checkout={checkout} python={BASE}")
    os.utime(checkout / "pyproject.toml", (1_000_000_000, 1_000_000_000))
    (line,) = venv_lines(install_deps(checkout, "--check"))
    assert line == "install-deps: would pip install -e .[test,lint] into .venv (its cnet is not this checkout's)"
    assert venv.exists()


@pytest.mark.parametrize("kind", ["empty dir", "symlink", "file"])
def test_a_dot_venv_that_is_not_a_venv_is_left_alone(checkout, tmp_path, kind):
    venv = checkout / ".venv"
    if kind == "empty dir":
        venv.mkdir()
    elif kind == "symlink":
        (tmp_path / "elsewhere").mkdir()
        venv.symlink_to(tmp_path / "elsewhere")
    else:
        venv.write_text("mine\n")
    res = install_deps(checkout)
    assert res.returncode == 1
    assert res.stderr.strip().endswith("move it away") and res.stderr.count("\n") == 1
    assert venv.exists() or venv.is_symlink()


@pytest.mark.parametrize(
    ("answer", "expect"),
    [
        ("{python3} 3.11 0", "python3-venv"),  # Debian's python3 without python3-venv
        ("/usr/bin/python3.99 3.99 0", "python3.99-venv"),  # another Debian python, e.g. PYTHON=python3.12
        ("/opt/odd/bin/python3 3.11 0", None),  # not Debian's: nothing apt could add
    ],
)
def test_a_python_without_ensurepip_gets_its_venv_package(checkout, tmp_path, answer, expect):
    """Debian and Ubuntu ship venv's pip bootstrap (ensurepip) as python3.X-venv, not installed by
    default on Ubuntu 24.04. A stand-in interpreter answers install-deps' one question."""
    python3 = os.path.realpath("/usr/bin/python3")
    if "{python3}" in answer and not os.path.exists(python3):
        pytest.skip("no /usr/bin/python3 here")
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\necho {answer.format(python3=python3)}\n")
    fake.chmod(0o755)
    res = install_deps(checkout, "--check", python=str(fake))
    assert res.returncode == 1
    if expect is None:
        assert (
            res.stderr
            == f"install-deps: {fake} has no ensurepip, so it cannot make a virtualenv; choose another with PYTHON=...\n"
        )
    else:
        (apt,) = [ln for ln in res.stderr.splitlines() if "apt-get" in ln]
        assert expect in apt.split()


def test_an_unknown_python_is_one_line(checkout):
    res = install_deps(checkout, python="/nonexistent/python3")
    assert res.returncode == 1
    assert res.stderr == "install-deps: PYTHON=/nonexistent/python3: no such interpreter\n"


def test_refuses_to_pip_install_into_the_system_interpreter(checkout, tmp_path):
    """If the venv it made turned out to be the base interpreter itself (externally managed on
    Debian), install-deps stops before pip: the last guard asks the interpreter, not the path."""
    if "apt-get" in install_deps(checkout, "--check").stderr:
        pytest.skip("packages missing here: install-deps would run apt-get first")
    # A "python" that makes a venv whose bin/python is really the base interpreter.
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = -m ] && [ "$2" = venv ]; then\n'
        '  mkdir -p "$3/bin" && echo "home = /nowhere" > "$3/pyvenv.cfg"\n'
        f'  printf "#!/bin/sh\\nexec {BASE} \\"\\$@\\"\\n" > "$3/bin/python" && chmod +x "$3/bin/python"\n'
        "  exit 0\n"
        "fi\n"
        f'exec {BASE} "$@"\n'
    )
    fake.chmod(0o755)
    res = install_deps(checkout, python=str(fake))
    assert res.returncode == 1, res.stderr
    assert res.stderr.splitlines()[-1] == (
        f"install-deps: refusing to pip-install: {checkout}/.venv/bin/python is not this checkout's virtualenv"
    )
    assert "pip install" not in res.stderr
    assert not (checkout / ".venv" / "install.log").exists()
    assert not (checkout / ".venv" / "cnet-install.stamp").exists()


def test_this_checkouts_venv_is_up_to_date():
    """Run through scripts/test, pytest is the venv's, and install-deps has nothing left to do."""
    if Path(sys.prefix).resolve() != REPO / ".venv":
        pytest.skip("pytest is not running from this checkout's .venv (use scripts/test)")
    res = subprocess.run(
        [str(REPO / "scripts" / "install-deps"), "--check"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHON"} | {"PYTHON": BASE},
        timeout=60,
    )
    assert (res.returncode, res.stderr) == (0, "")
