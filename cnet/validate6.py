"""Validation of IPv6 input (dual-stack networks, `--ip6`, `-p [IPV6]:...`): parsed values or one
ValidationError sentence, as cnet.validate does for the rest."""

from __future__ import annotations

import ipaddress

from .errors import ValidationError


def ipv6_address(value: str, what: str = "address") -> ipaddress.IPv6Address:
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValidationError(f"invalid {what} {value!r}: not an IPv6 address") from None
    if addr.version != 6:
        raise ValidationError(f"invalid {what} {value!r}: not an IPv6 address")
    return addr


RESERVED_RANGES6 = {
    ipaddress.IPv6Network("::/128"): "unspecified address",
    ipaddress.IPv6Network("::1/128"): "loopback address",
    ipaddress.IPv6Network("::ffff:0:0/96"): "IPv4-mapped range",
    ipaddress.IPv6Network("fe80::/10"): "link-local range",
    ipaddress.IPv6Network("ff00::/8"): "multicast range",
}


def subnet6(value: str, what: str = "IPv6 subnet") -> ipaddress.IPv6Network:
    """An IPv6 CIDR (`--subnet` with `--ipv6`, `--ip-range`): no host bits, not a reserved range."""
    text = value.strip()
    if "/" not in text:
        raise ValidationError(f"invalid {what} {value!r}: expected CIDR notation such as fd00:1::/64")
    try:
        net = ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        raise ValidationError(f"invalid {what} {value!r}: not an IPv6 CIDR such as fd00:1::/64") from None
    if ipaddress.IPv6Interface(text).ip != net.network_address:
        raise ValidationError(f"invalid {what} {value!r}: host bits are set; did you mean {net}?")
    return net


def network_subnet6(value: str) -> ipaddress.IPv6Network:
    net = subnet6(value)
    for reserved, what in RESERVED_RANGES6.items():
        if net.overlaps(reserved):
            raise ValidationError(f"invalid IPv6 subnet {value!r}: it overlaps the {what} {reserved}")
    if net.prefixlen > 126:
        raise ValidationError(
            f"invalid IPv6 subnet {value!r}: a /{net.prefixlen} has no room for a gateway and a container "
            "(use /126 or larger; /64 is usual)"
        )
    return net


def port_host6(spec: str, text: str) -> tuple[str, str, str]:
    """`[IPV6]:HOST_PORT:CONTAINER_PORT` (protocol already split off): published on that IPv6
    address only. Returns (address, host ports, container ports)."""
    addr_text, _, rest = text[1:].partition("]")
    parts = rest.split(":")
    if len(parts) != 3 or parts[0]:
        raise ValidationError(f"invalid port mapping {spec!r}: expected [IPV6]:HOST_PORT:CONTAINER_PORT")
    addr = ipv6_address(addr_text, "host IP in port mapping")
    if addr.is_loopback:
        raise ValidationError(
            f"invalid port mapping {spec!r}: the kernel cannot DNAT to ::1 (there is no IPv6 route_localnet); "
            "publish on another host address"
        )
    if addr.is_unspecified:
        raise ValidationError(f"invalid port mapping {spec!r}: for every address leave the host IP out (8080:80)")
    if addr.is_multicast or addr.is_link_local:
        raise ValidationError(f"invalid port mapping {spec!r}: host IP {addr} is not a global unicast address")
    return str(addr), parts[1], parts[2]
