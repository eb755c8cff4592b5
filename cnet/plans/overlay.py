"""Plans for overlay networks (driver vxlan): what etcd says of a network, as plain values, and the
peer sync that brings this host's routes, neighbours and fdb entries in line with it. Pure: the
cluster's contents come in as a Snapshot, the kernel's as the neighbours it shows."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from .. import naming
from ..commands import Plan
from ..kernel import vxlan as vx
from ..records import Network

PREFIX = "/cnet/"
NETWORKS = PREFIX + "networks/"
VNIS = PREFIX + "vnis/"
SUBNETS = PREFIX + "subnets/"
MEMBERS = PREFIX + "members/"
VNI_MAX = 2**24 - 1


def network_key(name: str) -> str:
    return NETWORKS + name


def vni_key(vni: int) -> str:
    return f"{VNIS}{vni}"


def subnet_key(name: str, host_subnet: str) -> str:
    return f"{SUBNETS}{name}/{host_subnet.replace('/', '-')}"


def member_key(name: str, host_id: str) -> str:
    return f"{MEMBERS}{name}/{host_id}"


@dataclass(frozen=True)
class Definition:
    """An overlay network as `net create --driver vxlan` defined it in etcd."""

    name: str
    subnet: str
    host_subnet_size: int
    vni: int
    mtu: int | None  # None: each host takes its underlay MTU - 50

    def value(self) -> dict[str, Any]:
        return {"subnet": self.subnet, "host_subnet_size": self.host_subnet_size, "vni": self.vni, "mtu": self.mtu}

    def host_subnets(self) -> list[str]:
        net = ipaddress.IPv4Network(self.subnet)
        return [str(s) for s in net.subnets(new_prefix=self.host_subnet_size)]


@dataclass(frozen=True)
class Share:
    """One host's share of an overlay network: its subnet and where its vxlan device is."""

    host_subnet: str
    host_id: str
    underlay_ip: str
    vtep_mac: str

    def value(self) -> dict[str, Any]:
        return {"host": self.host_id, "underlay": self.underlay_ip, "vtep_mac": self.vtep_mac}

    def peer(self) -> vx.Peer:
        return vx.Peer(self.host_subnet, self.host_id, self.underlay_ip, self.vtep_mac)


@dataclass
class Snapshot:
    """Everything under /cnet/ at one revision."""

    revision: int = 0
    networks: dict[str, Definition] = field(default_factory=dict)
    shares: dict[str, dict[str, Share]] = field(default_factory=dict)  # network -> host subnet -> share
    members: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # network -> host id -> value
    vnis: dict[int, str] = field(default_factory=dict)
    leases: dict[str, int] = field(default_factory=dict)  # key -> the lease it is attached to
    raw: dict[str, Any] = field(default_factory=dict)  # key -> value as stored

    @classmethod
    def parse(cls, revision: int, entries: dict[str, Any]) -> Snapshot:
        """entries: key -> decoded JSON value (entries that do not parse are skipped)."""
        snap = cls(revision=revision, raw=dict(entries))
        for key, value in sorted(entries.items()):
            try:
                if key.startswith(NETWORKS):
                    name = key[len(NETWORKS) :]
                    snap.networks[name] = Definition(
                        name, value["subnet"], int(value["host_subnet_size"]), int(value["vni"]), value.get("mtu")
                    )
                elif key.startswith(SUBNETS):
                    name, _, sub = key[len(SUBNETS) :].rpartition("/")
                    host_subnet = sub.replace("-", "/")
                    share = Share(host_subnet, value["host"], value["underlay"], value["vtep_mac"])
                    snap.shares.setdefault(name, {})[host_subnet] = share
                elif key.startswith(MEMBERS):
                    name, _, host = key[len(MEMBERS) :].rpartition("/")
                    snap.members.setdefault(name, {})[host] = value if isinstance(value, dict) else {}
                elif key.startswith(VNIS):
                    snap.vnis[int(key[len(VNIS) :])] = str(value)
            except (KeyError, TypeError, ValueError):
                continue
        return snap

    def share_of(self, name: str, host_id: str) -> Share | None:
        return next((s for s in self.shares.get(name, {}).values() if s.host_id == host_id), None)

    def free_host_subnets(self, name: str) -> list[str]:
        taken = self.shares.get(name, {})
        return [s for s in self.networks[name].host_subnets() if s not in taken]

    def peers(self, name: str, host_id: str) -> list[vx.Peer]:
        """The other hosts whose membership is alive (a lapsed host is no peer)."""
        alive = self.members.get(name, {})
        return sorted(
            s.peer() for s in self.shares.get(name, {}).values() if s.host_id != host_id and s.host_id in alive
        )

    def busy_hosts(self, name: str, host_id: str) -> list[str]:
        """Other live hosts that report containers on the network."""
        return sorted(h for h, v in self.members.get(name, {}).items() if h != host_id and int(v.get("containers", 0)))


def sync_plan(net: Network, want: list[vx.Peer], neighbours: dict[str, str], applied: list[vx.Peer]) -> Plan:
    """The changes that make the kernel route to exactly `want`.

    neighbours: the permanent neighbour entries the vxlan device has (address -> MAC): what the
    kernel really has, which after a reboot or a crash may differ from `applied` (the peers last
    recorded). A peer is (re)added when its neighbour is missing or differs, or its record
    differs; removed when it is no longer wanted."""
    dev = naming.vxlan_name(net.id)
    wanted = {p.host_subnet for p in want}
    known = {p.host_subnet: p for p in applied}
    plan = Plan()
    for p in sorted(known.values()):
        if p.host_subnet not in wanted:
            plan.extend(vx.peer_remove(dev, p))
    add = [p for p in want if neighbours.get(p.vtep_ip) != p.vtep_mac or known.get(p.host_subnet) != p]
    plan.extend(vx.peers_add(dev, add))
    return plan
