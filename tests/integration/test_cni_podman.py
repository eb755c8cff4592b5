"""podman 4.3 with its CNI backend puts a container on a cnet network (issue 8.7): a real libcni
client calling the installed plugin.

Inside the test's sandbox (see docs in ../../../shared/notes, measured on this class of machine):
- sysfs is remounted, so /sys/class/net shows the sandbox's own links;
- only the host's cgroup v1 hierarchies are mounted again (crun refuses hybrid v1+v2 cgroups),
  with `cgroup_manager = "cgroupfs"` and `podman run --cgroups=disabled` (no cgroup is created);
- /var/lib, /var/tmp, /run/containers, /run/libpod, /run/crun and /etc/cni/net.d are tmpfs and
  /etc/containers a copy, so podman writes nothing outside the sandbox;
- the container's root is a busybox directory (`--rootfs`, a flag: the directory is the first
  positional argument), so no image registry is needed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from .cni_support import Plugin, attachments
from .conftest import run_server

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("podman") and Path("/usr/lib/cni/bridge").exists() and Path("/bin/busybox").exists()),
        reason="needs podman, containernetworking-plugins and busybox-static (scripts/install-deps)",
    ),
]


def v1_hierarchies() -> list[tuple[str, str]]:
    """(mount point, options) of the host's cgroup v1 hierarchies, from /proc/self/mountinfo."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, post = line.split(" - ", 1)
        fstype, _src, opts = post.split()[:3]
        if fstype == "cgroup":
            point = pre.split()[4]
            keep = [
                o
                for o in opts.split(",")
                if o not in ("rw", "ro") and not o.startswith(("relatime", "nosuid", "nodev", "noexec"))
            ]
            out.append((point, ",".join(keep) or "none"))
    return out


class Podman:
    def __init__(self, sb, root: Path):
        self.sb = sb
        self.root = root
        self.conf = root / "containers.conf"
        self.rootfs = root / "rootfs"

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = ["podman", "--root", str(self.root / "storage"), "--runroot", "/run/containers/storage", *args]
        res = self.sb.run(argv, env={"CONTAINERS_CONF": str(self.conf)}, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-3000:]}"
            )
        return res


@pytest.fixture
def podman(sandbox, tmp_path) -> Podman:
    sb = sandbox
    root = tmp_path / "podman"
    (root / "net.d").mkdir(parents=True)
    (root / "cni-bin").mkdir()
    shutil.copytree("/etc/containers", root / "etc-containers")
    (root / "containers.conf").write_text(
        textwrap.dedent(f"""\
        [network]
        network_backend = "cni"
        cni_plugin_dirs = ["{root}/cni-bin", "/usr/lib/cni"]
        network_config_dir = "{root}/net.d"
        [engine]
        cgroup_manager = "cgroupfs"
        events_logger = "file"
        """)
    )
    rootfs = root / "rootfs"
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "www", "run"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in ("sh", "httpd", "nc", "wget", "ip", "sleep", "cat", "echo"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "www" / "index.html").write_text("hello from podman\n")
    cgroups = " && ".join(f"mkdir -p {p} && mount -t cgroup -o {o} cgroup {p}" for p, o in v1_hierarchies())
    sb.sh(
        " && ".join(
            filter(
                None,
                [
                    "mount -t sysfs sysfs /sys",
                    "mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup",
                    cgroups,
                    "mount -t tmpfs tmpfs /var/lib",
                    "mount -t tmpfs tmpfs /var/tmp",
                    "mkdir -p /etc/cni/net.d && mount -t tmpfs tmpfs /etc/cni/net.d",
                    f"mount --bind {root}/etc-containers /etc/containers",
                    "for d in containers libpod crun; do mkdir -p /run/$d && mount -t tmpfs tmpfs /run/$d; done",
                ],
            )
        )
    )
    sb.baseline = sb.snapshot()  # after the mounts: they are not what the test compares
    return Podman(sb, root)


def test_podman_run_on_a_cnet_network(sandbox, podman, tools, tmp_path):
    sb = sandbox
    sb.cnet("net", "create", "cnetnet", "--subnet", "10.77.0.0/24")
    Plugin(sb, podman.root / "cni-bin")  # `cnet cni install` into podman's plugin directory
    sb.cnet("cni", "conflist", "cnetnet", "--output", str(podman.root / "net.d" / "cnetnet.conflist"))
    assert podman("info", "--format", "{{.Host.NetworkBackend}}").stdout.strip() == "cni"
    listed = podman("network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout.split("\n")
    assert "cnetnet cnet" in listed

    podman(
        "run",
        "-d",
        "--name",
        "web",
        "--cgroups=disabled",
        "--network",
        "cnetnet",
        "-p",
        "127.0.0.1:8080:80",
        "--rootfs",
        str(podman.rootfs),
        "/bin/httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    )
    (att,) = attachments(sb)
    assert att[1:] == ("eth0", "attached")
    web_ip = json.loads(podman("inspect", "web").stdout)[0]["NetworkSettings"]["Networks"]["cnetnet"]["IPAddress"]
    assert web_ip.startswith("10.77.0.")
    (row,) = json.loads(sb.cnet("ps", "--json").stdout)
    assert row["ips"] == [web_ip] and "127.0.0.1:8080->80/tcp" in row["ports"]

    # Served on 127.0.0.1 through cnet's mapping (from inside the sandbox).
    got = sb.wait_for(
        lambda: (
            sb.run(
                [
                    "python3",
                    "-c",
                    "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/', timeout=1).read().decode())",
                ]
            ).stdout
        ),
        timeout=20,
        interval=0.2,
    )
    assert got.strip() == "hello from podman"

    # A `cnet run` container on the same network reaches it, and it reaches the container, directly.
    ctr = run_server(sb, tools, "c1", "--net", "cnetnet", port=90)
    ctr_ip = ctr["networks"][0]["ip"]
    res = podman("exec", "web", "/bin/sh", "-c", f"echo ping | nc -w 3 {ctr_ip} 90")
    assert res.stdout.split() == ["c1", web_ip, "ping"]
    res = sb.run(
        ["nsenter", f"--net=/run/netns/{ctr['netns']}", "busybox", "wget", "-qO-", f"http://{web_ip}/"], check=True
    )
    assert res.stdout.strip() == "hello from podman"

    # `podman rm -f` sends DEL: everything cnet made for it goes.
    podman("rm", "-f", "web")
    assert attachments(sb) == []
    assert [r["name"] for r in json.loads(sb.cnet("ps", "--json").stdout)] == ["c1"]
    assert f"{web_ip}:80" not in sb.iptables_save()
    sb.cnet("rm", "-f", "c1")
    sb.cnet("net", "rm", "cnetnet")
    assert sb.wait_for(lambda: sb.snapshot() == sb.baseline, timeout=5)
