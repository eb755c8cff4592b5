"""Overlay networks (issue 9) for scripts/bench: three "hosts" (network + mount namespaces on an
underlay bridge inside the bench's sandbox) sharing one etcd.

Figures:
- join: `net create --driver vxlan` on the first host (define + join), and the first `run` on a
  second host (which joins) against its second `run` (which does not);
- iperf3 container -> container across hosts (through VXLAN) against host -> host over the
  underlay, in the same run (three interleaved rounds, medians), with two paths in between that
  tell where the difference goes: host -> host through VXLAN (the encapsulation alone) and
  container -> container on one host (the container path alone); the load average with them;
- convergence: with agents on the first two hosts, the time from the moment a third host's share
  appears in etcd until both of them route to it.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

UNDERLAY = "192.0.2"
ETCD = f"{UNDERLAY}.254"
ETCD_URL = f"http://{ETCD}:2379"
IPERF_PORT = 5301


def sh(*argv: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, input=stdin)


class Host:
    def __init__(self, i: int, tmp: Path, cnet: list[str], env: dict) -> None:
        self.i, self.ip = i, f"{UNDERLAY}.{i}"
        self.proc = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "sleep", "infinity"])
        deadline = time.monotonic() + 5
        while Path(f"/proc/{self.proc.pid}/ns/net").resolve() == Path("/proc/self/ns/net").resolve():
            if time.monotonic() > deadline:
                raise RuntimeError("host did not start")
            time.sleep(0.01)
        self.pid = self.proc.pid
        state = tmp / f"h{i}"
        state.mkdir(parents=True, exist_ok=True)
        self.env = {**env, "CNET_STATE_DIR": str(state), "CNET_ETCD": ETCD_URL}
        self.cnet_argv = cnet
        sh("ip", "link", "add", f"ul{i}", "type", "veth", "peer", "name", "eth0", "netns", f"/proc/{self.pid}/ns/net")
        sh("ip", "link", "set", f"ul{i}", "master", "ul0", "up")
        self.sh(
            "mkdir -p /run/netns && mount -t tmpfs -o mode=0755 h-netns /run/netns && ip link set lo up && "
            f"ip addr add {self.ip}/24 dev eth0 && ip link set eth0 up"
        )

    def enter(self) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n", "-m"]

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(self.enter() + argv, capture_output=True, text=True, env=self.env)
        if check and r.returncode:
            raise RuntimeError(f"{argv}: {r.stderr.strip()}")
        return r

    def sh(self, script: str) -> None:
        self.run(["sh", "-c", script])

    def cnet(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run([*self.cnet_argv, *args], check=check)

    def timed(self, *args: str) -> float:
        t0 = time.perf_counter()
        self.cnet(*args)
        return (time.perf_counter() - t0) * 1000

    def popen(self, argv: list[str]) -> subprocess.Popen:
        return subprocess.Popen(self.enter() + argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def neighbours(self) -> set[str]:
        out = self.run(["ip", "-j", "neigh", "show", "nud", "permanent"]).stdout
        return {n["dst"] for n in json.loads(out or "[]")}

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def etcd_keys(prefix: str) -> list[str]:
    body = json.dumps({"key": base64.b64encode(prefix.encode()).decode(), "range_end": _end(prefix), "keys_only": True})
    req = urllib.request.Request(f"{ETCD_URL}/v3/kv/range", data=body.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=2) as resp:
        kvs = json.loads(resp.read()).get("kvs", [])
    return [base64.b64decode(kv["key"]).decode() for kv in kvs]


def _end(prefix: str) -> str:
    raw = prefix.encode()
    return base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()


def iperf_gbps(client: Host, argv_prefix: list[str], server_ip: str, seconds: int) -> float | None:
    r = client.run([*argv_prefix, "iperf3", "-c", server_ip, "-p", str(IPERF_PORT), "-t", str(seconds), "-J"], False)
    try:
        return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
    except (ValueError, KeyError):
        return None


def measure(cnet: list[str], env: dict, tmp: Path, iperf_time: int = 3) -> dict:
    if not shutil.which("etcd"):
        return {"error": "etcd not installed (Debian: etcd-server)"}
    out: dict = {}
    sh("ip", "link", "add", "ul0", "type", "bridge")
    sh("ip", "link", "set", "ul0", "up")
    sh("ip", "addr", "add", f"{ETCD}/24", "dev", "ul0")
    data = tmp / "overlay-etcd"
    etcd = subprocess.Popen(
        ["etcd", "--name", "b", "--data-dir", str(data), "--listen-client-urls", ETCD_URL,
         "--advertise-client-urls", ETCD_URL, "--listen-peer-urls", f"http://{ETCD}:2380",
         "--initial-advertise-peer-urls", f"http://{ETCD}:2380", "--initial-cluster", f"b=http://{ETCD}:2380"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    hosts: list[Host] = []
    procs: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                etcd_keys("/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    return {"error": "etcd did not start"}
                time.sleep(0.1)
        hosts = [Host(i, tmp, cnet, env) for i in (1, 2, 3)]
        h1, h2, h3 = hosts
        out["create_join_ms"] = h1.timed("net", "create", "ov", "--driver", "vxlan", "--subnet", "10.200.0.0/16")
        out["first_run_join_ms"] = h2.timed("run", "-d", "--name", "s2", "--net", "ov", "--", "iperf3", "-s", "-p",
                                            str(IPERF_PORT))  # fmt: skip
        out["second_run_ms"] = h2.timed("run", "-d", "--name", "x2", "--net", "ov", "--", "sleep", "600")
        h1.cnet("run", "-d", "--name", "c1", "--net", "ov", "--", "sleep", "600")
        # The same container path without VXLAN (a second container on h1): where the cost is.
        h1.cnet("run", "-d", "--name", "s1", "--net", "ov", "--", "iperf3", "-s", "-p", str(IPERF_PORT))
        s1_ip = json.loads(h1.cnet("inspect", "s1").stdout)["networks"][0]["ip"]
        h1.cnet("net", "ls")  # h1 learns h2
        info = json.loads(h2.cnet("inspect", "s2").stdout)
        s2_ip = info["networks"][0]["ip"]
        c1 = json.loads(h1.cnet("inspect", "c1").stdout)
        in_c1 = ["nsenter", f"--net=/run/netns/{c1['netns']}"]
        procs.append(h2.popen(["iperf3", "-s", "-p", str(IPERF_PORT)]))  # the underlay's server, on h2 itself
        # h2's vxlan device address (the network address of its host subnet): host -> host through
        # VXLAN, no bridge, veth or container on either side: what the encapsulation alone costs.
        h2_vtep = json.loads(h2.cnet("net", "inspect", "ov").stdout)["subnet"].split("/")[0]
        time.sleep(0.5)
        paths = {
            "overlay": (s2_ip, in_c1),
            "underlay": (h2.ip, []),
            "vxlan_hosts": (h2_vtep, []),
            "local": (s1_ip, in_c1),
        }
        got: dict[str, list[float]] = {k: [] for k in paths}
        loads = []
        for _ in range(3):  # interleaved: the same conditions for all
            for key, (target, prefix) in paths.items():
                v = iperf_gbps(h1, prefix, target, iperf_time)
                if v is not None:
                    got[key].append(v)
            loads.append(float(Path("/proc/loadavg").read_text().split()[0]))
        med = {k: (sorted(v)[len(v) // 2] if v else None) for k, v in got.items()}
        o, u = med["overlay"], med["underlay"]
        out["iperf"] = {
            "overlay_gbps": o,
            "underlay_gbps": u,
            "ratio": (o / u) if o and u else None,
            "host_to_host_through_vxlan_gbps": med["vxlan_hosts"],
            "same_host_containers_gbps": med["local"],
            "load_average": [min(loads), max(loads)],
        }
        # Convergence: agents on h1 and h2; h3 joins.
        procs += [h.popen([*cnet, "agent"]) for h in (h1, h2)]
        time.sleep(1.0)
        claimed: dict[str, float] = {}

        def watch_claim() -> None:
            before = set(etcd_keys("/cnet/subnets/"))
            end = time.monotonic() + 30
            while time.monotonic() < end:
                now = set(etcd_keys("/cnet/subnets/"))
                if now - before:
                    claimed["t"] = time.perf_counter()
                    claimed["key"] = next(iter(now - before))
                    return
                time.sleep(0.005)

        t = threading.Thread(target=watch_claim)
        t.start()
        h3.cnet("run", "-d", "--name", "c3", "--net", "ov", "--", "sleep", "600")
        t.join()
        if "key" in claimed:
            vtep = claimed["key"].rsplit("/", 1)[1].split("-")[0]
            end = time.monotonic() + 10
            while time.monotonic() < end and not all(vtep in h.neighbours() for h in (h1, h2)):
                time.sleep(0.005)
            known = time.perf_counter()
            out["peers_know_new_host_ms"] = (known - claimed["t"]) * 1000 if time.monotonic() < end else None
        for h, names in ((h1, ["c1", "s1"]), (h2, ["s2", "x2"]), (h3, ["c3"])):
            h.cnet("rm", "-f", *names, check=False)
        for p in procs:
            p.terminate()
        h1.cnet("net", "rm", "ov", check=False)
        for h in (h2, h3):
            h.cnet("net", "rm", "ov", check=False)
        return out
    finally:
        for p in procs:
            p.kill()
        for h in hosts:
            h.close()
        etcd.kill()
        etcd.wait()
        sh("ip", "link", "del", "ul0", check=False)


if __name__ == "__main__":  # standalone, inside a sandbox: python3 scripts/bench_overlay.py CNET...
    import os
    import sys
    import tempfile

    print(json.dumps(measure(sys.argv[1:] or ["cnet"], dict(os.environ), Path(tempfile.mkdtemp())), indent=2))
