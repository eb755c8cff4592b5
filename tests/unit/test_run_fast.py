"""`cnet run` through its typer-free path (cli/entry.py) prints and exits exactly as through typer
(cli/main.py): the same stdout, stderr and exit code, on dry runs of every option, on user errors
and on broken states (no kernel needed: a dry run changes nothing, and the errors come before
any change). Each container's fresh random id, and the names made from it, are the only
difference, so both outputs have them replaced by placeholders in order of appearance. The fast
path runs with typer made unimportable, so a case that fell back to typer would fail. Real
containers run through the typer-free path in the integration tests (`cnet run` as a user types
it); tests/unit/test_plain_args.py checks that both paths end with a foreground container's
exit status."""

import ipaddress
import os
import re
import subprocess
import sys

import pytest

from cnet import ipam
from cnet.cli import plain_args
from cnet.db import connection, migrate, store
from cnet.records import Container, ContainerState

from .factories import broken_state_dirs, network

FAST = "import sys; sys.modules['typer'] = None; sys.argv = ['cnet', *sys.argv[1:]]; from cnet.cli.entry import main; main()"
TYPER = "import sys; sys.argv = ['cnet', *sys.argv[1:]]; from cnet.cli.main import main; main()"
# A container's id (12 hex digits) and what is named after it (its netns, its veth's hashed name);
# the log writer's clock offset (the wall clock less the uptime, in seconds, when the plan is made).
RANDOM = re.compile(rb"\b(?:cnetv)?[0-9a-f]{10,12}\b")
CLOCK = re.compile(rb" [0-9]{9,}\.[0-9]+\n")


def bridge_network(net_id: str, name: str, subnet: str, **fields):
    """A ready network with its address bounds as `net create` computes them."""
    net = ipaddress.ip_network(subnet)
    lo, hi = ipam.dynamic_bounds(net, None)
    return network(
        id=net_id, name=name, subnet=subnet, gateway=str(net.network_address + 1), bridge=f"cnet-{net_id}",
        subnet_first_int=int(net.network_address), subnet_last_int=int(net.broadcast_address),
        range_first_int=lo, range_last_int=hi, alloc_cursor_int=lo - 1, **fields,
    )  # fmt: skip


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    """Two networks and a running container named `web` (its pid this test's: alive, nothing to
    recover). Dry runs and refused runs write nothing, so every test sees it as built."""
    d = tmp_path_factory.mktemp("state")
    connection.ensure_state_dir(d)
    conn = connection.open_state(d)
    migrate.upgrade(conn)
    with conn.write():
        a = bridge_network("0a1b2c3d4e", "a", "10.77.0.0/24", bridge_mac="0a:0a:1b:2c:3d:4e")
        store.insert_network(conn, a)
        store.insert_network(conn, bridge_network("5f6a7b8c9d", "b", "10.78.0.0/24", bridge_mac="0a:5f:6a:7b:8c:9d"))
        web = Container(
            id="ab" * 6, name="web", state=ContainerState.RUNNING, command=("sleep", "1d"), hostname="web",
            env={}, spec={}, detached=True, netns="cnet-" + "ab" * 6, created_at=1_700_000_000.0,
        )  # fmt: skip
        store.insert_container(conn, web)
        store.set_pid(conn, web.id, os.getpid(), None)
    conn.close()
    return d


@pytest.fixture(scope="module")
def no_tools(tmp_path_factory):
    """An empty PATH for runs that are not dry: should one ever get past its checks, its commands
    are not found rather than run on this machine."""
    return str(tmp_path_factory.mktemp("empty-path"))


# A dry run reads the kernel's state (`ip netns list`, read-only) and changes nothing.
TOOLS = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")


def both(*args: str, path: str, stdout=subprocess.PIPE) -> tuple[subprocess.CompletedProcess, ...]:
    assert plain_args.parse_run(list(args)) is not None, "a case the fast path declines proves nothing here"
    env = {k: v for k, v in os.environ.items() if k not in ("CNET_STATE_DIR", "CNET_DEBUG", "_CNET_COMPLETE")}
    env["PATH"] = path

    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code, *args], stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=120
        )

    return run(FAST), run(TYPER)


def placeholders(out: bytes | None) -> bytes | None:
    """`out` with each distinct random name replaced by <1>, <2>, ... in order of appearance."""
    if out is None:
        return None
    seen: dict[bytes, bytes] = {}
    out = CLOCK.sub(b" <clock>\n", out)
    return RANDOM.sub(lambda m: seen.setdefault(m.group(0), b"<%d>" % (len(seen) + 1)), out)


def same(fast: subprocess.CompletedProcess, slow: subprocess.CompletedProcess) -> None:
    assert (placeholders(fast.stdout), placeholders(fast.stderr), fast.returncode) == (
        placeholders(slow.stdout),
        placeholders(slow.stderr),
        slow.returncode,
    )


def test_the_placeholders_keep_what_is_not_random():
    out = b"netns add cnet-0123456789ab\nlink add name cnetv7560dbe41d peer cnet-0123456789ab mac 02:42:0a:5b:00:02\n"
    out += b"perl -e '...' /var/lib/cnet/containers/0123456789ab/log 10485760 1764585600.596804\n"
    assert placeholders(out) == (
        b"netns add cnet-<1>\nlink add name <2> peer cnet-<1> mac 02:42:0a:5b:00:02\n"
        b"perl -e '...' /var/lib/cnet/containers/<1>/log 10485760 <clock>\n"
    )


DRY_RUNS = [
    ["--net", "a", "--", "true"],
    ["--net", "a", "true"],
    ["-d", "--name", "api", "--net", "a", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "busybox", "httpd"],
    ["-d", "--net", "a", "--net", "b", "--network-alias", "db", "--ip", "10.77.0.9", "--hostname", "h", "sleep", "1"],
    ["-d", "--net=a", "-e", "A=1", "-eB=2 3", "-l", "app=x", "--label=k", "--restart", "on-failure:3", "true"],
    ["-d", "--net", "a", "--init", "--log-max-size", "1m", "--stop-timeout", "2.5", "--rm", "sh", "-c", "exit 3"],
    ["--rm", "-it", "--net", "a", "sh"],
    ["-i", "--net", "none", "cat"],
    ["--net", "none", "--", "-weird", "--", "arg"],
    ["-dp", "9000-9001:9000-9001", "--net", "a", "true"],
]


@pytest.mark.parametrize("run", DRY_RUNS, ids=" ".join)
def test_same_dry_run_as_typer(state, run):
    fast, slow = both("--state-dir", str(state), "--dry-run", "run", *run, path=TOOLS)
    assert slow.returncode == 0 and slow.stdout.startswith(b"#!/bin/sh"), slow.stderr
    same(fast, slow)


@pytest.mark.parametrize(
    "run",
    [
        ["--name", "web", "--net", "a", "true"],  # taken
        ["--name", "bad name!", "true"],
        ["--net", "nosuch", "true"],
        ["--net", "a", "-p", "80", "true"],
        ["--net", "a", "-p", "70000:80", "true"],
        ["--net", "a", "--ip", "10.99.0.1", "true"],
        ["--net", "a", "--ip", "not-an-ip", "true"],
        ["--net", "a", "--ip6", "fd00::9", "true"],
        ["--net", "a", "-e", "=x", "true"],
        ["--net", "a", "-l", "=v", "true"],
        ["--net", "a", "--restart", "sometimes", "true"],
        ["--net", "a", "--log-max-size", "lots", "true"],
        ["--net", "none", "-p", "80:80", "true"],
        ["--net", "a", "--net", "a", "true"],
        ["--net", "a", "--network-alias", "bad alias!", "true"],
        ["--net", "a", "--hostname", "-h", "true"],
    ],
    ids=" ".join,
)
@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "real"])
def test_same_errors_as_typer(state, no_tools, run, dry):
    path = TOOLS if dry else no_tools
    fast, slow = both("--state-dir", str(state), *(["--dry-run"] if dry else []), "run", *run, path=path)
    assert slow.returncode == 1 and slow.stderr.startswith(b"cnet: error: "), slow
    assert slow.stdout == b""
    same(fast, slow)


def test_same_on_broken_states(tmp_path, no_tools):
    for d in broken_state_dirs(tmp_path):
        for dry in ([], ["--dry-run"]):
            path = TOOLS if dry else no_tools
            fast, slow = both(f"--state-dir={d}", *dry, "run", "-d", "--net", "none", "true", path=path)
            assert slow.returncode == 1 and slow.stderr.startswith(b"cnet: error: "), slow
            same(fast, slow)


def test_same_with_verbose_and_a_closed_pipe(state):
    same(*both("-v", "--state-dir", str(state), "--dry-run", "run", "--net", "a", "true", path=TOOLS))
    read, write = os.pipe()
    os.close(read)  # every write to stdout fails: EPIPE
    try:
        fast, slow = both("--state-dir", str(state), "--dry-run", "run", "--net", "a", "true", stdout=write, path=TOOLS)
    finally:
        os.close(write)
    assert slow.returncode == 1, slow
    same(fast, slow)
