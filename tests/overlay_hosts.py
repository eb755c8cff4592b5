"""Several "hosts" inside one throwaway sandbox, for overlay networks: the sandbox's own network
namespace is the underlay switch (bridge ul0, 192.0.2.254/24, where etcd listens), and each host is
a network + mount namespace of its own (own links, iptables, /run/netns tmpfs, state dir) joined
to ul0 by a veth: its eth0 is 192.0.2.N/24. Everything lives in the sandbox's PID namespace, so
killing the sandbox kills every host, agent, container and etcd with it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from tests.sandbox import Sandbox

UNDERLAY = "192.0.2"
ETCD_IP = f"{UNDERLAY}.254"


class Host(Sandbox):
    """A host inside `world`: Sandbox's observing and running helpers, its own namespaces."""

    def __init__(self, world: Sandbox, index: int, state_dir: Path):
        self.world = world
        self.index = index
        self.ip = f"{UNDERLAY}.{index}"
        self.extra_env: dict[str, str] = {}  # e.g. CNET_ETCD for every command on this host
        super().__init__(state_dir)

    def env(self, extra: dict | None = None) -> dict:
        return super().env({**self.extra_env, **(extra or {})})

    def _start(self) -> None:
        self.proc = self.world.popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "sleep", "infinity"],
            start_new_session=True,
        )
        # The sleeper's pid as the world's PID namespace numbers it is not ours: find it by its
        # network namespace instead (the newest `sleep infinity` that is not in the world's).
        self.pid = self._find_host_pid()
        i = self.index
        self.world.sh(
            # A "rebooted" host's old namespace may still be being torn down (the kernel does it
            # asynchronously), its end of the old veth with it: delete it first.
            f"ip link del ul{i} 2>/dev/null; "
            # eth0's MAC is the host's own, as a real NIC's: a "rebooted" host must not leave its
            # peers with a stale ARP entry for its underlay address.
            f"ip link add ul{i} type veth peer name eth0 address 02:00:c0:00:02:{i:02x} "
            f"netns /proc/{self._world_pid}/ns/net && "
            f"ip link set ul{i} master ul0 up"
        )
        self.sh(
            "mkdir -p /run/netns && mount -t tmpfs -o mode=0755 cnet-host-netns /run/netns && "
            f"ip link set lo up && ip addr add {self.ip}/24 dev eth0 && ip link set eth0 up"
        )

    def _find_host_pid(self) -> int:
        deadline = time.monotonic() + 5
        world_net = Path(f"/proc/{self.world.pid}/ns/net").resolve()
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
            ).stdout.split()  # nsenter's child: unshare, which execs sleep
            for pid in out:
                try:
                    if Path(f"/proc/{pid}/ns/net").resolve() != world_net and Path(
                        f"/proc/{pid}/cmdline"
                    ).read_bytes().startswith(b"sleep"):
                        self._world_pid = self._ns_pid(int(pid))
                        return int(pid)
                except OSError:
                    continue
            time.sleep(0.01)
        raise RuntimeError("host did not start")

    @staticmethod
    def _ns_pid(pid: int) -> int:
        """The pid as the world's PID namespace sees it (NSpid's last field)."""
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
        return pid

    def enter(self) -> list[str]:
        # Network and mount namespaces of the host; the PID namespace is the world's.
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "-p"]

    def _kill(self) -> None:
        import os
        import signal

        for pid in (self.pid, self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)

    def close(self) -> None:
        self._kill()


class Etcd:
    """etcd members inside the world (Debian's etcd-server), data on a temp dir."""

    def __init__(self, world: Sandbox, data: Path, ips: list[str]):
        self.world = world
        self.ips = ips
        self.data = data
        self.procs: dict[str, subprocess.Popen] = {}
        for ip in ips:
            self.start(ip)
        self.url = ",".join(f"http://{ip}:2379" for ip in ips)
        ok = world.wait_for(lambda: self.healthy(), timeout=20, interval=0.2)
        assert ok, "etcd did not become healthy"

    def start(self, ip: str) -> None:
        """Start (or start again, on its data) the member at ip."""
        n = self.ips.index(ip)
        cluster = ",".join(f"m{i}=http://{a}:2380" for i, a in enumerate(self.ips))
        d = self.data / f"m{n}"
        d.mkdir(parents=True, exist_ok=True)
        with open(self.data / f"m{n}.log", "a") as log:
            self.procs[ip] = self.world.popen(
                [
                    shutil.which("etcd") or "etcd",
                    "--name",
                    f"m{n}",
                    "--data-dir",
                    str(d),
                    "--listen-client-urls",
                    f"http://{ip}:2379",
                    "--advertise-client-urls",
                    f"http://{ip}:2379",
                    "--listen-peer-urls",
                    f"http://{ip}:2380",
                    "--initial-advertise-peer-urls",
                    f"http://{ip}:2380",
                    "--initial-cluster",
                    cluster,
                    "--heartbeat-interval",
                    "50",
                    "--election-timeout",
                    "500",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ctl(self, *args: str, check: bool = True, endpoints: str | None = None) -> subprocess.CompletedProcess:
        eps = endpoints or ",".join(f"{ip}:2379" for ip in self.ips)
        return self.world.run(
            ["etcdctl", "--endpoints", eps, "--dial-timeout", "1s", "--command-timeout", "2s", *args],
            check=check,
            env={"ETCDCTL_API": "3"},
        )

    def healthy(self) -> bool:
        return self.ctl("endpoint", "health", check=False).returncode == 0

    def keys(self) -> list[str]:
        out = self.ctl("get", "--prefix", "--keys-only", "/").stdout
        return sorted(k for k in out.splitlines() if k)

    def json(self, key: str) -> object:
        out = self.ctl("get", "--print-value-only", key).stdout.strip()
        return json.loads(out) if out else None

    def stop(self, ip: str) -> None:
        import signal

        signal_child(self.procs.pop(ip), signal.SIGKILL)

    def close(self) -> None:
        for ip in list(self.procs):
            self.stop(ip)


def make_world(tmp: Path, etcd_ips: list[str] | None = None) -> tuple[Sandbox, Etcd]:
    world = Sandbox(tmp / "world-state")
    ips = etcd_ips or [ETCD_IP]
    world.sh("ip link add ul0 type bridge && ip link set ul0 up")
    for ip in ips:
        world.sh(f"ip addr add {ip}/24 dev ul0")
    return world, Etcd(world, tmp / "etcd", ips)


def signal_child(p: subprocess.Popen, sig: int) -> None:
    """Signal what a Host/Sandbox popen started: nsenter -p forks it as its child, and a signal to
    nsenter alone would leave it running. Then wait for nsenter (it exits with its child)."""
    import os

    kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    for pid in kids:
        try:
            os.kill(int(pid), sig)
        except ProcessLookupError:
            pass
    p.wait(timeout=15)
