"""A throwaway host for one integration test.

`unshare --net --mount --pid --fork --mount-proc --propagation private sleep infinity` makes new
network, mount and PID namespaces; a tmpfs goes over /run/netns inside. Commands run in it with
`nsenter -t PID -n -m -p`. Killing the sleeper (PID 1 of the sandbox's PID namespace) kills every
process in it, and the network namespace with all its links, rules and netns pins goes with it:
nothing a test does can reach the real host.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Sandbox:
    def __init__(self, state_dir: Path | None = None):
        self._tmp = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cnet-test-")
            state_dir = Path(self._tmp.name) / "state"
        self.state_dir = Path(state_dir)
        self.baseline: dict = {}
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--net",
                "--mount",
                "--pid",
                "--fork",
                "--mount-proc",
                "--propagation",
                "private",
                "sleep",
                "infinity",
            ],
            start_new_session=True,
        )
        self.pid = self._find_init()
        self.sh("mkdir -p /run/netns && mount -t tmpfs -o mode=0755 cnet-test-netns /run/netns && ip link set lo up")

    def _find_init(self) -> int:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            except OSError:
                kids = []
            if kids:
                return int(kids[0])
            time.sleep(0.005)
        raise RuntimeError("sandbox did not start")

    # --- running things inside ------------------------------------------------------------------
    def enter(self) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "-p"]

    def env(self, extra: dict | None = None) -> dict:
        env = dict(os.environ)
        env["CNET_STATE_DIR"] = str(self.state_dir)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env.pop("CNET_DEBUG", None)
        if extra:
            env.update(extra)
        return env

    def run(
        self,
        argv: list[str],
        *,
        check: bool = False,
        timeout: float = 60,
        env: dict | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess:
        res = subprocess.run(
            self.enter() + list(argv), capture_output=True, text=True, timeout=timeout, env=self.env(env), input=input
        )
        if check and res.returncode != 0:
            raise AssertionError(f"{argv} failed ({res.returncode}):\nstdout: {res.stdout}\nstderr: {res.stderr}")
        return res

    def sh(self, script: str, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("check", True)
        return self.run(["sh", "-c", script], **kw)

    def cnet_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cnet", *args]

    def cnet(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return self.run(self.cnet_argv(*args), check=check, **kw)

    def popen(self, argv: list[str], env: dict | None = None, **kw) -> subprocess.Popen:
        return subprocess.Popen(self.enter() + list(argv), env=self.env(env), **kw)

    # --- observing ------------------------------------------------------------------------------
    def links(self) -> list[dict]:
        return json.loads(self.run(["ip", "-j", "link"], check=True).stdout)

    def link_names(self) -> list[str]:
        return sorted(link["ifname"] for link in self.links())

    def addrs(self, dev: str) -> list[str]:
        data = json.loads(self.run(["ip", "-j", "addr", "show", "dev", dev], check=True).stdout)
        return [f"{a['local']}/{a['prefixlen']}" for d in data for a in d.get("addr_info", []) if a["family"] == "inet"]

    def netns(self) -> list[str]:
        # Lines read "NAME" or "NAME (id: N)" once the namespace has a peer: keep the name.
        return sorted(
            line.split()[0]
            for line in self.run(["ip", "netns", "list"], check=True).stdout.splitlines()
            if line.strip()
        )

    def iptables_save(self) -> str:
        return self.run(["iptables-save"], check=True).stdout

    def ip6tables_save(self) -> str:
        return self.run(["ip6tables-save"], check=True).stdout

    def rules6(self) -> list[str]:
        """rules() of ip6tables (dual-stack networks)."""
        return self.rules(self.ip6tables_save())

    def rules(self, saved: str | None = None) -> list[str]:
        """iptables-save (or the `saved` text) without comments, counters and empty tables (nft
        creates the tables on first use and keeps them; an empty table is the same host state as
        none)."""
        out, table, buf = [], None, []
        for line in (self.iptables_save() if saved is None else saved).splitlines():
            if line.startswith("#"):
                continue
            if line.startswith("*"):
                table, buf = line, []
                continue
            if line == "COMMIT":
                meaningful = [entry for entry in buf if entry.startswith("-A") or _meaningful_chain(entry)]
                if meaningful:
                    out.append(table)
                    out += buf
                continue
            buf.append(line.rsplit(" [", 1)[0] if line.startswith(":") else line)
        return out

    def ebtables_save(self) -> str:
        return self.run(["ebtables-nft-save"], check=True).stdout

    def bridge_rules(self) -> list[str]:
        """ebtables-nft-save (the bridge family, where cnet's anti-spoofing lives) without comments
        and tables that hold nothing: like rules(), an emptied table equals none."""
        out, table, buf = [], None, []
        for line in self.ebtables_save().splitlines() + ["*end"]:
            if line.startswith("#") or not line.strip():
                continue
            if line.startswith("*"):
                if table and any(e.startswith("-A") or _meaningful_chain(e) for e in buf):
                    out += [table, *buf]
                table, buf = line, []
                continue
            buf.append(line)
        return out

    def sysctl(self, key: str) -> str:
        return self.run(["sysctl", "-n", key], check=True).stdout.strip()

    def db_rows(self) -> dict[str, list]:
        path = self.state_dir / "cnet.db"
        if not path.exists():
            return {}
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                    "AND name NOT IN ('alembic_version', 'operations', 'operation_steps') ORDER BY name"
                )
            ]
            rows = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
            return {t: r for t, r in rows.items() if r}  # no database = empty tables
        finally:
            conn.close()

    def mount_points(self) -> list[str]:
        """Every mount point of the host's mount namespace (as /proc/PID/mountinfo gives them)."""
        points = []
        for line in Path(f"/proc/{self.pid}/mountinfo").read_text().splitlines():
            point = line.split()[4]
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), point))
        return points

    def template(self) -> Path:
        """The mount namespace containers start from (cnet.kernel.netns.MOUNT_TEMPLATE_SCRIPT)."""
        return self.state_dir / "mntns" / "template"

    def state_mounts(self) -> list[str]:
        """Mounts under the state dir, but the template and its folder: cnet keeps those on purpose
        (README, "Mount namespaces"); what they hold is checked by template_netns_mounts."""
        kept = {str(self.template()), str(self.template().parent)}
        root = str(self.state_dir) + "/"
        return sorted(p for p in self.mount_points() if p.startswith(root) and p not in kept)

    def template_netns_mounts(self) -> list[str]:
        """Mounts under /run/netns inside the template (none: it holds no netns pin)."""
        if str(self.template()) not in self.mount_points():
            return []
        out = self.run(["nsenter", f"--mount={self.template()}", "cat", "/proc/self/mountinfo"], check=True).stdout
        return sorted(p for p in (line.split()[4] for line in out.splitlines()) if p.startswith("/run/netns/"))

    def snapshot(self) -> dict:
        """Links, rules (iptables and ebtables), netns, mounts under the state dir, forwarding and
        state rows: what 'left nothing behind' compares."""
        return {
            "links": self.link_names(),
            "rules": self.rules(),
            "rules6": self.rules6(),
            "bridge_rules": self.bridge_rules(),
            "netns": self.netns(),
            "state_mounts": self.state_mounts(),
            "template_netns_mounts": self.template_netns_mounts(),
            "ip_forward": self.sysctl("net.ipv4.ip_forward"),
            "ip6_forward": self.sysctl("net.ipv6.conf.all.forwarding"),
            "db": self.db_rows(),
        }

    def wait_for(self, predicate, timeout: float = 5.0, interval: float = 0.05):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                return value
            time.sleep(interval)

    def reboot(self) -> None:
        """A reboot: every process, link, rule and netns goes with the old namespaces; the state
        directory (cnet.db, logs) stays. The same object goes on as the new host."""
        self._kill()
        self._start()

    def _kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def close(self) -> None:
        self._kill()
        if self._tmp is not None:
            self._tmp.cleanup()


# Rows that only exist while cnet holds something: none may survive a test that cleaned up.
STATE_TABLES = ("networks", "containers", "endpoints", "ip_allocations", "ip6_allocations", "port_mappings")


def left_behind(sb: Sandbox, timeout: float = 10.0) -> list[str]:
    """What the host holds beyond `sb.baseline`, one line per difference (empty: nothing).

    Waits up to `timeout` for the host to settle (a released veth vanishes asynchronously once its
    netns is gone; a container's reaper may still be finishing). Beyond the snapshot it checks the
    database itself, whatever the baseline says: no state rows, no operation still running."""
    sb.wait_for(lambda: sb.snapshot() == sb.baseline, timeout=timeout, interval=0.1)
    snap = sb.snapshot()
    problems = [
        f"{key}: expected {sb.baseline.get(key)!r}, found {snap.get(key)!r}"
        for key in sorted(set(snap) | set(sb.baseline))
        if snap.get(key) != sb.baseline.get(key)
    ]
    rows = sb.db_rows()
    problems += [f"table {t} still has rows: {rows[t]!r}" for t in STATE_TABLES if rows.get(t)]
    path = sb.state_dir / "cnet.db"
    if path.exists():
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            running = conn.execute("SELECT id, kind, target FROM operations WHERE status = 'running'").fetchall()
        finally:
            conn.close()
        problems += [f"operation {op} ({kind} {target}) is still running" for op, kind, target in running]
    return problems


BUILTINS = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING", "BROUTING"}


def _meaningful_chain(line: str) -> bool:
    if not line.startswith(":"):
        return False
    name, policy = line[1:].split()[:2]
    return name not in BUILTINS or policy != "ACCEPT"
