"""Hostile and bad input: every case fails with exit 1 (2 for usage errors), exactly one line on
stderr, no traceback, and leaves the database and the kernel exactly as they were.

All cases share one sandbox (a module-scoped fixture) holding a network `taken` (10.91.0.0/24),
a running container `web` (static 10.91.0.5, publishing 8085) and a host process listening on
7070, so "already exists", "already held" and "port taken" cases are real conflicts. Before and
after each case the test compares iptables-save (without comment lines and counters), `ip -j
link`, `ip netns`, ip_forward, the container state dirs and a dump of every table, including the
journal's operations and steps.
"""

from __future__ import annotations

import json
import shlex
import sqlite3

import pytest

from tests.sandbox import Sandbox

pytestmark = pytest.mark.root

NET = "taken"
SUBNET = "10.91.0.0/24"
WEB_IP = "10.91.0.5"
WEB_PORT = 8085
HOST_PORT = 7070  # a host process (not cnet) listens here

BAD_NAMES = [
    "",
    "badname!",
    "a/b",
    "a b",
    "x" * 65,
    "$(reboot)",
    "x;rm -rf /",
    "ネット",
    "café",
    "`id`",
    "a\nb",
    ".hidden",
]

# (id, argv, expected exit code, words expected in the error line)
CASES: list[tuple[str, list[str], int, str]] = []


def case(id_: str, argv: list[str], code: int = 1, expect: str = "") -> None:
    CASES.append((id_, argv, code, expect))


# --- names ------------------------------------------------------------------------------------
for i, bad in enumerate(BAD_NAMES):
    case(f"net-name-{i}", ["net", "create", bad, "--subnet", "10.50.0.0/24"], expect="network name")
# Container names go through the same validator: a sample keeps the module fast.
for i, bad in enumerate(["", "a/b", "x" * 65, "$(reboot)", "x;rm -rf /", "ネット"]):
    case(f"ctr-name-{i}", ["run", "--name", bad, "--net", NET, "--", "true"], expect="container name")
case("net-name-dash-option", ["net", "create", "-x"], code=2, expect="-x")
case("net-name-dash-arg", ["net", "create", "--", "-x"], expect="network name")
case("net-name-exists", ["net", "create", NET, "--subnet", "10.50.0.0/24"], expect="already exists")
case("ctr-name-exists", ["run", "--name", "web", "--net", NET, "--", "true"], expect="already in use")
case("net-name-bad-in-run", ["run", "--net", "a/b", "--", "true"], expect="network name")

# --- subnets ----------------------------------------------------------------------------------
for i, (subnet, expect) in enumerate(
    [
        ("10.0.0.0/33", "subnet"),
        ("10.0.0/24", "subnet"),
        ("abc", "subnet"),
        ("300.1.1.0/24", "subnet"),
        ("10.0.0.0", "CIDR"),
        ("10.1.2.12/24", "host bits"),
        ("10.2.0.0/31", "/31"),
        ("10.2.0.0/32", "/32"),
        ("10.91.0.128/25", "overlaps"),  # contained in `taken`
        (SUBNET, "overlaps"),  # identical
        ("10.91.0.0/16", "overlaps"),  # containing
        ("fd00::/64", "needs --ipv6"),
        ("", "subnet"),
        ("10.0.0.0/-1", "subnet"),
    ]
):
    case(f"subnet-{i}", ["net", "create", f"s{i}", "--subnet", subnet], expect=expect)
case("gateway-outside", ["net", "create", "g1", "--subnet", "10.3.0.0/24", "--gateway", "10.4.0.1"], expect="outside")
case(
    "gateway-network-addr",
    ["net", "create", "g2", "--subnet", "10.3.0.0/24", "--gateway", "10.3.0.0"],
    expect="network or broadcast",
)
case("gateway-not-ip", ["net", "create", "g3", "--subnet", "10.3.0.0/24", "--gateway", "10.3.0.x"], expect="gateway")
case("gateway-ipv6", ["net", "create", "g4", "--subnet", "10.3.0.0/24", "--gateway", "fd00::1"], expect="needs --ipv6")
case(
    "ip-range-outside",
    ["net", "create", "g5", "--subnet", "10.3.0.0/24", "--ip-range", "10.4.0.0/25"],
    expect="not inside",
)
case("subnet-loopback", ["net", "create", "r1", "--subnet", "127.0.0.0/24"], expect="loopback range")
case("subnet-multicast", ["net", "create", "r2", "--subnet", "224.1.0.0/24"], expect="multicast range")
case("subnet-link-local", ["net", "create", "r3", "--subnet", "169.254.0.0/24"], expect="link-local range")
case("mtu-too-small", ["net", "create", "g6", "--mtu", "10"], expect="MTU")
case("mtu-not-number", ["net", "create", "g7", "--mtu", "big"], code=2, expect="mtu")
case("driver-unknown", ["net", "create", "g8", "--driver", "macvlan"], expect="driver")

# --- ports ------------------------------------------------------------------------------------
for i, (spec, expect) in enumerate(
    [
        ("0:80", "between 1 and 65535"),
        ("65536:80", "between 1 and 65535"),
        ("80:0", "between 1 and 65535"),
        ("abc:80", "not a number"),
        ("8080", "expected"),
        ("1.2.3:80:80", "IPv4"),
        ("9090-9089:80", "ends before it starts"),
        ("9000-9002:80-81", "range"),
        ("8081:80/sctp", "not supported"),
        (f"{WEB_PORT}:80", "already mapped by container web"),
        (f"127.0.0.1:{WEB_PORT}:80", "already mapped by container web"),
        (f"{WEB_PORT}:80/tcp", "already mapped"),
        (f"{HOST_PORT}:80", "host process"),
        ("::1:8082:80", "port mapping"),
        ("8082:80:80:80", "expected"),
        ("-1:80", "port"),
        ("10.99.99.99:8084:80", "not an address of this host"),
    ]
):
    case(f"port-{i}", ["run", "--net", NET, "-p", spec, "--", "true"], expect=expect)
case("port-twice", ["run", "--net", NET, "-p", "8083:80", "-p", "8083:81", "--", "true"], expect="given twice")
case("port-without-net", ["run", "--net", "none", "-p", "8083:80", "--", "true"], expect="needs a network")

# --- IPs --------------------------------------------------------------------------------------
for i, (ip, expect) in enumerate(
    [
        ("10.92.0.5", "outside"),
        ("10.91.0.1", "gateway"),
        ("10.91.0.0", "network address"),
        ("10.91.0.255", "broadcast"),
        (WEB_IP, "already in use"),
        ("10.91.0.300", "not an IPv4 address"),
        ("fd00::5", "IPv4 is expected"),
    ]
):
    case(f"ip-{i}", ["run", "--net", NET, "--ip", ip, "--", "true"], expect=expect)
case("ip-without-net", ["run", "--ip", "10.91.0.9", "--", "true"], expect="needs a network")

# --- IPv6 (the sandbox holds the dual-stack network `dual`, fd00:92::/64, with `web6` on fd00:92::5,
# and a host address 2001:db8:aa::1/64 on a veth of its own) -----------------------------------------------
V4 = ["--subnet", "10.5.0.0/24"]
for i, (subnet6, expect) in enumerate(
    [
        ("fd00:5::/127", "/127"),
        ("fd00:5::/128", "/128"),
        ("fd00:5::1/64", "host bits"),
        ("fd00:5::", "CIDR"),
        ("zz::/64", "IPv6 CIDR"),
        ("fd00:5::/129", "IPv6 CIDR"),
        ("fe80::/64", "link-local"),
        ("ff05::/64", "multicast"),
        ("::1/128", "loopback"),
        ("::ffff:10.0.0.0/120", "IPv4-mapped"),
        ("fd00:92::/80", "overlaps network 'dual'"),  # contained in dual's
        ("fd00:92::/64", "overlaps network 'dual'"),  # identical
        ("fd00::/16", "overlaps network 'dual'"),  # containing
        ("2001:db8:aa::/64", "host route"),
        ("2001:db8:aa:0:1::/80", "host route"),
    ]
):
    case(f"subnet6-{i}", ["net", "create", f"v{i}", "--ipv6", *V4, "--subnet", subnet6], expect=expect)
case("subnet6-without-ipv6", ["net", "create", "v", *V4, "--subnet", "fd00:5::/64"], expect="needs --ipv6")
case("ipv6-without-subnet6", ["net", "create", "v", "--ipv6", *V4], expect="needs an IPv6 --subnet")
case(
    "subnet6-twice",
    ["net", "create", "v", "--ipv6", "--subnet", "fd00:5::/64", "--subnet", "fd00:6::/64"],
    expect="only one IPv6",
)
case(
    "gateway6-outside",
    ["net", "create", "v", "--ipv6", *V4, "--subnet", "fd00:5::/64", "--gateway", "fd00:6::1"],
    expect="outside",
)
case(
    "gateway6-subnet-router",
    ["net", "create", "v", "--ipv6", *V4, "--subnet", "fd00:5::/64", "--gateway", "fd00:5::"],
    expect="subnet-router",
)
case(
    "ip-range6-outside",
    ["net", "create", "v", "--ipv6", *V4, "--subnet", "fd00:5::/64", "--ip-range", "fd00:6::/80"],
    expect="not inside",
)
for i, (ip6, expect) in enumerate(
    [
        ("fd00:93::5", "outside"),
        ("fd00:92::5", "already in use on network dual by container web6"),
        ("fd00:92::1", "gateway"),
        ("fd00:92::", "subnet-router"),
        ("10.92.0.9", "not an IPv6 address"),
        ("fd00:92::zz", "not an IPv6 address"),
    ]
):
    case(f"ip6-{i}", ["run", "--net", "dual", "--ip6", ip6, "--", "true"], expect=expect)
case("ip6-v4-only-net", ["run", "--net", NET, "--ip6", "fd00:92::9", "--", "true"], expect="no IPv6 subnet")
case("ip6-without-net", ["run", "--ip6", "fd00:92::9", "--", "true"], expect="needs a network")
for i, (spec, expect) in enumerate(
    [
        ("[::1]:8090:80", "cannot DNAT to ::1"),
        ("[::]:8090:80", "leave the host IP out"),
        ("[fe80::1]:8090:80", "global unicast"),
        ("[2001:db8:bb::1]:8090:80", "not an address of this host"),
        ("[fd00:92::1:8090:80", "expected"),
        ("[2001:db8:aa::1]:8090", "expected"),
        ("[nonsense]:8090:80", "not an IPv6 address"),
    ]
):
    case(f"port6-{i}", ["run", "--net", "dual", "-p", spec, "--", "true"], expect=expect)
case("port6-v4-only-net", ["run", "--net", NET, "-p", "[2001:db8:aa::1]:8090:80", "--", "true"], expect="no IPv6")

# --- other run options ----------------------------------------------------------------------------
case("env-no-equals", ["run", "--net", NET, "-e", "NOVALUE", "--", "true"], expect="KEY=VALUE")
case("env-bad-key", ["run", "--net", NET, "-e", "1A=b", "--", "true"], expect="environment variable")
case("hostname-bad", ["run", "--net", NET, "--hostname", "-bad", "--", "true"], expect="hostname")
case("same-net-twice", ["run", "--net", NET, "--net", NET, "--", "true"], expect="twice")
case("none-and-a-net", ["run", "--net", "none", "--net", NET, "--", "true"], expect="none")
case("label-bad-key", ["run", "--net", NET, "--label", "=x", "--", "true"], expect="invalid label")
case("alias-bad", ["run", "--net", NET, "--network-alias", "-x", "--", "true"], expect="hostname")
case("net-create-none", ["net", "create", "none"], expect="means no network")
case("unknown-option", ["run", "--frobnicate"], code=2, expect="frobnicate")
case("unknown-command", ["frobnicate"], code=2, expect="frobnicate")

# --- targets that do not exist ----------------------------------------------------------------------
case("net-rm-missing", ["net", "rm", "missing"], expect="not found")
case("net-inspect-missing", ["net", "inspect", "missing"], expect="not found")
case("inspect-missing", ["inspect", "missing"], expect="missing")
case("rm-missing", ["rm", "missing"], expect="not found")
case("rm-f-missing", ["rm", "-f", "missing"], expect="not found")
case("stop-missing", ["stop", "missing"], expect="not found")
case("exec-missing", ["exec", "missing", "true"], expect="not found")
case("logs-missing", ["logs", "missing"], expect="not found")
case("run-net-missing", ["run", "--net", "missing", "--", "true"], expect="not found")
case("connect-net-missing", ["net", "connect", "missing", "web"], expect="not found")
case("connect-ctr-missing", ["net", "connect", NET, "missing"], expect="not found")
case("connect-already", ["net", "connect", NET, "web"], expect="already connected")
case("disconnect-missing", ["net", "disconnect", NET, "missing"], expect="not found")
case("net-rm-in-use", ["net", "rm", NET], expect="still has containers")
case("rm-running", ["rm", "web"], expect="stop it first")
case("journal-missing", ["journal", "999999"], expect="999999")

# --- integers out of range, host IPs that are no unicast address of this host (issue 15.4) -------
case("journal-huge-id", ["journal", "99999999999999999999999"], expect="not found")
case("journal-zero-id", ["journal", "0"], expect="not found")
case("journal-negative-id", ["journal", "--", "-5"], expect="not found")
case("journal-huge-limit", ["journal", "-n", "99999999999999999999999"], expect="limit")
case("journal-zero-limit", ["journal", "-n", "0"], expect="limit")
case("journal-negative-limit", ["journal", "-n", "-1"], expect="limit")
case("mtu-huge", ["net", "create", "m", "--subnet", "10.50.0.0/24", "--mtu", "9" * 30], expect="MTU")
for i, value in enumerate(["nan", "inf", "-inf", "1e999", "-1"]):
    case(f"stop-time-{i}", ["stop", "web", "-t", value], code=2, expect="finite")
    case(f"run-stop-timeout-{i}", ["run", "--net", NET, "--stop-timeout", value, "--", "true"], code=2, expect="finite")
for i, (host_ip, expect) in enumerate(
    [
        ("10.91.0.255", "broadcast address of 10.91.0.1/24"),  # the network's bridge: bind() would succeed
        ("10.91.0.0", "network address"),
        ("127.255.255.255", "broadcast"),
        ("127.0.0.0", "network address"),
        ("255.255.255.255", "unicast"),
        ("224.0.0.1", "unicast"),
    ]
):
    case(f"host-ip-{i}", ["run", "--net", NET, "-p", f"{host_ip}:8086:80", "--", "true"], expect=expect)

# --- cnet sql -----------------------------------------------------------------------------------
for i, (query, expect) in enumerate(
    [
        ("INSERT INTO settings (key, value) VALUES ('x', 'y')", "read-only"),
        ("DELETE FROM networks", "read-only"),
        ("UPDATE containers SET state = 'exited'", "read-only"),
        ("DROP TABLE operations", "read-only"),
        ("CREATE TABLE t (x)", "read-only"),
        ("PRAGMA user_version = 7", "read-only"),
        ("SELEC * FROM networks", "SQL error"),
        ("SELECT * FROM no_such_table", "no such table"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT 1; DELETE FROM networks", "one statement"),
        ("", "empty"),
        ("PRAGMA journal_mode = DELETE", "read-only"),
        ("PRAGMA query_only = OFF", "read-only"),
        ("SELECT load_extension('/nonexistent.so')", "read-only"),
    ]
):
    case(f"sql-{i}", ["sql", query], expect=expect)


# --- the shared sandbox ---------------------------------------------------------------------------
def dump_state(sb: Sandbox) -> dict:
    rules = []
    for line in sb.iptables_save().splitlines():
        if line.startswith("#"):
            continue  # "# Generated by ... on <date>"
        rules.append(line.rsplit(" [", 1)[0] if line.startswith(":") else line)
    db = {}
    conn = sqlite3.connect(f"file:{sb.state_dir / 'cnet.db'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for t in tables:
            db[t] = sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
        db["user_version"] = conn.execute("PRAGMA user_version").fetchall()
    finally:
        conn.close()
    cdir = sb.state_dir / "containers"
    rules6 = [line.rsplit(" [", 1)[0] for line in sb.ip6tables_save().splitlines() if not line.startswith("#")]
    return {
        "iptables": rules,
        "ip6tables": rules6,
        "ip6_forward": sb.sysctl("net.ipv6.conf.all.forwarding"),
        "links": json.loads(sb.run(["ip", "-j", "link"], check=True).stdout),
        "netns": sb.run(["ip", "netns"], check=True).stdout,
        "ip_forward": sb.sysctl("net.ipv4.ip_forward"),
        "db": db,
        "container_dirs": sorted(p.name for p in cdir.iterdir()) if cdir.exists() else [],
    }


@pytest.fixture(scope="module")
def hostile_sb(tmp_path_factory):
    sb = Sandbox(tmp_path_factory.mktemp("hostile") / "state")
    try:
        baseline = sb.snapshot()
        sb.cnet("net", "create", NET, "--subnet", SUBNET)
        sb.sh(
            "ip link add hostv6 type veth peer name hostv6p && ip addr add 2001:db8:aa::1/64 dev hostv6 nodad && "
            "ip link set hostv6 up && ip link set hostv6p up"
        )
        sb.cnet("net", "create", "dual", "--ipv6", "--subnet", "10.92.0.0/24", "--subnet", "fd00:92::/64")
        sb.cnet("run", "-d", "--name", "web6", "--net", "dual", "--ip6", "fd00:92::5", "--", "sleep", "100000")
        sb.cnet(
            "run", "-d", "--name", "web", "--net", NET, "--ip", WEB_IP, "-p", f"{WEB_PORT}:80", "--", "sleep", "100000"
        )
        listener = sb.popen(
            [
                "python3",
                "-c",
                "import socket, time\n"
                "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                f"s.bind(('0.0.0.0', {HOST_PORT})); s.listen(); time.sleep(100000)",
            ],
        )
        assert sb.wait_for(lambda: sb.run(["ss", "-Htln", f"sport = :{HOST_PORT}"]).stdout.strip(), timeout=10)
        sb.tried = 0
        yield sb
        listener.kill()
        sb.cnet("rm", "-f", "web", "web6")
        sb.cnet("net", "rm", NET, "dual")
        sb.sh("ip link del hostv6")
        assert sb.wait_for(lambda: sb.snapshot() == baseline, timeout=10), (sb.snapshot(), baseline)
    finally:
        sb.close()


@pytest.fixture(scope="module")
def before(hostile_sb):
    sb = hostile_sb

    def settled():
        # The kernel moves a new bridge's operstate from UNKNOWN to UP a moment after its first
        # port comes up (linkwatch): wait for that, so only cnet's changes can differ.
        links = json.loads(sb.run(["ip", "-j", "link"], check=True).stdout)
        return all(link["operstate"] == "UP" for link in links if link["ifname"].startswith("cnet"))

    assert sb.wait_for(settled, timeout=15)
    return dump_state(sb)


@pytest.mark.parametrize("argv,code,expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_cleanly_and_changes_nothing(hostile_sb, before, argv, code, expect):
    sb = hostile_sb
    res = sb.cnet(*argv, check=False)
    lines = res.stderr.splitlines()
    assert res.returncode == code, (argv, res.returncode, res.stderr)
    assert len(lines) == 1, f"{argv}: expected one line on stderr, got {res.stderr!r}"
    assert lines[0].startswith("cnet: error: "), lines[0]
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    assert expect.lower() in lines[0].lower(), (argv, lines[0])
    assert res.stdout == "", res.stdout
    assert dump_state(sb) == before, f"{argv} changed the host or the database"


def test_dry_run_quotes_hostile_arguments(hostile_sb, before):
    """The printed script is safe to paste: a hostile command argument stays one quoted word."""
    sb = hostile_sb
    hostile = ["$(touch /tmp/pwned)", "`touch /tmp/pwned2`", "a; touch /tmp/pwned3", "'\"; touch /tmp/pwned4 #"]
    res = sb.cnet(
        "--dry-run", "run", "--name", "dry", "--net", NET, "-p", "9999:80", "-e", "X=$(id)", "--", "echo", *hostile
    )
    assert res.stderr == ""
    lines = [line for line in res.stdout.splitlines() if "pwned" in line]
    assert len(lines) == 1, res.stdout
    words = shlex.split(lines[0])  # POSIX sh word splitting and quote removal
    # Every hostile argument survives as exactly one literal word, in order, at the end.
    assert words[-len(hostile) - 1 :] == ["echo", *hostile]
    # ...and is single-quoted, so sh performs no command substitution inside it.
    assert "'$(touch /tmp/pwned)'" in lines[0]
    assert "'`touch /tmp/pwned2`'" in lines[0]
    assert res.stdout.startswith("#!/bin/sh\nset -e\n")
    assert dump_state(sb) == before, "--dry-run changed the host or the database"
