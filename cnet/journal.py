"""The journal: every mutating operation is written down before its first command runs.

    journal = Journal(conn, runner, handlers)                  # handlers: {kind: Handlers}
    op = journal.begin(conn, kind, target, plan)               # inside the caller's write tx
    journal.execute(op)                                        # step by step, each committed

- A CREATE plan: a failing step makes the journal run the undos of every started step in reverse,
  then the operation is `rolled_back` and its kind's `rolled_back` handler removes the rows the
  operation had added. The error names the failed command, its exit code and stderr; when undos
  failed too (also after Ctrl-C), RollbackIncomplete lists them.
- A DESTROY plan (teardown): steps are best effort; a failing step runs its fallback commands,
  every error is collected, the operation still completes (rolls forward, `completed` handler),
  and then TeardownIncomplete lists the errors.
- Crash recovery: an operation still `running` whose owner process is gone was interrupted
  (SIGKILL, power loss). recover() finishes it the same way: undo (create) or complete (destroy),
  then calls its kind's handler so the database matches the kernel again.

The handlers come in through the constructor (cnet.services.handlers holds the table): a kind
without an entry is refused at begin(), before anything runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from . import procs
from .commands import Command, Plan
from .db import queries as q
from .db.connection import Connection
from .errors import CommandFailed, RollbackIncomplete, TeardownIncomplete
from .frozen_record import FrozenRecord
from .records import Direction, OpStatus, StepStatus

Handler = Callable[[Connection, str], None]


class Handlers(FrozenRecord):
    """What an operation kind does to the database once the kernel side is settled: after a
    rollback (remove the rows the operation added) or a completed teardown (remove the rows of
    what is gone). Called inside the transaction that finishes the operation."""

    rolled_back: Handler | None = None
    completed: Handler | None = None


class RunResult(Protocol):
    @property
    def duration_ms(self) -> float: ...


class Runner(Protocol):
    def run(self, command: Command) -> RunResult: ...

    def try_run(self, command: Command) -> tuple[bool, str]: ...


@dataclass
class StepRow:
    id: int
    seq: int
    summary: str
    do: Command
    undo: list[Command]
    fallback: list[Command]
    status: StepStatus
    atomic: bool = False
    nothing_to_do: tuple[str, ...] = ()


@dataclass
class Operation:
    id: int
    kind: str
    target: str
    direction: Direction
    steps: list[StepRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # How a teardown's errors are reported ("network web removed"); recovery has none.
    title: str = ""


def _cmds(text: str) -> list[Command]:
    return [Command.from_json(d) for d in json.loads(text)]


class Journal:
    def __init__(self, conn: Connection, runner: Runner, handlers: Mapping[str, Handlers]):
        self.conn = conn
        self.runner = runner
        self.handlers = handlers

    # --- writing the plan ---------------------------------------------------------------------
    def begin(self, conn: Connection, kind: str, target: str, plan: Plan, *, title: str = "") -> Operation:
        """Record the operation and all its steps (pending). Call inside the caller's write
        transaction, together with the state rows the operation creates, so a crash at any later
        point finds both."""
        if kind not in self.handlers:
            raise ValueError(f"no journal handlers for operation kind {kind!r}")
        pid, start = procs.self_identity()
        op_id = conn.execute(q.OP_INSERT, (kind, target, plan.direction, pid, start, time.time())).lastrowid
        assert op_id is not None
        op = Operation(op_id, kind, target, plan.direction, title=title or f"{kind} {target} finished")
        for seq, step in enumerate(plan):
            step_id = conn.execute(
                q.STEP_INSERT,
                (op_id, seq, step.summary, step.do.render(), step.do_json(), step.undo_json(), step.fallback_json()),
            ).lastrowid
            assert step_id is not None
            op.steps.append(
                StepRow(
                    step_id,
                    seq,
                    step.summary,
                    step.do,
                    list(step.undo),
                    list(step.fallback),
                    StepStatus.PENDING,
                    step.atomic,
                    step.nothing_to_do,
                )
            )
        return op

    # --- running it -----------------------------------------------------------------------------
    def _run_step(self, step: StepRow) -> None:
        started = time.time()
        self.conn.execute(q.STEP_STARTED, (started, step.id))
        step.status = StepStatus.STARTED
        try:
            result = self.runner.run(step.do)
        except CommandFailed as exc:
            now = time.time()
            if any(m in exc.stderr.lower() for m in step.nothing_to_do):
                self.conn.execute(q.STEP_DONE, (now, (now - started) * 1000, step.id))
                step.status = StepStatus.DONE
                return
            self.conn.execute(q.STEP_FAILED, (now, (now - started) * 1000, exc.code, exc.stderr[-4000:], step.id))
            step.status = StepStatus.FAILED
            raise
        self.conn.execute(q.STEP_DONE, (time.time(), result.duration_ms, step.id))
        step.status = StepStatus.DONE

    def execute(self, op: Operation, on_success: Callable[[Connection], None] | None = None) -> None:
        """Run the pending steps. CREATE: all or nothing; DESTROY: best effort, always completes,
        then raises TeardownIncomplete if it went past errors."""
        if op.direction == Direction.DESTROY:
            self._complete(op)
            self._finish(op, OpStatus.DONE, on_success)
            if op.errors:
                raise TeardownIncomplete(op.title, op.errors)
            return
        try:
            for step in op.steps:
                if step.status == StepStatus.PENDING:
                    self._run_step(step)
        except CommandFailed as exc:
            errors = self._undo(op)
            if not errors and not any(s.status == StepStatus.UNDONE for s in op.steps):
                # The failed step changed nothing and no earlier step had run: say so, rather
                # than leave the user wondering what the rollback left.
                exc.add_detail("nothing was changed")
            self._finish(op, OpStatus.ROLLED_BACK, None, error=str(exc))
            if errors:
                raise RollbackIncomplete(exc, errors) from None
            raise
        except BaseException as exc:  # KeyboardInterrupt, SIGTERM turned into an exception...
            errors = self._undo(op)
            self._finish(op, OpStatus.ROLLED_BACK, None, error=repr(exc))
            if errors:
                # The interrupt still ends the command, but the user must learn that something
                # was left behind (`cnet gc` removes it).
                raise RollbackIncomplete(exc, errors) from exc
            raise
        self._finish(op, OpStatus.DONE, on_success)

    def _undo(self, op: Operation) -> list[str]:
        """Run the undos of every step that started, newest first; collect every error."""
        errors: list[str] = []
        for step in reversed(op.steps):
            if step.status not in (StepStatus.STARTED, StepStatus.DONE, StepStatus.FAILED):
                continue
            if step.status == StepStatus.FAILED and step.atomic:
                continue  # it failed as a whole: there is nothing of it to undo
            failed = []
            for undo in step.undo:
                ok, err = self.runner.try_run(undo)
                # Undo is best effort: "not found" means the change never happened or is gone.
                if not ok and not _is_absent_error(err):
                    failed.append(err)
            if failed:
                errors += failed
                self.conn.execute(q.STEP_UNDO_FAILED, ("; ".join(failed)[-4000:], step.id))
                step.status = StepStatus.UNDO_FAILED
            else:
                self.conn.execute(q.STEP_UNDONE, (step.id,))
                step.status = StepStatus.UNDONE
        return errors

    def _complete(self, op: Operation) -> None:
        for step in op.steps:
            if step.status not in (StepStatus.PENDING, StepStatus.STARTED):
                continue
            try:
                self._run_step(step)
            except CommandFailed as exc:
                if not step.fallback:
                    if not _is_absent_error(exc.stderr):
                        op.errors.append(str(exc))
                    continue
                for fb in step.fallback:
                    ok, err = self.runner.try_run(fb)
                    if not ok and not _is_absent_error(err):
                        op.errors.append(err)

    def _finish(
        self,
        op: Operation,
        status: OpStatus,
        on_success: Callable[[Connection], None] | None,
        error: str | None = None,
    ) -> None:
        handlers = self.handlers.get(op.kind, Handlers())
        if status == OpStatus.ROLLED_BACK:
            handler = handlers.rolled_back
        elif op.direction == Direction.DESTROY:
            handler = handlers.completed
        else:
            handler = None
        if error is None and op.errors:
            error = "; ".join(op.errors)
        with self.conn.write() as conn:
            if handler:
                handler(conn, op.target)
            if on_success:
                on_success(conn)
            conn.execute(q.OP_FINISH, (status, time.time(), error, op.id))

    # --- crash recovery ---------------------------------------------------------------------------
    def load(self, conn: Connection, op_id: int) -> Operation:
        row = conn.one(q.OP_BY_ID, (op_id,))
        assert row is not None
        op = Operation(row["id"], row["kind"], row["target"], Direction(row["direction"]))
        for r in conn.all(q.OP_STEPS, (op_id,)):
            op.steps.append(
                StepRow(
                    r["id"],
                    r["seq"],
                    r["summary"],
                    Command.from_json(json.loads(r["do_json"])),
                    _cmds(r["undo_json"]),
                    _cmds(r["fallback_json"]),
                    StepStatus(r["status"]),
                )
            )
        return op

    def interrupted(self) -> list[int]:
        """Running operations whose owner process is gone, claimed by this process."""
        rows = self.conn.all(q.OPS_RUNNING_OWNERS)
        claimed = []
        pid, start = procs.self_identity()
        for op_id, owner, owner_start in rows:
            if owner == pid or procs.alive(owner, owner_start):
                continue
            if self.conn.execute(q.OP_CLAIM, (pid, start, op_id, owner, owner_start)).rowcount == 1:
                claimed.append(op_id)
        return claimed

    def recover(self) -> list[str]:
        """Finish every interrupted operation; returns one line per operation for the user."""
        messages = []
        for op_id in self.interrupted():
            with self.conn.read() as conn:
                op = self.load(conn, op_id)
            if op.direction == Direction.CREATE:
                errors = self._undo(op)
                self._finish(op, OpStatus.ROLLED_BACK, None, error="interrupted; rolled back by recovery")
                what = "rolled back" + (f" ({len(errors)} undo errors)" if errors else "")
            else:
                self._complete(op)
                self._finish(op, OpStatus.DONE, None)
                what = "completed"
            messages.append(f"cnet: recovered interrupted operation {op.id} ({op.kind} {op.target}): {what}")
        return messages


_ABSENT_MARKERS = (
    "cannot find device",
    "no such file or directory",
    "does not exist",
    "no chain/target/match by that name",
    "bad rule (does a matching rule exist",
    "no such process",
    "0 flow entries",
    "not found",
)


def _is_absent_error(text: str) -> bool:
    low = text.lower()
    return any(m in low for m in _ABSENT_MARKERS)
