"""cnet's benchmark: wiring vs a hand-written batched floor (and the CNI reference plugins), end to
end times vs the import floor, growth, start-up, IPAM, memory and data path.

Run it through scripts/bench, which installs what is missing and starts this program inside a
throwaway sandbox (new network, mount and PID namespaces; tmpfs over /run/netns and the state dir).
This program refuses to run anywhere else: it creates hundreds of links, rules and namespaces.

Every ratio compares figures measured in the same run, interleaved where possible, because
absolute times on a shared machine drift by +-20%.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# sys.executable, never a pyenv shim (the shim execs the real interpreter, which is what runs
# here), and not its realpath either: a venv's bin/python is a symlink whose target, the base
# interpreter, does not see the venv's packages.
PYTHON = sys.executable

# Peers' published figures (issue 5; same class of 2-vCPU machine), milliseconds.
PEERS_RUN = {"podman": 142.0, "docker": 313.0}
PEERS_RM = {"podman": 320.0, "docker": 145.0}

NET_SUBNET = "10.88.0.0/16"
FLOOR_SUBNET, FLOOR_GW, FLOOR_BRIDGE, FLOOR_CHAIN = "10.89.0.0/16", "10.89.0.1", "bflbr0", "BENCH-DNAT"
FLOOR_BRIDGE_MAC = "0a:62:66:6c:62:72"  # the floor's bridge has a MAC of its own, as cnet's
# cnet gives an IPv4-only eth0 no IPv6 address where the host has IPv6: the hand-made wiring too.
IPV6_HOST = os.path.isdir("/proc/sys/net/ipv6")
CNI_SUBNET, CNI_BRIDGE = "10.90.0.0/16", "bcnibr0"
CNI_DIR = Path("/usr/lib/cni")
# cnet's own CNI plugin against the reference bridge + host-local (phase "CNI plugin ADD/DEL").
CNI_PLUGIN_SUBNET, CNI_REF_SUBNET, CNI_REF_BRIDGE = "10.84.0.0/16", "10.86.0.0/16", "bcnirf0"
PORT_BASE, FLOOR_PORT_BASE, CNI_PORT_BASE, IPERF_PORT = 20000, 30000, 40000, 5201


# --- statistics (pure) ----------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no data."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95)}


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def growth(values: list[float], k: int = 30) -> dict:
    """Median of the last k over the first k (k shrinks to half the samples for short runs)."""
    k = min(k, len(values) // 2)
    if k == 0:
        return {"k": 0, "first": None, "last": None, "ratio": None}
    first, last = percentile(values[:k], 50), percentile(values[-k:], 50)
    return {"k": k, "first": first, "last": last, "ratio": ratio(last, first)}


# --- the floor and CNI configurations (pure) ---------------------------------------------------------
def int_to_ip(value: int) -> str:
    return ".".join(str((value >> s) & 255) for s in (24, 16, 8, 0))


def ip_to_int(ip: str) -> int:
    a, b, c, d = (int(x) for x in ip.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def ip_mac(ip: str) -> str:
    return "02:42:" + ":".join(f"{int(o):02x}" for o in ip.split("."))


def floor_commands(
    i: int,
    *,
    host_port: int,
    subnet: str = FLOOR_SUBNET,
    gateway: str = FLOOR_GW,
    bridge: str = FLOOR_BRIDGE,
    chain: str = FLOOR_CHAIN,
    mtu: int = 1500,
    ipv6_host: bool = True,
) -> list[tuple[list[str], str]]:
    """The wiring of container i written by hand, batched: the same kernel objects cnet makes
    (netns, veth pair born with its peer inside, bridge port with hairpin, address, lo, default
    route, one DNAT rule; no IPv6 address on eth0 where the host has IPv6; the host's neighbour
    entry seeded, and the container's for the gateway), in three processes.
    Returns [(argv, stdin)]."""
    base, prefix = subnet.split("/")
    ip = int_to_ip(ip_to_int(base) + 2 + i)
    ns, veth = f"bfl{i}", f"bflv{i}"
    mac = "02:42:" + ":".join(f"{int(o):02x}" for o in ip.split("."))
    host = (
        "\n".join(
            [
                f"netns add {ns}",
                f"link add name {veth} mtu {mtu} type veth peer name eth0 mtu {mtu} address {mac} netns {ns}",
                f"link set {veth} master {bridge}",
                f"link set dev {veth} type bridge_slave hairpin on",
                f"link set {veth} up",
                f"neigh replace {ip} lladdr {mac} dev {bridge} nud stale",
            ]
        )
        + "\n"
    )
    inside = (
        "\n".join(
            [
                "link set lo up",
                *(["link set dev eth0 addrgenmode none"] if ipv6_host else []),
                f"addr add {ip}/{prefix} dev eth0",
                "link set eth0 up",
                f"neigh replace {gateway} lladdr {FLOOR_BRIDGE_MAC} dev eth0 nud stale",
                f"route add default via {gateway} dev eth0",
            ]
        )
        + "\n"
    )
    rules = (
        "*nat\n"
        f"-A {chain} -p tcp -m tcp --dport {host_port} -m comment --comment bench:floor:{i} "
        f"-j DNAT --to-destination {ip}:80\n"
        "COMMIT\n"
    )
    return [
        (["ip", "-batch", "-"], host),
        (["ip", "-n", ns, "-batch", "-"], inside),
        (["iptables-restore", "-w", "--noflush"], rules),
    ]


def floor_setup_commands(
    subnet: str = FLOOR_SUBNET, gateway: str = FLOOR_GW, bridge: str = FLOOR_BRIDGE, chain: str = FLOOR_CHAIN
) -> list[tuple[list[str], str]]:
    prefix = subnet.split("/")[1]
    return [
        (
            ["ip", "-batch", "-"],
            f"link add name {bridge} address {FLOOR_BRIDGE_MAC} type bridge\n"
            f"addr add {gateway}/{prefix} dev {bridge}\nlink set {bridge} up\n",
        ),
        (["iptables-restore", "-w", "--noflush"], f"*nat\n:{chain} - [0:0]\n-A OUTPUT -j {chain}\nCOMMIT\n"),
    ]


def cni_configs(
    *, host_port: int, container_port: int = 80, bridge: str = CNI_BRIDGE, subnet: str = CNI_SUBNET, data_dir: str
) -> list[dict]:
    """The reference plugin chain (bridge + host-local, then portmap), one config per plugin as
    libcni would hand them over. NAT out is per network in cnet, so ipMasq is off here too."""
    common = {"cniVersion": "1.0.0", "name": "bench"}
    return [
        {
            **common,
            "type": "bridge",
            "bridge": bridge,
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "dataDir": data_dir,
                "routes": [{"dst": "0.0.0.0/0"}],
            },
        },
        {
            **common,
            "type": "portmap",
            "capabilities": {"portMappings": True},
            "snat": True,
            "runtimeConfig": {
                "portMappings": [{"hostPort": host_port, "containerPort": container_port, "protocol": "tcp"}]
            },
        },
    ]


def cni_plugin_configs(*, cnet_conflist: dict, data_dir: str) -> tuple[dict, dict]:
    """What libcni hands each plugin for one ADD or DEL: cnet's entry of `cnet cni conflist`
    (with the list's name and cniVersion added), and the reference bridge + host-local in the
    same version. No ports and no masquerading on either side (cnet's NAT is per network)."""
    cnet = dict(cnet_conflist["plugins"][0], name=cnet_conflist["name"], cniVersion=cnet_conflist["cniVersion"])
    ref = {
        "cniVersion": cnet_conflist["cniVersion"],
        "name": "benchref",
        "type": "bridge",
        "bridge": CNI_REF_BRIDGE,
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": CNI_REF_SUBNET}]],
            "dataDir": data_dir,
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }
    return cnet, ref


def cni_env(command: str, i: int, netns: str, cni_path: str) -> dict:
    """The environment libcni gives a plugin, and nothing else (a Kubernetes runtime passes
    little more): the plugin must find its tools itself."""
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": f"bench{i:06d}",
        "CNI_NETNS": f"/run/netns/{netns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": cni_path,
    }


# --- targets (pure) -----------------------------------------------------------------------------------
@dataclass
class Target:
    name: str
    value: float | None
    limit: float | None
    unit: str
    higher_is_better: bool = False

    @property
    def met(self) -> bool | None:
        if self.value is None or self.limit is None:
            return None
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit


def targets(r: dict) -> list[Target]:
    g = lambda *path: _get(r, *path)  # noqa: E731
    imp = g("import_floor", "p50")
    plus = lambda ms: None if imp is None else imp + ms  # noqa: E731
    return [
        Target("wiring p50 / floor p50", g("wiring", "ratio_to_floor"), 1.3, "x"),
        Target("wiring growth (last 30 / first 30)", g("growth", "cnet", "ratio"), 1.1, "x"),
        Target("run -d until port answers p50", g("run_until_port", "p50"), plus(100), "ms"),
        Target("rm -f p50", g("rm_f", "p50"), plus(60), "ms"),
        Target("run -d until port answers, cnet / podman p50", g("peers", "run", "ratio"), 0.9, "x"),
        Target("rm -f, cnet / podman p50", g("peers", "rm", "ratio"), 0.9, "x"),
        Target(f"ps with {r.get('n', '?')} containers p50", g("startup", "ps", "p50"), 60, "ms"),
        Target("--help p50", g("startup", "help", "p50"), 60, "ms"),
        Target("IPAM /16 fill", g("ipam", "total_s"), 3.0, "s"),
        Target("IPAM last 1000 / first 1000", g("ipam", "last_over_first"), 1.5, "x"),
        Target("memory kept per container (PSS)", g("memory", "pss_mb_per_container"), 2.0, "MB"),
        Target("  the same with --restart always", g("memory_restart_policy", "pss_mb_per_container"), 2.0, "MB"),
        Target("Ctrl-C on http.server until released p50", g("ctrl_c_released", "p50"), 1500, "ms"),
        Target("throughput 127.0.0.1 mapping / direct", g("iperf", "ratio"), 0.9, "x", higher_is_better=True),
        Target("CNI ADD p50 / bridge+host-local ADD p50", g("cni_plugin", "add_ratio"), 1.0, "x"),
        Target(
            "overlay throughput across hosts / underlay",
            g("overlay", "iperf", "ratio"),
            0.8,
            "x",
            higher_is_better=True,
        ),
        Target("overlay: every peer knows a new host (agents)", g("overlay", "peers_know_new_host_ms"), 1000, "ms"),
        Target("CRI RunPodSandbox p50 / reference chain p50", g("cri", "run_ratio"), 1.0, "x"),
        Target("dual stack adds to wiring (p50, no ports)", g("dualstack", "added_ms"), 1.0, "ms"),
        Target("up of N until all answer / N x run -d", g("stack", "up_ratio"), 0.25, "x"),
        Target("down of N / N x rm -f", g("stack", "down_ratio"), 0.25, "x"),
        Target("no-op up of N", g("stack", "noop_up", "p50"), 1000, "ms"),
        Target("up of BIG / up of N", g("stack", "growth"), 3.3, "x"),
    ]


def _get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def fmt(v, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        v = f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"
    return f"{v}{(' ' + unit) if unit else ''}"


def render_table(r: dict) -> str:
    lines = []
    add = lines.append
    add(f"cnet benchmark: N={r['n']} containers, {r['machine']}")
    if r.get("load"):
        # Other work on the machine slows every absolute figure; interleaved ratios much less.
        add("load average (1 min) at start / end: " + " / ".join(f"{x:.2f}" for x in r["load"]))
    if r.get("cnet_under_test"):
        add(f"cnet under test: {r['cnet_under_test']}")
    add("")
    add(f"{'measure':46} {'p50':>10} {'p95':>10} {'n':>5}")
    rows = [
        ("wiring cnet (journal step timings)", _get(r, "wiring", "cnet")),
        ("wiring floor (ip -batch x2 + iptables-restore)", _get(r, "wiring", "floor")),
        ("wiring CNI bridge+host-local+portmap", _get(r, "wiring", "cni")),
        ("run -d until port answers", r.get("run_until_port")),
        ("  (cnet run -d process alone)", r.get("run_process")),
        ("rm -f", r.get("rm_f")),
        ("import floor: python -c 'import sqlalchemy, sh'", r.get("import_floor")),
        ("python -c pass", r.get("python_pass")),
        ("cnet --help", _get(r, "startup", "help")),
        (f"cnet ps ({r['n']} containers)", _get(r, "startup", "ps")),
        (f"cnet inspect ({r['n']} containers)", _get(r, "startup", "inspect")),
        ("CNI ADD, cnet plugin", _get(r, "cni_plugin", "add", "cnet")),
        ("CNI ADD, bridge + host-local", _get(r, "cni_plugin", "add", "reference")),
        ("CNI DEL, cnet plugin", _get(r, "cni_plugin", "del", "cnet")),
        ("CNI DEL, bridge + host-local", _get(r, "cni_plugin", "del", "reference")),
        ("CNI ADD floor: json+sqlite3 start + its commands", _get(r, "cni_plugin", "add", "floor")),
        ("CNI DEL floor: json+sqlite3 start + its commands", _get(r, "cni_plugin", "del", "floor")),
        ("python -SE -c pass (the plugin's interpreter floor)", r.get("python_bare")),
        ("spawn `true` via sh", _get(r, "spawn", "sh")),
        ("spawn `true` via subprocess", _get(r, "spawn", "subprocess")),
    ]
    for label, s in rows:
        if s is None:
            continue
        if isinstance(s, str):
            add(f"{label:46} {s:>10}")
            continue
        add(f"{label:46} {fmt(s.get('p50')):>10} {fmt(s.get('p95')):>10} {s.get('n', ''):>5}")
    add("")
    gr = r.get("growth", {})
    for who in ("cnet", "floor", "cni", "kernel"):
        if isinstance(gr.get(who), dict) and gr[who].get("ratio") is not None:
            x = gr[who]
            add(
                f"growth {who:5}: median last {x['k']} {fmt(x['last'])} ms / first {x['k']} {fmt(x['first'])} ms"
                f" = {fmt(x['ratio'])}x"
            )
    ds = r.get("dualstack") or {}
    if ds:
        add(
            f"dual stack ({ds['rounds']} interleaved runs each): wiring p50 IPv4-only {fmt(ds['v4']['p50'])} ms, "
            f"dual-stack {fmt(ds['dual']['p50'])} ms (+{fmt(ds['added_ms'])} ms); with -p: "
            f"{fmt(ds['v4_ports']['p50'])} / {fmt(ds['dual_ports']['p50'])} ms (+{fmt(ds['added_ports_ms'])} ms, "
            "one ip6tables-restore)"
        )
        add(f"      same processes without ports: {ds['commands_v4']} for IPv4-only, {ds['commands_dual']} for dual")
    ip = r.get("ipam") or {}
    if ip:
        add(
            f"IPAM: {ip['addresses']} addresses of {ip['subnet']} in {fmt(ip['total_s'])} s; "
            f"last 1000 {fmt(ip['last_1000_ms'])} ms / first 1000 {fmt(ip['first_1000_ms'])} ms = "
            f"{fmt(ip['last_over_first'])}x; exhausted-network error in {fmt(ip['exhausted_ms'])} ms"
        )
        add(
            "      (one commit per address, on disk; the same fill in one transaction: "
            f"{fmt(ip.get('one_transaction_s'))} s)"
        )
    for key, label in (("memory", "memory"), ("memory_restart_policy", "memory, --restart always")):
        mem = r.get(key) or {}
        if mem:
            add(
                f"{label}: {mem['processes']} processes kept for {mem['containers']} containers "
                f"({', '.join(mem['commands'])}): "
                f"RSS {fmt(mem['rss_mb_per_container'])} MB, PSS {fmt(mem['pss_mb_per_container'])} MB per container "
                f"(PSS: watcher {fmt(mem.get('watcher_pss_mb_per_container'))} MB, "
                f"log writer {fmt(mem.get('writer_pss_mb_per_container'))} MB)"
            )
    cc = r.get("ctrl_c_released") or {}
    if cc:
        add(
            f"Ctrl-C on a foreground python3 -m http.server until cnet exited (released): p50 {fmt(cc.get('p50'))} ms, "
            f"p95 {fmt(cc.get('p95'))} ms"
        )
    pf = r.get("iperf") or {}
    if pf:
        add(
            f"iperf3: direct {fmt(pf.get('direct_gbps'))} Gbit/s, via 127.0.0.1 mapping "
            f"{fmt(pf.get('mapped_gbps'))} Gbit/s, ratio {fmt(pf.get('ratio'))}"
        )
    ov = r.get("overlay") or {}
    if ov:
        if ov.get("error"):
            add(f"overlay: {ov['error']}")
        else:
            o = ov.get("iperf") or {}
            add(
                f"overlay: net create --driver vxlan (define + join) {fmt(ov.get('create_join_ms'))} ms; first run "
                f"on another host (joins) {fmt(ov.get('first_run_join_ms'))} ms, its second run "
                f"{fmt(ov.get('second_run_ms'))} ms"
            )
            add(
                f"overlay: iperf3 container->container across hosts {fmt(o.get('overlay_gbps'))} Gbit/s, host->host "
                f"over the underlay {fmt(o.get('underlay_gbps'))} Gbit/s, ratio {fmt(o.get('ratio'))} (container to "
                f"container on one host {fmt(o.get('same_host_containers_gbps'))} Gbit/s, host to host through "
                f"VXLAN {fmt(o.get('host_to_host_through_vxlan_gbps'))} Gbit/s, load average "
                f"{'-'.join(fmt(x) for x in o.get('load_average') or [])}); every peer "
                f"knows a new host {fmt(ov.get('peers_know_new_host_ms'))} ms after its share appears in etcd"
            )
    add("")
    if isinstance(r.get("cri"), dict):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_cri

        lines += ["", *bench_cri.render(r["cri"])]
    if isinstance(r.get("peers"), dict):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_peers

        lines += bench_peers.render(r["peers"])
    if isinstance(r.get("stack"), dict):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_stack

        lines += bench_stack.render(r["stack"])
    for label, key, peers in (("run -d until port answers", "run_until_port", PEERS_RUN), ("rm -f", "rm_f", PEERS_RM)):
        p50 = _get(r, key, "p50")
        if p50 is not None and not isinstance(r.get("peers"), dict):  # published figures, when not measured
            add(
                f"{label}: cnet {fmt(p50)} ms = "
                + ", ".join(f"{fmt(p50 / v)}x {k} ({v:.0f} ms)" for k, v in peers.items())
            )
    cni = _get(r, "samples", "cni_plugin") or {}
    for verb in ("add", "del"):
        per = cni.get(verb) or {}
        if per.get("cnet") and per.get("reference"):
            c, ref = per["cnet"], per["reference"]
            add(
                f"CNI {verb.upper()} (interleaved, n {len(c)}): cnet p50 {fmt(percentile(c, 50))} ms, "
                f"p90 {fmt(percentile(c, 90))} ms; bridge + host-local p50 {fmt(percentile(ref, 50))} ms, "
                f"p90 {fmt(percentile(ref, 90))} ms; p50 ratio {fmt(ratio(percentile(c, 50), percentile(ref, 50)))}x"
            )
            if per.get("floor"):
                fl = per["floor"]
                add(
                    f"  its floor (a Python start with json and sqlite3, then the kernel commands cnet's {verb.upper()}"
                    f" ran): p50 {fmt(percentile(fl, 50))} ms = {fmt(ratio(percentile(fl, 50), percentile(ref, 50)))}x"
                    " the reference"
                )
    add("")
    add(f"{'target':46} {'value':>12} {'limit':>12}  result")
    for t in targets(r):
        res = {True: "pass", False: "MISS", None: "n/a"}[t.met]
        cmp_ = ">=" if t.higher_is_better else "<="
        add(f"{t.name:46} {fmt(t.value, t.unit):>12} {cmp_ + ' ' + fmt(t.limit, t.unit):>12}  {res}")
    return "\n".join(lines)


# --- running things (inside the sandbox) --------------------------------------------------------------
def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def run(argv: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"{argv} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def timed(argv: list[str], stdin: str | None = None, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env)
    elapsed = ms_since(t0)
    if res.returncode != 0:
        raise RuntimeError(f"{argv} failed ({res.returncode}): {res.stderr.strip()} {res.stdout.strip()[-500:]}")
    return elapsed


class Bench:
    def __init__(
        self,
        n: int,
        state_dir: Path,
        repeat: int,
        iperf_time: int,
        with_cni: bool,
        cni_n: int = 60,
        rounds: int = 20,
        profiled: int = 10,
        installed: bool = True,
        cri_n: int = 20,
        stack_args: tuple[int, int, int] = (100, 300, 2),
    ):
        self.rounds, self.profiled = rounds, profiled
        self.cri_n = cri_n
        self.stack_args = stack_args
        self.n = n
        self.cni_n = cni_n
        self.state_dir = state_dir
        self.repeat = repeat
        self.iperf_time = iperf_time
        self.with_cni = with_cni and all((CNI_DIR / p).exists() for p in ("bridge", "host-local", "portmap"))
        self.env = dict(os.environ, CNET_STATE_DIR=str(state_dir), PYTHONPATH=str(REPO))
        self.env.pop("CNET_DEBUG", None)
        self.tmp = Path(tempfile.mkdtemp(prefix="cnet-bench-", dir=os.environ.get("CNET_BENCH_TMP")))
        self.www = self.tmp / "www"
        self.www.mkdir()
        (self.www / "index.html").write_text("hello\n")
        self.r: dict = {"n": n, "machine": machine(), "load": [os.getloadavg()[0]]}
        self.import_samples: list[float] = []
        self.pass_samples: list[float] = []
        self.argv = [PYTHON, "-m", "cnet"]
        # The interpreter of the cnet under test: the import floors are measured with it.
        self.python = PYTHON
        self.r["cnet_under_test"] = "the checkout (python -m cnet, editable install)"
        if installed:
            try:
                self.argv = install_copy(self.tmp / "install")
                self.env.pop("PYTHONPATH")
                self.python = str(Path(self.argv[0]).with_name("python"))
                self.r["cnet_under_test"] = "an installed copy (wheel of the checkout in a venv, its `cnet` script)"
            except (OSError, subprocess.CalledProcessError) as exc:
                self.r["cnet_under_test"] += f" (installing a copy failed: {exc})"

    def cnet(self, *args: str) -> list[str]:
        return [*self.argv, *args]

    def sample_import_floor(self) -> None:
        self.import_samples.append(timed([self.python, "-c", "import sqlalchemy, sh"], env=self.env))
        self.pass_samples.append(timed([self.python, "-c", "pass"], env=self.env))

    # --- phases ---------------------------------------------------------------------------------
    def setup(self) -> None:
        res = subprocess.run(
            self.cnet("net", "create", "bench", "--subnet", NET_SUBNET), capture_output=True, text=True, env=self.env
        )
        if res.returncode != 0:
            raise RuntimeError(f"cnet net create failed: {res.stderr.strip()}")
        for argv, stdin in floor_setup_commands():
            run(argv, stdin)
        if self.with_cni:
            (self.tmp / "cni-ipam").mkdir()

    def run_until_port(self, name: str, port: int) -> tuple[float, float]:
        """(ms until `cnet run -d` has exited AND the port answers on 127.0.0.1, ms of the process)."""
        argv = self.cnet(
            "run",
            "-d",
            "--name",
            name,
            "--net",
            "bench",
            "-p",
            f"{port}:80",
            "--",
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            str(self.www),
        )
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env)
        # Wait for the process without spinning (a polling loop here would take CPU from cnet on a
        # small machine), then poll the port: the figure is max(exit, port answers).
        _, err = proc.communicate(timeout=60)
        t_exit = time.perf_counter()
        if proc.returncode != 0:
            raise RuntimeError(f"cnet run {name} failed: {err.decode().strip()}")
        t_port = None
        while t_port is None:
            s = socket.socket()
            s.settimeout(1)
            try:
                s.connect(("127.0.0.1", port))
                t_port = time.perf_counter()
            except OSError:
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError(f"container {name}: port {port} never answered") from None
                time.sleep(0.001)
            finally:
                s.close()
        return (max(t_exit, t_port) - t0) * 1000, (t_exit - t0) * 1000

    def floor_wire(self, i: int) -> float:
        total = 0.0
        commands = floor_commands(i, host_port=FLOOR_PORT_BASE + i, ipv6_host=IPV6_HOST)
        for argv, stdin in commands:
            total += timed(argv, stdin)
        # Untimed: remove it again, so that every method's i-th wiring meets the same kernel
        # state (cnet's i containers), and cnet's growth is that of its own containers, not of
        # the floor's and CNI's accumulating beside them.
        run(["ip", "netns", "del", f"bfl{i}"], None)
        rules = commands[2][1].replace("-A ", "-D ", 1)
        run(["iptables-restore", "-w", "--noflush"], rules)
        return total

    def cni_wire(self, i: int) -> float:
        ns = f"bcni{i}"
        total = timed(["ip", "netns", "add", ns])
        prev = None
        for conf in cni_configs(host_port=CNI_PORT_BASE + i, data_dir=str(self.tmp / "cni-ipam")):
            if prev is not None:
                conf["prevResult"] = prev
            env = dict(
                os.environ,
                CNI_COMMAND="ADD",
                CNI_CONTAINERID=f"bench{i:06d}",
                CNI_NETNS=f"/run/netns/{ns}",
                CNI_IFNAME="eth0",
                CNI_PATH=str(CNI_DIR),
            )
            t0 = time.perf_counter()
            res = subprocess.run(
                [str(CNI_DIR / conf["type"])], input=json.dumps(conf), capture_output=True, text=True, env=env
            )
            total += ms_since(t0)
            if res.returncode != 0:
                raise RuntimeError(f"CNI {conf['type']} ADD failed: {res.stdout.strip()} {res.stderr.strip()}")
            prev = json.loads(res.stdout)
        self.cni_teardown(i, ns, prev)  # untimed, see floor_wire
        return total

    def cni_teardown(self, i: int, ns: str, prev: dict | None) -> None:
        """CNI DEL in reverse plugin order, as libcni does, then the netns."""
        for conf in reversed(cni_configs(host_port=CNI_PORT_BASE + i, data_dir=str(self.tmp / "cni-ipam"))):
            if prev is not None:
                conf["prevResult"] = prev
            env = dict(
                os.environ,
                CNI_COMMAND="DEL",
                CNI_CONTAINERID=f"bench{i:06d}",
                CNI_NETNS=f"/run/netns/{ns}",
                CNI_IFNAME="eth0",
                CNI_PATH=str(CNI_DIR),
            )
            subprocess.run(
                [str(CNI_DIR / conf["type"])], input=json.dumps(conf), capture_output=True, text=True, env=env
            )
        run(["ip", "netns", "del", ns], None)

    def containers_loop(self) -> None:
        e2e, proc_ms, floor, cni = [], [], [], []
        every = max(1, self.n // 60)
        for i in range(self.n):
            a, b = self.run_until_port(f"b{i}", PORT_BASE + i)
            e2e.append(a)
            proc_ms.append(b)
            floor.append(self.floor_wire(i))
            if self.with_cni:
                cni.append(self.cni_wire(i))
            if i % every == 0:
                self.sample_import_floor()
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{self.n} containers", file=sys.stderr, flush=True)
        self.r["run_until_port"] = summary(e2e)
        self.r["run_process"] = summary(proc_ms)
        wiring = self.journal_wiring()
        self.r["wiring"] = {
            "cnet": summary(wiring),
            "floor": summary(floor),
            "cni": summary(cni) if self.with_cni else "not installed",
        }
        self.r["wiring"]["ratio_to_floor"] = ratio(percentile(wiring, 50), percentile(floor, 50))
        if self.with_cni:
            self.r["wiring"]["cni_ratio_to_floor"] = ratio(percentile(cni, 50), percentile(floor, 50))
        self.r["growth"] = {"cnet": growth(wiring), "floor": growth(floor)}
        if self.with_cni:
            self.r["growth"]["cni"] = growth(cni)
        self.r["samples"] = {"wiring_cnet": wiring, "wiring_floor": floor, "wiring_cni": cni, "run_until_port": e2e}

    def journal_wiring(self) -> list[float]:
        """Per `run` operation, the sum of its steps' own recorded durations, in order."""
        conn = sqlite3.connect(f"file:{self.state_dir / 'cnet.db'}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT o.id, sum(s.duration_ms), count(s.id), sum(s.status = 'done') FROM operations o "
                "JOIN operation_steps s ON s.operation_id = o.id WHERE o.kind = 'run' AND o.status = 'done' "
                "GROUP BY o.id ORDER BY o.id"
            ).fetchall()
        finally:
            conn.close()
        return [r[1] for r in rows if r[2] == r[3]]

    def last_run(self) -> tuple[float, int]:
        """(sum of the step durations, number of steps) of the newest `run` operation."""
        conn = sqlite3.connect(f"file:{self.state_dir / 'cnet.db'}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT sum(s.duration_ms), count(s.id) FROM operation_steps s WHERE s.operation_id = "
                "(SELECT max(id) FROM operations WHERE kind = 'run' AND status = 'done')"
            ).fetchone()
        finally:
            conn.close()
        return row[0], row[1]

    def dualstack(self) -> None:
        """Interleaved `run -d` on an IPv4-only and on a dual-stack network (fresh networks of their
        own), without and with a published port: the wiring's journal step timings."""
        rounds = min(self.n, 40)
        for argv in (
            ("net", "create", "bv4", "--subnet", "10.87.0.0/16"),
            ("net", "create", "bv6", "--ipv6", "--subnet", "10.86.0.0/16", "--subnet", "fd00:86::/64"),
        ):
            run(self.cnet(*argv))
        out: dict[str, list[float]] = {"v4": [], "dual": [], "v4_ports": [], "dual_ports": []}
        steps: dict[str, int] = {}
        names = []
        for i in range(rounds):
            order = [("v4", "bv4"), ("dual", "bv6")]
            for key, net in order if i % 2 == 0 else order[::-1]:
                for ports, suffix in (
                    ((), ""),
                    (("-p", f"{20000 + i}:80" if key == "v4" else f"{21000 + i}:80"), "_ports"),
                ):
                    name = f"ds-{key}{suffix}-{i}"
                    run(self.cnet("run", "-d", "--name", name, "--net", net, *ports, "--", "sleep", "infinity"))
                    ms, n = self.last_run()
                    out[key + suffix].append(ms)
                    steps[key + suffix] = n
                    names.append(name)
        for i in range(0, len(names), 20):
            run(self.cnet("rm", "-f", *names[i : i + 20]))
        run(self.cnet("net", "rm", "bv4", "bv6"))
        res = {k: summary(v) for k, v in out.items()}
        self.r["dualstack"] = {
            **res,
            "rounds": rounds,
            "added_ms": res["dual"]["p50"] - res["v4"]["p50"],
            "added_ports_ms": res["dual_ports"]["p50"] - res["v4_ports"]["p50"],
            "commands_v4": steps["v4"],
            "commands_dual": steps["dual"],
        }

    def startup(self) -> None:
        out = {"help": [], "ps": [], "inspect": []}
        mid = f"b{self.n // 2}"
        for _ in range(self.repeat):
            out["help"].append(timed(self.cnet("--help"), env=self.env))
            out["ps"].append(timed(self.cnet("ps"), env=self.env))
            out["inspect"].append(timed(self.cnet("inspect", mid), env=self.env))
            self.sample_import_floor()
        self.r["startup"] = {k: summary(v) for k, v in out.items()}

    def spawn_overhead(self) -> None:
        import sh

        cmd = sh.Command("true")
        a, b = [], []
        for _ in range(self.repeat * 2):
            t0 = time.perf_counter()
            cmd(_tty_out=False, _tty_in=False)
            a.append(ms_since(t0))
            t0 = time.perf_counter()
            subprocess.run(["true"], capture_output=True)
            b.append(ms_since(t0))
        self.r["spawn"] = {"sh": summary(a), "subprocess": summary(b)}

    def memory(self, names: str = "b%", key: str = "memory") -> None:
        conn = sqlite3.connect(f"file:{self.state_dir / 'cnet.db'}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT pid, id FROM containers WHERE state = 'running' AND pid IS NOT NULL AND name LIKE ?", (names,)
            ).fetchall()
        finally:
            conn.close()
        pids = [r[0] for r in rows]
        kept: set[int] = set()
        for pid in pids:
            p = ppid(pid)
            while p and p > 1 and p != os.getpid():
                kept.add(p)
                p = ppid(p)
        # The detached containers' log writers (`perl -e SCRIPT .../containers/ID/log ...`):
        # siblings of the watchers, not their ancestors.
        logs = {f"/containers/{r[1]}/log" for r in rows}
        writers: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"perl", b"-e"] and len(argv) > 3 and any(argv[3].decode().endswith(x) for x in logs):
                writers.add(int(entry.name))
        procs = kept | writers
        rss = sum(status_kb(p, "VmRSS") for p in procs)
        pss = sum(pss_kb(p) for p in procs)
        comms = sorted({Path(f"/proc/{p}/comm").read_text().strip() for p in procs if Path(f"/proc/{p}/comm").exists()})
        n = max(1, len(pids))
        self.r[key] = {
            "containers": len(pids),
            "processes": len(procs),
            "log_writers": len(writers),
            "commands": comms,
            "rss_mb_per_container": rss / 1024 / n,
            "pss_mb_per_container": pss / 1024 / n,
            "watcher_pss_mb_per_container": sum(pss_kb(p) for p in kept) / 1024 / n,
            "writer_pss_mb_per_container": sum(pss_kb(p) for p in writers) / 1024 / n,
        }

    def services(self) -> None:
        """Memory kept per container with a restart policy (the watcher holds its ports and waits to
        restart the program), and Ctrl-C on a foreground `python3 -m http.server` until cnet has
        exited, which is after its network is released."""
        names = [f"rs{i}" for i in range(min(20, self.n))]
        for i, name in enumerate(names):
            subprocess.run(
                self.cnet(
                    "run",
                    "-d",
                    "--name",
                    name,
                    "--net",
                    "bench",
                    "-p",
                    f"{47000 + i}:80",
                    "--restart",
                    "always",
                    "--",
                    "busybox",
                    "httpd",
                    "-f",
                    "-p",
                    "80",
                    "-h",
                    str(self.www),
                ),
                check=True,
                capture_output=True,
                env=self.env,
            )
        time.sleep(0.5)
        self.memory("rs%", "memory_restart_policy")
        subprocess.run(self.cnet("rm", "-f", *names), check=True, capture_output=True, env=self.env)
        ctrl_c = []
        for i in range(max(3, min(self.repeat, 10))):
            port = 47900 + i
            proc = subprocess.Popen(
                self.cnet(
                    "run",
                    "--name",
                    f"cc{i}",
                    "--net",
                    "bench",
                    "-p",
                    f"{port}:8000",
                    "--",
                    "python3",
                    "-m",
                    "http.server",
                    "8000",
                    "--bind",
                    "0.0.0.0",
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=self.env,
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    s.settimeout(0.5)
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            t0 = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
            ctrl_c.append(ms_since(t0))
            subprocess.run(self.cnet("rm", f"cc{i}"), capture_output=True, env=self.env)
        self.r["ctrl_c_released"] = summary(ctrl_c)

    def iperf(self) -> None:
        res = subprocess.run(
            self.cnet(
                "run",
                "-d",
                "--name",
                "bperf",
                "--net",
                "bench",
                "-p",
                f"127.0.0.1:{IPERF_PORT}:{IPERF_PORT}",
                "--",
                "iperf3",
                "-s",
                "-p",
                str(IPERF_PORT),
            ),
            capture_output=True,
            text=True,
            env=self.env,
        )
        if res.returncode != 0:
            self.r["iperf"] = {"error": res.stderr.strip()}
            return
        info = json.loads(
            subprocess.run(self.cnet("inspect", "bperf"), capture_output=True, text=True, env=self.env).stdout
        )
        info = info[0] if isinstance(info, list) else info
        cip, pid = info["networks"][0]["ip"], info["pid"]
        deadline = time.monotonic() + 10
        while not listening(pid, IPERF_PORT) and time.monotonic() < deadline:
            time.sleep(0.01)
        direct, mapped = [], []
        for _ in range(2):
            for host, out in ((cip, direct), ("127.0.0.1", mapped)):
                r = subprocess.run(
                    ["iperf3", "-c", host, "-p", str(IPERF_PORT), "-t", str(self.iperf_time), "-J"],
                    capture_output=True,
                    text=True,
                )
                if r.returncode == 0:
                    out.append(json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9)
        d, m = percentile(direct, 50), percentile(mapped, 50)
        self.r["iperf"] = {"direct_gbps": d, "mapped_gbps": m, "ratio": ratio(m, d), "seconds": self.iperf_time}
        subprocess.run(self.cnet("rm", "-f", "bperf"), capture_output=True, env=self.env)

    def rm_loop(self) -> None:
        rm = [timed(self.cnet("rm", "-f", f"b{i}"), env=self.env) for i in range(self.n)]
        self.r["rm_f"] = summary(rm)
        self.r["samples"]["rm_f"] = rm

    def kernel_growth(self) -> None:
        """The kernel's own growth, for judging cnet's: the same wiring as cnet does it
        (`nsenter --net` inside, not `ip -n`), by hand, accumulating N containers on one bridge
        with nothing else present (runs after cnet's containers are removed). Timed per container
        as the sum of its three process runs; then removed."""
        run(
            ["ip", "-batch", "-"],
            "link add name bgrbr type bridge\naddr add 10.88.0.1/16 dev bgrbr\nlink set bgrbr up\n",
        )
        run(["iptables-restore", "-w", "--noflush"], "*nat\n:BENCH-GROWTH - [0:0]\n-A OUTPUT -j BENCH-GROWTH\nCOMMIT\n")
        times = []
        for i in range(self.n):
            ip = int_to_ip(ip_to_int("10.88.0.2") + i)
            total = timed(
                ["ip", "-batch", "-"],
                (
                    f"netns add bgr{i}\n"
                    f"link add name bgrv{i} type veth peer name eth0 address {ip_mac(ip)} netns bgr{i}\n"
                    f"link set bgrv{i} master bgrbr\nlink set dev bgrv{i} type bridge_slave hairpin on\n"
                    f"link set bgrv{i} up\n"
                ),
            )
            total += timed(
                ["nsenter", f"--net=/run/netns/bgr{i}", "ip", "-batch", "-"],
                (
                    "link set lo up\n"
                    + ("link set dev eth0 addrgenmode none\n" if IPV6_HOST else "")
                    + f"addr add {ip}/16 dev eth0\nlink set eth0 up\n"
                    "route add default via 10.88.0.1 dev eth0\n"
                ),
            )
            total += timed(
                ["iptables-restore", "-w", "--noflush"],
                (f"*nat\n-A BENCH-GROWTH -p tcp -m tcp --dport {30000 + i} -j DNAT --to-destination {ip}:80\nCOMMIT\n"),
            )
            times.append(total)
        self.r.setdefault("growth", {})["kernel"] = growth(times)
        for i in range(self.n):
            run(["ip", "netns", "del", f"bgr{i}"], None)
        run(["ip", "link", "del", "bgrbr"], None)
        run(
            ["iptables-restore", "-w", "--noflush"],
            "*nat\n-D OUTPUT -j BENCH-GROWTH\n-F BENCH-GROWTH\n-X BENCH-GROWTH\nCOMMIT\n",
        )

    def cni_plugin(self) -> None:
        """CNI ADD and DEL: cnet's plugin (as `cnet cni install` puts it in a runtime's plugin
        directory) beside the reference bridge + host-local, each exec'd as libcni does it (the
        CNI_* variables only, the configuration on stdin), interleaved and alternating which goes
        first. The runtime's namespaces are made and removed untimed."""
        res = subprocess.run(
            self.cnet("net", "create", "benchcni", "--subnet", CNI_PLUGIN_SUBNET),
            capture_output=True,
            text=True,
            env=self.env,
        )
        if res.returncode != 0:
            raise RuntimeError(f"cnet net create failed: {res.stderr.strip()}")
        bin_dir = self.tmp / "cni-bin"
        install = self.cnet("cni", "install", "--bin-dir", str(bin_dir))
        subprocess.run(install, check=True, capture_output=True, env=self.env)
        conflist = json.loads(
            subprocess.run(
                self.cnet("cni", "conflist", "benchcni"), check=True, capture_output=True, text=True, env=self.env
            ).stdout
        )
        cnet_conf, ref_conf = cni_plugin_configs(cnet_conflist=conflist, data_dir=str(self.tmp / "cni-ref-ipam"))
        plugins = {"cnet": (str(bin_dir / "cnet"), cnet_conf), "reference": (str(CNI_DIR / "bridge"), ref_conf)}
        times: dict[str, dict[str, list[float]]] = {v: {k: [] for k in [*plugins, "floor"]} for v in ("add", "del")}
        for i in range(self.cni_n):
            order = list(plugins) if i % 2 == 0 else list(reversed(plugins))
            for who in order:
                run(["ip", "netns", "add", f"bcp-{who}-{i}"])
            for verb, key in (("ADD", "add"), ("DEL", "del")):
                for who in order:
                    path, conf = plugins[who]
                    env = cni_env(verb, i, f"bcp-{who}-{i}", str(CNI_DIR))
                    times[key][who].append(timed([path], json.dumps(conf), env=env))
            floor_add, floor_del = self.cni_plugin_floor(f"bcp-cnet-{i}")
            times["add"]["floor"].append(floor_add)
            times["del"]["floor"].append(floor_del)
            for who in order:
                run(["ip", "netns", "del", f"bcp-{who}-{i}"])
        bare = [timed([PYTHON, "-SE", "-c", "pass"]) for _ in range(self.repeat)]
        subprocess.run(self.cnet("net", "rm", "benchcni"), check=True, capture_output=True, env=self.env)
        out = {k: {who: summary(v) for who, v in per.items()} for k, per in times.items()}
        self.r["cni_plugin"] = {
            "n": self.cni_n,
            **out,
            "add_ratio": ratio(percentile(times["add"]["cnet"], 50), percentile(times["add"]["reference"], 50)),
            "del_ratio": ratio(percentile(times["del"]["cnet"], 50), percentile(times["del"]["reference"], 50)),
        }
        self.r["python_bare"] = summary(bare)
        self.r.setdefault("samples", {})["cni_plugin"] = times

    def cni_plugin_floor(self, netns: str) -> tuple[float, float]:
        """What no Python plugin of this design can go below, for the ADD and DEL cnet just made in
        `netns`: a Python start importing json and sqlite3, plus the kernel commands that ADD and
        that DEL ran (read back from the journal), replayed in the same namespace with the same
        names (cnet's DEL removed them), and removed again by the replayed DEL."""
        conn = sqlite3.connect(f"file:{self.state_dir / 'cnet.db'}?mode=ro", uri=True)
        try:
            (target,) = conn.execute("SELECT target FROM operations WHERE kind = 'cni-add' ORDER BY id DESC").fetchone()
            steps = {
                kind: [
                    json.loads(do)
                    for (do,) in conn.execute(
                        "SELECT s.do_json FROM operation_steps s JOIN operations o ON o.id = s.operation_id"
                        " WHERE o.kind = ? AND o.target = ? ORDER BY o.id, s.seq",
                        (kind, target),
                    )
                ]
                for kind in ("cni-add", "cni-del")
            }
        finally:
            conn.close()
        if not any(f"/run/netns/{netns}" in " ".join(c["argv"]) for c in steps["cni-add"]):
            raise RuntimeError(f"the journal's last CNI ADD is not the one in {netns}")
        start = timed([PYTHON, "-SE", "-c", "import json, sqlite3"])
        add = sum(timed(c["argv"], c["stdin"]) for c in steps["cni-add"])
        delete = sum(timed(c["argv"], c["stdin"]) for c in steps["cni-del"])
        return start + add, start + delete

    def cri(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_cri

        self.r["cri"] = bench_cri.measure(self.cnet(), self.env, self.tmp, self.cri_n)

    def ipam(self) -> None:
        # On disk, like /var/lib/cnet (the sandbox's tmpfs would hide the WAL checkpoints' writes).
        where = Path(tempfile.mkdtemp(prefix="ipam-", dir=os.environ.get("CNET_BENCH_DISK") or str(self.tmp)))
        res = subprocess.run(
            [PYTHON, str(Path(__file__).resolve()), "--ipam-only", str(where / "state")],
            capture_output=True,
            text=True,
            env=self.env,
        )
        if res.returncode != 0:
            raise RuntimeError(f"IPAM bench failed: {res.stderr.strip()}")
        self.r["ipam"] = json.loads(res.stdout)

    def peers(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_peers

        self.r["peers"] = bench_peers.measure(self.cnet(), self.env, self.tmp, self.www, self.rounds, self.profiled)

    def overlay(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_overlay

        self.r["overlay"] = bench_overlay.measure(self.cnet(), self.env, Path(self.tmp), self.iperf_time)

    def stack(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_stack

        n, big, rounds = self.stack_args
        self.r["stack"] = bench_stack.measure(self.cnet(), self.env, self.tmp, self.www, n, big, rounds)

    def quick_fill(self) -> None:
        """--only without `containers`: the N containers for `ps` and `inspect`, untimed."""
        for i in range(self.n):
            self.run_until_port(f"b{i}", PORT_BASE + i)

    def quick_rm(self) -> None:
        for i in range(self.n):
            run(self.cnet("rm", "-f", f"b{i}"))

    def all(self, only: set[str] | None = None) -> dict:
        phases = [
            ("setup", "setup", self.setup),
            (f"{self.n} x run -d / floor{' / CNI' if self.with_cni else ''}", "containers", self.containers_loop),
            ("start-up", "startup", self.startup),
            ("spawn overhead", "spawn", self.spawn_overhead),
            ("memory", "memory", self.memory),
            ("services: --restart memory, Ctrl-C until released", "services", self.services),
            ("iperf3", "iperf", self.iperf),
            (f"peers: {self.rounds} interleaved rounds vs podman", "peers", self.peers),
            (f"{self.n} x rm -f", "rm", self.rm_loop),
            *(
                [(f"CNI plugin ADD/DEL x {self.cni_n} (cnet vs bridge + host-local)", "cni", self.cni_plugin)]
                if self.with_cni and self.cni_n > 0
                else []
            ),
            *(
                [
                    (
                        f"CRI RunPodSandbox x {self.cri_n} (containerd: cnet vs bridge + host-local + portmap)",
                        "cri",
                        self.cri,
                    )
                ]
                if self.cri_n > 0
                else []
            ),
            ("kernel growth (same wiring by hand, accumulating)", "kernel", self.kernel_growth),
            ("IPAM /16", "ipam", self.ipam),
            ("overlay: 3 hosts, etcd, VXLAN (join, iperf3 across hosts, convergence)", "overlay", self.overlay),
            ("dual stack: run -d on IPv4-only vs dual-stack networks, interleaved", "dualstack", self.dualstack),
            (f"stack: up/down of {self.stack_args[0]} vs run -d/rm -f, interleaved", "stack", self.stack),
        ]
        if only is not None:
            only = only | {"setup"}
            if "containers" not in only and {"startup", "memory"} & only:
                phases.insert(1, (f"{self.n} x run -d (untimed, for ps/inspect)", "fill", self.quick_fill))
                only |= {"fill"} | ({"unfill"} if "rm" not in only else set())
                phases.append((f"{self.n} x rm -f (untimed)", "unfill", self.quick_rm))
            if "rm" in only and "containers" not in only and "fill" not in only:
                only.discard("rm")
        for label, key, fn in phases:
            if only is not None and key not in only:
                continue
            print(f"bench: {label}", file=sys.stderr, flush=True)
            fn()
        self.r["load"] = [self.r["load"][0], os.getloadavg()[0]]
        self.r["import_floor"] = summary(self.import_samples)
        self.r["python_pass"] = summary(self.pass_samples)
        return self.r


def install_copy(where: Path) -> list[str]:
    """Install the checkout as a user would (a wheel into a venv, run by its `cnet` script) and
    return the argv that runs it: the checkout's editable install adds an import finder to every
    start of its venv's interpreter, which no installed cnet pays. The dependencies come from the
    checkout's venv (a path in a .pth file, so no network and no pip resolution)."""
    import shutil
    import sysconfig

    src = where / "src"
    for part in ("cnet", "migrations"):
        shutil.copytree(REPO / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / part, src / part)
    venv = where / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    vpy = venv / "bin" / "python"
    site = subprocess.run(
        [str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        [
            PYTHON,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            site,
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    Path(site, "cnet-bench-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # The `cnet` script pip wrote (cnet/cli/script/cnet), with the copy's interpreter: pip put the
    # one running it (the checkout's venv's, whose editable install's finder every start would pay).
    written = Path(site, "bin", "cnet").read_text()
    script = venv / "bin" / "cnet"
    script.write_text(f"#!{vpy}\n" + written.split("\n", 1)[1])
    script.chmod(0o755)
    subprocess.run([str(script), "--version"], check=True, capture_output=True)
    return [str(script)]


def ipam_only(state_dir: str) -> dict:
    """Fill a /16 through cnet.ipam on a real, migrated file database: one write transaction per
    address, as `cnet run` does. Runs in its own process (fresh interpreter, no bench state)."""
    sys.path.insert(0, str(REPO))

    from cnet import ipam
    from cnet.db import connection, migrate
    from cnet.db import store as store_mod
    from cnet.errors import AllocationError
    from cnet.frozen_record import replace
    from cnet.records import Network, NetworkState

    sd = Path(state_dir)
    connection.ensure_state_dir(sd)
    store = connection.open_state(sd)
    migrate.ensure_current(store)
    subnet = "10.0.0.0/16"
    first, last = ip_to_int("10.0.0.0"), ip_to_int("10.0.255.255")
    net = Network(
        id="0123456789ab",
        name="ipambench",
        driver="bridge",
        subnet=subnet,
        subnet_first_int=first,
        subnet_last_int=last,
        prefix_len=16,
        gateway="10.0.0.1",
        ip_range=None,
        range_first_int=first + 1,
        range_last_int=last - 1,
        alloc_cursor_int=first,
        bridge="cnet-ipambench",
        mtu=1500,
        internal=False,
        state=NetworkState.READY,
        created_at=time.time(),
        bridge_mac="0a:01:23:45:67:89",
    )
    with store.write() as conn:
        store_mod.insert_network(conn, net)
    per: list[float] = []
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    with store.write() as conn:
        ipam.reserve_gateway(conn, net.id, net.gateway)
    per.append(ms_since(t0))
    while True:
        t0 = time.perf_counter()
        try:
            with store.write() as conn:
                ipam.allocate(conn, net)
        except AllocationError:
            exhausted = ms_since(t0)
            break
        per.append(ms_since(t0))
    total = time.perf_counter() - t_all - exhausted / 1000
    count = store.scalar("SELECT count(*) FROM ip_allocations")
    # The same fill in one transaction: IPAM's own cost, without a commit (WAL write) per address.
    net2 = replace(net, id="ba9876543210", name="ipambench2", bridge="cnet-ipambench2", alloc_cursor_int=first)
    t0 = time.perf_counter()
    with store.write() as conn:
        store_mod.insert_network(conn, net2)
        ipam.reserve_gateway(conn, net2.id, net2.gateway)
        for _ in range(count - 1):
            ipam.allocate(conn, net2)
    one_tx = time.perf_counter() - t0
    store.close()
    return {
        "subnet": subnet,
        "addresses": count,
        "total_s": total,
        "first_1000_ms": sum(per[:1000]),
        "last_1000_ms": sum(per[-1000:]),
        "last_over_first": ratio(sum(per[-1000:]), sum(per[:1000])),
        "exhausted_ms": exhausted,
        "one_transaction_s": one_tx,
    }


# --- /proc helpers ------------------------------------------------------------------------------------
def ppid(pid: int) -> int | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2 :].split()[1])


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def listening(pid: int, port: int) -> bool:
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(ln.split()[1].endswith(f":{port:04X}") and ln.split()[3] == "0A" for ln in lines)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), kernel {os.uname().release}, Python {sys.version.split()[0]}"


def in_sandbox() -> bool:
    """scripts/bench marks the sandbox; double-check that this network namespace is a fresh one
    (only lo), so the bench can never wire anything on a real host."""
    if os.environ.get("CNET_BENCH_SANDBOX") != "1":
        return False
    links = json.loads(run(["ip", "-j", "link"]).stdout)
    return [link["ifname"] for link in links] == ["lo"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="containers to start on one network (default 300)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    ap.add_argument("--repeat", type=int, default=20, help="samples per start-up command (default 20)")
    ap.add_argument("--iperf-time", type=int, default=3, help="seconds per iperf3 run (default 3)")
    ap.add_argument("--no-cni", action="store_true", help="skip the CNI reference plugins even when installed")
    ap.add_argument(
        "--cni-n", type=int, default=60, help="CNI ADD/DEL pairs per plugin (default 60; 0 skips the phase)"
    )
    ap.add_argument(
        "--cri-n", type=int, default=20, help="RunPodSandbox calls per network plugin (default 20; 0 skips the phase)"
    )
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds against podman (default 20)")
    ap.add_argument("--profiled", type=int, default=10, help="CNET_PROFILE=1 runs for the breakdown (default 10)")
    ap.add_argument("--no-peers", action="store_true", help="skip the comparison with podman")
    ap.add_argument(
        "--checkout", action="store_true", help="time the checkout's editable install instead of an installed copy"
    )
    ap.add_argument(
        "--only",
        metavar="PHASES",
        help="comma-separated subset of: containers,startup,spawn,memory,services,iperf,peers,rm,cni,cri,kernel,ipam,"
        "overlay,dualstack,stack",
    )
    ap.add_argument("--stack-n", type=int, default=100, help="containers in the stack phase (default 100)")
    ap.add_argument("--stack-big", type=int, default=300, help="the stack phase's growth size (default 300; 0 skips)")
    ap.add_argument("--stack-rounds", type=int, default=2, help="interleaved rounds of the stack phase (default 2)")
    ap.add_argument("--ipam-only", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ipam_only:
        print(json.dumps(ipam_only(args.ipam_only)))
        return 0
    if args.n < 2:
        ap.error("--n must be at least 2")
    if not in_sandbox():
        print("bench: refusing to run outside the sandbox; use scripts/bench", file=sys.stderr)
        return 1
    state_dir = Path(os.environ["CNET_STATE_DIR"])
    only = set(args.only.split(",")) if args.only else None
    if args.no_peers:
        only = (
            only
            or {
                "containers",
                "startup",
                "spawn",
                "memory",
                "services",
                "iperf",
                "rm",
                "cni",
                "cri",
                "kernel",
                "ipam",
                "overlay",
                "dualstack",
                "stack",
            }
        ) - {"peers"}
    bench = Bench(
        args.n,
        state_dir,
        args.repeat,
        args.iperf_time,
        with_cni=not args.no_cni,
        cni_n=args.cni_n,
        rounds=args.rounds,
        profiled=args.profiled,
        installed=not args.checkout,
        cri_n=args.cri_n,
        stack_args=(args.stack_n, args.stack_big, args.stack_rounds),
    )
    results = bench.all(only)
    print(render_table(results))
    if args.json:
        results["targets"] = [
            {"name": t.name, "value": t.value, "limit": t.limit, "unit": t.unit, "met": t.met} for t in targets(results)
        ]
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
