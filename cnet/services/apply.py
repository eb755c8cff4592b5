"""The one seam between planning and doing, used by every use case:

    outcome = apply(ctx, prepare)

`prepare(conn)` runs inside a write transaction: it checks, allocates, writes the rows and returns
a `Change` (the operation kind, its target, the plan and the result to show). Under --dry-run that
transaction ran on the in-memory copy and the plan is returned as it is (the CLI prints it as a
script). Otherwise the operation is journaled in that same transaction (rows and journal commit
together), and executed after it: the journal raises RollbackIncomplete / TeardownIncomplete
itself, so the use cases never re-raise by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..commands import Plan
from ..db.connection import Connection
from ..records import OpKind
from .context import Context

R = TypeVar("R")


@dataclass
class Outcome(Generic[R]):
    """What a use case returns: the plan (always; the script --dry-run prints) and the result."""

    plan: Plan
    result: R


@dataclass
class Change(Generic[R]):
    kind: OpKind
    target: str
    plan: Plan
    result: R
    # The steps to journal, when not the whole plan (run: the launch is not a step, its process
    # is the container).
    journaled: Plan | None = None
    # Runs in the transaction that finishes a successful operation.
    on_success: Callable[[Connection], None] | None = None
    # How teardown errors are reported ("network web removed").
    title: str = ""


def apply(ctx: Context, prepare: Callable[[Connection], Change[R]]) -> Outcome[R]:
    # Shared: operations run in parallel, but never while gc or net restore (exclusive) observe
    # and repair the kernel (they would take a half-built container for orphans or holes).
    with ctx.network_lock(shared=True):
        with ctx.store.write() as conn:
            change = prepare(conn)
            steps = change.journaled if change.journaled is not None else change.plan
            if ctx.dry_run or not steps.steps:  # nothing to do is no operation
                return Outcome(change.plan, change.result)
            op = ctx.journal.begin(conn, change.kind, change.target, steps, title=change.title)
        ctx.journal.execute(op, on_success=change.on_success)
    return Outcome(change.plan, change.result)
