"""The CNI protocol (spec 1.1.0), pure: what a runtime hands the plugin and what it gets back.

A runtime (libcni in podman, containerd, CRI-O) execs the plugin with `CNI_*` environment
variables and the network configuration as JSON on stdin, then reads one JSON document from
stdout: a result, a version report, or an error with a numeric code. This module turns the
environment and stdin into frozen values (raising CniError with the spec's code for anything
wrong) and builds the output documents in the version the configuration asked for. No I/O, no
kernel, no database: every rule here is testable with plain dictionaries.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from ..errors import (
    AllocationError,
    CnetError,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from ..records import ALL_ADDRESSES, PortSpec
from .versions import LATEST, SUPPORTED_VERSIONS

COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")
# The configuration key spec 1.1.0 gives GC the attachments the runtime still uses.
VALID_ATTACHMENTS = "cni.dev/valid-attachments"
# Configuration keys cnet does itself, so a config naming them would be silently misread.
UNSUPPORTED_KEYS = {"ipam": 'cnet allocates addresses itself (drop the "ipam" section)'}


# The spec version each newer verb arrived with.
VERB_SINCE = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}


class Code(IntEnum):
    """Error codes: 1-99 are the spec's (50-99 for STATUS), 100 and up are cnet's own."""

    INCOMPATIBLE_VERSION = 1
    UNSUPPORTED_FIELD = 2
    UNKNOWN_CONTAINER = 3
    INVALID_ENVIRONMENT = 4
    IO_FAILURE = 5
    DECODE_FAILURE = 6
    INVALID_CONFIG = 7
    TRY_AGAIN_LATER = 11
    NOT_AVAILABLE = 50
    COMMAND_FAILED = 100  # a kernel command failed; everything was rolled back
    CONFLICT = 101  # a host port already mapped, an address already held, an attachment twice
    NO_ADDRESS = 102  # the network has no free address left
    CHECK_FAILED = 103  # CHECK: the kernel does not hold what the attachment's record says
    PERMISSION = 104  # not root
    INTERNAL = 199  # a bug in cnet


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code = int(code)
        self.msg = msg
        self.details = details


def error_from(exc: BaseException) -> CniError:
    """A CNI error for any exception a verb can raise: cnet's error tree has one code per kind."""
    if isinstance(exc, CniError):
        return exc
    if isinstance(exc, (ValidationError, NotFound)):
        return CniError(Code.INVALID_CONFIG, str(exc))
    if isinstance(exc, Conflict):
        return CniError(Code.CONFLICT, str(exc))
    if isinstance(exc, AllocationError):
        return CniError(Code.NO_ADDRESS, str(exc))
    if isinstance(exc, PermissionDenied):
        return CniError(Code.PERMISSION, str(exc))
    if isinstance(exc, CnetError):
        return CniError(Code.COMMAND_FAILED, str(exc))
    if isinstance(exc, KeyboardInterrupt):  # SIGTERM from the runtime (see cnet.cli.cni_plugin)
        return CniError(Code.TRY_AGAIN_LATER, "interrupted; what this call had changed was rolled back")
    text = str(exc).lower()
    if type(exc).__name__ == "OperationalError" and ("locked" in text or "busy" in text):
        return CniError(Code.TRY_AGAIN_LATER, "the cnet state database is busy", str(exc))
    if isinstance(exc, OSError):
        return CniError(Code.IO_FAILURE, f"{type(exc).__name__}: {exc}")
    return CniError(Code.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")


# --- the environment ----------------------------------------------------------------------------
# Characters `ip -batch` would read as quoting or a comment: names and paths carrying them are refused.
UNQUOTABLE = "\"'\\#"
CONTAINER_ID_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,255}")
IFNAME_MAX = 15


@dataclass(frozen=True)
class Env:
    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: tuple[tuple[str, str], ...] = ()
    path: str = ""

    def arg(self, key: str) -> str | None:
        return dict(self.args).get(key)


def parse_env(environ: Mapping[str, str]) -> Env:
    """The CNI_* variables for one call; raises CniError(4) naming the first bad one."""
    command = environ.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        raise CniError(Code.INVALID_ENVIRONMENT, f"CNI_COMMAND {command!r} is not one of {', '.join(COMMANDS)}")
    env = Env(
        command=command,
        container_id=environ.get("CNI_CONTAINERID", ""),
        netns=environ.get("CNI_NETNS", ""),
        ifname=environ.get("CNI_IFNAME", ""),
        args=parse_args(environ.get("CNI_ARGS", "")),
        path=environ.get("CNI_PATH", ""),
    )
    if command in ("ADD", "DEL", "CHECK"):
        if not CONTAINER_ID_RE.fullmatch(env.container_id):
            raise CniError(
                Code.INVALID_ENVIRONMENT,
                f"CNI_CONTAINERID {env.container_id!r} is invalid: "
                "letters, digits, '_', '.', '-', starting with a letter or digit",
            )
        check_ifname(env.ifname)
    if command in ("ADD", "CHECK") and not env.netns:
        raise CniError(Code.INVALID_ENVIRONMENT, f"CNI_NETNS is required for {command}")
    if env.netns and (not env.netns.startswith("/") or any(c in UNQUOTABLE or c.isspace() for c in env.netns)):
        raise CniError(Code.INVALID_ENVIRONMENT, f"CNI_NETNS {env.netns!r} is not an absolute path cnet can use")
    return env


def check_ifname(name: str) -> str:
    """The spec's interface-name rules (and the kernel's 15-byte limit)."""
    if not name:
        raise CniError(Code.INVALID_ENVIRONMENT, "CNI_IFNAME is required")
    if len(name.encode()) > IFNAME_MAX or name in (".", "..") or any(c in "/:" or c.isspace() for c in name):
        raise CniError(
            Code.INVALID_ENVIRONMENT,
            f"CNI_IFNAME {name!r} is invalid: at most {IFNAME_MAX} bytes, no '/', ':' or whitespace, not '.' or '..'",
        )
    if not name.isprintable() or any(c in UNQUOTABLE for c in name):
        raise CniError(
            Code.INVALID_ENVIRONMENT,
            f"CNI_IFNAME {name!r} is invalid: quotes, '#', '\\' and unprintable characters are refused",
        )
    return name


def parse_args(text: str) -> tuple[tuple[str, str], ...]:
    """CNI_ARGS `K=V;K2=V2` (IgnoreUnknown=1, K8S_POD_NAME=...); pairs without '=' are dropped."""
    out = []
    for part in text.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out.append((k.strip(), v.strip()))
    return tuple(out)


# --- the configuration on stdin -----------------------------------------------------------------
@dataclass(frozen=True)
class StaticIP:
    address: str
    prefix_len: int | None  # None: the network's own
    version: int = 4


@dataclass(frozen=True)
class NetConf:
    cni_version: str
    name: str
    network: str  # the cnet network: "network", else the configuration's "name"
    state_dir: str | None = None
    port_mappings: tuple[PortSpec, ...] = ()
    ips: tuple[StaticIP, ...] = ()
    mac: str | None = None
    dns: dict | None = None  # runtimeConfig.dns as a result's "dns" (nameservers, search, options)
    prev_result: dict | None = None
    valid_attachments: tuple[tuple[str, str], ...] | None = None  # GC: (container id, ifname)
    raw: dict = field(default_factory=dict, compare=False, repr=False)


def parse_config(data: bytes | str, command: str) -> NetConf:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CniError(Code.DECODE_FAILURE, "the network configuration on stdin is not valid JSON", str(exc)) from None
    if not isinstance(doc, dict):
        raise CniError(Code.DECODE_FAILURE, "the network configuration on stdin is not a JSON object")
    version = check_version(doc.get("cniVersion"))
    needs = VERB_SINCE.get(command)
    if needs and SUPPORTED_VERSIONS.index(version) < SUPPORTED_VERSIONS.index(needs):
        # As the reference plugins (skel) answer: the verb did not exist in that version.
        raise CniError(Code.INCOMPATIBLE_VERSION, f"config version {version} does not allow {command} (needs {needs})")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise CniError(Code.INVALID_CONFIG, 'the network configuration has no "name"')
    network = doc.get("network", name)
    if not isinstance(network, str) or not network:
        raise CniError(Code.INVALID_CONFIG, '"network" must name a cnet network')
    for key, why in UNSUPPORTED_KEYS.items():
        if key in doc:
            raise CniError(Code.UNSUPPORTED_FIELD, f"unsupported field {key!r}: {why}")
    state_dir = doc.get("stateDir")
    if state_dir is not None and (not isinstance(state_dir, str) or not state_dir.startswith("/")):
        raise CniError(Code.INVALID_CONFIG, '"stateDir" must be an absolute path')
    rc = doc.get("runtimeConfig") or {}
    if not isinstance(rc, dict):
        raise CniError(Code.INVALID_CONFIG, '"runtimeConfig" must be an object')
    prev = doc.get("prevResult")
    valid = None
    if command == "GC":
        valid = parse_valid_attachments(doc.get(VALID_ATTACHMENTS, []))
    return NetConf(
        cni_version=version,
        name=name,
        network=network,
        state_dir=state_dir,
        port_mappings=parse_port_mappings(rc.get("portMappings") or []) if command == "ADD" else (),
        ips=parse_ips(rc.get("ips") or []) if command == "ADD" else (),
        mac=parse_mac(rc.get("mac")) if command == "ADD" else None,
        dns=parse_dns(rc.get("dns")) if command == "ADD" else None,
        prev_result=prev if isinstance(prev, dict) else None,
        valid_attachments=valid,
        raw=doc,
    )


def check_version(version: object) -> str:
    if version is None:
        raise CniError(Code.INVALID_CONFIG, 'the network configuration has no "cniVersion"')
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            Code.INCOMPATIBLE_VERSION,
            f"CNI version {version!r} is not supported",
            f"supported versions: {', '.join(SUPPORTED_VERSIONS)}",
        )
    return version


def _int(value: object, what: str) -> int:
    # JSON numbers only: a bool is an int to Python, "80" and 80.5 are no ports.
    if isinstance(value, bool) or not isinstance(value, int):
        raise CniError(Code.INVALID_CONFIG, f"{what} must be an integer, not {value!r}")
    if not 1 <= value <= 65535:
        raise CniError(Code.INVALID_CONFIG, f"{what} {value} is not between 1 and 65535")
    return value


def parse_port_mappings(items: object) -> tuple[PortSpec, ...]:
    if not isinstance(items, list):
        raise CniError(Code.INVALID_CONFIG, "runtimeConfig.portMappings must be a list")
    out: list[PortSpec] = []
    for item in items:
        if not isinstance(item, dict):
            raise CniError(Code.INVALID_CONFIG, f"port mapping {item!r} is not an object")
        # containerd (go-cni) sends HostPort, ContainerPort, Protocol, HostIP: its struct has no JSON
        # tags, and Go's decoder (the reference portmap plugin's) matches keys case-insensitively.
        item = {str(k).lower(): v for k, v in item.items()}
        host_port = _int(item.get("hostport"), "hostPort")
        container_port = _int(item.get("containerport"), "containerPort")
        protocol = item.get("protocol") or "tcp"
        if not isinstance(protocol, str) or protocol.lower() not in ("tcp", "udp"):
            raise CniError(Code.INVALID_CONFIG, f"port mapping protocol {protocol!r} is not supported (tcp or udp)")
        host_ip = item.get("hostip") or ALL_ADDRESSES
        out.append(PortSpec(_host_ip(host_ip), host_port, container_port, protocol.lower()))
    seen: set[tuple[str, int, str]] = set()
    for p in out:
        if any(
            k[1:] == (p.host_port, p.protocol) and (k[0] == p.host_ip or ALL_ADDRESSES in (k[0], p.host_ip))
            for k in seen
        ):
            raise CniError(Code.INVALID_CONFIG, f"host port {p.host_port}/{p.protocol} is mapped twice")
        seen.add((p.host_ip, p.host_port, p.protocol))
    return tuple(out)


def _host_ip(value: object) -> str:
    try:
        addr = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        addr = None
    if addr is None:
        raise CniError(Code.INVALID_CONFIG, f"port mapping hostIP {value!r} is not an IP address")
    if addr.version == 6:
        # As `run -p [IPV6]:...` (validate6.port_host6): published on that address only, on a
        # dual-stack network (ADD checks).
        if addr.is_loopback:
            raise CniError(
                Code.INVALID_CONFIG,
                f"port mapping hostIP {value}: the kernel cannot DNAT to ::1 (there is no IPv6 route_localnet)",
            )
        if addr.is_unspecified:
            raise CniError(
                Code.INVALID_CONFIG, f"port mapping hostIP {value}: for every address leave hostIP out or empty"
            )
        if addr.is_multicast or addr.is_link_local:
            raise CniError(Code.INVALID_CONFIG, f"port mapping hostIP {value} is not a global unicast address")
        return str(addr)
    if addr.is_multicast or addr.is_reserved or str(addr) == "255.255.255.255":
        raise CniError(Code.INVALID_CONFIG, f"port mapping hostIP {value} is not a unicast address")
    return str(addr)


def parse_ips(items: object) -> tuple[StaticIP, ...]:
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise CniError(Code.INVALID_CONFIG, "runtimeConfig.ips must be a list of addresses")
    out = []
    for text in items:
        try:
            iface = ipaddress.ip_interface(text)
        except ValueError:
            raise CniError(Code.INVALID_CONFIG, f"requested IP {text!r} is not an address") from None
        out.append(StaticIP(str(iface.ip), iface.network.prefixlen if "/" in text else None, iface.version))
    # An attachment has one address per family (IPv6 on a dual-stack network only: ADD checks).
    for version in (4, 6):
        n = sum(1 for i in out if i.version == version)
        if n > 1:
            raise CniError(Code.INVALID_CONFIG, f"{n} IPv{version} addresses requested: a cnet attachment has one")
    return tuple(out)


# runtimeConfig.dns (containerd: Servers, Searches, Options from the pod's dns_config) and the
# result's "dns" keys they become.
DNS_KEYS = {"servers": "nameservers", "searches": "search", "options": "options"}


def parse_dns(value: object) -> dict | None:
    """The result's "dns" for runtimeConfig.dns; None when there is nothing to report."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        raise CniError(Code.INVALID_CONFIG, "runtimeConfig.dns must be an object")
    out: dict[str, list[str]] = {}
    for key, items in value.items():
        target = DNS_KEYS.get(str(key).lower())
        if target is None or items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise CniError(Code.INVALID_CONFIG, f"runtimeConfig.dns.{key} must be a list of strings")
        if target == "nameservers":
            for server in items:
                try:
                    ipaddress.ip_address(server)
                except ValueError:
                    raise CniError(Code.INVALID_CONFIG, f"DNS server {server!r} is not an IP address") from None
        if items:
            out[target] = list(items)
    return out or None


MAC_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


def parse_mac(value: object) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not MAC_RE.fullmatch(value):
        raise CniError(Code.INVALID_CONFIG, f"requested MAC {value!r} is not of the form aa:bb:cc:dd:ee:ff")
    first = int(value[:2], 16)
    if first & 1 or value.replace(":", "") == "0" * 12:
        raise CniError(Code.INVALID_CONFIG, f"requested MAC {value} is not a unicast address")
    return value.lower()


def parse_valid_attachments(items: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(items, list):
        raise CniError(Code.INVALID_CONFIG, f"{VALID_ATTACHMENTS} must be a list")
    out = []
    for item in items:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("containerID"), str)
            or not isinstance(item.get("ifname"), str)
        ):
            raise CniError(Code.INVALID_CONFIG, f"{VALID_ATTACHMENTS} entry {item!r} needs containerID and ifname")
        out.append((item["containerID"], item["ifname"]))
    return tuple(out)


# --- the output documents -------------------------------------------------------------------------
def error_document(version: str | None, err: CniError) -> dict:
    doc = {"cniVersion": version if version in SUPPORTED_VERSIONS else LATEST, "code": err.code, "msg": err.msg}
    if err.details:
        doc["details"] = err.details
    return doc


@dataclass(frozen=True)
class Attachment:
    """What a result reports about one attachment (built by the service from its records)."""

    bridge: str
    host_veth: str
    ifname: str
    mac: str
    sandbox: str
    ip: str
    prefix_len: int
    gateway: str
    default_route: bool
    mtu: int
    ip6: str | None = None  # dual stack: the IPv6 address, its prefix length and gateway
    prefix6_len: int | None = None
    gateway6: str | None = None


def result_document(version: str, a: Attachment, dns: dict | None = None) -> dict:
    """The ADD result in the configuration's version: interfaces (bridge, host veth, the one in
    the sandbox), the addresses on the sandbox interface (IPv4, then IPv6 on a dual-stack
    network), the default routes, and the DNS settings the runtime passed (runtimeConfig.dns;
    empty without)."""
    new_style = version not in ("0.3.0", "0.3.1", "0.4.0")
    sandbox: dict[str, object] = {"name": a.ifname, "mac": a.mac, "sandbox": a.sandbox}
    if version == "1.1.0":
        sandbox["mtu"] = a.mtu
    families: list[tuple[str, str, str | None, str]] = [("4", f"{a.ip}/{a.prefix_len}", a.gateway, "0.0.0.0/0")]
    if a.ip6:
        families.append(("6", f"{a.ip6}/{a.prefix6_len}", a.gateway6, "::/0"))
    ips: list[dict[str, object]] = []
    for family, address, gateway, _ in families:
        ip: dict[str, object] = {"address": address, "gateway": gateway, "interface": 2}
        # Up to 0.4.0 each entry names its family; 1.0.0 dropped the key (the address tells).
        ips.append(ip if new_style else {"version": family, **ip})
    return {
        "cniVersion": version,
        "interfaces": [{"name": a.bridge}, {"name": a.host_veth}, sandbox],
        "ips": ips,
        "routes": [{"dst": dst, "gw": gw} for _, _, gw, dst in families] if a.default_route else [],
        "dns": dict(dns or {}),
    }
