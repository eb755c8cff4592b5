"""Playing a kubelet: containerd 1.6's CRI plugin, driven over its gRPC API, runs cnet as the pod
network (issue 17). Used by tests/integration/test_cri.py and `scripts/bench --only cri`.

- `stubs()`: the gRPC client for cri_min.proto (runtime.v1.RuntimeService, six RPCs), generated
  at run time with grpcio-tools into a temporary directory.
- `pause_image()`: a docker-archive tar of a 2 MB sandbox image (busybox-static's `sleep`), which
  `ctr images import` loads, so no registry is ever asked.
- `Containerd`: containerd started inside a test's sandbox, `env -i` (plus what the test adds),
  root and state under a temporary directory, its CNI bin_dir and conf_dir given by the caller.
  `sandbox_mounts()` first gives the sandbox what containerd and runc need and must not write to
  the host: tmpfs over /run (shim sockets), /var/lib (libcni's cache) and /opt, a sysfs of its own
  and a pure cgroup v1 view (runc 1.1 on this hybrid host).
- `cgroup_leftovers()` / `remove_cgroups()`: runc makes real directories in the host's (global)
  v1 hierarchies under `k8s.io/` and leaves the empty parents; they are removed from outside the
  sandbox, after it is gone, whatever happened to the test.

Measured facts behind each setting: ../shared/notes/cri-containerd-facts.md (project notes).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from hashlib import sha256
from pathlib import Path

PROTO = Path(__file__).with_name("cri_min.proto")
PAUSE_IMAGE = "localhost/cnet-test/pause:1"
NAMESPACE = "k8s.io"  # containerd's namespace for the CRI plugin's images and sandboxes
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CGROUP_PARENT = "k8s.io"  # containerd's default cgroupsPath parent for sandboxes (cgroupfs driver)
REFERENCE_CNI = Path("/usr/lib/cni")


def missing() -> str | None:
    """Why the CRI tests cannot run here, or None."""
    for tool in ("containerd", "ctr", "runc"):
        if not shutil.which(tool):
            return f"needs {tool} (apt: containerd, runc; scripts/install-deps)"
    if not (REFERENCE_CNI / "loopback").exists():
        return "needs the reference loopback plugin (apt: containernetworking-plugins)"
    if not Path("/bin/busybox").exists():
        return "needs /bin/busybox (apt: busybox-static) for the pause image"
    try:
        importlib.import_module("grpc_tools.protoc")
        importlib.import_module("grpc")
    except ImportError:
        return "needs grpcio-tools (pip: the [test] extra)"
    if not v1_hierarchies():
        return "needs cgroup v1 hierarchies (runc 1.1 under containerd 1.6 is run with a pure v1 view)"
    return None


# --- the gRPC client ---------------------------------------------------------------------------------
_STUBS: tuple | None = None


def stubs() -> tuple:
    """(messages module, grpc module) for cri_min.proto; generated once per process (both protos
    declare runtime.v1, so the descriptor pool must see it only once)."""
    global _STUBS
    if _STUBS is None:
        out = Path(tempfile.mkdtemp(prefix="cnet-cri-stubs-"))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{PROTO.parent}",
                f"--python_out={out}",
                f"--grpc_python_out={out}",
                PROTO.name,
            ],
            check=True,
            capture_output=True,
        )
        sys.path.insert(0, str(out))
        try:
            _STUBS = (importlib.import_module("cri_min_pb2"), importlib.import_module("cri_min_pb2_grpc"))
        finally:
            sys.path.remove(str(out))
            shutil.rmtree(out, ignore_errors=True)
    return _STUBS


class Cri:
    """The kubelet's side of the pod-sandbox calls."""

    def __init__(self, socket: Path):
        import grpc

        self.pb, pb_grpc = stubs()
        self.channel = grpc.insecure_channel(f"unix://{socket}")
        self.rpc = pb_grpc.RuntimeServiceStub(self.channel)

    def version(self):
        return self.rpc.Version(self.pb.VersionRequest(version="v1"), timeout=10)

    def config(self, name: str, namespace: str = "default", *, ports=(), dns: dict | None = None, attempt: int = 0):
        pb = self.pb
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(
                name=name, uid=f"uid-{namespace}-{name}", namespace=namespace, attempt=attempt
            ),
            hostname=name,
            dns_config=pb.DNSConfig(**dns) if dns else None,
            port_mappings=[
                pb.PortMapping(protocol=pb.TCP, container_port=c, host_port=h, host_ip=ip) for h, c, ip in ports
            ],
            labels={"app": name},
        )

    def run(self, config, timeout: float = 120) -> str:
        return self.rpc.RunPodSandbox(self.pb.RunPodSandboxRequest(config=config), timeout=timeout).pod_sandbox_id

    def stop(self, pod: str, timeout: float = 60) -> None:
        self.rpc.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=timeout)

    def remove(self, pod: str, timeout: float = 60) -> None:
        self.rpc.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=timeout)

    def status(self, pod: str):
        return self.rpc.PodSandboxStatus(self.pb.PodSandboxStatusRequest(pod_sandbox_id=pod, verbose=True), timeout=10)

    def ip(self, pod: str) -> str:
        return self.status(pod).status.network.ip

    def netns(self, pod: str) -> str:
        """The pod's network namespace path (from the verbose status info, as crictl shows it)."""
        info = json.loads(self.status(pod).info["info"])
        return next(n["path"] for n in info["runtimeSpec"]["linux"]["namespaces"] if n["type"] == "network")

    def pods(self) -> list[str]:
        return sorted(p.id for p in self.rpc.ListPodSandbox(self.pb.ListPodSandboxRequest(), timeout=10).items)

    def close(self) -> None:
        self.channel.close()


# --- the sandbox image ---------------------------------------------------------------------------
def pause_image(path: Path) -> Path:
    """A docker-archive (`docker save`) tar: one layer with busybox as /bin/sleep and /bin/sh, run
    as `sleep` forever. containerd stops a sandbox with SIGKILL, so no pause binary is needed."""

    def add(tar: tarfile.TarFile, name: str, data: bytes | None = None, link: str | None = None) -> None:
        info = tarfile.TarInfo(name)
        if link is not None:
            info.type, info.linkname = tarfile.SYMTYPE, link
        elif data is None:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
        else:
            info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data) if data is not None else None)

    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w") as layer:
        add(layer, "bin")
        add(layer, "bin/busybox", Path("/bin/busybox").read_bytes())
        for applet in ("sh", "sleep"):
            add(layer, f"bin/{applet}", link="busybox")
    layer_bytes = layer_buf.getvalue()
    diff_id = "sha256:" + sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64" if os.uname().machine == "x86_64" else "arm64",
            "os": "linux",
            "config": {"Entrypoint": ["/bin/sleep", "2147483647"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [PAUSE_IMAGE], "Layers": ["layer/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        add(tar, "layer")
        add(tar, "layer/layer.tar", layer_bytes)
        add(tar, config_name, config)
        add(tar, "manifest.json", manifest)
    return path


# --- cgroups -------------------------------------------------------------------------------------
def v1_hierarchies() -> list[tuple[str, str]]:
    """(mount point, controllers) of the host's cgroup v1 controller hierarchies (named ones such as
    name=systemd are left out: runc's cgroupfs driver does not need them)."""
    found: dict[str, str] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, post = line.split(" - ", 1)
        fstype, _src, opts = post.split()[:3]
        if fstype != "cgroup":
            continue
        keep = [o for o in opts.split(",") if o not in ("rw", "ro") and not o.startswith(("relatime", "no"))]
        point = pre.split()[4]
        # One mount point per hierarchy (a bind mount shows it twice), under /sys/fs/cgroup if any.
        if keep and not any(o.startswith("name=") for o in keep):
            key = ",".join(keep)
            if key not in found or point.startswith("/sys/fs/cgroup/"):
                found[key] = point
    return [(point, key) for key, point in found.items()]


def cgroup_dirs() -> set[Path]:
    """Every directory under `k8s.io` in the host's v1 hierarchies (and the parents themselves)."""
    found: set[Path] = set()
    for point, _ in v1_hierarchies():
        top = Path(point, CGROUP_PARENT)
        if top.is_dir():
            found |= {Path(root) for root, _dirs, _files in os.walk(top)}
    return found


def remove_cgroups(before: set[Path], timeout: float = 10.0) -> list[Path]:
    """rmdir what runc left since `before`, deepest first (a cgroup is removable once its last
    process is reaped, so retry for a while); returns what could not be removed."""
    deadline = time.monotonic() + timeout
    while True:
        left = sorted(cgroup_dirs() - before, key=lambda p: len(p.parts), reverse=True)
        for d in left:
            with contextlib.suppress(OSError):
                d.rmdir()
        left = sorted(cgroup_dirs() - before)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


# --- containerd ------------------------------------------------------------------------------------
def sandbox_mounts(sb) -> None:
    """What containerd, runc and libcni need inside the sandbox's private mount namespace."""
    cgroups = " && ".join(f"mkdir -p {p} && mount -t cgroup -o {o} cgroup {p}" for p, o in v1_hierarchies())
    sb.sh(
        " && ".join(
            [
                # /run/containerd/s holds the shims' sockets whatever `state` says; /run/netns the pods'.
                "mount -t tmpfs -o mode=755 cri-run /run && mkdir -p /run/netns",
                "mount -t tmpfs -o mode=755 cri-varlib /var/lib",  # /var/lib/cni: libcni's result cache
                "mount -t tmpfs -o mode=755 cri-opt /opt",
                # A sysfs of this network namespace (the bench's sandbox may have mounted one already).
                "{ mount -t sysfs sysfs /sys 2>/dev/null || mountpoint -q /sys; }",
                "mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup",
                cgroups,
            ]
        )
    )


CONFIG = """\
version = 2
root = "{root}/lib"
state = "{root}/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{image}"
  disable_apparmor = true
  # This machine withholds CAP_SYS_RESOURCE even from root: runc cannot set the sandbox's -998.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{bin_dir}"
    conf_dir = "{conf_dir}"
    max_conf_num = 1
"""


def cni_bin_dir(sb, bin_dir: Path) -> None:
    """`cnet cni install` into bin_dir, plus the reference loopback (containerd calls it for every
    pod's lo)."""
    sb.cnet("cni", "install", "--bin-dir", str(bin_dir))
    (bin_dir / "loopback").symlink_to(REFERENCE_CNI / "loopback")


class Containerd:
    def __init__(
        self, sb, root: Path, bin_dir: Path, conf_dir: Path, *, env: dict | None = None, cwd: Path = Path("/")
    ):
        self.sb, self.root = sb, root
        self.socket = root / "c.sock"
        (root / "lib").mkdir(parents=True, exist_ok=True)
        self.config = root / "config.toml"
        self.config.write_text(
            CONFIG.format(root=root, socket=self.socket, image=PAUSE_IMAGE, bin_dir=bin_dir, conf_dir=conf_dir)
        )
        self.log = open(root / "containerd.log", "w")  # noqa: SIM115 (closed in stop())
        env_args = [f"{k}={v}" for k, v in {"PATH": CLEAN_PATH, **(env or {})}.items()]
        # `env -i`: as under an init system, and what every plugin then inherits (with the cwd).
        self.proc = sb.popen(
            ["env", "-i", "-C", str(cwd), *env_args, "containerd", "--config", str(self.config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.cri = self._connect()
        sb.run(
            [
                "ctr",
                "--address",
                str(self.socket),
                "-n",
                NAMESPACE,
                "images",
                "import",
                str(pause_image(root / "p.tar")),
            ],
            check=True,
        )

    def _connect(self) -> Cri:
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"containerd did not start:\n{self.logs()}")
            time.sleep(0.02)
        cri = Cri(self.socket)
        while True:
            try:
                cri.version()
                return cri
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def logs(self) -> str:
        self.log.flush()
        return (self.root / "containerd.log").read_text()[-4000:]

    def pid(self) -> int | None:
        """containerd's pid as this host sees it: the only child of the `nsenter` we started (or the
        process itself, where the caller already runs inside the sandbox)."""
        if not getattr(self.sb, "launches_via_nsenter", True):
            return self.proc.pid if self.proc.poll() is None else None
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def stop(self) -> None:
        """Every pod stopped and removed (as a kubelet draining the node), then containerd itself."""
        with contextlib.suppress(Exception):
            for pod in self.cri.pods():
                self.cri.stop(pod)
                self.cri.remove(pod)
        self.cri.close()
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            if (pid := self.pid()) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()


def write_conflist(sb, network: str, conf_dir: Path) -> dict:
    sb.cnet("cni", "conflist", network, "--output", str(conf_dir / f"10-{network}.conflist"))
    return json.loads((conf_dir / f"10-{network}.conflist").read_text())


def reference_conflist(name: str, bridge: str, subnet: str, data_dir: str, *, ip_masq: bool = True) -> dict:
    """bridge + host-local + portmap, as a node would configure the reference plugins."""
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": ip_masq,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": data_dir,
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "ranges": [[{"subnet": subnet}]],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
