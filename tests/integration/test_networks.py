"""Bridge networks on a throwaway host: what `net create` makes, that `net rm` undoes it exactly,
and that failures, dry-runs and crashes leave the host as it was."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess

import pytest

from tests.sandbox import Sandbox

pytestmark = pytest.mark.root

BRIDGE_RE = re.compile(r"cnet-[0-9a-f]{10}\b")


# --- observing helpers ---------------------------------------------------------------------------
def link(sb, dev: str) -> dict:
    [data] = json.loads(sb.run(["ip", "-j", "-d", "addr", "show", "dev", dev], check=True).stdout)
    return data


def bridge_facts(sb, dev: str) -> dict:
    d = link(sb, dev)
    return {
        "kind": d.get("linkinfo", {}).get("info_kind"),
        "up": "UP" in d["flags"],
        "mtu": d["mtu"],
        "addrs": [f"{a['local']}/{a['prefixlen']}" for a in d["addr_info"] if a["family"] == "inet"],
        "route_localnet": sb.sysctl(f"net.ipv4.conf.{dev}.route_localnet"),
        # Its own MAC: 0a: and the ten hex digits of its name.
        "own_mac": d.get("address") == "0a:" + ":".join(dev[5:][i : i + 2] for i in range(0, 10, 2)),
    }


def cnet_rules(sb) -> list[str]:
    """cnet's lines of iptables-save, per table ("*nat -A ..."), comments unquoted."""
    out, table = [], None
    for line in sb.iptables_save().splitlines():
        if line.startswith("*"):
            table = line
        elif "CNET" in line or "cnet" in line:
            out.append(f"{table} {line.rsplit(' [', 1)[0] if line.startswith(':') else line}".replace('"', ""))
    return out


def net_rule_lines(rules: list[str], name: str) -> list[str]:
    return [r for r in rules if f"cnet:net:{name} " in r]


def db(sb, sql: str, args=()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{sb.state_dir / 'cnet.db'}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def inspect(sb, name: str) -> dict:
    return json.loads(sb.cnet("net", "inspect", name).stdout)


BASE_RULES = [
    "*raw :CNET-PREROUTING -",
    "*raw -A PREROUTING -m comment --comment cnet:base -j CNET-PREROUTING",
    "*raw -A CNET-PREROUTING -d 127.0.0.0/8 ! -i lo -m comment --comment cnet:base -j DROP",
    "*filter :CNET-FORWARD -",
    "*filter :CNET-ISOLATION-1 -",
    "*filter :CNET-ISOLATION-2 -",
    "*filter -A FORWARD -m comment --comment cnet:base -j CNET-FORWARD",
    "*filter -A CNET-FORWARD -m comment --comment cnet:base -j CNET-ISOLATION-1",
    "*filter -A CNET-ISOLATION-2 -m conntrack --ctstate DNAT -m comment --comment cnet:base -j RETURN",
    "*nat :CNET-DNAT -",
    "*nat :CNET-POSTROUTING -",
    "*nat -A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment cnet:base -j CNET-DNAT",
    "*nat -A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment cnet:base -j CNET-DNAT",
    "*nat -A POSTROUTING -m comment --comment cnet:base -j CNET-POSTROUTING",
]


def expected_net_rules(name: str, br: str, subnet: str, internal: bool = False) -> list[str]:
    c = f"-m comment --comment cnet:net:{name}"
    if internal:
        return [
            f"*filter -A CNET-ISOLATION-1 -i {br} ! -o {br} {c} -j DROP",
            f"*filter -A CNET-ISOLATION-1 ! -i {br} -o {br} {c} -j DROP",
            f"*filter -A CNET-FORWARD -i {br} -o {br} {c} -j ACCEPT",
        ]
    return [
        f"*filter -A CNET-ISOLATION-1 -i {br} ! -o {br} {c} -j CNET-ISOLATION-2",
        f"*filter -A CNET-ISOLATION-2 -o {br} {c} -j DROP",
        f"*filter -A CNET-FORWARD -i {br} -o {br} {c} -j ACCEPT",
        f"*filter -A CNET-FORWARD -o {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT",
        f"*filter -A CNET-FORWARD -o {br} -m conntrack --ctstate DNAT {c} -j ACCEPT",
        f"*filter -A CNET-FORWARD -i {br} {c} -j ACCEPT",
        f"*filter -A CNET-FORWARD -o {br} {c} -j DROP",
        f"*nat -A CNET-POSTROUTING -s {subnet} ! -o {br} {c} -j MASQUERADE",
        f"*nat -A CNET-POSTROUTING -s 127.0.0.0/8 -o {br} {c} -j MASQUERADE",
        f"*nat -A CNET-POSTROUTING -s {subnet} -d {subnet} -o {br} -m conntrack --ctstate DNAT {c} -j MASQUERADE",
    ]


# --- create / inspect / remove ---------------------------------------------------------------------
def test_create_makes_bridge_address_forwarding_and_rules(sandbox):
    sb = sandbox
    assert sb.baseline["ip_forward"] == "0"
    net_id = sb.cnet("net", "create", "n1", "--subnet", "175.50.0.0/24").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{12}", net_id)
    br = "cnet-" + net_id[:10]
    assert bridge_facts(sb, br) == {
        "kind": "bridge",
        "up": True,
        "mtu": 1500,
        "addrs": ["175.50.0.1/24"],
        "route_localnet": "1",
        "own_mac": True,
    }
    assert sb.sysctl("net.ipv4.ip_forward") == "1"
    rules = cnet_rules(sb)
    assert sorted(rules) == sorted(BASE_RULES + expected_net_rules("n1", br, "175.50.0.0/24"))
    # One jump from each built-in chain, at the top.
    save = sb.iptables_save()
    for chain in ("PREROUTING", "OUTPUT", "POSTROUTING", "FORWARD"):
        assert len(re.findall(rf"^-A {chain} .*-j CNET-", save, re.M)) == (2 if chain == "PREROUTING" else 1)
    # The kernel route for the subnet goes through the bridge.
    routes = json.loads(sb.run(["ip", "-j", "route", "show", "175.50.0.0/24"], check=True).stdout)
    assert [r["dev"] for r in routes] == [br]
    # State rows: the network and its gateway allocation; the journal says done.
    assert db(sb, "SELECT name, subnet, gateway, bridge, state FROM networks") == [
        ("n1", "175.50.0.0/24", "175.50.0.1", br, "ready")
    ]
    assert db(sb, "SELECT address, kind FROM ip_allocations") == [("175.50.0.1", "gateway")]
    assert db(sb, "SELECT kind, target, status FROM operations") == [("net-create", net_id, "done")]

    assert sb.cnet("net", "rm", "n1").stdout.strip() == "n1"


def test_default_subnet_skips_networks_and_host_routes(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "a")
    assert inspect(sb, "a")["subnet"] == "10.91.0.0/24"
    # A host route in the pool (a veth with an address; no dummy module here) is skipped, as is network a.
    sb.sh(
        "ip link add hv0 type veth peer name hv1 && ip addr add 10.91.1.7/24 dev hv0 && "
        "ip link set hv0 up && ip link set hv1 up"
    )
    sb.cnet("net", "create", "b")
    info = inspect(sb, "b")
    assert (info["subnet"], info["gateway"]) == ("10.91.2.0/24", "10.91.2.1")
    # An explicit subnet overlapping another network is refused naming it.
    res = sb.cnet("net", "create", "c", "--subnet", "10.91.2.128/25", check=False)
    assert res.returncode == 1
    assert res.stderr == "cnet: error: subnet 10.91.2.128/25 overlaps network 'b' (10.91.2.0/24)\n"
    # ...and one overlapping a host route, naming the route and its device (its bridge's connected
    # route would shadow the host's), as is a reserved range.
    res = sb.cnet("net", "create", "c", "--subnet", "10.91.0.0/16", check=False)
    assert (res.returncode, res.stderr) == (1, "cnet: error: subnet 10.91.0.0/16 overlaps network 'a' (10.91.0.0/24)\n")
    res = sb.cnet("net", "create", "c", "--subnet", "10.91.1.0/25", check=False)
    assert (res.returncode, res.stderr) == (
        1,
        "cnet: error: subnet 10.91.1.0/25 overlaps the host route 10.91.1.0/24 (dev hv0); choose another subnet\n",
    )
    res = sb.cnet("net", "create", "c", "--subnet", "127.0.0.0/24", check=False)
    assert (res.returncode, res.stderr) == (
        1,
        "cnet: error: invalid subnet '127.0.0.0/24': it overlaps the loopback range 127.0.0.0/8\n",
    )
    sb.cnet("net", "rm", "a", "b")
    sb.sh("ip link del hv0")


def test_default_subnet_skips_a_route_on_the_first_pool_entry(sandbox):
    sb = sandbox
    sb.sh(
        "ip link add hv0 type veth peer name hv1 && ip addr add 10.91.0.1/24 dev hv0 && "
        "ip link set hv0 up && ip link set hv1 up"
    )
    sb.baseline = sb.snapshot()  # the host route stays: cnet must leave it as it found it
    sb.cnet("net", "create", "a")
    assert inspect(sb, "a")["subnet"] == "10.91.1.0/24"
    sb.cnet("net", "rm", "a")


def test_internal_network_has_no_masquerade(sandbox):
    sb = sandbox
    net_id = sb.cnet("net", "create", "priv", "--subnet", "10.20.0.0/24", "--internal").stdout.strip()
    br = "cnet-" + net_id[:10]
    rules = cnet_rules(sb)
    assert not [r for r in rules if "MASQUERADE" in r]
    assert sorted(net_rule_lines(rules, "priv")) == sorted(
        expected_net_rules("priv", br, "10.20.0.0/24", internal=True)
    )
    assert inspect(sb, "priv")["internal"] is True
    sb.cnet("net", "rm", "priv")


def test_gateway_ip_range_and_mtu_are_honoured(sandbox):
    sb = sandbox
    sb.cnet(
        "net",
        "create",
        "n2",
        "--subnet",
        "10.30.0.0/16",
        "--gateway",
        "10.30.255.254",
        "--ip-range",
        "10.30.8.0/24",
        "--mtu",
        "1400",
    )
    info = inspect(sb, "n2")
    assert bridge_facts(sb, info["bridge"]) == {
        "kind": "bridge",
        "up": True,
        "mtu": 1400,
        "addrs": ["10.30.255.254/16"],
        "route_localnet": "1",
        "own_mac": True,
    }
    assert (info["gateway"], info["ip_range"], info["mtu"]) == ("10.30.255.254", "10.30.8.0/24", 1400)
    assert db(sb, "SELECT address, kind FROM ip_allocations") == [("10.30.255.254", "gateway")]
    assert db(sb, "SELECT range_first_int, range_last_int FROM networks") == [
        (int.from_bytes(bytes([10, 30, 8, 0]), "big"), int.from_bytes(bytes([10, 30, 8, 255]), "big"))
    ]
    # The first container address comes from the range (dry-run: nothing is started).
    out = sb.cnet("--dry-run", "run", "--net", "n2", "--", "true").stdout
    assert "addr add 10.30.8.0/16 dev eth0" in out
    sb.cnet("net", "rm", "n2")


def test_ls_json_and_inspect_fields(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "175.50.0.0/24")
    sb.cnet("net", "create", "n0", "--subnet", "10.40.0.0/28", "--internal", "--mtu", "9000")
    listed = json.loads(sb.cnet("net", "ls", "--json").stdout)
    assert [n["name"] for n in listed] == ["n0", "n1"]
    for n in listed:
        assert {
            "name",
            "driver",
            "subnet",
            "gateway",
            "ip_range",
            "bridge",
            "mtu",
            "internal",
            "created",
            "containers",
        } <= set(n)
        assert n == inspect(sb, n["name"])
    n1 = inspect(sb, "n1")
    assert n1["driver"] == "bridge" and n1["subnet"] == "175.50.0.0/24" and n1["gateway"] == "175.50.0.1"
    assert n1["ip_range"] is None and n1["mtu"] == 1500 and n1["internal"] is False and n1["containers"] == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", n1["created"])
    assert BRIDGE_RE.fullmatch(n1["bridge"]) and n1["bridge"] in sb.link_names()
    # by id too
    assert inspect(sb, n1["id"]) == n1
    # Several names: a list.
    both = json.loads(sb.cnet("net", "inspect", "n0", "n1").stdout)
    assert [b["name"] for b in both] == ["n0", "n1"]
    table = sb.cnet("net", "ls").stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "ID", "DRIVER", "SUBNET"]
    assert len(table) == 4
    missing = sb.cnet("net", "inspect", "nope", check=False)
    assert (missing.returncode, missing.stderr) == (1, "cnet: error: network 'nope' not found\n")
    sb.cnet("net", "rm", "n0", "n1")


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_two_networks_removed_in_either_order(sandbox, order):
    sb = sandbox
    sb.cnet("net", "create", "a", "--subnet", "10.1.0.0/24")
    after_a = sb.snapshot()
    sb.cnet("net", "create", "b", "--subnet", "10.2.0.0/24", "--internal")
    first, second = order
    sb.cnet("net", "rm", first)
    rules = cnet_rules(sb)
    # The base chains stay while a network remains; only the removed network's rules go.
    assert set(BASE_RULES) <= set(rules)
    assert not net_rule_lines(rules, first) and net_rule_lines(rules, second)
    assert sb.sysctl("net.ipv4.ip_forward") == "1"
    assert [n["name"] for n in json.loads(sb.cnet("net", "ls", "--json").stdout)] == [second]
    if first == "b":
        assert sb.snapshot() == after_a
    sb.cnet("net", "rm", second)


def test_ip_forward_already_on_is_left_on(sandbox):
    sb = sandbox
    sb.sh("sysctl -q -w net.ipv4.ip_forward=1")
    sb.baseline = sb.snapshot()  # teardown checks that forwarding is still on
    sb.cnet("net", "create", "a", "--subnet", "10.1.0.0/24")
    sb.cnet("net", "rm", "a")


def test_rm_refuses_a_network_with_containers(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.3.0.0/24")
    sb.cnet("run", "-d", "--name", "c1", "--net", "n1", "--", "sleep", "600")
    sb.cnet("run", "-d", "--name", "c0", "--net", "n1", "--", "sleep", "600")
    before = sb.snapshot()
    res = sb.cnet("net", "rm", "n1", check=False)
    assert res.returncode == 1
    assert res.stderr == "cnet: error: network n1 still has containers: c0, c1 (stop or disconnect them first)\n"
    assert sb.snapshot() == before
    sb.cnet("rm", "-f", "c0", "c1")
    sb.cnet("net", "rm", "n1")  # container records are gone with rm: teardown finds the host as before


# --- fault injection ----------------------------------------------------------------------------------
FAKE = """#!/bin/sh
# Fake {prog}: counts its calls; the call numbered in {dir}/at {action}; otherwise the real one.
n=$(( $(cat {dir}/count 2>/dev/null || echo 0) + 1 ))
echo $n > {dir}/count
if [ "$n" = "$(cat {dir}/at 2>/dev/null)" ]; then
  echo $$ > {dir}/pid
  {on_hit}
fi
exec {real} "$@"
"""


def install_fake(tmp_path, prog: str, at: int, on_hit: str) -> dict:
    """A fake `prog` first on PATH; returns the env for sb.cnet."""
    real = shutil.which(prog)
    assert real, prog
    d = tmp_path / "fakes"
    d.mkdir(exist_ok=True)
    (d / "at").write_text(f"{at}\n")
    script = d / prog
    script.write_text(FAKE.format(prog=prog, dir=d, real=real, on_hit=on_hit, action="misbehaves"))
    script.chmod(0o755)
    import os

    return {"PATH": f"{d}:{os.environ['PATH']}"}


FAIL = 'cat >/dev/null; echo "injected failure on call $n" >&2; exit 42'


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_failing_iptables_restore_leaves_nothing(sandbox, tmp_path, nth):
    """Calls during create: 1 = base chains, 2 = first network's rules, 3 = second network's rules."""
    sb = sandbox
    env = install_fake(tmp_path, "iptables-restore", nth, FAIL)
    res_a = sb.cnet("net", "create", "a", "--subnet", "10.1.0.0/24", check=False, env=env)
    if nth == 3:
        assert res_a.returncode == 0, res_a.stderr
        baseline = sb.snapshot()
        res = sb.cnet("net", "create", "b", "--subnet", "10.2.0.0/24", check=False, env=env)
        target = "b"
    else:
        baseline, res, target = sb.baseline, res_a, "a"
    assert res.returncode == 1
    [line] = res.stderr.splitlines()
    assert line.startswith("cnet: error: command failed (exit 42): iptables-restore -w --noflush")
    assert line.endswith(f"injected failure on call {nth}")
    assert sb.snapshot() == baseline
    assert db(sb, "SELECT count(*) FROM networks WHERE name = ?", (target,)) == [(0,)]
    [(status, error)] = db(sb, "SELECT status, error FROM operations ORDER BY id DESC LIMIT 1")
    assert status == "rolled_back" and "injected failure" in error
    steps = db(
        sb, "SELECT status FROM operation_steps WHERE operation_id = (SELECT max(id) FROM operations) ORDER BY seq"
    )
    assert "failed" not in [s for (s,) in steps] and "done" not in [s for (s,) in steps]
    if nth == 3:
        sb.cnet("net", "rm", "a")


def test_failing_ip_leaves_nothing(sandbox, tmp_path):
    """The bridge batch fails after its first line applied: the rollback removes the half-made link."""
    sb = sandbox
    real = shutil.which("ip")
    # Apply the batch, then report failure (as if the last line had failed).
    env = install_fake(
        tmp_path,
        "ip",
        1,
        f'{real} "$@"; {real} -o link show > "$(dirname "$0")/links"; echo "RTNETLINK answers: injected" >&2; exit 2',
    )
    res = sb.cnet("net", "create", "a", "--subnet", "10.1.0.0/24", check=False, env=env)
    assert res.returncode == 1
    assert "command failed (exit 2): ip -batch -" in res.stderr and "injected" in res.stderr
    assert " cnet-" in (tmp_path / "fakes" / "links").read_text()  # the bridge did exist


# --- dry-run faithfulness -----------------------------------------------------------------------------
def normalized_state(sb) -> dict:
    bridges = [link for link in sb.link_names() if link.startswith("cnet-")]
    assert len(bridges) == 1
    facts = bridge_facts(sb, bridges[0])
    return {
        "links": [BRIDGE_RE.sub("BR", link) for link in sb.link_names()],
        "bridge": facts,
        "rules": [BRIDGE_RE.sub("BR", r) for r in sb.rules()],
        "bridge_rules": sb.bridge_rules(),
        "ip_forward": sb.sysctl("net.ipv4.ip_forward"),
    }


def test_dry_run_changes_nothing_and_its_script_makes_the_same_network(sandbox, tmp_path):
    sb = sandbox
    args = ("net", "create", "web", "--subnet", "10.9.0.0/24", "--mtu", "1450", "--gateway", "10.9.0.254")
    res = sb.cnet("--dry-run", *args)
    assert res.stdout.startswith("#!/bin/sh\nset -e\n")
    assert sb.snapshot() == sb.baseline
    assert not (sb.state_dir / "cnet.db").exists()
    script = res.stdout

    sb.cnet(*args)
    by_cnet = normalized_state(sb)
    assert by_cnet["bridge"]["addrs"] == ["10.9.0.254/24"] and by_cnet["bridge"]["mtu"] == 1450
    assert by_cnet["bridge"]["own_mac"] and "-I INPUT 1 -j CNET-SPOOF" not in by_cnet["bridge_rules"]
    assert "-A INPUT -j CNET-SPOOF" in by_cnet["bridge_rules"]

    fresh = Sandbox(tmp_path / "fresh-state")
    try:
        fresh_baseline = fresh.snapshot()
        assert fresh_baseline == sb.baseline
        path = tmp_path / "plan.sh"
        path.write_text(script)
        fresh.run(["sh", str(path)], check=True)
        by_script = normalized_state(fresh)
    finally:
        fresh.close()
    assert by_script == by_cnet

    # A dry-run against existing state plans the removal without doing it.
    rm_plan = sb.cnet("--dry-run", "net", "rm", "web").stdout
    assert "ip link del cnet-" in rm_plan
    assert normalized_state(sb) == by_cnet
    sb.cnet("net", "rm", "web")


def test_user_errors_change_nothing_and_dry_run_fails_alike(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "a", "--subnet", "10.1.0.0/24")
    before = sb.snapshot()
    ops = db(sb, "SELECT count(*) FROM operations")
    for args, msg in [
        (("net", "create", "a", "--subnet", "10.2.0.0/24"), "network 'a' already exists"),
        (("net", "create", "b", "--subnet", "10.1.0.128/25"), "overlaps network 'a' (10.1.0.0/24)"),
        (("net", "create", "b!", "--subnet", "10.2.0.0/24"), "invalid network name 'b!'"),
        (("net", "create", "b", "--subnet", "10.2.0.1/24"), "did you mean 10.2.0.0/24?"),
        (("net", "create", "b", "--subnet", "10.2.0.0/32"), "a /32 has no room"),
        (
            ("net", "create", "b", "--subnet", "10.2.0.0/24", "--gateway", "10.3.0.1"),
            "gateway 10.3.0.1 is outside subnet",
        ),
        (("net", "rm", "nope"), "network 'nope' not found"),
    ]:
        dry = sb.cnet("--dry-run", *args, check=False)
        real = sb.cnet(*args, check=False)
        assert (dry.returncode, dry.stderr) == (real.returncode, real.stderr) == (1, dry.stderr), args
        assert dry.stdout == "" and len(dry.stderr.splitlines()) == 1
        assert dry.stderr.startswith("cnet: error: ") and msg in dry.stderr, dry.stderr
        assert sb.snapshot() == before
    assert db(sb, "SELECT count(*) FROM operations") == ops
    sb.cnet("net", "rm", "a")


# --- crash recovery ---------------------------------------------------------------------------------
def test_sigkilled_create_is_rolled_back_by_the_next_command(sandbox, tmp_path):
    sb = sandbox
    # The 2nd iptables-restore (the network's own rules) hangs: cnet is stuck inside that step.
    env = install_fake(tmp_path, "iptables-restore", 2, "exec sleep 60")
    proc = sb.popen(
        sb.cnet_argv("net", "create", "a", "--subnet", "10.1.0.0/24"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def step_started():
            if not (sb.state_dir / "cnet.db").exists() or not (tmp_path / "fakes" / "pid").exists():
                return None
            rows = db(
                sb,
                "SELECT o.owner_pid, s.summary FROM operations o JOIN operation_steps s "
                "ON s.operation_id = o.id WHERE s.status = 'started'",
            )
            return rows

        rows = sb.wait_for(step_started, timeout=30, interval=0.05)
        assert rows, "cnet never reached the hanging step"
        [(owner_pid, summary)] = rows
        assert summary == "install firewall rules of network a"
        # The bridge exists: the kernel is half-way.
        assert [link for link in sb.link_names() if link.startswith("cnet-")]
        # owner_pid is cnet's pid inside the sandbox's PID namespace.
        sb.run(["kill", "-KILL", str(owner_pid)], check=True)
        proc.wait(timeout=30)
        assert proc.returncode != 0
        # The hung fake is an orphan now; stop it too.
        sb.run(["kill", "-KILL", (tmp_path / "fakes" / "pid").read_text().strip()])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert db(sb, "SELECT status FROM operations") == [("running",)]

    res = sb.cnet("net", "ls")
    [line] = res.stderr.splitlines()
    assert re.fullmatch(r"cnet: recovered interrupted operation 1 \(net-create [0-9a-f]{12}\): rolled back", line), line
    assert db(sb, "SELECT status, recovered FROM operations") == [("rolled_back", 1)]
    assert sb.snapshot() == sb.baseline
    # The next command has nothing to say.
    assert sb.cnet("net", "ls").stderr == ""
