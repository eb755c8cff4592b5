"""A Kubernetes node's path (issue 17): containerd 1.6's CRI plugin runs cnet as the pod network.

The test plays the kubelet: a gRPC client of `runtime.v1.RuntimeService` (cri_min.proto) asks
containerd for pod sandboxes; containerd calls CNI ADD and DEL for each, with cnet's plugin from
`cnet cni install` and the conflist from `cnet cni conflist`, as on a node. containerd runs inside
the test's sandbox (see cri_support for what is mounted there and why) with a clean environment
plus decoys (PYTHONPATH, PYTHONHOME, a working directory holding a broken `cnet` package) that
its plugins inherit. The plugin in bin_dir is `cnet cni install`'s, except where a test asks for
a log of the calls (`logged`): there a wrapper records each call (command, netns, whether a
prevResult came) and then execs the installed plugin with the same environment, cwd and stdin.
"""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from .cni_support import attachments
from .conftest import add_client, del_client, in_netns, probe, run_server, settled
from .cri_support import (
    CLEAN_PATH,
    Containerd,
    Cri,
    cgroup_dirs,
    cni_bin_dir,
    missing,
    remove_cgroups,
    sandbox_mounts,
    write_conflist,
)

WHY_NOT = missing() if os.geteuid() == 0 else "needs root"
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")]

SUBNET = "10.78.0.0/24"
MARKER = "set-only-on-containerd"

WRAPPER = """#!/bin/sh
# Logs the call, then runs cnet's plugin in its place (same environment, cwd and stdin).
in="{log}.$$"
cat > "$in"
prev=no
grep -q '"prevResult"' "$in" && prev=yes
echo "$CNI_COMMAND|$CNI_NETNS|$prev|$CNI_ARGS|$(pwd)|$CNET_CRI_MARKER" >> "{log}"
exec 0<"$in"
rm -f "$in"
exec "{real}"
"""

# A fake iptables-restore: the first call after the test creates {hang} claims it and blocks until
# the test has SIGKILLed the plugin (then fails, having changed nothing); all others are the real one.
HANG = """#!/bin/sh
if mv "{hang}" "{hang}.taken" 2>/dev/null; then
  echo $PPID > "{hang}.tmp" && mv "{hang}.tmp" "{hang}.ppid"
  while [ -e "{hang}.taken" ]; do sleep 0.05; done
  exit 1
fi
exec {real} "$@"
"""


@dataclass
class Node:
    sb: object
    containerd: Containerd
    cri: Cri
    log: Path
    hang: Path

    def calls(self, pod_name: str) -> list[tuple[str, str, str]]:
        """(command, CNI_NETNS, prevResult yes/no) of each plugin call for one pod, in order."""
        out = []
        for line in self.log.read_text().splitlines() if self.log.exists() else []:
            command, netns, prev, args, _cwd, _marker = line.split("|")
            if f"K8S_POD_NAME={pod_name};" in args + ";":
                out.append((command, netns, prev))
        return out


@pytest.fixture
def cgroup_guard():
    """Set up before the sandbox, so torn down after it is gone (its processes with it): then the
    empty cgroups runc left in the host's hierarchies can be removed, whatever the test did. Empty
    ones an earlier, killed run left (pytest's own timeout, a SIGKILL) go first; rmdir never takes
    a cgroup that still holds a process."""
    remove_cgroups(set(), timeout=0)
    before = cgroup_dirs()
    yield
    left = remove_cgroups(before)
    assert not left, f"cgroups left behind: {left}"


LOGGED = pytest.mark.parametrize("node", [True], ids=["logged"], indirect=True)


@pytest.fixture
def node(request, cgroup_guard, sandbox, tmp_path, tools):
    sb = sandbox
    logged = getattr(request, "param", False)
    sandbox_mounts(sb)
    sb.baseline = sb.snapshot()  # after the mounts: they are not what the test compares
    sb.cnet("net", "create", "podnet", "--subnet", SUBNET)
    bin_dir, real_dir, conf_dir = tmp_path / "cni-bin", tmp_path / "cni-real", tmp_path / "net.d"
    conf_dir.mkdir()
    cni_bin_dir(sb, bin_dir)
    log = tmp_path / "calls.log"
    if logged:
        (bin_dir / "cnet").rename(real_dir.mkdir() or real_dir / "cnet")
        (bin_dir / "cnet").write_text(WRAPPER.format(log=log, real=real_dir / "cnet"))
        (bin_dir / "cnet").chmod(0o755)
    write_conflist(sb, "podnet", conf_dir)
    # What a careless init system might hand containerd, and so every plugin.
    decoys = tmp_path / "cwd"
    (decoys / "cnet").mkdir(parents=True)
    (decoys / "cnet" / "__init__.py").write_text("raise ImportError('cnet imported from the working directory')\n")
    (decoys / "json.py").write_text("raise ImportError('json imported from the working directory')\n")
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    hang = tmp_path / "hang"
    (fakes / "iptables-restore").write_text(HANG.format(hang=hang, real="/usr/sbin/iptables-restore"))
    (fakes / "iptables-restore").chmod(0o755)
    env = {
        "PATH": f"{fakes}:{CLEAN_PATH}",
        "CNET_CRI_MARKER": MARKER,
        "PYTHONPATH": str(decoys),
        "PYTHONHOME": str(decoys),
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
    }
    containerd = Containerd(sb, tmp_path / "containerd", bin_dir, conf_dir, env=env, cwd=decoys)
    try:
        yield Node(sb, containerd, containerd.cri, log, hang)
    finally:
        containerd.stop()


def pod_netns_name(cri: Cri, pod: str) -> str:
    return Path(cri.netns(pod)).name  # /var/run/netns/cni-<uuid>: the same /run/netns as `ip netns`


def serve_in(sb, tools, netns: str, port: int):
    proc = sb.popen(in_netns(netns, ["python3", str(tools.server), str(port)]))
    assert sb.wait_for(lambda: probe(sb, tools, [f"tcp:127.0.0.1:{port}"], netns=netns, timeout=0.5)[0], timeout=15)
    return proc


def kill_launched(proc) -> None:
    """Kill a process started through the sandbox's nsenter: its only child (ours, by pid)."""
    try:
        kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except OSError:
        kids = []
    for kid in kids:
        os.kill(int(kid), signal.SIGKILL)
    proc.wait(timeout=10)


@LOGGED
def test_two_pods_on_a_cnet_network(node, tools):
    sb, cri = node.sb, node.cri
    assert cri.version().runtime_name == "containerd"
    empty_pods = cri.pods()
    base = settled(sb)
    c1 = run_server(sb, tools, "c1", "--net", "podnet", port=90)
    c1_ip = c1["networks"][0]["ip"]
    dns = {"servers": ["10.96.0.10"], "searches": ["team.svc.cluster.local"], "options": ["ndots:5"]}
    a = cri.run(cri.config("pod-a", "team", ports=[(18080, 80, "")], dns=dns))
    b = cri.run(cri.config("pod-b", "team"))
    ip_a, ip_b = cri.ip(a), cri.ip(b)
    assert ip_a != ip_b and {ip_a, ip_b} <= {f"10.78.0.{i}" for i in range(2, 255)}
    ns_a, ns_b = pod_netns_name(cri, a), pod_netns_name(cri, b)

    # cnet's view: pods by namespace/name (attachment name and the kubelet's own label keys).
    rows = {r["name"]: r for r in json.loads(sb.cnet("ps", "--json").stdout)}
    assert rows["k8s_team_pod-a_eth0"]["ips"] == [ip_a] and rows["k8s_team_pod-b_eth0"]["ips"] == [ip_b]
    assert "0.0.0.0:18080->80/tcp" in rows["k8s_team_pod-a_eth0"]["ports"]
    found = sb.cnet("ps", "--filter", "label=io.kubernetes.pod.namespace=team", "--format", "{{.Names}}").stdout
    assert sorted(found.split()) == ["k8s_team_pod-a_eth0", "k8s_team_pod-b_eth0"]
    sql = (
        "SELECT l.value AS pod, e.ip FROM containers c JOIN container_labels l ON l.container_id = c.id "
        "AND l.key = 'io.kubernetes.pod.name' JOIN endpoints e ON e.container_id = c.id ORDER BY pod"
    )
    assert json.loads(sb.cnet("sql", sql, "--json").stdout) == [
        {"pod": "pod-a", "ip": ip_a},
        {"pod": "pod-b", "ip": ip_b},
    ]
    # runtimeConfig.dns comes back in the result containerd caches (its verbose status shows it).
    info = json.loads(cri.status(a).info["info"])
    assert info["cniResult"]["DNS"][1] == {
        "nameservers": ["10.96.0.10"],
        "search": ["team.svc.cluster.local"],
        "options": ["ndots:5"],
    }

    # Pods reach each other and the `cnet run` container, and it reaches them; the mapped port
    # answers on the node's loopback and from another host.
    server = serve_in(sb, tools, ns_a, 80)
    try:
        replies = probe(sb, tools, [f"tcp:{ip_a}:80", f"tcp:{c1_ip}:90"], netns=ns_b)
        assert [r.split()[1] for r in replies] == [ip_b, ip_b], replies
        assert probe(sb, tools, [f"tcp:{ip_a}:80"], netns=c1["netns"])[0].split()[1] == c1_ip
        assert probe(sb, tools, ["tcp:127.0.0.1:18080"])[0] is not None
        ext = add_client(sb)
        assert probe(sb, tools, [f"tcp:{ext.host_ip}:18080"], netns=ext.netns)[0].split()[1] == ext.ip
        del_client(sb, ext)
    finally:
        kill_launched(server)

    # The plugin ran with containerd's environment and working directory (and only exec'd cnet).
    line = node.log.read_text().splitlines()[0].split("|")
    assert line[4:] == [str(node.containerd.root.parent / "cwd"), MARKER]

    # Stop, Stop, Remove: at least three DELs, two with no netns and no prevResult; each succeeds,
    # the attachment is released once.
    for pod in (a, b):
        cri.stop(pod)
        cri.stop(pod)
        cri.remove(pod)
    for name in ("pod-a", "pod-b"):
        dels = [c for c in node.calls(name) if c[0] == "DEL"]
        assert len(dels) >= 3 and dels[0][1].startswith("/var/run/netns/cni-"), dels
        assert len([c for c in dels if c[1:] == ("", "no")]) >= 2, dels
    ops = json.loads(sb.cnet("sql", "SELECT kind, status FROM operations WHERE kind LIKE 'cni-%'", "--json").stdout)
    assert sorted((o["kind"], o["status"]) for o in ops) == [("cni-add", "done")] * 2 + [("cni-del", "done")] * 2
    assert cri.pods() == empty_pods
    assert attachments(sb) == []
    sb.cnet("rm", "-f", "c1")
    assert settled(sb) == base
    sb.cnet("net", "rm", "podnet")


@LOGGED
def test_failed_add_leaves_nothing(node):
    sb, cri = node.sb, node.cri
    a = cri.run(cri.config("pod-a", ports=[(18080, 80, "")]))
    pods, base = cri.pods(), settled(sb)
    import grpc

    with pytest.raises(grpc.RpcError) as err:
        cri.run(cri.config("pod-b", ports=[(18080, 81, "")]))  # cnet refuses: the host port is pod-a's
    assert "18080" in err.value.details() and "cnet" in err.value.details()
    # containerd ran DEL itself; nothing of pod-b is left, in cnet, the kernel or containerd.
    assert [c[0] for c in node.calls("pod-b")][:2] == ["ADD", "DEL"]
    assert cri.pods() == pods
    assert settled(sb) == base
    cri.stop(a)
    cri.remove(a)
    sb.cnet("net", "rm", "podnet")


def host_pid(sb, ns_pid: int) -> int:
    """The pid this host sees for `ns_pid` in the sandbox's pid namespace."""
    want = os.readlink(f"/proc/{sb.pid}/ns/pid")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            nspid = next(ln for ln in (entry / "status").read_text().splitlines() if ln.startswith("NSpid:"))
            if int(nspid.split()[-1]) == ns_pid and os.readlink(entry / "ns" / "pid") == want:
                return int(entry.name)
        except (OSError, StopIteration, ValueError):
            continue
    raise AssertionError(f"no process {ns_pid} in the sandbox")


def test_sigkilled_plugin_is_repaired_and_a_retry_succeeds(node):
    sb, cri = node.sb, node.cri
    pods, base = cri.pods(), settled(sb)
    import grpc

    config = cri.config("pod-k", ports=[(18081, 80, "")])
    node.hang.write_text("")
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(cri.run, config)
        ppid = Path(f"{node.hang}.ppid")
        assert sb.wait_for(ppid.exists, timeout=60), "the plugin never reached its port step"
        os.kill(host_pid(sb, int(ppid.read_text())), signal.SIGKILL)  # the plugin, mid-ADD
        Path(f"{node.hang}.taken").unlink()
        with pytest.raises(grpc.RpcError):
            run.result(timeout=120)
    # containerd's own DEL after the failed ADD repaired what the killed plugin left.
    assert cri.pods() == pods
    assert settled(sb) == base
    ops = json.loads(
        sb.cnet("sql", "SELECT kind, status, recovered FROM operations WHERE kind LIKE 'cni-%'", "--json").stdout
    )
    assert [(o["kind"], o["status"], o["recovered"]) for o in ops] == [("cni-add", "rolled_back", 1)]
    pod = cri.run(config)
    assert cri.ip(pod) in json.loads(sb.cnet("ps", "--json").stdout)[0]["ips"]
    cri.stop(pod)
    cri.remove(pod)
    assert settled(sb) == base
    sb.cnet("net", "rm", "podnet")


def test_ten_pods_in_parallel_get_distinct_addresses(node):
    sb, cri = node.sb, node.cri
    base = settled(sb)
    with ThreadPoolExecutor(10) as pool:
        pods = list(pool.map(lambda i: cri.run(cri.config(f"p{i}")), range(10)))
    ips = [cri.ip(p) for p in pods]
    assert len(set(ips)) == 10 and all(ip.startswith("10.78.0.") for ip in ips)
    rows = json.loads(sb.cnet("sql", "SELECT ip FROM v_cni_attachments", "--json").stdout)
    assert sorted(r["ip"] for r in rows) == sorted(ips)
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda p: (cri.stop(p), cri.stop(p), cri.remove(p)), pods))
    assert cri.pods() == [] and attachments(sb) == []
    assert settled(sb) == base
    sb.cnet("net", "rm", "podnet")
