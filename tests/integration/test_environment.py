"""The container's environment reaches its program only (issue 15.2): cnet's launcher, watcher,
nsenter/unshare/setpriv and the reaper (root, in the host's namespaces) run with cnet's own
environment, so no `-e` value can break them or leave the network held."""

import json
import signal

import pytest

from .conftest import settled

pytestmark = pytest.mark.root

# Every variable that would break a tool cnet runs if it leaked into cnet's processes.
HOSTILE = {
    "PATH": "/opt/app/bin",
    "PYTHONHOME": "/nonexistent",
    "PYTHONPATH": "/nonexistent",
    "LD_PRELOAD": "/nonexistent/libevil.so",
    "LD_LIBRARY_PATH": "/nonexistent",
    "HOME": "/nowhere",
    "LC_ALL": "xx_XX.bogus",
    "IFS": "x",
    "PWD": "/nowhere",
    "Q": 'it\'s "quoted" $(touch /tmp/pwned)\nsecond line',
}


def _env_args() -> list[str]:
    return [arg for k, v in HOSTILE.items() for arg in ("-e", f"{k}={v}")]


def _parse(out: bytes) -> dict[str, str]:
    return dict(item.split("=", 1) for item in out.decode().split("\0") if item)


def _expected(name: str) -> dict[str, str]:
    return {"HOSTNAME": name, **HOSTILE}


def test_foreground_program_sees_exactly_its_env_and_everything_is_released(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.7.0/24")
    with_net = settled(sb)
    res = sb.run(
        sb.cnet_argv("run", "--name", "e1", "--net", "n1", "-p", "8080:80", *_env_args(), "--", "/usr/bin/env", "-0"),
        env={"TERM": "dumb"},
    )
    assert res.returncode == 0, res.stderr
    got = _parse(res.stdout.encode())
    assert got == {**_expected("e1"), "TERM": "dumb"}
    assert "internal error" not in res.stderr
    assert sb.wait_for(lambda: "cnet:ctr:" not in sb.iptables_save(), timeout=3), sb.iptables_save()
    assert sb.wait_for(lambda: not [n for n in sb.link_names() if n.startswith("cnetv")], timeout=3)
    assert sb.cnet("sql", "SELECT count(*) FROM ip_allocations WHERE endpoint_id IS NOT NULL").stdout.split()[-1] == "0"
    rows = json.loads(sb.cnet("ps", "-a", "--json").stdout)
    assert [(r["name"], r["state"]) for r in rows] == [("e1", "exited (0)")]
    sb.cnet("rm", "e1")
    assert sb.wait_for(lambda: settled(sb) == with_net, timeout=3), settled(sb)
    assert sb.run(["test", "-e", "/tmp/pwned"]).returncode != 0
    sb.cnet("net", "rm", "n1")


def test_detached_exec_and_reaper_with_hostile_env(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.8.0/24")
    with_net = settled(sb)
    sb.cnet("run", "-d", "--name", "e2", "--net", "n1", "-p", "8081:80", *_env_args(), "--", "/bin/sleep", "60")
    ctr = json.loads(sb.cnet("inspect", "e2").stdout)
    # `cnet exec`: the command gets the container's environment, nsenter cnet's.
    res = sb.run(sb.cnet_argv("exec", "e2", "--", "/usr/bin/env", "-0"), env={"TERM": "dumb"})
    assert res.returncode == 0, res.stderr
    assert {k: v for k, v in _parse(res.stdout.encode()).items() if k != "TERM"} == _expected("e2")
    # The values are not on any command line (any user can read /proc/PID/cmdline).
    cmdlines = sb.run(["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]).stdout
    assert "libevil" not in cmdlines
    # The container dies: its reaper (cnet's environment, not PYTHONHOME=/nonexistent) releases
    # the port rule, the address and the veth with no cnet command run.
    sb.run(["kill", "-KILL", str(ctr["pid"])], check=True)
    assert sb.wait_for(lambda: "cnet:ctr:" not in sb.iptables_save(), timeout=3), sb.iptables_save()
    rows = json.loads(sb.cnet("ps", "-a", "--json").stdout)
    assert [(r["name"], r["state"]) for r in rows] == [("e2", f"exited ({128 + signal.SIGKILL})")]
    sb.cnet("rm", "e2")
    assert sb.wait_for(lambda: settled(sb) == with_net, timeout=3), settled(sb)
    sb.cnet("net", "rm", "n1")
