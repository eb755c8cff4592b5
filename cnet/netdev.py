"""Network devices as the kernel shows them to this process, read without starting one."""

from __future__ import annotations


def bridge_ready(bridge: str, mac: str) -> bool:
    """The bridge exists and carries its network's MAC. A bridge made before networks had a MAC of
    their own has its lowest port's until `gc` or `net restore` sets it, and a new container's
    neighbour entry for its gateway names the network's (kernel.ip.endpoint_container_side)."""
    now = link_mac(bridge)
    return now is not None and (now == mac or not mac)


def link_mac(name: str) -> str | None:
    """The MAC of network device `name` in this network namespace, or None when there is none: one
    ioctl (SIOCGIFHWADDR), no process. (/sys/class/net shows the namespace /sys was mounted in.)"""
    import fcntl
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            ifreq = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, name.encode().ljust(IFREQ_SIZE, b"\0"))
        except OSError:
            return None
    return ":".join(f"{b:02x}" for b in ifreq[18:24])  # after the name (16) and sa_family (2)


SIOCGIFHWADDR = 0x8927  # <linux/sockios.h>
IFREQ_SIZE = 40  # struct ifreq on Linux: the name, then a 24-byte union
