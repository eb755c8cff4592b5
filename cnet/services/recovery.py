"""Start-of-command repair: finish interrupted operations, then reap dead containers.
cnet/db/recovery_store.py's recovery_pending() tells, from the same reads, whether there is any."""

from __future__ import annotations

from ..db import recovery_store
from ..db.connection import db_path
from .context import Context


def recover_all(ctx: Context) -> list[str]:
    if not db_path(ctx.state_dir).exists():
        return []
    lines: list[str] = []
    if recovery_store.interrupted_operations_likely(ctx.store):
        lines += ctx.journal.recover()
    from .containers import reap_dead

    lines += reap_dead(ctx)
    return lines
