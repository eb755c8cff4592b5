"""`cnet ps` through its typer-free path (cli/entry.py) prints and exits exactly as through typer
(cli/main.py): the same stdout, stderr and exit code, byte for byte, on a state with containers
of every kind (rows written through the store, no kernel needed) and on broken states. The fast
path runs with typer made unimportable, so a case that fell back to typer would fail."""

import os
import subprocess
import sys

import pytest

from cnet.cli import plain_args
from cnet.db import connection, migrate, names_store, store
from cnet.records import Container, ContainerState, PortSpec

from .factories import broken_state_dirs, network

# The typer-free path as `cnet` runs it, with any import of typer failing.
FAST = "import sys; sys.modules['typer'] = None; sys.argv = ['cnet', *sys.argv[1:]]; from cnet.cli.entry import main; main()"
# typer's path, as `cnet` takes it for every other command.
TYPER = "import sys; sys.argv = ['cnet', *sys.argv[1:]]; from cnet.cli.main import main; main()"


def container(cid: str, name: str, state: ContainerState, **fields) -> Container:
    values = dict(
        id=cid, name=name, state=state, command=("sleep", "infinity"), hostname=name, env={}, spec={},
        detached=True, netns="cnet-" + cid, created_at=1_700_000_000.0 + int(cid[:2], 16),
    )  # fmt: skip
    values.update(fields)
    return Container(**values)


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    """Two networks; containers running (their pid this test's, alive: nothing to reap), exited,
    creating and restarting (its watcher alive: this test); addresses, ports, labels; a command long enough to be shortened."""
    d = tmp_path_factory.mktemp("state")
    connection.ensure_state_dir(d)
    conn = connection.open_state(d)
    migrate.upgrade(conn)
    me = os.getpid()
    a = network()
    b = network(id="n2", name="b", subnet="10.6.0.0/24", gateway="10.6.0.1", bridge="cnet-n2")
    long_command = ("python3", "-c", "import time; print('a b \"c\"'); time.sleep(1e9)", "--flag=x y")
    rows = [
        container("a1" * 6, "web", ContainerState.RUNNING, command=long_command),
        container("b2" * 6, "db", ContainerState.RUNNING),
        container("c3" * 6, "old", ContainerState.EXITED),
        container("d4" * 6, "new", ContainerState.CREATING),
        container("e5" * 6, "flaky", ContainerState.RESTARTING),
    ]
    with conn.write():
        store.insert_network(conn, a)
        store.insert_network(conn, b)
        for c in rows:
            store.insert_container(conn, c)
        store.set_pid(conn, rows[0].id, me, None)
        store.set_pid(conn, rows[1].id, me, None)
        store.set_exit_codes(conn, rows[2].id, 3)
        store.set_exit_codes(conn, rows[4].id, 1)
        store.set_watcher(conn, rows[4].id, me, None)
        web = store.insert_endpoint(
            conn, container_id=rows[0].id, network=a, interface="eth0", host_veth="cnetv1", ip="10.5.0.2",
            ip_int=0x0A050002, mac="0a:00:00:00:00:02", default_route=True,
        )  # fmt: skip
        store.insert_port(conn, rows[0].id, web, PortSpec("0.0.0.0", 8080, 80, "tcp"))
        store.insert_port(conn, rows[0].id, web, PortSpec("127.0.0.1", 5353, 53, "udp"))
        for i, net in enumerate((a, b)):
            store.insert_endpoint(
                conn, container_id=rows[1].id, network=net, interface=f"eth{i}", host_veth=f"cnetv2{i}",
                ip=f"10.{5 + i}.0.3", ip_int=0, mac=f"0a:00:00:00:01:0{i}", default_route=i == 0,
            )  # fmt: skip
        names_store.insert_labels(conn, "container_labels", "container_id", rows[0].id, {"app": "web", "tier": "x y"})
        names_store.insert_labels(conn, "container_labels", "container_id", rows[1].id, {"app": "db"})
    conn.close()
    return d


@pytest.fixture(scope="module")
def no_tools(tmp_path_factory):
    """An empty PATH: `ps` run as root reaps a running container whose process is gone, and its
    release plan runs ip/iptables; these rows are alive (this test's pid), and should that ever
    fail, the commands are not found rather than run on this machine."""
    return str(tmp_path_factory.mktemp("empty-path"))


def both(*args: str, stdout=subprocess.PIPE, path: str) -> tuple[subprocess.CompletedProcess, ...]:
    assert plain_args.parse_ps(list(args)) is not None, "a case the fast path declines proves nothing here"
    env = {k: v for k, v in os.environ.items() if k not in ("CNET_STATE_DIR", "CNET_DEBUG", "_CNET_COMPLETE")}
    env["PATH"] = path

    def run(code: str) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [sys.executable, "-c", code, *args], stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=120
        )
        assert b"marked exited" not in r.stderr, r.stderr  # nothing reaped: the state stays as built
        return r

    return run(FAST), run(TYPER)


def same(fast: subprocess.CompletedProcess, slow: subprocess.CompletedProcess) -> None:
    assert (fast.stdout, fast.stderr, fast.returncode) == (slow.stdout, slow.stderr, slow.returncode)


CASES = [
    [],
    ["-a"],
    ["-q"],
    ["-aq"],
    ["--json"],
    ["-a", "--json"],
    ["--format", "{{.Name}} {{.State}} {{.Ports}} {{.Labels}}"],
    ["-a", "--format=json"],
    ["-a", "--format", "{{json .}}"],
    ["-f", "name=e"],
    ["-a", "--filter", "label=app", "--filter", "status=exited", "-f", "status=running"],
    ["-fnetwork=b", "--json"],
    ["-f", "label=tier=x y", "-q"],
    ["-f", "id=c3"],
]


@pytest.mark.parametrize("ps", CASES, ids=lambda a: " ".join(a) or "plain")
def test_same_output_as_typer(state, no_tools, ps):
    fast, slow = both("--state-dir", str(state), "ps", *ps, path=no_tools)
    assert slow.returncode == 0 and slow.stdout, slow.stderr
    same(fast, slow)


@pytest.mark.parametrize(
    "ps",
    [
        ["-f", "colour=red"],
        ["-f", "noequals"],
        ["--filter="],
        ["--format", "{{if}}"],
        ["--format", "{{.Nope}}"],
        ["-q", "-f", "status=sleepy"],
    ],
    ids=" ".join,
)
def test_same_errors_as_typer(state, no_tools, ps):
    fast, slow = both("--state-dir", str(state), "ps", *ps, path=no_tools)
    assert slow.returncode != 0 and slow.stderr.startswith(b"cnet: "), slow
    same(fast, slow)


def test_same_on_broken_states(tmp_path, no_tools):
    newer = tmp_path / "newer"  # from a newer cnet: the fast path leaves it to the Context's check
    connection.ensure_state_dir(newer)
    conn = connection.open_state(newer)
    migrate.create_empty(conn)
    conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    conn.close()
    for d in [*broken_state_dirs(tmp_path), newer]:
        fast, slow = both(f"--state-dir={d}", "ps", "-a", path=no_tools)
        assert slow.returncode == 1 and slow.stderr.startswith(b"cnet: error: "), slow
        same(fast, slow)
    fast, slow = both(
        "--state-dir", str(tmp_path / "missing"), "-v", "ps", "--json", path=no_tools
    )  # no database: empty
    assert slow.returncode == 0 and slow.stdout == b"[]\n", slow
    same(fast, slow)
    assert not (tmp_path / "missing").exists()


def test_same_with_global_flags_and_a_closed_pipe(state, no_tools):
    same(*both("--dry-run", "-v", "--state-dir", str(state), "ps", "-a", path=no_tools))
    read, write = os.pipe()
    os.close(read)  # every write to stdout fails: EPIPE
    try:
        fast, slow = both("--state-dir", str(state), "ps", "-a", stdout=write, path=no_tools)
    finally:
        os.close(write)
    assert slow.returncode == 1, slow
    same(fast, slow)
