"""--dry-run: the exact script (pinned), no root needed, nothing written, same errors as a real run."""

import ipaddress
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnet import ipam
from cnet.db import connection, migrate
from cnet.db import store as store_mod
from cnet.errors import CnetError
from cnet.records import Network, NetworkState
from cnet.services import networks, reconcile
from cnet.services.context import Context

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534

EXPECTED_FIRST = """\
#!/bin/sh
set -e
# cnet net create web: subnet 10.5.0.0/24, gateway 10.5.0.1, bridge cnet-BRIDGE
# step: enable IPv4 forwarding
sysctl -q -w net.ipv4.ip_forward=1
# step: install cnet base chains and one jump from each built-in chain
iptables-restore -w --noflush <<'CNET_EOF'
*raw
:CNET-PREROUTING - [0:0]
-A CNET-PREROUTING -d 127.0.0.0/8 ! -i lo -m comment --comment cnet:base -j DROP
-I PREROUTING 1 -m comment --comment cnet:base -j CNET-PREROUTING
COMMIT
*nat
:CNET-DNAT - [0:0]
:CNET-POSTROUTING - [0:0]
-I PREROUTING 1 -m addrtype --dst-type LOCAL -m comment --comment cnet:base -j CNET-DNAT
-I OUTPUT 1 -m addrtype --dst-type LOCAL -m comment --comment cnet:base -j CNET-DNAT
-I POSTROUTING 1 -m comment --comment cnet:base -j CNET-POSTROUTING
COMMIT
*filter
:CNET-FORWARD - [0:0]
:CNET-ISOLATION-1 - [0:0]
:CNET-ISOLATION-2 - [0:0]
-A CNET-FORWARD -m comment --comment cnet:base -j CNET-ISOLATION-1
-A CNET-ISOLATION-2 -m conntrack --ctstate DNAT -m comment --comment cnet:base -j RETURN
-I FORWARD 1 -m comment --comment cnet:base -j CNET-FORWARD
COMMIT
CNET_EOF
# step: install the anti-spoofing chain and its jumps (ebtables)
ebtables-nft-restore --noflush <<'CNET_EOF'
*filter
:CNET-SPOOF RETURN
-I INPUT 1 -j CNET-SPOOF
-I FORWARD 1 -j CNET-SPOOF
CNET_EOF
# step: create bridge cnet-BRIDGE (0a:MAC) with gateway 10.5.0.1/24
ip -batch - <<'CNET_EOF'
link add name cnet-BRIDGE address 0a:MAC mtu 1500 type bridge
addr add 10.5.0.1/24 dev cnet-BRIDGE
link set cnet-BRIDGE up
CNET_EOF
# step: allow 127.0.0.1 port mappings through cnet-BRIDGE (route_localnet)
sysctl -q -w net.ipv4.conf.cnet-BRIDGE.route_localnet=1
# step: install firewall rules of network web
iptables-restore -w --noflush <<'CNET_EOF'
*nat
-A CNET-POSTROUTING -s 10.5.0.0/24 ! -o cnet-BRIDGE -m comment --comment cnet:net:web -j MASQUERADE
-A CNET-POSTROUTING -s 127.0.0.0/8 -o cnet-BRIDGE -m comment --comment cnet:net:web -j MASQUERADE
-A CNET-POSTROUTING -s 10.5.0.0/24 -d 10.5.0.0/24 -o cnet-BRIDGE -m conntrack --ctstate DNAT -m comment --comment cnet:net:web -j MASQUERADE
COMMIT
*filter
-A CNET-ISOLATION-1 -i cnet-BRIDGE ! -o cnet-BRIDGE -m comment --comment cnet:net:web -j CNET-ISOLATION-2
-A CNET-ISOLATION-2 -o cnet-BRIDGE -m comment --comment cnet:net:web -j DROP
-A CNET-FORWARD -i cnet-BRIDGE -o cnet-BRIDGE -m comment --comment cnet:net:web -j ACCEPT
-A CNET-FORWARD -o cnet-BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment cnet:net:web -j ACCEPT
-A CNET-FORWARD -o cnet-BRIDGE -m conntrack --ctstate DNAT -m comment --comment cnet:net:web -j ACCEPT
-A CNET-FORWARD -i cnet-BRIDGE -m comment --comment cnet:net:web -j ACCEPT
-A CNET-FORWARD -o cnet-BRIDGE -m comment --comment cnet:net:web -j DROP
COMMIT
CNET_EOF
"""

# A second network: no base chains, no forwarding step; --internal: no NAT rules.
EXPECTED_SECOND_INTERNAL = """\
#!/bin/sh
set -e
# cnet net create db: subnet 10.6.0.0/29, gateway 10.6.0.6, bridge cnet-BRIDGE
# step: create bridge cnet-BRIDGE (0a:MAC) with gateway 10.6.0.6/29
ip -batch - <<'CNET_EOF'
link add name cnet-BRIDGE address 0a:MAC mtu 9000 type bridge
addr add 10.6.0.6/29 dev cnet-BRIDGE
link set cnet-BRIDGE up
CNET_EOF
# step: allow 127.0.0.1 port mappings through cnet-BRIDGE (route_localnet)
sysctl -q -w net.ipv4.conf.cnet-BRIDGE.route_localnet=1
# step: install firewall rules of network db
iptables-restore -w --noflush <<'CNET_EOF'
*filter
-A CNET-ISOLATION-1 -i cnet-BRIDGE ! -o cnet-BRIDGE -m comment --comment cnet:net:db -j DROP
-A CNET-ISOLATION-1 ! -i cnet-BRIDGE -o cnet-BRIDGE -m comment --comment cnet:net:db -j DROP
-A CNET-FORWARD -i cnet-BRIDGE -o cnet-BRIDGE -m comment --comment cnet:net:db -j ACCEPT
COMMIT
CNET_EOF
"""

BRIDGE_RE = re.compile(r"cnet-([0-9a-f]{10})\b")
BRIDGE_MAC_RE = re.compile(r"\b0a((?::[0-9a-f]{2}){5})\b")


def normalize(script: str) -> str:
    bridges = set(BRIDGE_RE.findall(script))
    assert len(bridges) <= 1, bridges  # one network, one bridge name throughout
    # The bridge's own MAC carries the bridge name's digits.
    macs = {m.replace(":", "") for m in BRIDGE_MAC_RE.findall(script)}
    assert macs <= bridges, (macs, bridges)
    return BRIDGE_MAC_RE.sub("0a:MAC", BRIDGE_RE.sub("cnet-BRIDGE", script))


def isolated() -> list[str]:
    """A fresh network namespace for the dry-run (when root): the plan reads the host's sysctls
    and, for a first network, its rule sets; a fresh namespace makes the pinned script the same
    on every machine (forwarding off, no rules)."""
    return ["unshare", "--net"] if os.geteuid() == 0 and shutil.which("unshare") else []


def run_cnet(*args, state_dir: Path, as_nobody: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "cnet", "--state-dir", str(state_dir), *args]
    if as_nobody:
        # /root (where this python may live) and pytest's tmp dirs are 0700: keep only the right to
        # read and search (CAP_DAC_READ_SEARCH), never to write; the effective uid is not root.
        argv = [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "--inh-caps=+dac_read_search",
            "--ambient-caps=+dac_read_search",
            *argv,
        ]
    argv = isolated() + argv
    full_env = dict(os.environ, PYTHONPATH=str(REPO))
    full_env.pop("CNET_STATE_DIR", None)
    full_env.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=full_env, cwd="/")


def tree(path: Path) -> dict:
    """Every file below path with its size and mtime: 'nothing written' compares these."""
    if not path.exists():
        return {}
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(path))] = (st.st_size, st.st_mtime_ns, st.st_mode)
    st = path.stat()
    out["."] = (st.st_mtime_ns, st.st_mode)
    return out


def populated_state(state_dir: Path) -> None:
    """A state database holding one network 'web' 10.5.0.0/24 (rows only, no kernel objects)."""
    connection.ensure_state_dir(state_dir)
    with connection.open_state(state_dir) as st:
        migrate.upgrade(st)
        net_ = ipaddress.IPv4Network("10.5.0.0/24")
        lo, hi = ipam.dynamic_bounds(net_, None)
        net = Network(
            id="aaaaaaaaaaaa",
            name="web",
            driver="bridge",
            subnet=str(net_),
            subnet_first_int=int(net_.network_address),
            subnet_last_int=int(net_.broadcast_address),
            prefix_len=24,
            gateway="10.5.0.1",
            ip_range=None,
            range_first_int=lo,
            range_last_int=hi,
            alloc_cursor_int=lo - 1,
            bridge="cnet-aaaaaaaaaa",
            mtu=1500,
            internal=False,
            state=NetworkState.READY,
            created_at=time.time(),
            bridge_mac="0a:aa:aa:aa:aa:aa",
        )
        with st.write() as conn:
            store_mod.insert_network(conn, net)
            ipam.reserve_gateway(conn, net.id, net.gateway)
            store_mod.put_setting(conn, store_mod.IP_FORWARD_SETTING, "0")
    # Readable, not writable, by other users.
    os.chmod(state_dir, 0o755)
    os.chmod(connection.db_path(state_dir), 0o644)


# --- pinned output -------------------------------------------------------------------------------
def test_dry_run_net_create_pinned(tmp_path):
    state = tmp_path / "absent"
    res = run_cnet("--dry-run", "net", "create", "web", "--subnet", "10.5.0.0/24", state_dir=state)
    assert res.returncode == 0, res.stderr
    assert normalize(res.stdout) == EXPECTED_FIRST
    assert res.stderr == ""
    assert not state.exists()  # not even the state dir is created


def test_dry_run_second_network_pinned(tmp_path):
    state = tmp_path / "state"
    populated_state(state)
    before = tree(state)
    res = run_cnet(
        "--dry-run",
        "net",
        "create",
        "db",
        "--subnet",
        "10.6.0.0/29",
        "--gateway",
        "10.6.0.6",
        "--mtu",
        "9000",
        "--internal",
        state_dir=state,
    )
    assert res.returncode == 0, res.stderr
    assert normalize(res.stdout) == EXPECTED_SECOND_INTERNAL
    assert tree(state) == before


def test_dry_run_script_is_valid_sh(tmp_path):
    res = run_cnet("--dry-run", "net", "create", "web", "--subnet", "10.5.0.0/24", state_dir=tmp_path / "s")
    check = subprocess.run(["sh", "-n"], input=res.stdout, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_dry_run_net_rm_of_last_network(tmp_path):
    state = tmp_path / "state"
    populated_state(state)
    before = tree(state)
    res = run_cnet("--dry-run", "net", "rm", "web", state_dir=state)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    steps = [ln for ln in lines if ln.startswith("# step: ")]
    assert steps == [
        "# step: remove firewall rules of network web",
        "# step: delete bridge cnet-aaaaaaaaaa",
        "# step: remove cnet base chains and their jumps",
        "# step: remove the anti-spoofing chain and its jumps (ebtables)",
    ]
    # Forwarding is off (the fresh namespace), as it was before cnet: nothing to write back.
    assert "ip_forward" not in res.stdout
    assert tree(state) == before


# --- without root ---------------------------------------------------------------------------------
needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to nobody")


@needs_root
def test_dry_run_as_non_root_with_empty_state_dir(tmp_path):
    state = tmp_path / "empty"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    before = tree(state)
    res = run_cnet("--dry-run", "net", "create", "web", "--subnet", "10.5.0.0/24", state_dir=state, as_nobody=True)
    assert res.returncode == 0, res.stderr
    assert normalize(res.stdout) == EXPECTED_FIRST
    assert tree(state) == before


@needs_root
def test_dry_run_as_non_root_with_existing_database(tmp_path):
    state = tmp_path / "state"
    populated_state(state)
    before = tree(state)
    res = run_cnet(
        "--dry-run",
        "net",
        "create",
        "db",
        "--subnet",
        "10.6.0.0/29",
        "--gateway",
        "10.6.0.6",
        "--mtu",
        "9000",
        "--internal",
        state_dir=state,
        as_nobody=True,
    )
    assert res.returncode == 0, res.stderr
    assert normalize(res.stdout) == EXPECTED_SECOND_INTERNAL
    clash = run_cnet("--dry-run", "net", "create", "db", "--subnet", "10.5.0.128/25", state_dir=state, as_nobody=True)
    assert clash.returncode == 1
    assert clash.stderr == "cnet: error: subnet 10.5.0.128/25 overlaps network 'web' (10.5.0.0/24)\n"
    assert tree(state) == before


@needs_root
@pytest.mark.parametrize(
    "args",
    [
        ("net", "create", "web", "--subnet", "10.5.0.0/24"),
        ("net", "rm", "web"),
        ("db", "upgrade"),
    ],
)
def test_mutating_without_root_fails_in_one_line(tmp_path, args):
    state = tmp_path / "empty"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    before = tree(state)
    res = run_cnet(*args, state_dir=state, as_nobody=True)
    assert res.returncode == 1
    assert res.stdout == ""
    assert len(res.stderr.splitlines()) == 1, res.stderr
    assert res.stderr.startswith("cnet: error: ") and "root" in res.stderr
    assert "Traceback" not in res.stderr
    assert tree(state) == before


# --- same errors as a real run -----------------------------------------------------------------
class NoKernel:
    """A runner that must never be reached: a validation gap fails the test instead of the host."""

    def run(self, command):
        raise AssertionError(f"a kernel command was about to run: {command.argv}")

    read = run

    def try_run(self, command):
        raise AssertionError(f"a kernel command was about to run: {command.argv}")


class TestContext(Context):
    __test__ = False

    def require_root(self) -> None:  # both modes must get past the root check to the real checks
        return None


BAD_CREATES = [
    ({"name": "badname!"}, "invalid network name 'badname!'"),
    ({"name": ""}, "invalid network name: it is empty"),
    ({"name": "x;rm -rf /"}, "invalid network name"),
    ({"name": "ok", "subnet": "10.1.2.12/24"}, "did you mean 10.1.2.0/24?"),
    ({"name": "ok", "subnet": "10.0.0.0/31"}, "a /31 has no room"),
    ({"name": "ok", "subnet": "fd00::/64"}, "an IPv6 subnet needs --ipv6"),
    ({"name": "ok", "subnet": "10.7.0.0/24", "gateway": "10.8.0.1"}, "gateway 10.8.0.1 is outside subnet 10.7.0.0/24"),
    ({"name": "ok", "subnet": "10.7.0.0/24", "gateway": "10.7.0.255"}, "is the network or broadcast address"),
    ({"name": "ok", "subnet": "10.7.0.0/24", "ip_range": "10.8.0.0/28"}, "is not inside subnet"),
    ({"name": "ok", "gateway": "10.7.0.1"}, "--gateway and --ip-range need --subnet"),
    ({"name": "ok", "subnet": "10.7.0.0/24", "mtu": 100}, "invalid MTU 100"),
    ({"name": "ok", "subnet": "10.7.0.0/24", "driver": "macvlan"}, "unknown driver 'macvlan'"),
    ({"name": "web", "subnet": "10.7.0.0/24"}, "network 'web' already exists"),
    ({"name": "ok", "subnet": "10.5.0.128/25"}, "overlaps network 'web' (10.5.0.0/24)"),
    ({"name": "ok", "subnet": "10.0.0.0/8"}, "overlaps network 'web'"),
]


@pytest.mark.parametrize("kwargs, fragment", BAD_CREATES, ids=[f"{k}" for k, _ in BAD_CREATES])
def test_dry_run_and_real_run_fail_alike(tmp_path, kwargs, fragment):
    state = tmp_path / "state"
    populated_state(state)
    errors = []
    for dry in (True, False):
        ctx = TestContext(state_dir=state, dry_run=dry)
        ctx._runner = NoKernel()
        try:
            with pytest.raises(CnetError) as exc:
                networks.create_network(ctx, **kwargs)
        finally:
            ctx.close()
        errors.append((type(exc.value), str(exc.value)))
    assert errors[0] == errors[1]
    assert fragment in errors[0][1]
    conn = sqlite3.connect(connection.db_path(state))
    try:
        assert conn.execute("SELECT count(*) FROM networks").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM operations").fetchone() == (0,)
    finally:
        conn.close()


# --- teardown-like plans: `|| true` exactly where the real run goes past errors -------------------
class CannedKernel(NoKernel):
    """Answers the reconciler's five reads; anything that would change the kernel fails the test."""

    def __init__(self, save: str):
        self.save = save

    def read(self, command):
        return {
            ("ip", "-d", "-j", "addr"): "[]",
            ("ip", "netns", "list"): "",
            ("iptables-save",): self.save,
            ("ip6tables-save",): "",
            ("ebtables-nft-save",): "",
        }[command.argv]


ORPHAN_SAVE = """*filter
:FORWARD ACCEPT [0:0]
:CNET-OLD - [0:0]
-A CNET-OLD -m comment --comment cnet:net:gone -j DROP
COMMIT
"""


@pytest.mark.parametrize("clean", [True, False], ids=["gc", "net restore"])
def test_reconcile_dry_run_script_goes_past_errors_like_the_real_run(tmp_path, clean):
    """gc and net restore are journaled as teardowns (the real run goes past errors), so every
    command of their dry-run script ends in `|| true`."""
    state = tmp_path / "state"
    populated_state(state)
    ctx = TestContext(state_dir=state, dry_run=True)
    ctx._runner = CannedKernel(ORPHAN_SAVE)
    try:
        out = reconcile.reconcile(ctx, clean=clean)
    finally:
        ctx.close()
    assert out.plan.teardown
    lines = out.plan.as_shell_script("t").splitlines()
    commands = [lines[i + 1] for i, line in enumerate(lines) if line.startswith("# step: ")]
    assert commands, lines  # the bridge of `web` is missing in the canned kernel
    for c in commands:
        assert c.endswith(" || true") or "<<'CNET_EOF' || true" in c, c
    if clean:
        assert any("-X CNET-OLD" in line for line in lines)


def test_run_dry_run_script_stops_at_the_first_error(tmp_path):
    """The other side: a create plan (run) has no `|| true`: set -e stops it, as the journal would."""
    state = tmp_path / "state"
    res = run_cnet("--dry-run", "run", "--", "true", state_dir=state)
    assert res.returncode == 0, res.stderr
    assert "|| true" not in res.stdout and "# step: start the watcher" in res.stdout
