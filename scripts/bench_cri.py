"""scripts/bench, cri phase: RunPodSandbox through containerd 1.6's CRI plugin with cnet as the pod
network, against the same call with the reference bridge + host-local + portmap chain, interleaved
in one run (issue 17). Imported by bench.py inside its sandbox.

Two containerd instances run side by side, each as tests/integration/test_cri.py starts one
(cri_support: `env -i`, own root/state, the pause stand-in image imported with `ctr`), one with
`cnet cni install` + `cnet cni conflist` in its CNI dirs, one with the reference plugins. Each pod
publishes one host port (portMappings), and both chains leave masquerading to the network (cnet's
is per network, made by `net create`). RunPodSandbox is timed as the kubelet sees it: netns,
the loopback ADD, the network's ADD, the sandbox container start. Stop + Remove (three DELs) is
timed too. The measurement runs in a child process in its own mount namespace (unshare --mount),
which gets what containerd and runc need (tmpfs over /run, /var/lib and /opt, a sysfs and a pure
cgroup v1 view) without hiding anything from the bench's other phases; the empty cgroups runc
leaves in the host's v1 hierarchies are removed afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CNET_SUBNET, REF_SUBNET, REF_BRIDGE = "10.85.0.0/16", "10.84.0.0/16", "bcrirf0"
CNET_PORT, REF_PORT = 47000, 48000


def measure(cnet: list[str], env: dict[str, str], scratch: Path, n: int) -> dict:
    """Runs the phase in a child with its own mount namespace; returns its figures (or why not)."""
    sys.path.insert(0, str(REPO))
    from tests.integration import cri_support

    why = cri_support.missing()
    if why is not None:
        return {"skipped": why}
    work = Path(tempfile.mkdtemp(prefix="cri-", dir=scratch))
    argv = ["unshare", "--mount", "--propagation", "private", sys.executable, __file__, "--inner", str(work), str(n)]
    before = cri_support.cgroup_dirs()
    try:
        res = subprocess.run(
            argv, input=json.dumps(cnet), capture_output=True, text=True, env=env, timeout=max(600, 30 * n)
        )
    finally:
        cri_support.remove_cgroups(before, timeout=2)  # after a failure too (the child does it otherwise)
    if res.returncode != 0:
        raise RuntimeError(f"the CRI phase failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout)


class Local:
    """The sandbox interface cri_support expects, for a process already inside the bench's sandbox."""

    launches_via_nsenter = False

    def __init__(self, cnet: list[str], env: dict[str, str]):
        self.cnet_argv, self.env = cnet, env

    def run(self, argv: list[str], *, check: bool = False, timeout: float = 120, **_kw) -> subprocess.CompletedProcess:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env)
        if check and res.returncode != 0:
            raise RuntimeError(f"{argv} failed ({res.returncode}): {res.stderr.strip()[-1000:]}")
        return res

    def sh(self, script: str) -> subprocess.CompletedProcess:
        return self.run(["sh", "-c", script], check=True)

    def popen(self, argv: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(argv, env=self.env, **kw)

    def cnet(self, *args: str) -> subprocess.CompletedProcess:
        return self.run([*self.cnet_argv, *args], check=True)


def p50(values: list[float]) -> float | None:
    xs = sorted(values)
    return xs[len(xs) // 2] if xs else None


def inner(work: Path, n: int, cnet: list[str]) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from tests.integration import cri_support as cs

    local = Local(cnet, dict(os.environ))
    before = cs.cgroup_dirs()
    cs.sandbox_mounts(local)
    local.cnet("net", "create", "benchcri", "--subnet", CNET_SUBNET)
    dirs = {who: (work / who / "bin", work / who / "net.d") for who in ("cnet", "reference")}
    for _bin, conf_dir in dirs.values():
        conf_dir.mkdir(parents=True)
    cs.cni_bin_dir(local, dirs["cnet"][0])
    cs.write_conflist(local, "benchcri", dirs["cnet"][1])
    bin_dir, conf_dir = dirs["reference"]
    bin_dir.mkdir()
    for plugin in ("bridge", "host-local", "portmap", "loopback"):
        (bin_dir / plugin).symlink_to(cs.REFERENCE_CNI / plugin)
    ref = cs.reference_conflist("benchref", REF_BRIDGE, REF_SUBNET, str(work / "ref-ipam"), ip_masq=False)
    (conf_dir / "10-benchref.conflist").write_text(json.dumps(ref))
    nodes: dict[str, cs.Containerd] = {}
    pods: dict[str, list[str]] = {"cnet": [], "reference": []}
    run_ms: dict[str, list[float]] = {"cnet": [], "reference": []}
    down_ms: dict[str, list[float]] = {"cnet": [], "reference": []}
    try:
        for who, (bin_dir, conf_dir) in dirs.items():
            nodes[who] = cs.Containerd(local, work / who / "containerd", bin_dir, conf_dir)
        port = {"cnet": CNET_PORT, "reference": REF_PORT}
        for who, node in nodes.items():  # one warm pod each (steady state), kept to the end
            pods[who].append(node.cri.run(node.cri.config("warm", ports=[(port[who] - 1, 80, "")])))
        started: dict[str, list[str]] = {"cnet": [], "reference": []}
        for i in range(n):
            for who in ("cnet", "reference") if i % 2 == 0 else ("reference", "cnet"):
                cri = nodes[who].cri
                config = cri.config(f"p{i}", ports=[(port[who] + i, 80, "")])
                t0 = time.perf_counter()
                started[who].append(cri.run(config))
                run_ms[who].append((time.perf_counter() - t0) * 1000)
        for i in range(n):
            for who in ("cnet", "reference") if i % 2 == 0 else ("reference", "cnet"):
                cri, pod = nodes[who].cri, started[who][i]
                t0 = time.perf_counter()
                cri.stop(pod)
                cri.remove(pod)
                down_ms[who].append((time.perf_counter() - t0) * 1000)
        version = nodes["cnet"].cri.version()
    finally:
        for node in nodes.values():
            node.stop()  # stops and removes what is left (the warm pods), then containerd
        local.run([*cnet, "net", "rm", "benchcri"])
        local.run(["ip", "link", "del", REF_BRIDGE])
        left = cs.remove_cgroups(before)
    return {
        "n": n,
        "containerd": f"{version.runtime_name} {version.runtime_version} (CRI {version.runtime_api_version})",
        "run": {who: {"p50": p50(v), "n": len(v)} for who, v in run_ms.items()},
        "stop_remove": {who: {"p50": p50(v), "n": len(v)} for who, v in down_ms.items()},
        "run_ratio": (p50(run_ms["cnet"]) or 0) / (p50(run_ms["reference"]) or 1),
        "stop_remove_ratio": (p50(down_ms["cnet"]) or 0) / (p50(down_ms["reference"]) or 1),
        "cgroups_left": [str(p) for p in left],
        "samples": {"run": run_ms, "stop_remove": down_ms},
    }


def render(r: dict) -> list[str]:
    if "skipped" in r:
        return [f"CRI RunPodSandbox: skipped ({r['skipped']})"]

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines = [f"CRI pod sandboxes through {r['containerd']}, {r['n']} pods each, interleaved (ms):"]
    for label, key in (("RunPodSandbox", "run"), ("StopPodSandbox + RemovePodSandbox", "stop_remove")):
        c, ref = r[key]["cnet"]["p50"], r[key]["reference"]["p50"]
        lines.append(
            f"  {label:34} cnet p50 {f(c):>8}   bridge+host-local+portmap p50 {f(ref):>8}   "
            f"ratio {r[key + '_ratio']:.2f}x"
        )
    if r.get("cgroups_left"):
        lines.append(f"  cgroups left behind: {r['cgroups_left']}")
    return lines


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--inner":
        print(json.dumps(inner(Path(sys.argv[2]), int(sys.argv[3]), json.loads(sys.stdin.read()))))
    else:
        sys.exit("bench_cri.py is run by scripts/bench (--only cri)")
