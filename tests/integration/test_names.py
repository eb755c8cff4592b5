"""Name resolution between containers: per-container hosts files bind-mounted over /etc/hosts,
rewritten in place as containers start, stop, connect and disconnect."""

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def _resolve(sb, ctr: str, name: str) -> str | None:
    """The address `getent hosts NAME` gives inside the container (None: not found)."""
    res = sb.cnet("exec", ctr, "--", "getent", "hosts", name, check=False)
    if res.returncode != 0:
        return None
    return res.stdout.split()[0]


def _ip(sb, ctr: str, network: str) -> str:
    data = json.loads(sb.cnet("inspect", ctr).stdout)
    return next(n["ip"] for n in data["networks"] if n["network"] == network)


def _host_files() -> dict[str, tuple[bytes, int]]:
    out = {}
    for p in ("/etc/hosts", "/etc/resolv.conf"):
        path = Path(p)
        if path.exists():
            out[p] = (path.read_bytes(), os.stat(p).st_ino)
    return out


def test_names_appear_and_vanish_with_membership(sandbox):
    sb = sandbox
    before = _host_files()
    sb.cnet("net", "create", "n1", "--subnet", "10.30.1.0/24")
    sb.cnet("net", "create", "n2", "--subnet", "10.30.2.0/24")
    sb.cnet("run", "-d", "--name", "web1", "--net", "n1", "--", "sleep", "600")
    sb.cnet(
        "run", "-d", "--name", "web2", "--network", "n1", "--hostname", "h2", "--network-alias", "db",
        "--", "sleep", "600",
    )  # fmt: skip
    sb.cnet("run", "-d", "--name", "other", "--net", "n2", "--", "sleep", "600")
    web2 = _ip(sb, "web2", "n1")

    # A container started later is seen by one started earlier: its file was rewritten in place.
    assert _resolve(sb, "web1", "web2") == web2
    assert _resolve(sb, "web1", "h2") == web2
    assert _resolve(sb, "web1", "db") == web2
    assert _resolve(sb, "web2", "web1") == _ip(sb, "web1", "n1")
    assert _resolve(sb, "web2", "web2") == web2  # its own name
    # Another network does not see them.
    assert _resolve(sb, "other", "web2") is None
    assert _resolve(sb, "web1", "other") is None

    # inspect and the SQL view show the names.
    n1 = next(n for n in json.loads(sb.cnet("inspect", "web2").stdout)["networks"] if n["network"] == "n1")
    assert n1["dns_names"] == ["web2", "h2", "db"]
    rows = json.loads(sb.cnet("sql", "SELECT name, kind, ip FROM v_names WHERE network = 'n1'", "--json").stdout)
    assert {(r["name"], r["kind"], r["ip"]) for r in rows} >= {("web2", "name", web2), ("h2", "hostname", web2),
                                                             ("db", "alias", web2)}  # fmt: skip

    # connect / disconnect: names appear and vanish on both sides.
    sb.cnet("net", "connect", "n1", "other", "--alias", "side")
    other_n1 = _ip(sb, "other", "n1")
    assert _resolve(sb, "other", "web2") == web2
    assert _resolve(sb, "web1", "other") == other_n1
    assert _resolve(sb, "web1", "side") == other_n1
    sb.cnet("net", "disconnect", "n1", "other")
    assert _resolve(sb, "other", "web2") is None
    assert _resolve(sb, "web1", "other") is None

    # stop: the name vanishes from the peers' files.
    sb.cnet("stop", "-t", "0", "web2")
    assert _resolve(sb, "web1", "web2") is None
    assert _resolve(sb, "web1", "db") is None

    # The container's resolv.conf has no loopback nameserver; the host's files are untouched.
    resolv = sb.cnet("exec", "web1", "--", "cat", "/etc/resolv.conf").stdout
    for line in resolv.splitlines():
        parts = line.split()
        if parts[:1] == ["nameserver"]:
            assert not parts[1].startswith("127.") and parts[1] != "::1", resolv
    assert _host_files() == before
    sb.cnet("rm", "-f", "web1", "web2", "other")
    sb.cnet("net", "rm", "n1", "n2")
    assert _host_files() == before


def test_hosts_file_is_rewritten_in_place(sandbox):
    """A rename would leave the container looking at the old inode: the file keeps its inode."""
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.30.3.0/24")
    cid = sb.cnet("run", "-d", "--name", "a", "--net", "n1", "--", "sleep", "600").stdout.strip()
    hosts = sb.state_dir / "containers" / cid / "hosts"
    ino = hosts.stat().st_ino
    sb.cnet("run", "-d", "--name", "b", "--net", "n1", "--", "sleep", "600")
    assert hosts.stat().st_ino == ino
    assert "\tb\n" in hosts.read_text()
    assert oct(hosts.stat().st_mode & 0o777) == "0o644"
    sb.cnet("rm", "-f", "a", "b")
    sb.cnet("net", "rm", "n1")
