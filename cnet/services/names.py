"""Name resolution between containers without a resident process: each container has its own
hosts and resolv.conf files in its state folder, bind-mounted over /etc/hosts and
/etc/resolv.conf inside its private mount namespace (the init script does it, cnet.kernel.netns).
Whenever a network's membership changes (run, exit/stop/rm, connect, disconnect) the hosts file
of every running container on that network is rewritten from the database.

In place, never by rename: a bind mount holds the inode it was given, so a new file renamed over
the old one would never be seen inside the container. Writers serialize on one lock and read the
database under it: whoever writes last read the state after every change before it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..db import names_store
from ..plans import names as plans
from .context import Context, container_dir

HOST_RESOLV = "/etc/resolv.conf"


def hosts_path(ctx: Context, container_id: str) -> Path:
    return container_dir(ctx, container_id) / "hosts"


def resolv_path(ctx: Context, container_id: str) -> Path:
    return container_dir(ctx, container_id) / "resolv.conf"


def write_in_place(path: Path, text: str) -> None:
    """Overwrite the file's contents, keeping its inode (the bind mount inside the container)."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.fchmod(fd, 0o644)  # read by the container's users, whatever cnet's umask
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def write_resolv(ctx: Context, container_id: str) -> None:
    host = _read(HOST_RESOLV) or ""
    upstream = _read(plans.SYSTEMD_RESOLVED_UPSTREAM) if plans.only_loopback(host) else None
    write_in_place(resolv_path(ctx, container_id), plans.container_resolv(host, upstream))


def refresh(ctx: Context, network_ids: Iterable[str] = (), container_ids: Iterable[str] = ()) -> None:
    """Rewrite the hosts files of the running containers on these networks and of these
    containers. Best effort: a failure is reported, never fatal (the network change it follows
    has happened)."""
    if ctx.dry_run:
        return
    try:
        _refresh(ctx, list(network_ids), list(container_ids))
    except OSError as exc:
        ctx.say(f"cnet: warning: could not rewrite the containers' hosts files: {exc}")


def _refresh(ctx: Context, network_ids: list[str], container_ids: list[str]) -> None:
    lock = os.open(ctx.state_dir / "names.lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with ctx.store.read() as conn:
            running = set(names_store.running_ids(conn))
            candidates = dict.fromkeys(names_store.name_viewers(conn, network_ids) + container_ids)
            viewers = [v for v in candidates if v in running]
            rows = names_store.name_members(conn, viewers) if viewers else []
        members = [
            plans.Member(
                network_id=r["network_id"],
                container_id=r["container_id"],
                interface=r["interface"],
                ip=r["ip"],
                ip6=r["ip6"],
                name=r["name"],
                hostname=r["hostname"],
                aliases=tuple(json.loads(r["aliases"])),
            )
            for r in rows
        ]
        for cid, text in plans.hosts_files(viewers, members).items():
            try:
                write_in_place(hosts_path(ctx, cid), text)
            except FileNotFoundError:  # its folder is gone: removed meanwhile
                continue
    finally:
        os.close(lock)


def prepare(ctx: Context, container_id: str, network_ids: Iterable[str]) -> None:
    """Before a container starts: its resolv.conf, its hosts file and its peers'."""
    if ctx.dry_run:
        return
    write_resolv(ctx, container_id)
    write_in_place(hosts_path(ctx, container_id), plans.HOSTS_HEADER)  # the mount needs the file
    refresh(ctx, network_ids, [container_id])
