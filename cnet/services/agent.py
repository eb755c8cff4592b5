"""`cnet agent`: keeps this host's membership of its overlay networks alive in etcd and applies
peer changes as etcd reports them.

One loop: sync every joined network (which renews the leases and publishes the container
counts), then wait for a watch event or a third of the TTL, whichever comes first. The watch
stream runs in a thread of etcd3gw's and is pumped into a queue; when it ends (etcd restarted or
unreachable) the next round opens it again. With etcd away the data plane stays as it is."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from ..cluster import Cluster, ClusterUnavailable
from ..db import overlay_store as ostore
from ..errors import CnetError, ValidationError
from ..plans import overlay as po
from .context import Context
from .overlay import cluster, host_id, snapshot, sync_peers

ENDED = object()


def _watch(cl: Cluster, revision: int, events: queue.Queue[Any]) -> Callable[[], None]:
    stream, cancel = cl.watch_prefix(po.PREFIX, revision)

    def pump() -> None:
        try:
            for event in stream:
                events.put(event)
        except Exception:  # the stream broke: the loop re-opens it
            pass
        events.put(ENDED)

    threading.Thread(target=pump, name="cnet-agent-watch", daemon=True).start()
    return cancel


def run_agent(ctx: Context, *, ttl: int, say: Callable[[str], None], stop: threading.Event) -> None:
    if not 2 <= ttl <= 3600:
        raise ValidationError(f"--ttl {ttl} is out of range (2-3600 seconds)")
    cl = cluster(ctx)
    with ctx.store.write() as conn:
        if ostore.setting(conn, ostore.TTL_SETTING) != str(ttl):
            # A lease keeps the TTL it was granted with: the next renewal grants one with this TTL.
            ostore.set_setting(conn, ostore.TTL_SETTING, str(ttl))
            ostore.set_setting(conn, ostore.MEMBER_LEASE_SETTING, "")
    me = host_id(ctx)
    events: queue.Queue[Any] = queue.Queue()
    cancel: Callable[[], None] | None = None
    down = False
    say(f"cnet agent: host {me}, etcd {cl.describe()}, ttl {ttl}s")
    while not stop.is_set():
        try:
            snap = snapshot(cl)
            with ctx.store.read() as conn:
                nets = ostore.overlay_networks(conn)
            for net in nets:
                for line in sync_peers(ctx, cl, net, snap, me):
                    say(f"cnet agent: {net.name}: {line}")
            if cancel is None:
                cancel = _watch(cl, snap.revision + 1, events)
            if down:
                say("cnet agent: etcd answers again")
                down = False
        except ClusterUnavailable as exc:
            if not down:
                say(f"cnet agent: warning: {exc}; the data plane stays as it is")
                down = True
            if cancel is not None:
                cancel()
                cancel = None
        except CnetError as exc:
            say(f"cnet agent: error: {exc}")
        try:
            event = events.get(timeout=max(ttl / 3, 0.2))
            if event is ENDED:
                cancel = None
            while not events.empty():  # one sync for a burst of events
                if events.get_nowait() is ENDED:
                    cancel = None
        except queue.Empty:
            pass
    if cancel is not None:
        cancel()
