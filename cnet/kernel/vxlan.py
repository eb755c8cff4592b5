"""Builders for an overlay network's VXLAN data plane (flannel's vxlan scheme): one vxlan device
per overlay network and host, and per peer host one route, one permanent neighbour entry and one
fdb entry, so frames go unicast to the one host that holds the destination's subnet (no flooding,
no learning)."""

from __future__ import annotations

from dataclasses import dataclass

from ..commands import Command, Step, cmd
from .ip import batch, link_del

VXLAN_PORT = 4789  # IANA's port, as Linux's default 8472 is not
# Outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
OVERHEAD = 50


@dataclass(frozen=True, order=True)
class Peer:
    """Another host's share of an overlay network, as etcd lists it."""

    host_subnet: str  # CIDR, e.g. 10.200.2.0/24
    host_id: str
    underlay_ip: str
    vtep_mac: str

    @property
    def vtep_ip(self) -> str:
        """The peer's vxlan device address: the network address of its host subnet (a /32)."""
        return self.host_subnet.split("/")[0]


def device_create(*, dev: str, vni: int, mac: str, local: str, underlay_dev: str, mtu: int, address: str) -> Step:
    # `address` must come before `type vxlan` (iproute2 reads what follows as vxlan options).
    return Step(
        summary=f"create vxlan device {dev} (vni {vni}, {local} on {underlay_dev}, port {VXLAN_PORT})",
        do=batch(
            [
                f"link add name {dev} address {mac} mtu {mtu} type vxlan id {vni} dstport {VXLAN_PORT} "
                f"local {local} dev {underlay_dev} nolearning",
                f"addr add {address}/32 dev {dev}",
                f"link set {dev} up",
            ]
        ),
        undo=(link_del(dev),),
    )


def device_delete(dev: str) -> Step:
    return Step(summary=f"delete vxlan device {dev}", do=link_del(dev), nothing_to_do=("cannot find device",))


def _route_del(dev: str, p: Peer) -> Command:
    return cmd("ip", "route", "del", p.host_subnet, "dev", dev)


def _neigh_del(dev: str, p: Peer) -> Command:
    return cmd("ip", "neigh", "del", p.vtep_ip, "dev", dev)


def _fdb_del(dev: str, p: Peer) -> Command:
    return cmd("bridge", "fdb", "del", p.vtep_mac, "dev", dev, "dst", p.underlay_ip)


def peers_add(dev: str, peers: list[Peer]) -> list[Step]:
    """Two processes for any number of peers: `ip -batch` (routes, neighbours), `bridge -batch`
    (fdb). `replace` everywhere: re-applying after a crash or a peer's new address is harmless."""
    if not peers:
        return []
    names = ", ".join(p.host_subnet for p in peers)
    ip_lines: list[str] = []
    for p in peers:
        ip_lines.append(f"neigh replace {p.vtep_ip} lladdr {p.vtep_mac} dev {dev} nud permanent")
        ip_lines.append(f"route replace {p.host_subnet} via {p.vtep_ip} dev {dev} onlink")
    fdb_lines = [f"fdb replace {p.vtep_mac} dev {dev} dst {p.underlay_ip} self permanent" for p in peers]
    return [
        Step(
            summary=f"route {names} through {dev}",
            do=batch(ip_lines),
            undo=tuple(c for p in peers for c in (_route_del(dev, p), _neigh_del(dev, p))),
        ),
        Step(
            summary=f"send {dev}'s frames for {names} to their hosts",
            do=Command(("bridge", "-batch", "-"), "\n".join(fdb_lines) + "\n"),
            undo=tuple(_fdb_del(dev, p) for p in peers),
        ),
    ]


def peer_remove(dev: str, p: Peer) -> list[Step]:
    """One command each, so that one already gone does not keep the others."""
    gone = ("no such", "cannot find")
    return [
        Step(summary=f"drop the route to {p.host_subnet}", do=_route_del(dev, p), nothing_to_do=gone),
        Step(summary=f"drop the neighbour {p.vtep_ip}", do=_neigh_del(dev, p), nothing_to_do=gone),
        Step(summary=f"drop the fdb entry of {p.host_subnet}", do=_fdb_del(dev, p), nothing_to_do=gone),
    ]
