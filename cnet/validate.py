"""Input validation: every user-typed value is checked here before any state or kernel change.

Each function returns a parsed value or raises ValidationError with one clear sentence.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import ValidationError
from .naming import NAME_RE
from .records import ALL_ADDRESSES, PortSpec, RestartPolicy, RunRequest
from .validate6 import ipv6_address, network_subnet6, port_host6
from .validate_logs import log_size, log_time

if TYPE_CHECKING:
    from .kernel.parse import HostAddr

# re-exported: the parsed form of -p, the IPv6 address check, the logs options
__all__ = ["PortSpec", "ipv6_address", "log_size", "log_time"]

MAX_NAME = 64
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def name(value: str, what: str = "name") -> str:
    if value is None or value == "":
        raise ValidationError(f"invalid {what}: it is empty")
    # fullmatch: `$` alone would accept a trailing newline ("net\n").
    if not NAME_RE.fullmatch(value) or not value.isascii():
        shown = value if len(value) <= 70 else value[:67] + "..."
        if len(value) > MAX_NAME and NAME_RE.fullmatch(value[:MAX_NAME] or "x"):
            raise ValidationError(f"invalid {what} {shown!r}: at most {MAX_NAME} characters")
        raise ValidationError(
            f"invalid {what} {shown!r}: use 1-{MAX_NAME} characters [a-zA-Z0-9_.-], starting with a letter or digit"
        )
    return value


def ipv4_address(value: str, what: str = "address") -> ipaddress.IPv4Address:
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValidationError(f"invalid {what} {value!r}: not an IPv4 address") from None
    if addr.version != 4:
        raise ValidationError(f"invalid {what} {value!r}: an IPv6 address where IPv4 is expected")
    return addr


def subnet(value: str, what: str = "subnet") -> ipaddress.IPv4Network:
    text = value.strip()
    if "/" not in text:
        raise ValidationError(f"invalid {what} {value!r}: expected CIDR notation such as 10.1.0.0/24")
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValidationError(f"invalid {what} {value!r}: not an IPv4 CIDR such as 10.1.0.0/24") from None
    if net.version != 4:
        raise ValidationError(f"invalid {what} {value!r}: an IPv6 subnet needs --ipv6")
    # Reject forms ipaddress accepts but people mistype ("10.0.0/24", "010.0.0.0/24").
    addr_part = text.split("/", 1)[0]
    if len(addr_part.split(".")) != 4:
        raise ValidationError(f"invalid {what} {value!r}: the address needs four octets, e.g. 10.0.0.0/24")
    host = ipaddress.ip_interface(text)
    if host.ip != net.network_address:
        raise ValidationError(f"invalid {what} {value!r}: host bits are set; did you mean {net}?")
    return net


# Ranges a bridge must never claim: its gateway address would shadow loopback (and cnet's
# 127.0.0.0/8 guard), link-local, multicast or the reserved/broadcast space.
RESERVED_RANGES = {
    ipaddress.IPv4Network("0.0.0.0/8"): "'this host' range",
    ipaddress.IPv4Network("127.0.0.0/8"): "loopback range",
    ipaddress.IPv4Network("169.254.0.0/16"): "link-local range",
    ipaddress.IPv4Network("224.0.0.0/4"): "multicast range",
    ipaddress.IPv4Network("240.0.0.0/4"): "reserved range",
}


def network_subnet(value: str) -> ipaddress.IPv4Network:
    net = subnet(value)
    for reserved, what in RESERVED_RANGES.items():
        if net.overlaps(reserved):
            raise ValidationError(f"invalid subnet {value!r}: it overlaps the {what} {reserved}")
    if net.prefixlen > 30:
        raise ValidationError(
            f"invalid subnet {value!r}: a /{net.prefixlen} has no room for a gateway and a container "
            "(use /30 or larger)"
        )
    return net


def subnets(values: Sequence[str], ipv6: bool) -> tuple[ipaddress.IPv4Network | None, ipaddress.IPv6Network | None]:
    """`--subnet` given up to twice (Docker's dual-stack form): at most one of each family, and an
    IPv6 one only with --ipv6."""
    v4: ipaddress.IPv4Network | None = None
    v6: ipaddress.IPv6Network | None = None
    for value in values:
        if ":" in value:
            if not ipv6:
                raise ValidationError(f"invalid subnet {value!r}: an IPv6 subnet needs --ipv6")
            if v6 is not None:
                raise ValidationError("only one IPv6 --subnet per network")
            v6 = network_subnet6(value)
        else:
            if v4 is not None:
                raise ValidationError("only one IPv4 --subnet per network")
            v4 = network_subnet(value)
    if ipv6 and v6 is None:
        raise ValidationError("--ipv6 needs an IPv6 --subnet, e.g. --subnet fd00:1::/64")
    return v4, v6


SQLITE_MAX_INT = 2**63 - 1


def integer(value: int, what: str, lo: int, hi: int = SQLITE_MAX_INT) -> int:
    """An integer argument within [lo, hi] (ids and counts end up in SQLite's 64-bit integers)."""
    if not lo <= value <= hi:
        raise ValidationError(f"invalid {what} {value}: must be between {lo} and {hi}")
    return value


def seconds(value: float, what: str) -> float:
    """A timeout: a finite number of seconds, 0 or more."""
    import math

    if not math.isfinite(value) or value < 0:
        raise ValidationError(f"invalid {what} {value:g}: must be a finite number of seconds, 0 or more")
    return value


def host_ip_of_this_host(ip: str, addrs: Sequence[HostAddr]) -> None:
    """A port mapping's host IP must be a unicast address of this host: one of its addresses (or
    any address of a loopback prefix, 127.0.0.0/8), never a subnet's network or broadcast
    address, although binding a socket to the latter succeeds."""
    if ":" in ip:
        if not any(":" in a.local and ipaddress.ip_address(a.local) == ipaddress.ip_address(ip) for a in addrs):
            raise ValidationError(f"host IP {ip} in port mapping is not an address of this host")
        return
    addr = ipaddress.IPv4Address(ip)
    addrs = [a for a in addrs if ":" not in a.local]
    for a in addrs:
        iface = ipaddress.IPv4Interface(f"{a.local}/{a.prefixlen}")
        is_broadcast = a.broadcast is not None and addr == ipaddress.IPv4Address(a.broadcast)
        if is_broadcast or (iface.network.prefixlen < 31 and addr == iface.network.broadcast_address):
            raise ValidationError(
                f"host IP {ip} in port mapping is the broadcast address of {iface} on this host, not a unicast address"
            )
        if iface.network.prefixlen < 31 and addr == iface.network.network_address:
            raise ValidationError(
                f"host IP {ip} in port mapping is the network address of {iface} on this host, not a unicast address"
            )
    if not any(addr == ipaddress.IPv4Address(a.local) for a in addrs) and not any(
        a.loopback and addr in ipaddress.IPv4Interface(f"{a.local}/{a.prefixlen}").network for a in addrs
    ):
        raise ValidationError(f"host IP {ip} in port mapping is not an address of this host")


def mtu(value: int) -> int:
    if not 576 <= value <= 65535:
        raise ValidationError(f"invalid MTU {value}: must be between 576 and 65535")
    return value


def port(value: str, what: str) -> int:
    # isdigit() alone takes '²' or Arabic-Indic digits, which int() then refuses or reads.
    if not (value.isascii() and value.isdigit()):
        raise ValidationError(f"invalid {what} {value!r}: not a number")
    n = int(value)
    if not 1 <= n <= 65535:
        raise ValidationError(f"invalid {what} {value!r}: must be between 1 and 65535")
    return n


def _port_range(text: str, what: str, spec: str) -> tuple[int, int]:
    if "-" in text:
        lo_s, hi_s = text.split("-", 1)
        lo, hi = port(lo_s, what), port(hi_s, what)
        if hi < lo:
            raise ValidationError(f"invalid port mapping {spec!r}: {what} range {text} ends before it starts")
        return lo, hi
    n = port(text, what)
    return n, n


def port_mapping(spec: str) -> list[PortSpec]:
    """Parse `[HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|/udp]` into one entry per port."""
    text = spec.strip()
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
        protocol = protocol.lower()
        if protocol not in ("tcp", "udp"):
            raise ValidationError(f"invalid port mapping {spec!r}: protocol {protocol!r} is not supported (tcp or udp)")
    if text.startswith("["):
        return _pairs(spec, *port_host6(spec, text), protocol)
    parts = text.split(":")
    if len(parts) == 2:
        host_ip, host_part, ctr_part = ALL_ADDRESSES, parts[0], parts[1]
    elif len(parts) == 3:
        host_ip = str(_host_ip(parts[0], spec)) if parts[0] else ALL_ADDRESSES
        host_part, ctr_part = parts[1], parts[2]
    else:
        raise ValidationError(
            f"invalid port mapping {spec!r}: expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp], e.g. 8085:80"
        )
    if len(parts) == 3 and parts[0].count(".") != 3 and parts[0]:
        raise ValidationError(f"invalid port mapping {spec!r}: {parts[0]!r} is not an IPv4 address")
    return _pairs(spec, host_ip, host_part, ctr_part, protocol)


def _pairs(spec: str, host_ip: str, host_part: str, ctr_part: str, protocol: str) -> list[PortSpec]:
    h_lo, h_hi = _port_range(host_part, "host port", spec)
    c_lo, c_hi = _port_range(ctr_part, "container port", spec)
    if (h_hi - h_lo) != (c_hi - c_lo):
        raise ValidationError(
            f"invalid port mapping {spec!r}: host range has {h_hi - h_lo + 1} ports, container range {c_hi - c_lo + 1}"
        )
    pairs = zip(range(h_lo, h_hi + 1), range(c_lo, c_hi + 1), strict=True)
    return [PortSpec(host_ip, h, c, protocol) for h, c in pairs]


def _host_ip(text: str, spec: str) -> ipaddress.IPv4Address:
    """A port mapping's host IP: 0.0.0.0 (every address) or one unicast address. Whether this host
    has it (and that it is not a subnet's broadcast address here) is checked against the host."""
    addr = ipv4_address(text, "host IP in port mapping")
    if (
        addr.is_multicast
        or addr == ipaddress.IPv4Address("255.255.255.255")
        or (addr.is_reserved and not addr.is_unspecified)
    ):
        raise ValidationError(f"invalid port mapping {spec!r}: host IP {addr} is not a unicast address")
    return addr


def env_pair(value: str) -> tuple[str, str]:
    if "=" not in value:
        raise ValidationError(f"invalid environment variable {value!r}: expected KEY=VALUE")
    key, val = value.split("=", 1)
    if not ENV_KEY_RE.fullmatch(key):
        raise ValidationError(f"invalid environment variable name {key!r}")
    if "\0" in val:
        raise ValidationError(f"invalid value for {key}: contains a NUL byte")
    return key, val


def hostname(value: str) -> str:
    if not re.fullmatch(r"[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})", value or ""):
        raise ValidationError(
            f"invalid hostname {value!r}: 1-63 characters [a-zA-Z0-9.-], starting with a letter or digit"
        )
    return value


DEFAULT_COMMAND = ("/bin/sh",)
# Without a network option a container joins this network, created on first use (Docker's
# `bridge`, podman's `podman`); `--net none` gives a loopback-only container.
DEFAULT_NETWORK = "cnet"
NO_NETWORK = "none"
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,254}$")


def label(value: str) -> tuple[str, str]:
    """`KEY=VALUE` or `KEY` (empty value), as Docker's --label."""
    key, _, val = value.partition("=")
    if not LABEL_KEY_RE.fullmatch(key) or not key.isascii():
        raise ValidationError(
            f"invalid label {value!r}: the key needs 1-255 characters [a-zA-Z0-9_.:/-], starting with a letter or digit"
        )
    if "\0" in val:
        raise ValidationError(f"invalid label {key}: the value contains a NUL byte")
    return key, val


def labels(values: Sequence[str]) -> dict[str, str]:
    return dict(label(v) for v in values)


PS_FILTERS = ("name", "label", "status", "network", "id", "stack")
STATES = ("creating", "running", "restarting", "exited", "removing")


def ps_filter(value: str) -> tuple[str, str]:
    """`KEY=VALUE` of `ps --filter` (Docker's keys cnet has)."""
    key, eq, val = value.partition("=")
    if not eq or key not in PS_FILTERS:
        raise ValidationError(f"invalid filter {value!r}: use KEY=VALUE with KEY one of {', '.join(PS_FILTERS)}")
    if key == "status" and val not in STATES:
        raise ValidationError(f"invalid filter {value!r}: status is one of {', '.join(STATES)}")
    if not val:
        raise ValidationError(f"invalid filter {value!r}: the value is empty")
    return key, val


def run_networks(networks: Sequence[str]) -> tuple[str, ...]:
    """The networks a container joins: the default network when none is given, none for `none`."""
    if not networks:
        return (DEFAULT_NETWORK,)
    if NO_NETWORK in networks:
        if len(networks) > 1:
            raise ValidationError("--net none cannot be combined with other networks")
        return ()
    nets = tuple(_check_name(n, "network name") for n in networks)
    if len(set(nets)) != len(nets):
        raise ValidationError("the same network is given twice")
    return nets


def run_request(
    *,
    name: str | None,
    networks: Sequence[str],
    ports: Sequence[str],
    ip: str | None,
    hostname: str | None,
    env: Sequence[str],
    command: Sequence[str],
    labels: Sequence[str] = (),
    aliases: Sequence[str] = (),
    restart: str = "no",
    init: bool = False,
    interactive: bool = False,
    tty: bool = False,
    remove: bool = False,
    log_max_size: str | None = None,
    ip6: str | None = None,
) -> RunRequest:
    """Everything `cnet run` was given, checked before the state or the kernel is touched."""
    if name is not None:
        _check_name(name, "container name")
    if ip is not None and not networks:
        # As Docker: a static address only on a network the user chose.
        raise ValidationError("--ip needs a network (--net)")
    nets = run_networks(networks)
    specs: list[PortSpec] = []
    for p in ports:
        specs += port_mapping(p)
    seen: set[tuple[str, int, str]] = set()
    for s in specs:
        key = (s.host_ip, s.host_port, s.protocol)
        if key in seen or any(k[1:] == key[1:] and ALL_ADDRESSES in (k[0], key[0]) for k in seen):
            raise ValidationError(f"host port {s.host_port}/{s.protocol} is given twice")
        seen.add(key)
    if specs and not nets:
        raise ValidationError("publishing ports (-p) needs a network (not --net none)")
    if ip is not None:
        if not nets:
            raise ValidationError("--ip needs a network (not --net none)")
        ipv4_address(ip, "IP address")
    if ip6 is not None:
        if not networks or not nets:
            raise ValidationError("--ip6 needs a network (--net)")
        ipv6_address(ip6, "IPv6 address")
    if hostname is not None:
        _check_hostname(hostname)
    env_pairs = dict(env_pair(e) for e in env)
    cmdline = tuple(command) or DEFAULT_COMMAND
    if any("\0" in a for a in cmdline):
        raise ValidationError("the command contains a NUL byte")
    for a in aliases:
        _check_hostname(a)
    if aliases and not nets:
        raise ValidationError("--network-alias needs a network (not --net none)")
    policy, max_restarts = restart_policy(restart)
    if remove and policy != RestartPolicy.NO:
        raise ValidationError(
            "--restart and --rm conflict: a container that is removed when it exits is never restarted"
        )
    return RunRequest(
        name=name,
        networks=nets,
        ports=tuple(specs),
        ip=ip,
        hostname=hostname,
        env=env_pairs,
        command=cmdline,
        labels=_labels(labels),
        aliases=tuple(dict.fromkeys(aliases)),
        restart=policy,
        restart_max=max_restarts,
        init=init,
        interactive=interactive,
        tty=tty,
        **({"log_max_size": log_size(log_max_size)} if log_max_size is not None else {}),
        ip6=ip6,
    )


def restart_policy(text: str) -> tuple[RestartPolicy, int]:
    """--restart no | on-failure[:N] | always | unless-stopped, as Docker spells it."""
    name, _, count = text.partition(":")
    try:
        policy = RestartPolicy(name)
    except ValueError:
        raise ValidationError(
            f"invalid restart policy {text!r}: use no, on-failure[:N], always or unless-stopped"
        ) from None
    if not count:
        if _:
            raise ValidationError(f"invalid restart policy {text!r}: on-failure:N needs a number")
        return policy, 0
    if policy != RestartPolicy.ON_FAILURE:
        raise ValidationError(f"invalid restart policy {text!r}: only on-failure takes a maximum retry count")
    if not (count.isascii() and count.isdigit()) or len(count) > 6:
        raise ValidationError(f"invalid restart policy {text!r}: the retry count must be a number")
    return policy, int(count)


# The parameters of run_request() shadow these two checks.
_check_name = name
_check_hostname = hostname
_labels = labels
