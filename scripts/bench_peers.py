"""scripts/bench, peers phase: `cnet run -d` and `cnet rm -f` against podman's, interleaved in one
run, plus where cnet's time goes (CNET_PROFILE=1). Imported by bench.py inside its sandbox.

podman runs as the project notes measured it here (/work/shared/notes/cni-and-overlay-facts.md):
its CNI backend with the reference plugins (bridge + host-local, portmap, firewall, tuning: the
conflist `podman network create` writes), crun with `--cgroups=disabled` (scripts/bench unmounts
the cgroup v2 part of this VM's hybrid hierarchy inside the sandbox and remounts sysfs for it),
`--rootfs` of a busybox rootfs (no image, no registry), vfs storage, and all of its state in the
bench's scratch directory. `podman rm -f -t 0`: podman 4.3's `rm -f` otherwise waits out the
10 s stop timeout, since busybox httpd as PID 1 ignores SIGTERM; cnet's `rm -f` and docker's
kill at once.

docker: measured only when a `dockerd` binary is present, which it is not on this machine (the
`docker` client alone would need the host's daemon and network, which the bench never touches);
the table says so.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PODMAN_SUBNET = "10.87.0.0/16"
PODMAN_BRIDGE = "bpodbr0"
CNET_PEER_PORT, PODMAN_PEER_PORT = 45000, 46000
PHASES = ("interpreter start", "imports", "sqlite", "kernel", "watcher", "python", "shutdown")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def stats(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90)}


def wait_port(port: int, t0: float, what: str) -> float:
    """perf_counter() when 127.0.0.1:port first accepts a connection."""
    while True:
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
            return time.perf_counter()
        except OSError:
            if time.perf_counter() - t0 > 30:
                raise RuntimeError(f"{what}: port {port} never answered") from None
            time.sleep(0.001)
        finally:
            s.close()


def run_until_port(argv: list[str], port: int, env: dict[str, str], what: str) -> tuple[float, float, str]:
    """(ms until the command has exited AND the port answers, wall-clock launch time, stderr)."""
    launched = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, err = proc.communicate(timeout=60)
    t_exit = time.perf_counter()
    exited = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {err.decode(errors='replace').strip()[-2000:]}")
    t_port = wait_port(port, t0, what)
    return (max(t_exit, t_port) - t0) * 1000, launched, f"{exited!r}\n" + err.decode(errors="replace")


def timed_run(argv: list[str], env: dict[str, str], what: str) -> tuple[float, float, str]:
    launched = time.time()
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, env=env)
    ms = (time.perf_counter() - t0) * 1000
    exited = time.time()
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed ({res.returncode}): {res.stderr.strip()[-2000:]}")
    return ms, launched, f"{exited!r}\n" + res.stderr


def breakdown(launched: float, stderr: str) -> dict[str, float] | None:
    """Phase timings of one CNET_PROFILE=1 run: interpreter start (launch -> the cnet package
    starts loading), cnet's own categories, shutdown (the profile's end -> exit seen)."""
    exited_line, _, rest = stderr.partition("\n")
    for line in rest.splitlines():
        if line.startswith("cnet-profile: "):
            p = json.loads(line[len("cnet-profile: ") :])
            out = {"interpreter start": (p["start"] - launched) * 1000}
            out.update({k: float(v) for k, v in p["ms"].items()})
            out["shutdown"] = (float(exited_line) - p["end"]) * 1000
            out["sqlite statements"] = p["sqlite_statements"]
            out["kernel commands"] = p["kernel_commands"]
            return out
    return None


class Podman:
    """podman with every piece of state in `root` (inside the sandbox's tmpfs mounts)."""

    def __init__(self, root: Path):
        self.root = root
        self.rootfs = root / "rootfs"
        self.netdir = root / "net.d"
        self.conf = root / "containers.conf"
        self.env = dict(os.environ, CONTAINERS_CONF=str(self.conf))

    def base(self) -> list[str]:
        # podman limits the runroot to 50 characters: under the sandbox's own /run (a tmpfs).
        return [
            "podman",
            "--root", str(self.root / "storage"),
            "--runroot", "/run/bench-podman/run",
            "--tmpdir", "/run/bench-podman/tmp",
            "--storage-driver", "vfs",
        ]  # fmt: skip

    def setup(self, www_text: str) -> None:
        for d in ("bin", "www", "proc", "sys", "dev", "etc", "tmp"):
            (self.rootfs / d).mkdir(parents=True, exist_ok=True)
        shutil.copy2(shutil.which("busybox") or "/bin/busybox", self.rootfs / "bin" / "busybox")
        (self.rootfs / "www" / "index.html").write_text(www_text)
        self.netdir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f'[network]\nnetwork_backend = "cni"\nnetwork_config_dir = "{self.netdir}"\n'
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{self.root / "events.log"}"\n'
        )
        conflist = {
            "cniVersion": "0.4.0",
            "name": "bench",
            "plugins": [
                {
                    "type": "bridge", "bridge": PODMAN_BRIDGE, "isGateway": True, "ipMasq": True, "hairpinMode": True,
                    "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                             "ranges": [[{"subnet": PODMAN_SUBNET}]], "dataDir": str(self.root / "cni-ipam")},
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "firewall"},
                {"type": "tuning"},
            ],
        }  # fmt: skip
        (self.netdir / "bench.conflist").write_text(json.dumps(conflist))

    def run_argv(self, name: str, port: int) -> list[str]:
        return self.base() + [
            "run", "-d", "--cgroups=disabled", "--name", name, "--network", "bench", "-p", f"{port}:80",
            "--rootfs", str(self.rootfs), "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www",
        ]  # fmt: skip

    def rm_argv(self, name: str) -> list[str]:
        return self.base() + ["rm", "-f", "-t", "0", name]


def podman_usable() -> str | None:
    """None when podman can run here, else why not."""
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/bench tries apt-get install podman)"
    if not Path("/usr/lib/cni/bridge").exists():
        return "containernetworking-plugins (CNI) is not installed"
    if shutil.which("crun") is None and shutil.which("runc") is None:
        return "no OCI runtime (crun or runc)"
    if os.environ.get("CNET_BENCH_PODMAN_SANDBOX") != "1":
        return "the sandbox was not prepared for podman (run through scripts/bench)"
    return None


def docker_status() -> str:
    if shutil.which("dockerd") is None:
        client = " (only the client is installed; it would need the host's daemon)" if shutil.which("docker") else ""
        return f"skipped: no dockerd binary{client}"
    return "skipped: dockerd inside the sandbox is not set up by this bench"


def measure(cnet: list[str], cnet_env: dict[str, str], scratch: Path, www: Path, rounds: int, profiled: int) -> dict:
    """`rounds` interleaved rounds of run -d (until the port answers) then of rm -f, cnet and podman
    alternating who goes first; one warm container on each network first (steady state). Then
    `profiled` more cnet runs and removals with CNET_PROFILE=1 for the breakdown (untimed
    otherwise: the profile's hooks cost a little)."""
    out: dict[str, Any] = {"docker": docker_status()}
    why = podman_usable()
    pod = None
    if why is None:
        pod = Podman(scratch / "podman")
        pod.setup((www / "index.html").read_text())
        try:
            timed_run(pod.run_argv("pwarm", PODMAN_PEER_PORT - 1), pod.env, "podman run (warm-up)")
            wait_port(PODMAN_PEER_PORT - 1, time.perf_counter(), "podman warm-up")
        except RuntimeError as exc:
            why, pod = f"podman failed here: {exc}", None
    out["podman"] = "measured" if pod else f"skipped: {why}"
    httpd = ["--", "busybox", "httpd", "-f", "-p", "80", "-h", str(www)]

    def cnet_run(name: str, port: int, env: dict[str, str]) -> tuple[float, float, str]:
        argv = cnet + ["run", "-d", "--name", name, "--net", "bench", "-p", f"{port}:80", *httpd]
        return run_until_port(argv, port, env, f"cnet run {name}")

    cnet_run("pcwarm", CNET_PEER_PORT - 1, cnet_env)
    runs: dict[str, list[float]] = {"cnet": [], "podman": []}
    rms: dict[str, list[float]] = {"cnet": [], "podman": []}
    for i in range(rounds):
        order = ["cnet", "podman"] if i % 2 == 0 else ["podman", "cnet"]
        for who in order:
            if who == "cnet":
                runs["cnet"].append(cnet_run(f"pc{i}", CNET_PEER_PORT + i, cnet_env)[0])
            elif pod:
                argv = pod.run_argv(f"pp{i}", PODMAN_PEER_PORT + i)
                runs["podman"].append(run_until_port(argv, PODMAN_PEER_PORT + i, pod.env, f"podman run pp{i}")[0])
    for i in range(rounds):
        order = ["cnet", "podman"] if i % 2 == 0 else ["podman", "cnet"]
        for who in order:
            if who == "cnet":
                rms["cnet"].append(timed_run(cnet + ["rm", "-f", f"pc{i}"], cnet_env, f"cnet rm pc{i}")[0])
            elif pod:
                rms["podman"].append(timed_run(pod.rm_argv(f"pp{i}"), pod.env, f"podman rm pp{i}")[0])
    prof_env = dict(cnet_env, CNET_PROFILE="1")
    parts: dict[str, list[dict[str, float]]] = {"run": [], "rm": []}
    for i in range(profiled):
        _, launched, err = cnet_run(f"pf{i}", CNET_PEER_PORT + rounds + i, prof_env)
        b = breakdown(launched, err)
        if b:
            parts["run"].append(b)
    for i in range(profiled):
        _, launched, err = timed_run(cnet + ["rm", "-f", f"pf{i}"], prof_env, f"cnet rm pf{i}")
        b = breakdown(launched, err)
        if b:
            parts["rm"].append(b)
    timed_run(cnet + ["rm", "-f", "pcwarm"], cnet_env, "cnet rm pcwarm")
    if pod:
        timed_run(pod.rm_argv("pwarm"), pod.env, "podman rm pwarm")
    out["run"] = {who: stats(v) for who, v in runs.items() if v}
    out["rm"] = {who: stats(v) for who, v in rms.items() if v}
    for key in ("run", "rm"):
        c, p = out[key].get("cnet", {}).get("p50"), out[key].get("podman", {}).get("p50")
        out[key]["ratio"] = c / p if c and p else None
    out["breakdown"] = {
        key: {
            name: percentile([b[name] for b in rows], 50)
            for name in (*PHASES, "sqlite statements", "kernel commands")
            if rows and name in rows[0]
        }
        for key, rows in parts.items()
    }
    out["samples"] = {"run": runs, "rm": rms}
    return out


def render(r: dict) -> list[str]:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines = [f"peers (interleaved, steady state): podman {r['podman']}; docker {r['docker']}"]
    for key, label in (("run", "run -d until the port answers"), ("rm", "rm -f")):
        for who in ("cnet", "podman"):
            s = r.get(key, {}).get(who)
            if s:
                lines.append(f"  {label:32} {who:7} p50 {f(s['p50']):>7} ms  p90 {f(s['p90']):>7} ms  n {s['n']}")
        if r.get(key, {}).get("ratio") is not None:
            lines.append(f"  {label:32} cnet / podman = {r[key]['ratio']:.2f}x")
    for key in ("run", "rm"):
        b = r.get("breakdown", {}).get(key)
        if b:
            body = ", ".join(f"{k} {f(v)}" for k, v in b.items() if k in PHASES)
            lines.append(
                f"  where cnet {key} goes (medians, ms, CNET_PROFILE=1): {body}; "
                f"{b.get('sqlite statements', 0):.0f} SQL statements, {b.get('kernel commands', 0):.0f} kernel commands"
            )
    return lines


if __name__ == "__main__":
    print("run through scripts/bench", file=sys.stderr)
    sys.exit(1)
