"""Start-of-command repair: finish interrupted operations, then reap dead containers."""

from __future__ import annotations

from ..db.connection import db_path
from .containers import reap_dead
from .context import Context


def recover_all(ctx: Context) -> list[str]:
    if not db_path(ctx.state_dir).exists():
        return []
    lines = ctx.journal.recover()
    lines += reap_dead(ctx)
    return lines
