"""Shared helpers for the container and port-mapping integration tests.

- `tools`: a tiny TCP+UDP echo server (run inside containers) and a probe client, as files the
  sandbox and its containers can execute (they share the filesystem, not the network).
- `add_client`: an "external host": one more netns joined to the sandbox host by a veth with its
  own subnet, routed to the host's address (as the design guide's external client).
- `probe`: one process per network namespace tries several tcp/udp targets with a short timeout
  and returns the replies (None for "no answer").
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

# Replies "<hostname> <peer-ip> <data>" on TCP and UDP at the same port, forever. No getfqdn()
# (http.server's bind does one and stalls for seconds without DNS).
SERVER = textwrap.dedent(
    """
    import selectors, socket, sys
    port = int(sys.argv[1])
    name = socket.gethostname().encode()
    t = socket.socket()
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", port))
    t.listen(64)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", port))
    sel = selectors.DefaultSelector()
    sel.register(t, selectors.EVENT_READ)
    sel.register(u, selectors.EVENT_READ)
    streams = [t]
    if sys.argv[2:] == ["dual"]:  # IPv6 too, on sockets of their own
        t6 = socket.socket(socket.AF_INET6)
        t6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        t6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t6.bind(("::", port))
        t6.listen(64)
        u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        u6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        u6.bind(("::", port))
        sel.register(t6, selectors.EVENT_READ)
        sel.register(u6, selectors.EVENT_READ)
        streams.append(t6)
    print("serving", port, flush=True)
    while True:
        for key, _ in sel.select():
            if key.fileobj in streams:
                c, peer = key.fileobj.accept()
                c.settimeout(2)
                try:
                    c.sendall(name + b" " + peer[0].encode() + b" " + c.recv(1024))
                except OSError:
                    pass
                c.close()
            else:
                data, peer = key.fileobj.recvfrom(2048)
                key.fileobj.sendto(name + b" " + peer[0].encode() + b" " + data, peer)
    """
)

# argv: TIMEOUT PROTO:IP:PORT...  -> JSON list, one reply string (or null) per target. An IPv6 IP
# may be written in brackets ("tcp:[fd00::2]:80"); SOURCE@PROTO:IP:PORT binds to SOURCE first.
PROBE = textwrap.dedent(
    """
    import json, socket, sys
    timeout = float(sys.argv[1])
    out = []
    for target in sys.argv[2:]:
        source, _, target = target.rpartition("@")
        proto, rest = target.split(":", 1)
        ip, port = rest.rsplit(":", 1)
        ip = ip.strip("[]")
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, kind)
        s.settimeout(timeout)
        try:
            if source:
                s.bind((source, 0))
            s.connect((ip, int(port)))
            s.send(b"ping")
            out.append(s.recv(2048).decode())
        except OSError:
            out.append(None)
        finally:
            s.close()
    print(json.dumps(out))
    """
)


@dataclass
class Tools:
    server: Path
    probe: Path


@pytest.fixture
def tools(tmp_path) -> Tools:
    d = tmp_path / "tools"
    d.mkdir()
    (d / "server.py").write_text(SERVER)
    (d / "probe.py").write_text(PROBE)
    return Tools(server=d / "server.py", probe=d / "probe.py")


def inspect(sb, ref: str) -> dict:
    return json.loads(sb.cnet("inspect", ref).stdout)


def in_netns(netns: str | None, argv: list[str]) -> list[str]:
    return list(argv) if netns is None else ["nsenter", f"--net=/run/netns/{netns}", *argv]


# Counts the frames eth0 receives for which the expression in argv[1] (over `frame`, its bytes)
# holds, until stdin closes.
FRAME_COUNTER = """
import select, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("eth0", 0))
which = eval("lambda frame: " + sys.argv[1])
print("ready", flush=True)
n = 0
while sys.stdin not in select.select([s, sys.stdin], [], [])[0]:
    frame, addr = s.recvfrom(65535)
    n += addr[2] != socket.PACKET_OUTGOING and bool(which(frame))
print(n)
"""


def count_frames(sb, netns: str, which: str) -> subprocess.Popen:
    """Start counting the frames eth0 of `netns` receives for which `which` holds (a Python
    expression over `frame`); `.communicate()` ends the count and returns it."""
    counter = sb.popen(
        in_netns(netns, ["python3", "-c", FRAME_COUNTER, which]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert counter.stdout.readline() == "ready\n"
    return counter


def probe(sb, tools: Tools, targets: list[str], *, netns: str | None = None, timeout: float = 2.0) -> list:
    """Replies from `targets` ("tcp:IP:PORT") seen from `netns` (None: the sandbox host)."""
    res = sb.run(
        in_netns(netns, ["python3", str(tools.probe), str(timeout), *targets]),
        check=True,
        timeout=30 + timeout * len(targets),
    )
    return json.loads(res.stdout)


def answers(sb, tools: Tools, targets: list[str], *, netns: str | None = None) -> dict[str, str | None]:
    """{target: hostname of the container that answered, or None}."""
    return {
        t: (r.split()[0] if r else None) for t, r in zip(targets, probe(sb, tools, targets, netns=netns), strict=True)
    }


def run_server(sb, tools: Tools, name: str, *args: str, port: int = 80, dual: bool = False) -> dict:
    """A detached container `name` running the echo server (`dual`: on IPv6 too); returns its
    inspect JSON once it answers (from inside its own netns, so no mapping is needed for the
    readiness check)."""
    extra = ["dual"] if dual else []
    sb.cnet("run", "-d", "--name", name, *args, "--", "python3", str(tools.server), str(port), *extra)
    info = inspect(sb, name)
    ok = sb.wait_for(
        lambda: probe(sb, tools, [f"tcp:127.0.0.1:{port}"], netns=info["netns"], timeout=0.5)[0],
        timeout=15,
        interval=0.1,
    )
    assert ok, f"server in {name} did not come up: {sb.cnet('logs', name).stdout}"
    return info


CLIENT_HOST_IP6 = "2001:db8:ff::1"
CLIENT_IP6 = "2001:db8:ff::2"


@dataclass
class Client:
    netns: str
    host_veth: str
    host_ip: str
    ip: str
    host_ip6: str | None = None
    ip6: str | None = None


def add_client(
    sb,
    netns: str = "ext",
    host_ip: str = "192.0.2.1",
    ip: str = "192.0.2.2",
    prefix: int = 24,
    *,
    ipv6: bool = False,
) -> Client:
    """Another host: a netns on a veth with its own subnet, default route via the sandbox host.
    Its lo stays down, so even 127.0.0.0/8 can be routed to the host (the moby#45610 attack).
    `ipv6`: also 2001:db8:ff::1/64 on the host's end and 2001:db8:ff::2/64 on the client's, with an
    IPv6 default route via the host (Client.host_ip6, Client.ip6)."""
    veth = f"{netns}-h"
    script = (
        f"ip netns add {netns} && ip link add {veth} type veth peer name eth0 netns {netns} && "
        f"ip addr add {host_ip}/{prefix} dev {veth} && ip link set {veth} up && "
        f"ip -n {netns} addr add {ip}/{prefix} dev eth0 && ip -n {netns} link set eth0 up && "
        f"ip -n {netns} route add default via {host_ip}"
    )
    if ipv6:
        script += (
            f" && ip addr add {CLIENT_HOST_IP6}/64 dev {veth} nodad && "
            f"ip -n {netns} addr add {CLIENT_IP6}/64 dev eth0 nodad && "
            f"ip -n {netns} route add default via {CLIENT_HOST_IP6}"
        )
    sb.sh(script)
    c = Client(netns, veth, host_ip, ip)
    if ipv6:
        c.host_ip6, c.ip6 = CLIENT_HOST_IP6, CLIENT_IP6
    return c


def del_client(sb, c: Client) -> None:
    sb.sh(f"ip link del {c.host_veth} && ip netns del {c.netns}")


def no_cnet_leftovers(sb) -> None:
    """No cnet link, netns or rule (used between steps, before the full baseline check)."""
    assert not [link for link in sb.link_names() if link.startswith("cnet")]
    assert not [n for n in sb.netns() if n.startswith("cnet")]
    assert "cnet:ctr:" not in sb.iptables_save()


def settled(sb) -> dict:
    """sb.snapshot() without the networks' next-fit cursors: after a container came and went, its
    network is back as it was except that the cursor (rightly) moved on."""
    snap = sb.snapshot()
    path = sb.state_dir / "cnet.db"
    if snap["db"].get("networks") and path.exists():
        import sqlite3

        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            cols = [r[1] for r in conn.execute("PRAGMA table_info(networks)") if r[1] != "alloc_cursor_int"]
            snap["db"]["networks"] = conn.execute(f"SELECT {', '.join(cols)} FROM networks ORDER BY 1").fetchall()
        finally:
            conn.close()
    return snap
