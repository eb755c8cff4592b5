"""Containers: foreground/detached run, stop escalation, exec/logs, networks, fault injection."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import answers, inspect, no_cnet_leftovers, run_server, settled

pytestmark = pytest.mark.root


def _ps(sb) -> dict[str, str]:
    return {r["name"]: r["state"] for r in json.loads(sb.cnet("ps", "-a", "--json").stdout)}


def _in_ctr(sb, name: str, *argv: str) -> subprocess.CompletedProcess:
    return sb.cnet("exec", name, "--", *argv, check=False)


def _cnet_child(popen: subprocess.Popen) -> int:
    """`nsenter -p` forks: the cnet process is its child (signals go to it, not to nsenter)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kids = Path(f"/proc/{popen.pid}/task/{popen.pid}/children").read_text().split()
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise AssertionError("cnet did not start")


def _wait_clean(sb, expected: dict) -> None:
    """Released veths vanish asynchronously once their netns is deleted: poll."""
    assert sb.wait_for(lambda: settled(sb) == expected, timeout=3), settled(sb)


def test_foreground_run_prints_wiring_and_exits_with_the_command_code(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.1.0/24")
    with_net = settled(sb)
    res = sb.cnet(
        "run",
        "--name",
        "fg",
        "--net",
        "n1",
        "-p",
        "8080:80",
        "--",
        # Lives long enough for cnet to see its PID (an instant command has exited first).
        "sh",
        "-c",
        "echo out:$(hostname); sleep 0.3; exit 3",
        check=False,
    )
    assert res.returncode == 3, res
    assert "out:fg" in res.stdout
    err = res.stderr
    assert "fg" in err and "10.10.1.2" in err and "8080" in err and "-> 10.10.1.2:80/tcp" in err
    assert "nsenter --target" in err and "--mount --uts --ipc --net --pid" in err
    pid_line = next(line for line in err.splitlines() if " pid " in line)
    assert pid_line.split(" pid ")[1].split()[0].isdigit()
    assert _ps(sb) == {"fg": "exited (3)"}
    sb.cnet("rm", "fg")
    _wait_clean(sb, with_net)

    # --rm: the record goes with the process.
    assert sb.cnet("run", "--rm", "--name", "gone", "--net", "n1", "--", "true").returncode == 0
    assert _ps(sb) == {}
    _wait_clean(sb, with_net)
    sb.cnet("net", "rm", "n1")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_foreground_run_torn_down_by_signal(sandbox, sig):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.1.0/24")
    with_net = settled(sb)
    p = sb.popen(
        sb.cnet_argv(
            "run", "--name", "fg", "--net", "n1", "-p", "8080:80", "--stop-timeout", "0.5", "--", "sleep", "60"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        cnet_pid = _cnet_child(p)
        seen = []
        for line in p.stderr:
            seen.append(line)
            if "nsenter --target" in line:
                break
        assert any("nsenter --target" in line for line in seen), seen
        assert "cnet:ctr:" in sb.iptables_save()
        os.kill(cnet_pid, sig)
        p.wait(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode != 0
    assert _ps(sb)["fg"].startswith("exited")
    sb.cnet("rm", "fg")
    _wait_clean(sb, with_net)
    sb.cnet("net", "rm", "n1")


def test_stop_escalates_to_sigkill_only_when_sigterm_is_ignored(sandbox):
    sb = sandbox
    sb.cnet(
        "run", "-d", "--name", "deaf", "--net", "none", "--", "sleep", "60"
    )  # PID 1 without a handler: ignores TERM
    sb.cnet(
        "run",
        "-d",
        "--name",
        "polite",
        "--net",
        "none",
        "--",
        "python3",
        "-c",
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
        "print('ready', flush=True)\ntime.sleep(60)",
    )
    assert sb.wait_for(lambda: "ready" in sb.cnet("logs", "polite").stdout, timeout=10)

    t0 = time.monotonic()
    sb.cnet("stop", "-t", "1", "deaf")
    took = time.monotonic() - t0
    assert 1.0 <= took < 6, took
    assert sb.wait_for(lambda: _ps(sb).get("deaf") == "exited (137)", timeout=3), _ps(sb)

    t0 = time.monotonic()
    sb.cnet("stop", "-t", "20", "polite")
    assert time.monotonic() - t0 < 6
    assert sb.wait_for(lambda: _ps(sb).get("polite") == "exited (42)", timeout=3), _ps(sb)

    sb.cnet("rm", "deaf", "polite")


def test_exec_env_hostname_pid1_logs(sandbox, tmp_path):
    sb = sandbox
    flag = tmp_path / "finish"
    script = f'echo start; echo "foo=$FOO"; echo oops >&2; while [ ! -e {flag} ]; do sleep 0.05; done; echo bye; exit 5'
    sb.cnet(
        "run", "-d", "--name", "box", "--net", "none", "--hostname", "hh", "-e", "FOO=bar baz", "-e", "EMPTY=", "--", "sh",
        "-c", script,
    )  # fmt: skip
    # As `docker logs`: the container's stdout on stdout, its stderr on stderr.
    assert sb.wait_for(lambda: "oops" in sb.cnet("logs", "box").stderr, timeout=10)
    logs = sb.cnet("logs", "box")
    assert logs.stdout.splitlines()[:2] == ["start", "foo=bar baz"]
    assert "oops\n" in logs.stderr and "oops" not in logs.stdout

    assert _in_ctr(sb, "box", "hostname").stdout.strip() == "hh"
    cmdline = _in_ctr(sb, "box", "cat", "/proc/1/cmdline").stdout.split("\0")
    assert cmdline[:3] == ["sh", "-c", script]
    r = _in_ctr(sb, "box", "sh", "-c", 'echo "$FOO|$EMPTY|$HOSTNAME"; exit 7')
    assert (r.returncode, r.stdout.strip()) == (7, "bar baz||hh")
    assert _in_ctr(sb, "box", "false").returncode == 1
    assert _in_ctr(sb, "box", "no-such-command-xyz").returncode != 0
    # Only lo without --net; the PID namespace is its own.
    links = json.loads(_in_ctr(sb, "box", "ip", "-j", "link").stdout)
    assert [link["ifname"] for link in links] == ["lo"]
    assert "UP" in links[0]["flags"], "lo must be up inside a container without networks (Docker's --network none)"
    ctr_pidns = _in_ctr(sb, "box", "readlink", "/proc/self/ns/pid").stdout.strip()
    assert ctr_pidns.startswith("pid:[") and ctr_pidns != sb.run(["readlink", "/proc/self/ns/pid"]).stdout.strip()

    follow = sb.popen(sb.cnet_argv("logs", "-f", "box"), stdout=subprocess.PIPE, text=True)
    try:
        assert follow.stdout.readline() == "start\n"
        flag.touch()
        rest = follow.communicate(timeout=10)[0]
    finally:
        if follow.poll() is None:
            follow.kill()
    assert rest.splitlines()[-1] == "bye" and follow.returncode == 0
    assert sb.wait_for(lambda: _ps(sb).get("box") == "exited (5)", timeout=3), _ps(sb)
    assert _in_ctr(sb, "box", "true").returncode == 1  # not running: a one-line error
    sb.cnet("rm", "box")

    sb.cnet("run", "-d", "--rm", "--name", "brief", "--net", "none", "--", "true")
    assert sb.wait_for(lambda: "brief" not in _ps(sb), timeout=3)


def test_multiple_networks_static_ip_and_default_route(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.1.0/24")
    sb.cnet("net", "create", "n2", "--subnet", "10.10.2.0/24")
    with_nets = settled(sb)
    sb.cnet("run", "-d", "--name", "multi", "--net", "n1", "--net", "n2", "--ip", "10.10.1.50", "--", "sleep", "60")
    addrs = {
        link["ifname"]: [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"]
        for link in json.loads(_in_ctr(sb, "multi", "ip", "-j", "addr").stdout)
    }
    assert addrs == {"lo": ["127.0.0.1/8"], "eth0": ["10.10.1.50/24"], "eth1": ["10.10.2.2/24"]}
    routes = json.loads(_in_ctr(sb, "multi", "ip", "-j", "route").stdout)
    defaults = [(r["gateway"], r["dev"]) for r in routes if r["dst"] == "default"]
    assert defaults == [("10.10.1.1", "eth0")]
    # The static address is taken: a second container cannot have it.
    res = sb.cnet("run", "-d", "--name", "dup", "--net", "n1", "--ip", "10.10.1.50", "--", "sleep", "60", check=False)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    info = inspect(sb, "multi")
    assert [(n["network"], n["interface"], n["ip"]) for n in info["networks"]] == [
        ("n1", "eth0", "10.10.1.50"),
        ("n2", "eth1", "10.10.2.2"),
    ]
    sb.cnet("rm", "-f", "multi")
    _wait_clean(sb, with_nets)
    sb.cnet("net", "rm", "n1", "n2")


def test_connect_and_disconnect_a_running_container(sandbox, tools):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.1.0/24")
    sb.cnet("net", "create", "n2", "--subnet", "10.10.2.0/24")
    with_nets = settled(sb)
    run_server(sb, tools, "c", "--net", "n1", "-p", "8080:80/tcp", "-p", "8080:80/udp")
    mapped = ["tcp:127.0.0.1:8080", "udp:127.0.0.1:8080"]

    sb.cnet("net", "connect", "n2", "c", "--ip", "10.10.2.77")
    info = inspect(sb, "c")
    assert [(n["interface"], n["ip"]) for n in info["networks"]] == [("eth0", "10.10.1.2"), ("eth1", "10.10.2.77")]
    veth2 = info["networks"][1]["host_veth"]
    assert veth2 in sb.link_names()
    addrs = json.loads(_in_ctr(sb, "c", "ip", "-j", "addr", "show", "eth1").stdout)
    assert [a["local"] for a in addrs[0]["addr_info"] if a["family"] == "inet"] == ["10.10.2.77"]
    # The host reaches it on the new network; the mapping keeps working.
    assert answers(sb, tools, ["tcp:10.10.2.77:80"]) == {"tcp:10.10.2.77:80": "c"}
    assert answers(sb, tools, mapped) == {t: "c" for t in mapped}
    assert sb.cnet("net", "connect", "n2", "c", check=False).returncode == 1  # already connected

    sb.cnet("net", "disconnect", "n2", "c")
    assert sb.wait_for(lambda: veth2 not in sb.link_names(), timeout=2)
    info = inspect(sb, "c")
    assert [n["network"] for n in info["networks"]] == ["n1"]
    assert json.loads(sb.cnet("sql", "SELECT count(*) AS n FROM endpoints", "--json").stdout)[0]["n"] == 1
    links = [link["ifname"] for link in json.loads(_in_ctr(sb, "c", "ip", "-j", "link").stdout)]
    assert links == ["lo", "eth0"]
    assert answers(sb, tools, mapped) == {t: "c" for t in mapped}

    sb.cnet("rm", "-f", "c")
    _wait_clean(sb, with_nets)
    sb.cnet("net", "rm", "n1", "n2")


FAKE = """#!/bin/sh
# Fails on call number {n} (counted in {counter}), otherwise runs the real {real}.
n=$(($(cat {counter} 2>/dev/null || echo 0) + 1))
echo $n > {counter}
if [ $n -eq {n} ]; then echo "injected failure" >&2; exit 4; fi
exec {real} "$@"
"""


@pytest.mark.parametrize(
    "program,nth,expect",
    [
        ("iptables-restore", 1, "iptables-restore"),  # the port-mapping transaction, after veth and IP
        ("ip", 2, "nsenter --net=/run/netns/cnet-"),  # inside the netns, after the veth exists
    ],
)
def test_failure_after_ip_allocation_leaves_nothing(sandbox, tmp_path, program, nth, expect):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.1.0/24")
    before = settled(sb)
    fake = tmp_path / "fakebin"
    fake.mkdir()
    real = subprocess.run(["sh", "-c", f"command -v {program}"], capture_output=True, text=True).stdout.strip()
    (fake / program).write_text(FAKE.format(n=nth, counter=tmp_path / "calls", real=real))
    (fake / program).chmod(0o755)
    res = sb.cnet(
        "run",
        "-d",
        "--name",
        "f",
        "--net",
        "n1",
        "-p",
        "8080:80/tcp",
        "-p",
        "8081:81/udp",
        "--",
        "sleep",
        "60",
        check=False,
        env={"PATH": f"{fake}:{os.environ['PATH']}"},
    )
    assert res.returncode == 1, res
    assert expect in res.stderr and "injected failure" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "rollback incomplete" not in res.stderr, res.stderr
    assert int((tmp_path / "calls").read_text()) >= nth  # the fake really ran
    assert settled(sb) == before
    assert "sleep 60" not in sb.run(["ps", "-eo", "args"]).stdout
    # The failure is in the journal as rolled back, and the network is usable at once.
    ops = sb.cnet("journal", "--json").stdout
    assert "rolled" in ops
    sb.cnet("run", "-d", "--name", "ok", "--net", "n1", "-p", "8080:80", "--", "sleep", "60")
    assert inspect(sb, "ok")["networks"][0]["ip"] == "10.10.1.3"  # next-fit moved past .2
    sb.cnet("rm", "-f", "ok")
    _wait_clean(sb, before)
    sb.cnet("net", "rm", "n1")


def test_dry_run_allocates_and_starts_nothing(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.1.0/24")
    before = sb.snapshot()
    out = sb.cnet(
        "--dry-run",
        "run",
        "--name",
        "d",
        "--net",
        "n1",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:9090:90/udp",
        "--",
        "sleep",
        "60",
    ).stdout
    assert "set -e" in out and "ip -batch -" in out and "iptables-restore" in out and "nsenter" in out
    assert "10.10.1.2/24" in out and "--dport 8080" in out and "sleep 60" in out
    assert sb.snapshot() == before
    assert "sleep 60" not in sb.run(["ps", "-eo", "args"]).stdout
    before = settled(sb)
    # Nothing was allocated: the real run gets the address the dry run showed.
    sb.cnet("run", "-d", "--name", "d", "--net", "n1", "-p", "8080:80", "--", "sleep", "60")
    assert inspect(sb, "d")["networks"][0]["ip"] == "10.10.1.2"
    sb.cnet("rm", "-f", "d")
    _wait_clean(sb, before)
    sb.cnet("net", "rm", "n1")


def test_full_cycle_returns_to_baseline(sandbox, tools):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "175.50.0.0/24")
    sb.cnet("net", "create", "n2")
    run_server(sb, tools, "2233", "--net", "n1", "-p", "8085:80")
    run_server(sb, tools, "3344", "--net", "n1", "--net", "n2", "-p", "8086:80", "-p", "8086:80/udp")
    run_server(sb, tools, "x", "--net", "n2", "-p", "127.0.0.1:8087:80")
    got = answers(sb, tools, ["tcp:127.0.0.1:8085", "tcp:175.50.0.1:8086", "udp:127.0.0.1:8086", "tcp:127.0.0.1:8087"])
    assert list(got.values()) == ["2233", "3344", "3344", "x"]
    # A network with containers attached cannot go.
    res = sb.cnet("net", "rm", "n2", check=False)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    sb.cnet("stop", "-t", "0.2", "x")
    sb.cnet("rm", "x")
    sb.cnet("rm", "-f", "2233", "3344")
    assert _ps(sb) == {}
    sb.wait_for(lambda: not [link for link in sb.link_names() if link.startswith("cnetv")], timeout=3)
    sb.cnet("net", "rm", "n1", "n2")
    no_cnet_leftovers(sb)
