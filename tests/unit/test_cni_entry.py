"""The plugin executable as a runtime runs it: `cnet cni install` writes it, a bare environment
and stdin drive it, and bad input gets the CNI error document before any state is opened."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cnet.cni import conflist, shim
from cnet.errors import ValidationError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    bin_dir = tmp_path_factory.mktemp("cni-bin") / "nested" / "bin"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cwd = tmp_path_factory.mktemp("install-cwd")
    res = subprocess.run(
        [sys.executable, "-m", "cnet", "cni", "install", "--bin-dir", str(bin_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=cwd,
    )
    assert res.returncode == 0, res.stderr
    path = bin_dir / "cnet"
    assert res.stdout.strip() == str(path)
    # The search path is the package and its dependencies', never where `cnet cni install` ran.
    assert str(cwd) not in path.read_text()
    return path


def call(plugin: Path, env: dict, stdin: str, cwd="/") -> subprocess.CompletedProcess:
    # As a Kubernetes runtime: the CNI_* variables and nothing else, not even PATH.
    return subprocess.run([str(plugin)], input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def test_installed_plugin_is_an_executable_python_script(plugin):
    mode = plugin.stat().st_mode
    assert stat.S_IMODE(mode) == 0o755
    first = plugin.read_text().splitlines()[0]
    assert first == f"#!{sys.executable} -SE"


def test_version_in_a_bare_environment(plugin, tmp_path):
    res = call(plugin, {"CNI_COMMAND": "VERSION"}, '{"cniVersion":"1.0.0"}', cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {
        "cniVersion": "1.0.0",
        "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    }
    assert res.stderr == ""


def test_install_replaces_an_existing_plugin(plugin):
    plugin.write_text("old")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run(
        [sys.executable, "-m", "cnet", "cni", "install", "--bin-dir", str(plugin.parent)],
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert plugin.read_text().startswith("#!")
    assert [p.name for p in plugin.parent.iterdir()] == ["cnet"]


BASE = {"CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/none", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}


@pytest.mark.parametrize(
    "env, stdin, code",
    [
        ({"CNI_COMMAND": "ADD", **BASE}, "not json", 6),
        ({"CNI_COMMAND": "ADD", **BASE}, '{"cniVersion":"9.0.0","name":"n","type":"cnet"}', 1),
        ({"CNI_COMMAND": "ADD", **BASE}, '{"cniVersion":"1.0.0","name":"n","type":"cnet","ipam":{}}', 2),
        ({"CNI_COMMAND": "ADD", **{**BASE, "CNI_NETNS": ""}}, '{"cniVersion":"1.0.0","name":"n","type":"cnet"}', 4),
        ({"CNI_COMMAND": "FROB", **BASE}, '{"cniVersion":"1.0.0","name":"n","type":"cnet"}', 4),
        ({**BASE}, '{"cniVersion":"1.0.0","name":"n","type":"cnet"}', 4),
        (
            {"CNI_COMMAND": "ADD", **BASE},
            '{"cniVersion":"1.0.0","name":"n","type":"cnet","runtimeConfig":{"portMappings":[{"hostPort":"x"}]}}',
            7,
        ),
    ],
)
def test_bad_input_gets_the_error_document(plugin, env, stdin, code, tmp_path):
    res = call(plugin, {**env, "CNET_STATE_DIR": str(tmp_path / "state")}, stdin)
    assert res.returncode == 1
    doc = json.loads(res.stdout)
    assert doc["code"] == code and doc["msg"] and set(doc) <= {"cniVersion", "code", "msg", "details"}
    assert res.stderr == ""
    assert not (tmp_path / "state").exists(), "bad input must not even create the state dir"


def imported(stderr: str) -> set[str]:
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def run_entry(env: dict, stdin: str) -> subprocess.CompletedProcess:
    code = "from cnet.cli.cni_plugin import main; main()"
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
        timeout=60,
    )


def test_version_imports_nothing_heavy():
    res = run_entry({"CNI_COMMAND": "VERSION"}, '{"cniVersion":"0.4.0"}')
    assert res.returncode == 0
    names = imported(res.stderr)
    assert "cnet.cni.versions" in names
    heavy = {"sqlite3", "sh", "sqlalchemy", "typer", "cnet.cni.protocol", "cnet.services.cni", "subprocess"}
    assert not names & heavy, sorted(names & heavy)


def test_rejected_input_never_opens_the_database():
    res = run_entry({"CNI_COMMAND": "ADD", **BASE}, "garbage")
    assert res.returncode == 1
    names = imported(res.stderr)
    assert "cnet.cni.protocol" in names
    assert not names & {"sh", "sqlalchemy", "typer", "cnet.services.cni", "cnet.db.connection"}


# --- pure builders --------------------------------------------------------------------------------
def test_conflist_document():
    assert conflist.conflist("blue") == {
        "cniVersion": "1.0.0",
        "name": "blue",
        "plugins": [
            {
                "type": "cnet",
                "network": "blue",
                "capabilities": {"portMappings": True, "ips": True, "mac": True, "dns": True},
            }
        ],
    }
    assert conflist.conflist("blue", "/srv/cnet")["plugins"][0]["stateDir"] == "/srv/cnet"


def test_shim_text():
    text = shim.shim_text("/usr/bin/python3", "/opt/cnet", ["/usr/lib/python3/dist-packages", "/opt/cnet"])
    assert text.startswith("#!/usr/bin/python3 -SE\n")
    assert "sys.path[:0] = ['/opt/cnet', '/usr/lib/python3/dist-packages']" in text
    compile(text, "cnet", "exec")
    for bad in ("python3", "/opt/my python/bin/python3", "/" + "p" * 300):
        with pytest.raises(ValidationError):
            shim.shim_text(bad, "/x")


def test_conflist_command(tmp_path):
    """`cnet cni conflist` on a database holding a network (inserted as `net create` would)."""
    from cnet.db import connection, migrate

    connection.ensure_state_dir(tmp_path)
    conn = connection.open_state(tmp_path)
    migrate.upgrade(conn)
    conn.execute(
        "INSERT INTO networks (id, name, driver, subnet, subnet_first_int, subnet_last_int, prefix_len, gateway, "
        "range_first_int, range_last_int, alloc_cursor_int, bridge, mtu, internal, state, created_at) "
        "VALUES ('0123456789ab', 'blue', 'bridge', '10.5.0.0/24', 1, 2, 24, '10.5.0.1', 1, 2, 0, 'cnet-0123456789', 1500, 0, 'ready', 0)"
    )
    conn.close()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run(
        [sys.executable, "-m", "cnet", "--state-dir", str(tmp_path), "cni", "conflist", "blue"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["name"] == "blue" and doc["plugins"][0]["stateDir"] == str(tmp_path.resolve())
    out = tmp_path / "net.d" / "blue.conflist"
    res = subprocess.run(
        [sys.executable, "-m", "cnet", "--state-dir", str(tmp_path), "cni", "conflist", "blue", "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.returncode == 0 and json.loads(out.read_text()) == doc
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    res = subprocess.run(
        [sys.executable, "-m", "cnet", "--state-dir", str(tmp_path), "cni", "conflist", "nope"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.returncode == 1 and res.stderr.strip() == "cnet: error: network 'nope' not found"


def test_verbs_import_neither_sh_nor_the_container_package(tmp_path):
    """The plugin runs commands without `sh` (cnet.runner.SpawnRunner) and loads none of the
    container life cycle: every runtime call pays for what it imports."""
    conf = json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "cnet", "stateDir": str(tmp_path / "none")})
    res = run_entry({"CNI_COMMAND": "ADD", **BASE}, conf)
    assert res.returncode == 1 and json.loads(res.stdout.splitlines()[-1])["code"] == 7
    names = imported(res.stderr)
    assert "cnet.services.cni" in names
    assert not names & {
        "sh",
        "sqlalchemy",
        "alembic",
        "typer",
        "asyncio",
        "subprocess",
        "cnet.services.containers",
        "cnet.services.reconcile",
        "secrets",
        "cnet.kernel.parse",
    }, sorted(names & {"sh", "asyncio", "subprocess", "secrets", "cnet.kernel.parse"})


PLUGIN_EXIT_PROBE = """
import atexit, sys, threading
atexit.register(lambda: print("TEARDOWN", file=sys.stderr))
done = threading.Event()
if sys.argv[1] == "thread":
    threading.Thread(target=done.wait, args=(30,)).start()
from cnet.cli.cni_plugin import main
try:
    main()
finally:
    done.set()
"""


@pytest.mark.parametrize("case", ["plain", "thread"])
@pytest.mark.parametrize("command", ["VERSION", "ADD"])
def test_plugin_exits_without_teardown_only_when_safe(case, command, tmp_path):
    """Every runtime call ends without the interpreter's teardown, its document written whole;
    with a live thread the normal exit (atexit) runs instead. ADD here fails (no state): the
    error path exits the same way."""
    conf = json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "cnet", "stateDir": str(tmp_path / "none")})
    res = subprocess.run(
        [sys.executable, "-c", PLUGIN_EXIT_PROBE, case],
        input=conf,
        capture_output=True,
        text=True,
        env={**BASE, "CNI_COMMAND": command, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    doc = json.loads(res.stdout)
    if command == "VERSION":
        assert res.returncode == 0 and "1.1.0" in doc["supportedVersions"]
    else:
        assert res.returncode == 1 and doc["code"] == 7
    assert ("TEARDOWN" in res.stderr) == (case == "thread"), res.stderr
