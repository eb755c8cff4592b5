"""Start-of-command repair: finish interrupted operations, then reap dead containers."""

from __future__ import annotations


from ..db import session
from .context import Context


def recover_all(ctx: Context) -> list[str]:
    if not session.db_path(ctx.state_dir).exists():
        return []
    from . import containers  # registers the container journal handlers

    lines = ctx.journal.recover()
    lines += containers.reap_dead(ctx)
    return lines
