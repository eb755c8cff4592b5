"""Crash at any point: cnet SIGKILLed at every step of every mutating operation.

Fakes for ip, iptables, iptables-restore, ebtables-nft-restore, sysctl and conntrack go first on PATH. Each counts its
call in a shared counter; the call numbered AT SIGKILLs the cnet process that ran it (its parent),
either before running the real command ("pre": the journal says started, nothing happened) or
right after it ("post": the change happened, the journal never heard). Then a plain `cnet ps` must
repair everything in one line: create operations rolled back, destroy operations completed, and
`cnet --dry-run gc` must find nothing to repair (the host holds exactly what the database says).

Containers started for stop/rm are started by a `cnet run` with the fakes first on its own PATH:
the watcher and its reaper run with cnet's environment (never the container's `-e` values), so
the reaper, which races `stop`/`rm -f` to release the container, is killed the same way when it
is the one running the step.
"""

from __future__ import annotations

import subprocess

import pytest

# Each case ends with the interrupted operation repaired, not undone: its network (and container)
# stay, as the case's expected state says.
pytestmark = [pytest.mark.root, pytest.mark.leaves_state]

FAKED = {
    "ip": "/usr/sbin/ip",
    "iptables": "/usr/sbin/iptables",
    "iptables-restore": "/usr/sbin/iptables-restore",
    "ip6tables": "/usr/sbin/ip6tables",
    "ip6tables-restore": "/usr/sbin/ip6tables-restore",
    "ebtables-nft-restore": "/usr/sbin/ebtables-nft-restore",
    "sysctl": "/usr/sbin/sysctl",
    "conntrack": "/usr/sbin/conntrack",
}
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

FAKE = """#!/bin/sh
d=$(dirname "$0")
n=$(flock "$d/lock" sh -c 'n=$(($(cat "$1" 2>/dev/null || echo 0) + 1)); echo $n > "$1"; echo $n' _ "$d/count")
at=$(cat "$d/at" 2>/dev/null || echo 0)
mode=$(cat "$d/mode" 2>/dev/null || echo pre)
echo "$n $(basename "$0") $*" >> "$d/log"
if [ "$n" = "$at" ] && [ "$mode" = pre ]; then echo "$n" > "$d/fired"; kill -KILL $PPID; exit 137; fi
{real} "$@"
rc=$?
if [ "$n" = "$at" ] && [ "$mode" = post ]; then echo "$n" > "$d/fired"; kill -KILL $PPID; exit 137; fi
exit $rc
"""

# Commands each operation runs (given the setup below); test_step_counts keeps this table honest.
STEPS = {
    "net-create": 6,  # ip_forward, base chains, anti-spoofing chain, bridge, route_localnet, network rules
    "run-d": 4,  # host side, container side, anti-spoofing rules, port rules
    "run-fg": 4,
    "stop": 4,  # port rules, udp conntrack flush, anti-spoofing rules, netns
    "rm-f": 4,
    "connect": 3,  # host side, container side, anti-spoofing rules
    "disconnect": 2,  # anti-spoofing rules, veth
    "net-rm": 5,  # network rules, bridge, base chains, anti-spoofing chain, ip_forward
}
DESTROY = {"stop", "rm-f", "disconnect", "net-rm"}
REAPER_RACE = {"stop", "rm-f"}


class Faults:
    def __init__(self, sb, tmp_path):
        self.sb = sb
        self.dir = tmp_path / "fakes"
        self.dir.mkdir()
        for name, real in FAKED.items():
            p = self.dir / name
            p.write_text(FAKE.format(real=real))
            p.chmod(0o755)
        self.path = f"{self.dir}:{CONTAINER_PATH}"

    def arm(self, at: int, mode: str) -> None:
        (self.dir / "count").write_text("0\n")
        (self.dir / "mode").write_text(mode + "\n")
        (self.dir / "at").write_text(f"{at}\n")
        (self.dir / "fired").unlink(missing_ok=True)

    def disarm(self) -> None:
        (self.dir / "at").write_text("0\n")

    def count(self) -> int:
        return int((self.dir / "count").read_text())

    def fired(self) -> bool:
        return (self.dir / "fired").exists()

    def log(self) -> str:
        p = self.dir / "log"
        return p.read_text() if p.exists() else ""


def kernel(sb) -> dict:
    return {
        "links": sb.link_names(),
        "rules": sb.rules(),
        "rules6": sb.rules6(),
        "bridge_rules": sb.bridge_rules(),
        "netns": sb.netns(),
        "ip_forward": sb.sysctl("net.ipv4.ip_forward"),
        "ip6_forward": sb.sysctl("net.ipv6.conf.all.forwarding"),
    }


def db(sb) -> dict:
    q = {
        "networks": "SELECT name, state FROM networks ORDER BY name",
        "containers": "SELECT name, state FROM containers ORDER BY name",
        "endpoints": "SELECT c.name, n.name, e.ip FROM endpoints e JOIN containers c ON c.id = e.container_id "
        "JOIN networks n ON n.id = e.network_id ORDER BY 1, 2",
        "ports": "SELECT host_port, protocol FROM port_mappings ORDER BY 1, 2",
        "ips": "SELECT n.name, a.address, a.kind FROM ip_allocations a "
        "JOIN networks n ON n.id = a.network_id ORDER BY 1, 2",
        "ips6": "SELECT n.name, a.address, a.kind FROM ip6_allocations a "
        "JOIN networks n ON n.id = a.network_id ORDER BY 1, 2",
        "running_ops": "SELECT count(*) FROM operations WHERE status = 'running'",
    }
    import sqlite3

    path = sb.state_dir / "cnet.db"
    if not path.exists():
        return {k: [] for k in q} | {"running_ops": [(0,)]}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {k: conn.execute(v).fetchall() for k, v in q.items()}
    finally:
        conn.close()


def recovered_ops(sb) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{sb.state_dir / 'cnet.db'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM operations WHERE recovered = 1").fetchone()[0]
    finally:
        conn.close()


DUAL = ["--ipv6", "--subnet", "fd00:61::/64"]


def setup(sb, faults: Faults, op: str) -> dict:
    """Bring the sandbox to the state the operation starts from; return the snapshots the checks need."""
    snaps = {"base": (kernel(sb), db(sb))}
    op, dual = op.removesuffix("6"), op.endswith("6")
    if op == "net-create":
        return snaps
    sb.cnet("net", "create", "a", "--subnet", "10.61.0.0/24", *(DUAL if dual else []))
    if op in ("connect", "disconnect"):
        sb.cnet("net", "create", "b", "--subnet", "10.62.0.0/24")
    snaps["net"] = (kernel(sb), db(sb))
    if op in ("stop", "rm-f", "connect", "disconnect") and not dual:
        sb.cnet(
            "run",
            "-d",
            "--name",
            "c1",
            "--net",
            "a",
            "-p",
            "8080:80",
            "-p",
            "5353:53/udp",
            "--",
            "sleep",
            "1000",
            env={"PATH": faults.path},  # unarmed: every fake passes its call through
        )
        snaps["run"] = (kernel(sb), db(sb))
    if op == "rm-f" and dual:
        sb.cnet(
            "run", "-d", "--name", "c1", "--net", "a", "-p", "8080:80", "--", "sleep", "1000", env={"PATH": faults.path}
        )
    if op == "disconnect":
        sb.cnet("net", "connect", "b", "c1")
    return snaps


COMMANDS = {
    "net-create": ["net", "create", "a", "--subnet", "10.61.0.0/24"],
    "run-d": ["run", "-d", "--name", "c1", "--net", "a", "-p", "8080:80", "--", "sleep", "1000"],
    "run-fg": ["run", "--name", "c1", "--net", "a", "-p", "8080:80", "--", "sleep", "1000"],
    "stop": ["stop", "-t", "0", "c1"],
    "rm-f": ["rm", "-f", "c1"],
    "connect": ["net", "connect", "b", "c1"],
    "disconnect": ["net", "disconnect", "b", "c1"],
    "net-rm": ["net", "rm", "a"],
}
# Dual stack (the network `a` with --ipv6): every new IPv6 step is interrupted too.
STEPS6 = {
    # ip_forward, base chains, anti-spoofing chain, IPv6 forwarding, IPv6 base chains, bridge,
    # route_localnet, network rules, IPv6 network rules
    "net-create6": 9,
    "run-d6": 5,  # host side, container side, anti-spoofing rules, port rules, IPv6 port rules
    "rm-f6": 4,  # port rules, IPv6 port rules, anti-spoofing rules, netns
    # network rules, IPv6 network rules, bridge, IPv6 base chains, IPv6 forwarding, base chains,
    # anti-spoofing chain, ip_forward
    "net-rm6": 8,
}
COMMANDS |= {
    "net-create6": COMMANDS["net-create"] + DUAL,
    "run-d6": COMMANDS["run-d"],
    "rm-f6": COMMANDS["rm-f"],
    "net-rm6": COMMANDS["net-rm"],
}
STEPS |= STEPS6
DESTROY |= {"rm-f6", "net-rm6"}
REAPER_RACE |= {"rm-f6"}


def expected_after(op: str, snaps: dict, before: tuple) -> tuple[dict, dict | None]:
    """(kernel, db-or-None) the host must hold once the interrupted operation is repaired."""
    if op not in DESTROY:
        return before  # rolled back: exactly as before the operation
    op = op.removesuffix("6")
    if op == "net-rm":
        return snaps["base"]
    if op == "disconnect":
        return snaps["run"]
    # stop / rm -f: the kernel as before the container ran; the record exited (stop) or gone (rm).
    k, d = snaps["net"]
    d = dict(d)
    if op == "stop":
        d["containers"] = [("c1", "exited")]
    return k, d


def wait_reaper(sb) -> None:
    def none_left():
        res = sb.run(["pgrep", "-f", "cnet --state-dir .* _reap "])
        return res.returncode == 1

    assert sb.wait_for(none_left, timeout=20, interval=0.05), "the reaper did not finish"


def run_killed(sb, faults: Faults, op: str) -> subprocess.CompletedProcess:
    env = {"PATH": faults.path}
    return sb.run(sb.cnet_argv(*COMMANDS[op]), env=env, timeout=60)


CASES = [(op, at, mode) for op, n in STEPS.items() for at in range(1, n + 1) for mode in ("pre", "post")]


@pytest.mark.parametrize("op,at,mode", CASES, ids=[f"{o}-{a}-{m}" for o, a, m in CASES])
def test_sigkill_at_every_step(sandbox, tmp_path, op, at, mode):
    sb = sandbox
    faults = Faults(sb, tmp_path)
    snaps = setup(sb, faults, op)
    before = (kernel(sb), db(sb))
    faults.arm(at, mode)
    res = run_killed(sb, faults, op)
    faults.disarm()
    assert faults.fired(), f"step {at} of {op} never ran ({faults.count()} commands):\n{faults.log()}\n{res.stderr}"
    if op in REAPER_RACE:
        wait_reaper(sb)
    else:
        assert res.returncode in (-9, 137), res  # nsenter reports the SIGKILLed child as 137

    ps = sb.cnet("ps", "-a")
    lines = [line for line in ps.stderr.splitlines() if "recovered interrupted operation" in line]
    if op in REAPER_RACE:
        # Whoever was killed (stop/rm or the reaper racing it), its operation was finished once,
        # either by the reaper's own start-up recovery or by this `cnet ps`.
        assert len(lines) <= 1, ps.stderr
        assert recovered_ops(sb) == 1
    else:
        assert len(lines) == 1, ps.stderr
        assert ("rolled back" if op not in DESTROY else "completed") in lines[0]
        assert "undo errors" not in lines[0], lines[0]

    k_want, d_want = expected_after(op, snaps, before)
    # A released container's veths vanish asynchronously once its netns is gone (the kernel
    # destroys them in a work queue): wait for that, bounded, as the fixture's leftover check does.
    sb.wait_for(lambda: kernel(sb) == k_want, timeout=10, interval=0.1)
    assert kernel(sb) == k_want
    assert db(sb) == d_want
    plan = sb.cnet("--dry-run", "gc").stdout
    assert "# step:" not in plan, plan

    # And the host still works: the interrupted operation can simply be run again.
    if op not in DESTROY and op != "run-fg":
        sb.cnet(*COMMANDS[op])


@pytest.mark.parametrize("op", list(STEPS))
def test_step_counts(sandbox, tmp_path, op):
    """The STEPS table is what each operation really runs (armed at a call that never comes)."""
    sb = sandbox
    faults = Faults(sb, tmp_path)
    setup(sb, faults, op)
    faults.arm(10_000, "pre")
    argv = COMMANDS[op] if op != "run-fg" else COMMANDS[op][:-2] + ["true"]
    sb.run(sb.cnet_argv(*argv), env={"PATH": faults.path}, timeout=60, check=True)
    if op in REAPER_RACE:
        wait_reaper(sb)
    # `run` in the foreground returns once its container (`true`) has exited and the reaper,
    # which runs with cnet's environment and so with the fakes, has released the port rules, the
    # anti-spoofing rules and the netns: three more calls after the operation's own.
    released = 3 if op == "run-fg" else 0
    assert faults.count() == STEPS[op] + released, faults.log()
