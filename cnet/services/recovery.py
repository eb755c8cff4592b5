"""Start-of-command repair: finish interrupted operations, then reap dead containers."""

from __future__ import annotations

import os

from .. import procs
from ..db import store
from ..db.connection import db_path
from .context import Context


def recover_all(ctx: Context) -> list[str]:
    if not db_path(ctx.state_dir).exists():
        return []
    lines: list[str] = []
    if _interrupted_operations_likely(ctx):
        lines += ctx.journal.recover()
    from .containers import reap_dead

    lines += reap_dead(ctx)
    return lines


def _interrupted_operations_likely(ctx: Context) -> bool:
    """A running operation whose owner is gone. Only a hint (the journal checks again, and claims
    each operation atomically): when there is none, the journal and the runner (and `sh`) are
    not even loaded, which every `cnet ps` would otherwise pay for."""
    me = os.getpid()
    return any(
        owner != me and not procs.alive(owner, start) for _, owner, start in store.running_operation_owners(ctx.store)
    )
