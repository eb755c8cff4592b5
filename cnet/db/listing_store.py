"""Narrow reads for listings: `cnet ps` decodes only the columns it shows (a container's env and
spec are JSON documents that only inspect and the use cases need)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..records import ContainerKind, ContainerState
from . import queries as q
from .connection import Connection


@dataclass(frozen=True, slots=True)
class ContainerLine:
    """What `cnet ps` shows of a container: its command decoded, not its env and spec."""

    id: str
    name: str
    state: ContainerState
    pid: int | None
    exit_code: int | None
    last_exit_code: int | None
    command: list[str]
    kind: ContainerKind
    hostname: str
    created_at: float


def container_lines(conn: Connection, *, all_: bool = True) -> list[ContainerLine]:
    """Containers in creation order (all, or the ones `ps` lists without -a)."""
    rows = conn.execute(q.CONTAINER_LINES_ALL if all_ else q.CONTAINER_LINES_RUNNING).fetchall()
    loads = json.loads
    return [
        ContainerLine(i, n, ContainerState(s), p, e, le, loads(c), ContainerKind(k), h, t)
        for i, n, s, p, e, le, c, k, h, t in rows
    ]
