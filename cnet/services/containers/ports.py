"""Held ports: while a mapping exists, no host process can bind its host port.

cnet binds one socket per mapping (TCP: bound and listening, as podman holds ports; UDP: bound,
without SO_REUSEADDR, which would let a second UDP socket share the port) and hands them to the
container's watcher, which keeps them until it exits (crash, reboot and `rm -f` included: the
kernel closes them), at no extra process. A dash watcher cannot name descriptors above 9, so the
sockets travel as one: they are sent over a unix socket pair (SCM_RIGHTS) whose sending end is
closed; the receiving end, fd 4 in the watcher, keeps them in flight, and closing it closes them.
Nothing ever reads them: the DNAT rules take the traffic first (PREROUTING / OUTPUT).
"""

from __future__ import annotations

import array
import errno
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from ...errors import Conflict, ValidationError
from ...records import ALL_ADDRESSES, PortSpec

# SCM_RIGHTS carries at most 253 descriptors per message (SCM_MAX_FD).
_PER_MESSAGE = 250


def _bind(spec: PortSpec, family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    tcp = spec.protocol == "tcp"
    s = socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    host_ip = spec.host_ip
    try:
        if family == socket.AF_INET6:
            # Only the IPv6 port: the IPv4 one has its own socket.
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            host_ip = "::" if spec.host_ip == ALL_ADDRESSES else spec.host_ip
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum: nothing is read
        if tcp:
            # TIME_WAIT leftovers are not "in use"; a listening socket still conflicts with every
            # later bind of the port, SO_REUSEADDR or not (only SO_REUSEPORT on both would share).
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host_ip, spec.host_port))
        if tcp:
            s.listen(1)
        return s
    except OSError as exc:
        s.close()
        where = f"{host_ip}:{spec.host_port}/{spec.protocol}"
        if exc.errno == errno.EADDRINUSE:
            raise Conflict(f"host port {where} is already in use by a host process") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ValidationError(f"host IP {host_ip} in port mapping is not an address of this host") from None
        raise Conflict(f"cannot hold host port {where}: {exc.strerror}") from None


def hold(specs: Iterable[PortSpec], *, ipv6: bool = False) -> int | None:
    """Bind every mapping's host port; one descriptor holding them all (None without ports).
    `ipv6` (a dual-stack network): a mapping on every address holds the IPv6 port too, and one on
    an IPv6 address only that."""
    socks: list[socket.socket] = []
    try:
        for spec in specs:
            if ":" in spec.host_ip:
                socks.append(_bind(spec, socket.AF_INET6))
                continue
            socks.append(_bind(spec))
            if ipv6 and spec.host_ip == ALL_ADDRESSES:
                socks.append(_bind(spec, socket.AF_INET6))
        if not socks:
            return None
        send, keep = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with send:
            fds = [s.fileno() for s in socks]
            for i in range(0, len(fds), _PER_MESSAGE):
                chunk = array.array("i", fds[i : i + _PER_MESSAGE])
                send.sendmsg([b"h"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, chunk)])
        return keep.detach()
    finally:
        for s in socks:
            s.close()


def release(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


@contextmanager
def held(specs: Iterable[PortSpec]) -> Iterator[int | None]:
    """hold() for the length of a block that hands the descriptor on (the watcher keeps its copy)."""
    fd = hold(specs)
    try:
        yield fd
    finally:
        release(fd)
