"""Narrow reads for listings: `cnet ps` decodes only the columns it shows (a container's env and
spec are JSON documents that only inspect and the use cases need), into plain tuples: no records,
states as their stored texts (cnet/states.py), and the command's words read by SQLite's json_each
rather than the json module, which with the `re` it imports is a large share of `ps`'s start-up
(tests/unit/test_startup_imports.py pins what `ps` loads)."""

from __future__ import annotations

from . import queries as q

# typing itself is not imported: `cnet ps` loads this module (tests/unit/test_startup_imports.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .connection import Connection

# What `cnet ps` shows of a container: its command's words, not its env and spec; state and kind
# are the stored texts (cnet/states.py).
# (id, name, state, pid, exit_code, last_exit_code, command, kind, hostname, created_at)
ContainerLine = tuple[str, str, str, int | None, int | None, int | None, list[str], str, str, float]


def container_lines(conn: Connection, *, all_: bool = True) -> list[ContainerLine]:
    """Containers in creation order (all, or the ones `ps` lists without -a)."""
    rows = conn.execute(q.CONTAINER_LINES_ALL if all_ else q.CONTAINER_LINES_RUNNING).fetchall()
    words: dict[str, list[str]] = {}
    for cid, word in conn.execute(q.COMMAND_WORDS_ALL if all_ else q.COMMAND_WORDS_RUNNING):
        # surrogatepass: the lone surrogates json.loads would give back (queries.COMMAND_WORDS)
        words.setdefault(cid, []).append(word.decode("utf-8", "surrogatepass"))
    return [(i, n, s, p, e, le, words.get(i, []), k, h, t) for i, n, s, p, e, le, k, h, t in rows]


def endpoint_ips(conn: Connection) -> dict[str, list[str]]:
    """container id -> its addresses, by interface."""
    out: dict[str, list[str]] = {}
    for cid, ip, ip6 in conn.execute(q.ENDPOINT_IPS):
        out.setdefault(cid, []).extend([ip, ip6] if ip6 else [ip])
    return out


def endpoint_networks(conn: Connection) -> dict[str, list[str]]:
    """container id -> the names of its networks, by interface."""
    out: dict[str, list[str]] = {}
    for cid, net in conn.execute(q.ENDPOINT_NETWORK_NAMES):
        out.setdefault(cid, []).append(net)
    return out


def port_lines(conn: Connection) -> dict[str, list[str]]:
    """container id -> its mappings as `HOST_IP:PORT->PORT/PROTO`, by host port."""
    out: dict[str, list[str]] = {}
    for cid, hip, hp, cp, pr in conn.execute(q.PORT_LIST):
        out.setdefault(cid, []).append(f"{hip}:{hp}->{cp}/{pr}")
    return out


def all_container_labels(conn: Connection) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for cid, k, v in conn.execute(q.CONTAINER_LABELS_ALL):
        out.setdefault(cid, {})[k] = v
    return out
