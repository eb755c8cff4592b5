"""Deterministic kernel names.

Every kernel object cnet creates starts with "cnet" (links, netns) or "CNET-" (chains), so that
`ip link | grep cnet` and `iptables-save | grep -i cnet` show all of them. Interface names are at
most 15 bytes (IFNAMSIZ - 1) and derived from ids or hashes, never from user-typed names.
"""

from __future__ import annotations

import os
import re

# Frozen: existing installations carry these chains. Never rename.
CHAIN_FORWARD = "CNET-FORWARD"
CHAIN_ISOLATION_1 = "CNET-ISOLATION-1"
CHAIN_ISOLATION_2 = "CNET-ISOLATION-2"
CHAIN_POSTROUTING = "CNET-POSTROUTING"
CHAIN_DNAT = "CNET-DNAT"
CHAIN_RAW_PREROUTING = "CNET-PREROUTING"
CHAIN_SPOOF = "CNET-SPOOF"  # ebtables filter table (bridge family): anti-spoofing per endpoint

IFNAME_MAX = 15
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")
ID_RE = re.compile(r"^[0-9a-f]{12}$")


def new_id() -> str:
    """A 12-hex-digit id, like Docker's short ids."""
    # os.urandom is what secrets.token_hex reads; importing secrets (random, hmac, base64)
    # would be paid by every CNI call.
    return os.urandom(6).hex()


def bridge_name(network_id: str) -> str:
    return ("cnet-" + network_id)[:IFNAME_MAX]


def bridge_mac(network_id: str) -> str:
    """The bridge's own MAC: locally administered unicast (0a:), then the same ten hex digits as
    the bridge name, so `ip link` shows which network a MAC belongs to. Containers' MACs start
    with 02:42: the two never meet. Migration 0004_bridge_mac derives existing rows the same way."""
    digits = network_id[:10]
    return "0a:" + ":".join(digits[i : i + 2] for i in range(0, 10, 2))


def host_veth_name(container_id: str, network_id: str) -> str:
    # One veth per (container, network): a hash keeps both in 15 bytes without collisions
    # between a container's several endpoints.
    import hashlib  # loads OpenSSL: paid by the commands that name a veth, not by `ps`

    digest = hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()
    return ("cnetv" + digest)[:IFNAME_MAX]


def netns_name(container_id: str) -> str:
    return "cnet-" + container_id


def netns_path(container_id: str) -> str:
    return "/run/netns/" + netns_name(container_id)


def network_comment(network_name: str) -> str:
    return f"cnet:net:{network_name}"


def container_comment(container_id: str) -> str:
    return f"cnet:ctr:{container_id}"


BASE_COMMENT = "cnet:base"


def vxlan_name(network_id: str) -> str:
    """An overlay network's vxlan device on this host (its bridge is bridge_name())."""
    return ("cnetx" + network_id)[:IFNAME_MAX]


def vtep_mac(network_id: str) -> str:
    """The vxlan device's MAC: locally administered (0e:, apart from bridges' 0a: and containers'
    02:42:), from this host's random id of the network, so hosts do not collide."""
    digits = network_id[:10]
    return "0e:" + ":".join(digits[i : i + 2] for i in range(0, 10, 2))
