"""Finding containers whose process died without anyone releasing them (watcher killed, host
rebooted): every command run as root checks this first (services/recovery.py). The check reads
the database and /proc only; releasing, rare, loads the rest of the container use cases."""

from __future__ import annotations

from ... import procs
from ...db import recovery_store
from ..context import Context


def reap_dead(ctx: Context) -> list[str]:
    """Containers marked running whose processes are gone, and nobody is releasing them
    (watcher killed, host rebooted): release them now."""
    lines: list[str] = []
    # An `rm -f` killed between releasing the network and deleting the record leaves a row in
    # 'removing' that no operation owns: finish the removal.
    if recovery_store.has_orphan_removing(ctx.store):
        with ctx.store.write() as conn:
            recovery_store.delete_orphan_removing(conn)
    running = recovery_store.running_processes(ctx.store)
    if not running:
        return lines
    boot = procs.boot_id()
    for r in running:
        why = recovery_store.release_reason(r, boot)
        if why is None:
            continue
        from .lifecycle import claim_and_release  # only now: it loads the plans, kernel builders, apply

        if claim_and_release(ctx, r.id, None):
            lines.append(f"cnet: container {r.name} marked exited ({why}); network released")
    return lines
