"""Driving cnet's CNI plugin as libcni does: the installed executable, a bare environment holding
only the CNI_* variables, the network configuration on stdin, one JSON document back.

libcni hands each plugin of a configuration list its own entry, with the list's "name" and
"cniVersion" added, "runtimeConfig" for the capabilities it declares, and "prevResult" for DEL
and CHECK; `plugin_conf` builds exactly that from what `cnet cni conflist` printed.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Reply:
    rc: int
    doc: dict | None
    stdout: str
    stderr: str

    @property
    def code(self) -> int | None:
        return None if self.doc is None else self.doc.get("code")


class Plugin:
    def __init__(self, sb, bin_dir: Path):
        self.sb = sb
        sb.cnet("cni", "install", "--bin-dir", str(bin_dir))
        self.path = bin_dir / "cnet"

    def conflist(self, network: str) -> dict:
        return json.loads(self.sb.cnet("cni", "conflist", network).stdout)

    def conf(
        self,
        network: str,
        *,
        version: str | None = None,
        runtime: dict | None = None,
        prev: dict | None = None,
        **extra,
    ) -> dict:
        return plugin_conf(self.conflist(network), version=version, runtime=runtime, prev=prev, **extra)

    def argv(
        self, command: str, *, container_id: str = "", netns: str = "", ifname: str = "", env: dict | None = None
    ) -> list[str]:
        cni_env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns,
            "CNI_IFNAME": ifname,
            "CNI_PATH": str(self.path.parent),
            **(env or {}),
        }
        # `env -i`: a Kubernetes runtime passes little more than these; the plugin must cope.
        return ["env", "-i", *(f"{k}={v}" for k, v in cni_env.items() if v != ""), str(self.path)]

    def call(self, command: str, conf: dict | str, *, timeout: float = 60, **kw) -> Reply:
        stdin = conf if isinstance(conf, str) else json.dumps(conf)
        res = self.sb.run(self.argv(command, **kw), input=stdin, timeout=timeout)
        return reply(res.returncode, res.stdout, res.stderr)

    @staticmethod
    def finish(proc: subprocess.Popen, timeout: float = 180) -> Reply:
        """The reply of a plugin started with popen() (stdin is already closed)."""
        proc.wait(timeout=timeout)
        return reply(proc.returncode, proc.stdout.read(), proc.stderr.read())

    def popen(self, command: str, conf: dict, **kw) -> subprocess.Popen:
        proc = self.sb.popen(
            self.argv(command, **kw), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        proc.stdin.write(json.dumps(conf))
        proc.stdin.close()
        return proc

    # Shorthands for one attachment.
    def add(self, conf: dict, cid: str, netns: str, ifname: str = "eth0", **kw) -> Reply:
        return self.call("ADD", conf, container_id=cid, netns=f"/run/netns/{netns}", ifname=ifname, **kw)

    def delete(self, conf: dict, cid: str, netns: str | None, ifname: str = "eth0", **kw) -> Reply:
        return self.call(
            "DEL", conf, container_id=cid, netns=f"/run/netns/{netns}" if netns else "", ifname=ifname, **kw
        )


def reply(rc: int, stdout: str, stderr: str) -> Reply:
    try:
        doc = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        doc = None
    return Reply(rc, doc, stdout, stderr)


def plugin_conf(
    conflist: dict, *, version: str | None = None, runtime: dict | None = None, prev: dict | None = None, **extra
) -> dict:
    conf = dict(conflist["plugins"][0])
    conf["name"] = conflist["name"]
    conf["cniVersion"] = version or conflist["cniVersion"]
    if runtime:
        conf["runtimeConfig"] = runtime
    if prev is not None:
        conf["prevResult"] = prev
    conf.update(extra)
    return conf


def ns_addrs(sb, netns: str, ifname: str) -> list[str]:
    data = json.loads(sb.run(["ip", "-n", netns, "-j", "addr", "show", "dev", ifname], check=True).stdout)
    return [f"{a['local']}/{a['prefixlen']}" for d in data for a in d.get("addr_info", []) if a["family"] == "inet"]


def ns_default_gw(sb, netns: str) -> str | None:
    routes = json.loads(sb.run(["ip", "-n", netns, "-j", "route", "show", "default"], check=True).stdout)
    return routes[0].get("gateway") if routes else None


def attachments(sb) -> list[tuple]:
    """(runtime container id, ifname, state) of every CNI attachment in the database."""
    import sqlite3

    path = sb.state_dir / "cnet.db"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT cni_container_id, cni_ifname, state FROM containers WHERE kind = 'cni' ORDER BY 1, 2"
        ).fetchall()
    finally:
        conn.close()
