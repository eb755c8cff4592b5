"""The benchmark's pure parts: statistics, the hand-written floor, the CNI chain, the targets and
the table. The measuring itself needs root and a sandbox (scripts/bench)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cnet_bench", REPO / "scripts" / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


def test_percentile_interpolates_like_numpy(bench):
    assert bench.percentile([], 50) is None
    assert bench.percentile([7.0], 95) == 7.0
    assert bench.percentile([3, 1, 2], 50) == 2.0
    assert bench.percentile([1, 2, 3, 4], 50) == 2.5
    assert bench.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert bench.summary([4, 1, 3, 2]) == {"n": 4, "p50": 2.5, "p95": pytest.approx(3.85)}


def test_growth_compares_medians_of_first_and_last_k(bench):
    values = [10.0] * 30 + [99.0] * 240 + [12.0] * 30
    g = bench.growth(values)
    assert (g["k"], g["first"], g["last"]) == (30, 10.0, 12.0)
    assert g["ratio"] == pytest.approx(1.2)
    short = bench.growth([1.0, 2.0, 3.0, 8.0])  # k shrinks to half the samples
    assert short["k"] == 2 and short["ratio"] == pytest.approx(5.5 / 1.5)
    assert bench.growth([5.0])["ratio"] is None


def test_floor_is_three_batched_processes_with_the_same_wiring_as_cnet(bench):
    cmds = bench.floor_commands(7, host_port=30007)
    assert [argv for argv, _ in cmds] == [
        ["ip", "-batch", "-"],
        ["ip", "-n", "bfl7", "-batch", "-"],
        ["iptables-restore", "-w", "--noflush"],
    ]
    host, inside, rules = (stdin for _, stdin in cmds)
    assert host.splitlines() == [
        "netns add bfl7",
        "link add name bflv7 mtu 1500 type veth peer name eth0 mtu 1500 address 02:42:0a:59:00:09 netns bfl7",
        "link set bflv7 master bflbr0",
        "link set dev bflv7 type bridge_slave hairpin on",
        "link set bflv7 up",
        "neigh replace 10.89.0.9 lladdr 02:42:0a:59:00:09 dev bflbr0 nud stale",  # as cnet
    ]
    assert inside.splitlines() == [
        "link set lo up",
        "link set dev eth0 addrgenmode none",  # as cnet, on a host with IPv6
        "addr add 10.89.0.9/16 dev eth0",
        "link set eth0 up",
        f"neigh replace 10.89.0.1 lladdr {bench.FLOOR_BRIDGE_MAC} dev eth0 nud stale",  # as cnet
        "route add default via 10.89.0.1 dev eth0",
    ]
    assert rules.splitlines() == [
        "*nat",
        "-A BENCH-DNAT -p tcp -m tcp --dport 30007 -m comment --comment bench:floor:7 -j DNAT --to-destination 10.89.0.9:80",
        "COMMIT",
    ]
    # Addresses never collide with the gateway and stay distinct per container.
    ips = {bench.floor_commands(i, host_port=1, ipv6_host=False)[1][1].split()[6] for i in range(300)}
    assert len(ips) == 300 and "10.89.0.1/16" not in ips


def test_cni_chain_is_bridge_then_portmap(bench):
    confs = bench.cni_configs(host_port=40001, data_dir="/x/ipam")
    assert [c["type"] for c in confs] == ["bridge", "portmap"]
    assert confs[0]["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": bench.CNI_SUBNET}]],
        "dataDir": "/x/ipam",
        "routes": [{"dst": "0.0.0.0/0"}],
    }
    assert confs[1]["runtimeConfig"]["portMappings"] == [{"hostPort": 40001, "containerPort": 80, "protocol": "tcp"}]
    json.dumps(confs)  # what goes to the plugins' stdin


def test_cni_plugin_phase_hands_both_plugins_what_libcni_would(bench):
    conflist = {
        "cniVersion": "1.0.0",
        "name": "benchcni",
        "plugins": [{"type": "cnet", "network": "benchcni", "capabilities": {"portMappings": True}}],
    }
    cnet, ref = bench.cni_plugin_configs(cnet_conflist=conflist, data_dir="/x/ipam")
    assert cnet == {
        "type": "cnet",
        "network": "benchcni",
        "capabilities": {"portMappings": True},
        "name": "benchcni",
        "cniVersion": "1.0.0",
    }
    assert (ref["type"], ref["cniVersion"], ref["ipMasq"]) == ("bridge", "1.0.0", False)
    assert ref["ipam"]["type"] == "host-local" and ref["ipam"]["ranges"] == [[{"subnet": bench.CNI_REF_SUBNET}]]
    env = bench.cni_env("ADD", 7, "ns7", "/usr/lib/cni")
    assert env == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "bench000007",
        "CNI_NETNS": "/run/netns/ns7",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/usr/lib/cni",
    }


def test_cni_plugin_target_and_rows(bench):
    r = _results(
        cni_plugin={
            "n": 60,
            "add": {"cnet": {"n": 60, "p50": 80.0, "p95": 90.0}, "reference": {"n": 60, "p50": 40.0, "p95": 45.0}},
            "del": {"cnet": {"n": 60, "p50": 70.0, "p95": 80.0}, "reference": {"n": 60, "p50": 30.0, "p95": 35.0}},
            "add_ratio": 2.0,
            "del_ratio": 70 / 30,
        }
    )
    met = {t.name: t.met for t in bench.targets(r)}
    assert met["CNI ADD p50 / bridge+host-local ADD p50"] is False
    text = bench.render_table(r)
    assert "CNI ADD, cnet plugin" in text and "CNI DEL, bridge + host-local" in text
    # p90 from the samples, side by side, and the machine's load around the run.
    r["samples"] = {"cni_plugin": {"add": {"cnet": [10.0] * 9 + [30.0], "reference": [5.0] * 10}, "del": {}}}
    r["load"] = [3.5, 7.25]
    text = bench.render_table(r)
    assert "CNI ADD (interleaved, n 10): cnet p50 10.0 ms, p90 12.0 ms; bridge + host-local p50 5.00 ms" in text
    assert "p50 ratio 2.00x" in text and "CNI DEL (" not in text
    assert "load average (1 min) at start / end: 3.50 / 7.25" in text


def _results(**over):
    r = {
        "n": 300,
        "machine": "test",
        "wiring": {
            "cnet": {"n": 300, "p50": 12.0, "p95": 15.0},
            "floor": {"n": 300, "p50": 10.0, "p95": 11.0},
            "cni": "not installed",
            "ratio_to_floor": 1.2,
        },
        "growth": {"cnet": {"k": 30, "first": 10.0, "last": 12.0, "ratio": 1.2}},
        "run_until_port": {"n": 300, "p50": 250.0, "p95": 300.0},
        "rm_f": {"n": 300, "p50": 230.0, "p95": 260.0},
        "import_floor": {"n": 60, "p50": 160.0, "p95": 170.0},
        "startup": {"help": {"n": 20, "p50": 60.0, "p95": 70.0}, "ps": {"n": 20, "p50": 205.0, "p95": 230.0}},
        "ipam": {
            "subnet": "10.0.0.0/16",
            "addresses": 65534,
            "total_s": 2.5,
            "first_1000_ms": 40.0,
            "last_1000_ms": 44.0,
            "last_over_first": 1.1,
            "exhausted_ms": 20.0,
        },
        "memory": {
            "containers": 300,
            "processes": 600,
            "commands": ["sh", "unshare"],
            "rss_mb_per_container": 3.1,
            "pss_mb_per_container": 0.3,
        },
        "iperf": {"direct_gbps": 20.0, "mapped_gbps": 19.0, "ratio": 0.95},
    }
    r.update(over)
    return r


def test_targets_compare_with_the_import_floor_measured_in_the_same_run(bench):
    met = {t.name: t.met for t in bench.targets(_results())}
    assert met["wiring p50 / floor p50"] is True
    assert met["wiring growth (last 30 / first 30)"] is False  # 1.2 > 1.1
    assert met["run -d until port answers p50"] is True  # 250 <= 160 + 100
    assert met["rm -f p50"] is False  # 230 > 160 + 60
    assert met["ps with 300 containers p50"] is False  # 205 > 60
    assert met["--help p50"] is True  # 60 <= 60
    assert met["run -d until port answers, cnet / podman p50"] is None  # podman not measured
    # PSS (shared pages split among sharers), the watcher and the log writer together.
    assert met["memory kept per container (PSS)"] is True  # 0.3 <= 2.0
    heavy = _results(memory={"containers": 1, "processes": 2, "commands": [], "rss_mb_per_container": 1.0,
                             "pss_mb_per_container": 2.5})  # fmt: skip
    assert {t.name: t.met for t in bench.targets(heavy)}["memory kept per container (PSS)"] is False
    assert met["throughput 127.0.0.1 mapping / direct"] is True  # higher is better
    missing = {t.name: t.met for t in bench.targets(_results(iperf={}, import_floor={}))}
    assert missing["throughput 127.0.0.1 mapping / direct"] is None
    assert missing["rm -f p50"] is None


def test_table_shows_every_target_and_the_peer_ratios(bench):
    text = bench.render_table(_results())
    assert "not installed" in text
    assert "wiring p50 / floor p50" in text and "MISS" in text and "pass" in text
    assert "1.76x podman (142 ms)" in text  # 250 / 142
    assert "1.59x docker (145 ms)" in text  # rm -f 230 / 145
    assert "IPAM: 65534 addresses of 10.0.0.0/16 in 2.50 s" in text


def test_peers_ratios_targets_and_breakdown(bench):
    sys.path.insert(0, str(REPO / "scripts"))
    import bench_peers

    stderr = "1000.25\nsome line\ncnet-profile: " + json.dumps(
        {
            "start": 1000.01,
            "end": 1000.2,
            "ms": {"imports": 50.0, "sqlite": 2.0, "kernel": 10.0, "watcher": 2.0, "python": 20.0},
            "sqlite_statements": 30,
            "kernel_commands": 3,
        }
    )
    b = bench_peers.breakdown(1000.0, stderr)
    assert b["interpreter start"] == pytest.approx(10.0) and b["shutdown"] == pytest.approx(50.0)
    assert b["imports"] == 50.0 and b["sqlite statements"] == 30
    assert bench_peers.breakdown(1000.0, "1000.3\nno profile") is None
    peers = {
        "podman": "measured",
        "docker": "skipped: no dockerd binary",
        "run": {
            "cnet": {"n": 20, "p50": 90.0, "p90": 99.0},
            "podman": {"n": 20, "p50": 120.0, "p90": 130.0},
            "ratio": 0.75,
        },
        "rm": {
            "cnet": {"n": 20, "p50": 80.0, "p90": 90.0},
            "podman": {"n": 20, "p50": 85.0, "p90": 95.0},
            "ratio": 80 / 85,
        },
        "breakdown": {"run": {k: 1.0 for k in bench_peers.PHASES} | {"sqlite statements": 30, "kernel commands": 3}},
    }
    met = {t.name: t.met for t in bench.targets(_results(peers=peers))}
    assert met["run -d until port answers, cnet / podman p50"] is True
    assert met["rm -f, cnet / podman p50"] is False  # 0.94 > 0.9
    text = bench.render_table(_results(peers=peers))
    assert "cnet / podman = 0.75x" in text and "skipped: no dockerd binary" in text
    assert "30 SQL statements, 3 kernel commands" in text
    assert "podman (142 ms)" not in text  # measured figures replace the published ones


def test_refuses_to_run_outside_the_sandbox(bench, monkeypatch, capsys):
    monkeypatch.delenv("CNET_BENCH_SANDBOX", raising=False)
    assert bench.main(["--n", "5"]) == 1
    assert "refusing" in capsys.readouterr().err
