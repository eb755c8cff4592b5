"""The stack file against what already exists: what `up` keeps, recreates, creates and removes.
Every conflict is found here, named by its key, before anything changes."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ... import ipam, validate
from ...db import names_store, stack_store, store
from ...db.connection import Connection
from ...errors import ValidationError
from ...records import Container, Network
from ..context import Context
from ..endpoints import check_host_ips, host_port_state
from .spec import HASH_LABEL, ContainerDef, NetworkDef, StackSpec, at


@dataclass
class Diff:
    keep: list[Container] = field(default_factory=list)
    recreate: list[Container] = field(default_factory=list)  # removed, then created anew
    create: list[ContainerDef] = field(default_factory=list)  # the new ones and the recreated ones
    orphans: list[Container] = field(default_factory=list)  # of the stack, not in the file
    networks: list[NetworkDef] = field(default_factory=list)  # declared and missing

    def changes(self, remove_orphans: bool) -> bool:
        return bool(self.create or self.networks or (remove_orphans and self.orphans))


def plan_diff(
    recorded: list[Container], labels: dict[str, dict[str, str]], wanted: list[ContainerDef]
) -> tuple[list[Container], list[Container], list[ContainerDef], list[Container]]:
    """(keep, recreate, create, orphans): a container is kept when it runs and its recorded
    definition digest is the file's; any difference, or a container that is not running, makes
    it recreated (compose's config hash)."""
    by_name = {c.name: c for c in recorded}
    keep: list[Container] = []
    recreate: list[Container] = []
    create: list[ContainerDef] = []
    for d in wanted:
        c = by_name.get(d.name)
        if c is None:
            create.append(d)
        elif c.live and labels.get(c.id, {}).get(HASH_LABEL) == d.digest:
            keep.append(c)
        else:
            recreate.append(c)
            create.append(d)
    names = {d.name for d in wanted}
    orphans = [c for c in recorded if c.name not in names]
    return keep, recreate, create, orphans


def diff(ctx: Context, spec: StackSpec, *, remove_orphans: bool) -> Diff:
    with ctx.store.read() as conn:
        recorded = stack_store.containers(conn, spec.name)
        keep, recreate, create, orphans = plan_diff(recorded, stack_store.labels(conn, spec.name), spec.containers)
        out = Diff(keep, recreate, create, orphans)
        out.networks = _networks(conn, spec)
        if out.create:
            going = {c.name for c in recreate} | ({c.name for c in orphans} if remove_orphans else set())
            _containers(ctx, conn, spec, out.create, going)
    return out


def _networks(conn: Connection, spec: StackSpec) -> list[NetworkDef]:
    mine = {n.name for n in stack_store.networks(conn, spec.name)}
    missing = []
    for n in spec.networks:
        existing = store.find_network(conn, n.name)
        if existing is not None and existing.name == n.name:
            if n.name not in mine:
                raise ValidationError(f"{n.key}: network {n.name} already exists and is not part of stack {spec.name}")
            if names_store.network_labels(conn, existing.id).get(HASH_LABEL) != n.digest:
                raise ValidationError(
                    f"{n.key}: the definition differs from the existing network {n.name}: "
                    f"`cnet down` the stack first to re-create it"
                )
            continue
        if n.subnet:
            net = ipaddress.IPv4Network(n.subnet)
            clash = store.overlapping_network(conn, int(net.network_address), int(net.broadcast_address))
            if clash:
                raise ValidationError(f"{n.key}.subnet: {net} overlaps network {clash[0]!r} ({clash[1]})")
            from ..networks import host_routes  # only when a network is to be made

            for route, dev in host_routes():
                if net.overlaps(route):
                    raise ValidationError(f"{n.key}.subnet: {net} overlaps the host route {route} (dev {dev})")
        missing.append(n)
    return missing


def _existing_network(conn: Connection, name: str) -> Network | None:
    net = store.find_network(conn, name)
    return net if net is not None and net.name == name else None


def _containers(ctx: Context, conn: Connection, spec: StackSpec, create: list[ContainerDef], going: set[str]) -> None:
    declared = {n.name for n in spec.networks}
    for d in create:
        if d.name not in going and store.container_name_taken(conn, d.name):
            raise ValidationError(
                f"{d.key}: container name {d.name!r} is in use by a container not of stack {spec.name}"
            )
        for i, name in enumerate(d.request.networks):
            if name in declared or name == validate.DEFAULT_NETWORK:
                continue
            net = _existing_network(conn, name)
            if net is None:
                raise ValidationError(
                    f"{d.key}.networks[{i}]: network {name!r} not found: declare it as [networks.{name}] or create it"
                )
            if i == 0 and d.request.ip:
                at(f"{d.key}.ip", ipam.check_static, net, d.request.ip)
            if i == 0 and d.request.ports and net.internal:
                raise ValidationError(f"{d.key}.ports: network {name} is internal: it cannot publish ports")
        at(f"{d.key}.ports", check_host_ips, ctx, d.request.ports)
        for p, key in zip(d.request.ports, d.port_keys, strict=True):
            where = f"{p.host_ip}:{p.host_port}/{p.protocol}"
            holder = store.port_holder(conn, p)
            if holder is not None and holder not in going:
                raise ValidationError(f"{key}: host port {where} is already mapped by container {holder}")
            if holder is None and host_port_state(p.host_ip, p.host_port, p.protocol) == "in-use":
                raise ValidationError(f"{key}: host port {where} is already in use by a host process")
