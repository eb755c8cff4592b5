"""The stack file: TOML (stdlib tomllib), keys named as in compose where they mean the same.

    name = "shop"                       # optional: else the file's directory name, as compose
    [networks.front]                    # subnet, gateway, ip_range, internal, mtu, driver, labels
    subnet = "175.50.0.0/24"
    [containers.web]                    # command, networks, ports, environment, hostname, ip,
    command = ["python3", "-m", "http.server", "80"]   # restart, init, labels, scale
    networks = ["front"]
    ports = ["8085:80"]

Every value goes through cnet.validate (the rules of `cnet run` and `net create`), and every error
names its key: `containers.web.ports[1]: invalid port mapping ...`. Pure: the file against itself;
services.stack.check compares it with what already exists.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ... import validate
from ...errors import CnetError, ValidationError
from ...records import ALL_ADDRESSES, RunRequest

T = TypeVar("T")

STACK_LABEL = "cnet.stack"  # the stack a container or network belongs to
HASH_LABEL = "cnet.stack.hash"  # its definition's digest: `up` recreates it when this changes
SERVICE_LABEL = "cnet.stack.service"  # the [containers.NAME] it is a replica of
RESERVED_PREFIX = "cnet.stack"
MAX_SCALE = 1000

TOP_KEYS = ("name", "networks", "containers")
NETWORK_KEYS = ("subnet", "gateway", "ip_range", "internal", "mtu", "driver", "labels")
CONTAINER_KEYS = (
    "command",
    "networks",
    "ports",
    "environment",
    "hostname",
    "ip",
    "restart",
    "init",
    "labels",
    "scale",
)


@dataclass(frozen=True)
class NetworkDef:
    key: str  # networks.NAME
    name: str
    subnet: str | None
    gateway: str | None
    ip_range: str | None
    internal: bool
    mtu: int
    driver: str
    labels: dict[str, str]
    digest: str


@dataclass(frozen=True)
class ContainerDef:
    """One replica: `web` (scale 1) or `web-1` ... `web-N`."""

    key: str  # containers.NAME
    service: str
    request: RunRequest  # labels include the stack's own
    digest: str
    port_keys: tuple[str, ...] = ()  # the key of each of request.ports

    @property
    def name(self) -> str:
        assert self.request.name is not None
        return self.request.name


@dataclass(frozen=True)
class StackSpec:
    name: str
    path: str
    networks: list[NetworkDef] = field(default_factory=list)
    containers: list[ContainerDef] = field(default_factory=list)


def at(key: str, check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one validation, check(*args, **kwargs), naming the key in its error."""
    try:
        return check(*args, **kwargs)
    except CnetError as exc:
        raise ValidationError(f"{key}: {exc}") from None


def _typed(key: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValidationError(f"{key}: must be {what}")
    return value


def _table(key: str, value: Any) -> dict[str, Any]:
    return dict(_typed(key, value, dict, "a table"))


def _unknown(key: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for k in table:
        if k not in allowed:
            where = f"{key}.{k}" if key else k
            raise ValidationError(f"{where}: unknown key (known: {', '.join(allowed)})")


def _str_list(key: str, value: Any) -> list[str]:
    items = _typed(key, value, list, "a list of strings")
    for i, v in enumerate(items):
        _typed(f"{key}[{i}]", v, str, "a string")
    return list(items)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _pairs(key: str, value: Any) -> list[tuple[str, str]]:
    """A table (`KEY = "value"`) or a list of "KEY=VALUE" strings, as compose takes both."""
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            _typed(f"{key}.{k}", v, (str, int, float, bool), "a string, number or boolean")
            out.append((k, _scalar(v)))
        return out
    return [(item.partition("=")[0], item) for item in _str_list(key, value)]


def _labels(key: str, value: Any) -> dict[str, str]:
    labels: dict[str, str] = {}
    for i, (k, item) in enumerate(_pairs(key, value)):
        where = f"{key}.{k}" if isinstance(value, dict) else f"{key}[{i}]"
        text = f"{k}={item}" if isinstance(value, dict) else item
        lk, lv = at(where, validate.label, text)
        if lk.startswith(RESERVED_PREFIX):
            raise ValidationError(f"{where}: the label keys {RESERVED_PREFIX}* are cnet's own")
        labels[lk] = lv
    return labels


def digest(definition: dict[str, Any]) -> str:
    """What `up` compares with the recorded label (compose's config hash)."""
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


def stack_name_for(path: Path, data: dict[str, Any]) -> str:
    """The top-level `name`, else the file's directory name (compose's project name: lower case,
    other characters than [a-z0-9_-] dropped)."""
    if "name" in data:
        return at("name", validate.name, _typed("name", data["name"], str, "a string"), "stack name")
    guess = re.sub(r"[^a-z0-9_-]", "", path.resolve().parent.name.lower()) or path.stem
    return at("name", validate.name, guess, "stack name (from the directory; set `name`)")


def load(path: Path, stack: str | None = None) -> StackSpec:
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, path, stack)


def parse(data: dict[str, Any], path: Path, stack: str | None = None) -> StackSpec:
    _unknown("", data, TOP_KEYS)
    name = at("--stack", validate.name, stack, "stack name") if stack else stack_name_for(path, data)
    nets = [_network(n, v) for n, v in _table("networks", data.get("networks", {})).items()]
    containers: list[ContainerDef] = []
    for service, table in _table("containers", data.get("containers", {})).items():
        containers += _containers(name, service, table)
    spec = StackSpec(name, str(path), nets, containers)
    check_consistent(spec)
    return spec


def _network(name: str, value: Any) -> NetworkDef:
    key = f"networks.{name}"
    t = _table(key, value)
    _unknown(key, t, NETWORK_KEYS)
    at(key, validate.name, name, "network name")
    if name == validate.NO_NETWORK:
        raise ValidationError(f"{key}: `{name}` means no network")
    subnet = _typed(f"{key}.subnet", t["subnet"], str, "a string") if "subnet" in t else None
    if subnet is not None:
        subnet = str(at(f"{key}.subnet", validate.network_subnet, subnet))
    gateway = _typed(f"{key}.gateway", t["gateway"], str, "a string") if "gateway" in t else None
    ip_range = _typed(f"{key}.ip_range", t["ip_range"], str, "a string") if "ip_range" in t else None
    if subnet is None and (gateway or ip_range):
        raise ValidationError(f"{key}: gateway and ip_range need a subnet")
    if subnet is not None:
        net = ipaddress.IPv4Network(subnet)
        if gateway is not None:
            gw = at(f"{key}.gateway", validate.ipv4_address, gateway, "gateway")
            if gw not in net or gw in (net.network_address, net.broadcast_address):
                raise ValidationError(f"{key}.gateway: {gw} is not a host address of subnet {net}")
        if ip_range is not None:
            rng = at(f"{key}.ip_range", validate.subnet, ip_range, "ip range")
            if not rng.subnet_of(net):
                raise ValidationError(f"{key}.ip_range: {rng} is not inside subnet {net}")
    mtu = at(f"{key}.mtu", validate.mtu, _typed(f"{key}.mtu", t.get("mtu", 1500), int, "a number"))
    driver = _typed(f"{key}.driver", t.get("driver", "bridge"), str, "a string")
    if driver != "bridge":
        raise ValidationError(f"{key}.driver: unknown driver {driver!r}: only 'bridge' is supported")
    internal = _typed(f"{key}.internal", t.get("internal", False), bool, "true or false")
    labels = _labels(f"{key}.labels", t.get("labels", {}))
    fields = {"subnet": subnet, "gateway": gateway, "ip_range": ip_range, "internal": internal, "mtu": mtu}
    return NetworkDef(
        key, name, subnet, gateway, ip_range, internal, mtu, driver, labels, digest(fields | {"labels": labels})
    )


def spread_port(key: str, text: str, scale: int, index: int) -> str:
    """Replica `index` (0-based) of `scale`: a host port range of scale x the container ports is
    cut into one slice per replica (`8081-8083:80` with scale 3: 8081:80, 8082:80, 8083:80)."""
    if scale == 1:
        at(key, validate.port_mapping, text)
        return text
    body, slash, proto = text.strip().rpartition("/") if "/" in text else (text.strip(), "", "")
    parts = body.split(":")
    if len(parts) not in (2, 3):
        at(key, validate.port_mapping, text)  # says what is wrong
    host_lo, host_hi = _range(key, parts[-2], "host port")
    ctr_lo, ctr_hi = _range(key, parts[-1], "container port")
    per = ctr_hi - ctr_lo + 1
    if host_hi - host_lo + 1 != per * scale:
        raise ValidationError(
            f"{key}: {host_hi - host_lo + 1} host port(s) for {scale} replicas of {per} port(s): give a host range "
            f"of {per * scale} ports, one slice per replica (e.g. {host_lo}-{host_lo + per * scale - 1}:{parts[-1]})"
        )
    first = host_lo + index * per
    host = f"{first}-{first + per - 1}" if per > 1 else str(first)
    mine = ":".join([*parts[:-2], host, parts[-1]]) + (slash + proto)
    at(key, validate.port_mapping, mine)
    return mine


def _range(key: str, text: str, what: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    first = at(key, validate.port, lo, what)
    last = at(key, validate.port, hi, what) if hi else first
    if last < first:
        raise ValidationError(f"{key}: {what} range {text} ends before it starts")
    return first, last


def _command(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValidationError(f"{key}: {exc}") from None
    return _str_list(key, value)


def _containers(stack: str, service: str, value: Any) -> list[ContainerDef]:
    key = f"containers.{service}"
    t = _table(key, value)
    _unknown(key, t, CONTAINER_KEYS)
    at(key, validate.name, service, "container name")
    scale = at(
        f"{key}.scale",
        validate.integer,
        _typed(f"{key}.scale", t.get("scale", 1), int, "a number"),
        "scale",
        1,
        MAX_SCALE,
    )
    command = _command(f"{key}.command", t.get("command", []))
    networks = _str_list(f"{key}.networks", t.get("networks", []))
    for i, n in enumerate(networks):
        if n != validate.NO_NETWORK:
            at(f"{key}.networks[{i}]", validate.name, n, "network name")
    ports = _str_list(f"{key}.ports", t.get("ports", []))
    env = _pairs(f"{key}.environment", t.get("environment", {}))
    env_list = [f"{k}={v}" if isinstance(t.get("environment"), dict) else v for k, v in env]
    for i, (k, item) in enumerate(zip([k for k, _ in env], env_list, strict=True)):
        where = f"{key}.environment.{k}" if isinstance(t.get("environment"), dict) else f"{key}.environment[{i}]"
        at(where, validate.env_pair, item)
    hostname = _typed(f"{key}.hostname", t["hostname"], str, "a string") if "hostname" in t else None
    if hostname is not None:
        at(f"{key}.hostname", validate.hostname, hostname)
    ip = _typed(f"{key}.ip", t["ip"], str, "a string") if "ip" in t else None
    if ip is not None:
        at(f"{key}.ip", validate.ipv4_address, ip, "IP address")
        if scale > 1:
            raise ValidationError(f"{key}.ip: one static address cannot go to {scale} replicas")
    restart = _typed(f"{key}.restart", t.get("restart", "no"), str, "a string")
    at(f"{key}.restart", validate.restart_policy, restart)
    init = _typed(f"{key}.init", t.get("init", False), bool, "true or false")
    labels = _labels(f"{key}.labels", t.get("labels", {}))
    out = []
    for index in range(scale):
        name = service if scale == 1 else f"{service}-{index + 1}"
        mine = [spread_port(f"{key}.ports[{i}]", p, scale, index) for i, p in enumerate(ports)]
        req = at(
            key,
            validate.run_request,
            name=name,
            networks=networks,
            ports=mine,
            ip=ip,
            hostname=hostname,
            env=env_list,
            command=command,
            labels=[f"{k}={v}" for k, v in labels.items()],
            restart=restart,
            init=init,
        )
        definition = {
            "command": list(req.command),
            "networks": list(req.networks),
            "ports": [p.render() for p in req.ports],
            "env": req.env,
            "hostname": hostname,
            "ip": ip,
            "restart": restart,
            "init": init,
            "labels": labels,
        }
        h = digest(definition)
        own = {STACK_LABEL: stack, SERVICE_LABEL: service, HASH_LABEL: h}
        port_keys = tuple(f"{key}.ports[{i}]" for i, p in enumerate(mine) for _ in validate.port_mapping(p))
        out.append(ContainerDef(key, service, _with_labels(req, labels | own), h, port_keys))
    return out


def _with_labels(req: RunRequest, labels: dict[str, str]) -> RunRequest:
    from ...frozen_record import replace

    return replace(req, labels=labels)


def check_consistent(spec: StackSpec) -> None:
    """The file against itself: names, host ports, subnets, static addresses."""
    seen: dict[str, str] = {}
    for c in spec.containers:
        if c.name in seen:
            raise ValidationError(f"{c.key}: container name {c.name!r} is also made by {seen[c.name]}")
        seen[c.name] = c.key
    ports: list[tuple[tuple[str, int, str], str]] = []
    for c in spec.containers:
        for p, where in zip(c.request.ports, c.port_keys, strict=True):
            for (ip, port, proto), other in ports:
                same_ip = ip == p.host_ip or ALL_ADDRESSES in (ip, p.host_ip)
                if port == p.host_port and proto == p.protocol and same_ip:
                    raise ValidationError(f"{where}: host port {port}/{proto} is also published by {other}")
            ports.append(((p.host_ip, p.host_port, p.protocol), where))
    declared = {n.name: n for n in spec.networks}
    subnets = [(ipaddress.IPv4Network(n.subnet), n) for n in spec.networks if n.subnet]
    for i, (a, na) in enumerate(subnets):
        for b, nb in subnets[:i]:
            if a.overlaps(b):
                raise ValidationError(f"{na.key}.subnet: {a} overlaps {nb.key} ({b})")
    ips: dict[str, str] = {}
    for c in spec.containers:
        req = c.request
        if req.ip is None or not req.networks:
            continue
        net = declared.get(req.networks[0])
        if net is not None and net.subnet:
            _static_in(f"{c.key}.ip", req.ip, net)
        where = f"{req.networks[0]}/{req.ip}"
        if where in ips:
            raise ValidationError(f"{c.key}.ip: {req.ip} is also the address of {ips[where]}")
        ips[where] = c.key
    for c in spec.containers:
        first = declared.get(c.request.networks[0]) if c.request.networks else None
        if c.request.ports and first is not None and first.internal:
            raise ValidationError(f"{c.key}.ports: network {first.name} is internal: it cannot publish ports")


def _static_in(key: str, ip: str, net: NetworkDef) -> None:
    assert net.subnet is not None
    subnet = ipaddress.IPv4Network(net.subnet)
    addr = ipaddress.IPv4Address(ip)
    gateway = ipaddress.IPv4Address(net.gateway) if net.gateway else subnet.network_address + 1
    if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address, gateway):
        raise ValidationError(
            f"{key}: {ip} is not a free host address of network {net.name} ({subnet}, gateway {gateway})"
        )
