"""The CNI verbs on cnet's layers: ADD, DEL, CHECK, GC, STATUS (cnet.cli.cni_plugin calls dispatch).

An attachment is a containers row of kind `cni` (the runtime's container id and ifname, its netns
path; state creating -> attached -> removing), with its address in `endpoints` and its published
ports in `port_mappings`, exactly as a `cnet run` container's, so IPAM, the port checks, the plans,
the journal, `cnet ps/inspect/sql/journal` and `cnet gc` all work on it unchanged. The runtime owns
its life: ADD makes it, DEL releases it; `cnet gc` releases one whose namespace vanished without a
DEL. Every verb first repairs what an interrupted call (SIGKILL, a crashed cnet) left behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import naming
from ..cni.protocol import Attachment, CniError, Code, Env, NetConf, result_document
from ..commands import Command
from ..db import store
from ..db.connection import Connection, db_path
from ..errors import CommandFailed, Conflict, ValidationError
from ..plans import cni as plans
from ..records import (
    Container,
    ContainerKind,
    ContainerState,
    Endpoint,
    Network,
    NetworkState,
    OpKind,
)
from .apply import Change, apply
from .cni_release import release
from .context import DEFAULT_STATE_DIR, Context


def dispatch(env: Env, conf: NetConf, *, environ: Mapping[str, str]) -> dict | None:
    """Run one verb; returns the document to print (ADD's result) or None (nothing to print)."""
    state_dir = Path(conf.state_dir or environ.get("CNET_STATE_DIR") or DEFAULT_STATE_DIR)
    ctx = Context(state_dir=state_dir, light_runner=True)
    try:
        return VERBS[env.command](ctx, env, conf)
    finally:
        ctx.close()


def _has_state(ctx: Context) -> bool:
    # A state dir without a database holds no network: nothing is created just to say so.
    return db_path(ctx.state_dir).exists()


def _prepare(ctx: Context) -> None:
    ctx.require_root()
    ctx.journal.recover()  # an interrupted ADD or DEL (SIGKILL, timeout) is finished first


def _short(container_id: str) -> str:
    return container_id[:12]


# --- ADD ------------------------------------------------------------------------------------------
# CNI_ARGS a Kubernetes runtime (containerd's CRI plugin, CRI-O) passes, and the labels they become:
# the keys the kubelet itself puts on a pod's containers, so `cnet ps --filter label=...` and SQL
# find pods by namespace and name.
POD_LABELS = {
    "K8S_POD_NAMESPACE": "io.kubernetes.pod.namespace",
    "K8S_POD_NAME": "io.kubernetes.pod.name",
    "K8S_POD_UID": "io.kubernetes.pod.uid",
}


def pod_labels(env: Env) -> dict[str, str]:
    return {label: value for key, label in POD_LABELS.items() if (value := env.arg(key))}


def _attachment_name(conn: Connection, env: Env, att_id: str) -> str:
    namespace, pod = env.arg("K8S_POD_NAMESPACE"), env.arg("K8S_POD_NAME")
    names = [f"k8s_{namespace}_{pod}_{env.ifname}"] if namespace and pod else []
    names.append(f"cni-{_short(env.container_id)}-{env.ifname}")
    for name in names:
        if naming.NAME_RE.fullmatch(name) and not store.container_name_taken(conn, name):
            return name
    return f"cni-{att_id}"


def _static_ips(net: Network, conf: NetConf) -> tuple[str | None, str | None]:
    """The requested IPv4 and IPv6 addresses (runtimeConfig.ips), checked against the network."""
    v4: str | None = None
    v6: str | None = None
    for want in conf.ips:
        subnet: str | None
        prefix_len: int | None
        if want.version == 4:
            from .. import ipam

            ipam.check_static(net, want.address)
            subnet, prefix_len, v4 = net.subnet, net.prefix_len, want.address
        else:
            from .. import ipam6

            if not net.subnet6:
                raise ValidationError(
                    f"requested IP {want.address} is IPv6: network {net.name} has no IPv6 subnet "
                    "(create it with --ipv6)"
                )
            ipam6.check_static(net, want.address)
            subnet, prefix_len, v6 = net.subnet6, net.prefix6_len, want.address
        if want.prefix_len is not None and want.prefix_len != prefix_len:
            raise ValidationError(
                f"requested IP {want.address}/{want.prefix_len} does not match network {net.name} ({subnet})"
            )
    return v4, v6


def add(ctx: Context, env: Env, conf: NetConf) -> dict:
    # ADD's alone (IPAM, labels, endpoints): DEL, CHECK, GC and STATUS, each a process of its
    # own, do without them.
    from ..db import names_store
    from .endpoints import attach as attach_endpoint
    from .endpoints import check_ports, restore_missing_networks

    if not _has_state(ctx):
        raise CniError(
            Code.INVALID_CONFIG, f"cnet network {conf.network!r} not found (no cnet state in {ctx.state_dir})"
        )
    if not os.path.exists(env.netns):
        raise CniError(Code.INVALID_ENVIRONMENT, f"CNI_NETNS {env.netns} does not exist")
    _prepare(ctx)
    with ctx.store.read() as conn:
        known = store.find_network(conn, conf.network)
    restore = restore_missing_networks(ctx, [conf.network]) if known is not None else []

    def prepare(conn: Connection) -> Change[tuple[Container, Endpoint, Network]]:
        net = store.find_network(conn, conf.network)
        if net is None:
            raise CniError(Code.INVALID_CONFIG, f"cnet network {conf.network!r} not found")
        if net.state != NetworkState.READY:
            raise CniError(Code.TRY_AGAIN_LATER, f"network {net.name} is {net.state}")
        held = store.attachment(conn, env.container_id, env.ifname)
        if held is not None:
            raise Conflict(
                f"container {_short(env.container_id)} already has {env.ifname} attached by cnet ({held.name})"
            )
        if conf.port_mappings and net.internal:
            raise ValidationError(f"network {net.name} is internal: it cannot publish ports")
        if any(":" in p.host_ip for p in conf.port_mappings) and not net.subnet6:
            raise ValidationError(f"network {net.name} has no IPv6: it cannot publish on an IPv6 host address")
        static, static6 = _static_ips(net, conf)
        # The runtime (podman, conmon) may hold a published port's socket itself to reserve it:
        # only cnet's own mappings count as taken, as with the reference portmap plugin.
        check_ports(conn, conf.port_mappings, host_check=False)
        att_id = naming.new_id()
        att = Container(
            id=att_id,
            name=_attachment_name(conn, env, att_id),
            state=ContainerState.CREATING,
            command=(),
            hostname=env.arg("K8S_POD_NAME") or "",
            env={},
            detached=False,
            netns=env.netns,
            created_at=time.time(),
            kind=ContainerKind.CNI,
            cni_container_id=env.container_id,
            cni_ifname=env.ifname,
            spec={
                "cni": {
                    "network": net.name,
                    "ports": [p.render() for p in conf.port_mappings],
                    "ips": [f"{i.address}/{i.prefix_len}" if i.prefix_len else i.address for i in conf.ips],
                    "mac": conf.mac,
                    "dns": conf.dns,
                    "args": {k: v for k, v in env.args if k != "IgnoreUnknown"},
                }
            },
        )
        store.insert_container(conn, att)
        names_store.insert_labels(conn, "container_labels", "container_id", att_id, pod_labels(env))
        # One default route per runtime container: via its first cnet attachment that may have one.
        default = not net.internal and not store.cni_has_default_route(conn, env.container_id)
        ep = attach_endpoint(
            conn, att_id, net, env.ifname, static, default_route=default, mac=conf.mac, static_ip6=static6
        )
        ports = [store.insert_port(conn, att_id, ep, spec) for spec in conf.port_mappings]

        def attached(c: Connection) -> None:
            store.set_container_state(c, att_id, ContainerState.ATTACHED)

        return Change(
            OpKind.CNI_ADD, att_id, plans.attach(att, ep, ports, before=restore), (att, ep, net), on_success=attached
        )

    att, ep, net = apply(ctx, prepare).result
    return result_document(
        conf.cni_version,
        Attachment(
            bridge=net.bridge,
            host_veth=ep.host_veth,
            ifname=ep.interface,
            mac=ep.mac,
            sandbox=att.netns,
            ip=ep.ip,
            prefix_len=ep.prefix_len,
            gateway=ep.gateway,
            default_route=ep.is_default_route,
            mtu=ep.mtu,
            ip6=ep.ip6,
            prefix6_len=ep.prefix6_len,
            gateway6=ep.gateway6,
        ),
        conf.dns,
    )


# --- DEL ------------------------------------------------------------------------------------------
def delete(ctx: Context, env: Env, _conf: NetConf) -> None:
    if not _has_state(ctx):
        return
    _prepare(ctx)
    release(ctx, env.container_id, env.ifname)
    return


# --- CHECK ----------------------------------------------------------------------------------------
def check(ctx: Context, env: Env, conf: NetConf) -> None:
    if not _has_state(ctx):
        raise CniError(
            Code.UNKNOWN_CONTAINER, f"no cnet attachment {env.ifname} for container {_short(env.container_id)}"
        )
    _prepare(ctx)
    with ctx.store.read() as conn:
        att = store.attachment(conn, env.container_id, env.ifname)
        eps = store.endpoints_of(conn, att.id) if att is not None else []
    if att is None or att.state != ContainerState.ATTACHED or not eps:
        raise CniError(
            Code.UNKNOWN_CONTAINER, f"no cnet attachment {env.ifname} for container {_short(env.container_id)}"
        )
    ep = eps[0]
    if ep.network != conf.network:
        raise CniError(Code.CHECK_FAILED, f"{env.ifname} is attached to network {ep.network}, not {conf.network}")
    if att.netns != env.netns:
        raise CniError(Code.CHECK_FAILED, f"{env.ifname} was attached in {att.netns}, not {env.netns}")
    if not os.path.exists(att.netns):
        raise CniError(Code.CHECK_FAILED, f"the network namespace {att.netns} is gone")
    from ..kernel import parse  # CHECK only

    reads = plans.check_reads(att, ep)
    host = _read_json(ctx, reads["host"])
    inside = _read_json(ctx, reads["interface"])
    links = parse.links(json.dumps(inside)) if inside else {}
    routes = _read_json(ctx, reads["routes"]) or []
    routes6 = (_read_json(ctx, reads["routes6"]) or []) if "routes6" in reads else []
    problems = plans.check_problems(
        ep,
        host=host[0] if host else None,
        interface=links.get(ep.interface),
        default_gateways=[str(r["gateway"]) for r in routes if r.get("gateway")],
        default_gateways6=[str(r["gateway"]) for r in routes6 if r.get("gateway")],
    )
    if problems:
        raise CniError(Code.CHECK_FAILED, f"attachment {att.name}: " + "; ".join(problems))


def _read_json(ctx: Context, command: Command) -> list[dict[str, Any]] | None:
    """A read's JSON (`ip -j` prints a list), or None when the command fails (the object it asks
    about is missing)."""
    try:
        data = json.loads(ctx.runner.read(command) or "[]")
    except CommandFailed:
        return None
    return data if isinstance(data, list) else None


# --- GC and STATUS (spec 1.1.0) -------------------------------------------------------------------
def gc(ctx: Context, _env: Env, conf: NetConf) -> None:
    """Release every attachment on this network that the runtime did not list as valid."""
    if not _has_state(ctx):
        return
    _prepare(ctx)
    valid = set(conf.valid_attachments or ())
    with ctx.store.read() as conn:
        net = store.find_network(conn, conf.network)
        atts = store.attachments_on(conn, net.id) if net is not None else []
    for att in atts:
        # An attachment still being added is not the runtime's to collect yet.
        cid, ifname = att.cni_container_id or "", att.cni_ifname or ""
        if att.state == ContainerState.ATTACHED and (cid, ifname) not in valid:
            release(ctx, cid, ifname)
    return


def status(ctx: Context, _env: Env, conf: NetConf) -> None:
    """Ready when the network exists, is ready and its bridge is there; otherwise code 50."""
    if not _has_state(ctx):
        raise CniError(
            Code.NOT_AVAILABLE, f"cnet network {conf.network!r} does not exist (no cnet state in {ctx.state_dir})"
        )
    with ctx.store.read() as conn:
        net = store.find_network(conn, conf.network)
    if net is None:
        raise CniError(Code.NOT_AVAILABLE, f"cnet network {conf.network!r} does not exist")
    if net.state != NetworkState.READY:
        raise CniError(Code.NOT_AVAILABLE, f"cnet network {net.name} is {net.state}")
    # One stat(), as run's check: /proc/sys/net follows the caller's network namespace.
    if not Path("/proc/sys/net/ipv4/conf", net.bridge).exists():
        raise CniError(
            Code.NOT_AVAILABLE,
            f"the bridge {net.bridge} of network {net.name} is missing (`cnet net restore` re-creates it)",
        )


VERBS: dict[str, Callable[[Context, Env, NetConf], dict | None]] = {
    "ADD": add,
    "DEL": delete,
    "CHECK": check,
    "GC": gc,
    "STATUS": status,
}
