"""The journal: every mutating operation is written down before its first command runs.

    op = journal.begin(conn, kind, target, direction, plan)   # inside the caller's write tx
    journal.execute(op)                                       # step by step, each committed

- direction "create": a failing step makes the journal run the undos of every started step in
  reverse, then the operation is `rolled_back` and the caller's rollback handler removes the rows
  the operation had added. The error names the failed command, its exit code and stderr.
- direction "destroy" (teardown): steps are best effort; a failing step runs its fallback
  commands, every error is collected and the operation still completes (rolls forward).
- Crash recovery: an operation still `running` whose owner process is gone was interrupted
  (SIGKILL, power loss). recover() finishes it the same way: undo (create) or complete (destroy),
  then calls the handler registered for its kind so the database matches the kernel again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import sqlalchemy as sa

from . import procs
from .commands import Command, Plan
from .errors import CommandFailed, RollbackIncomplete

# kind -> (on_rolled_back(conn, target), on_completed(conn, target)); filled by the service layer.
Handler = Callable[["sa.Connection", str], None]
HANDLERS: dict[str, tuple[Handler | None, Handler | None]] = {}


def register(kind: str, *, rolled_back: Handler | None = None, completed: Handler | None = None) -> None:
    HANDLERS[kind] = (rolled_back, completed)


@dataclass
class StepRow:
    id: int
    seq: int
    summary: str
    do: Command
    undo: list[Command]
    fallback: list[Command]
    status: str


@dataclass
class Operation:
    id: int
    kind: str
    target: str
    direction: str
    steps: list[StepRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _cmds(text: str) -> list[Command]:
    return [Command.from_json(d) for d in json.loads(text)]


class Journal:
    def __init__(self, store, runner, say: Callable[[str], None] | None = None):
        self.store = store
        self.runner = runner
        self.say = say or (lambda _msg: None)

    # --- writing the plan ---------------------------------------------------------------------
    def begin(self, conn: sa.Connection, kind: str, target: str, direction: str, plan: Plan) -> Operation:
        """Record the operation and all its steps (pending). Call inside the caller's write
        transaction, together with the state rows the operation creates, so a crash at any later
        point finds both."""
        pid, start = procs.self_identity()
        now = time.time()
        op_id = conn.exec_driver_sql(
            "INSERT INTO operations (kind, target, direction, status, owner_pid, owner_start_time, started_at, recovered) "
            "VALUES (?, ?, ?, 'running', ?, ?, ?, 0)",
            (kind, target, direction, pid, start, now),
        ).lastrowid
        op = Operation(op_id, kind, target, direction)
        for seq, step in enumerate(plan):
            step_id = conn.exec_driver_sql(
                "INSERT INTO operation_steps (operation_id, seq, summary, command, do_json, undo_json, fallback_json, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                (op_id, seq, step.summary, step.do.render(), step.do_json(), step.undo_json(), step.fallback_json()),
            ).lastrowid
            op.steps.append(
                StepRow(step_id, seq, step.summary, step.do, list(step.undo), list(step.fallback), "pending")
            )
        return op

    # --- running it -----------------------------------------------------------------------------
    def _mark(self, step: StepRow, status: str, **cols) -> None:
        sets = ", ".join(["status = ?"] + [f"{k} = ?" for k in cols])
        self.store.conn.exec_driver_sql(
            f"UPDATE operation_steps SET {sets} WHERE id = ?", (status, *cols.values(), step.id)
        )
        step.status = status

    def _run_step(self, step: StepRow) -> None:
        started = time.time()
        self._mark(step, "started", started_at=started)
        try:
            result = self.runner.run(step.do)
        except CommandFailed as exc:
            self._mark(
                step, "failed", finished_at=time.time(), duration_ms=(time.time() - started) * 1000,
                exit_code=exc.code, error=exc.stderr[-4000:],
            )
            raise
        self._mark(step, "done", finished_at=time.time(), duration_ms=result.duration_ms, exit_code=0)

    def execute(self, op: Operation, on_success: Callable[[sa.Connection], None] | None = None) -> None:
        """Run the pending steps. create: all or nothing; destroy: best effort, always completes."""
        if op.direction == "destroy":
            self._complete(op)
            self._finish(op, "done", on_success, handler_index=None)
            return
        try:
            for step in op.steps:
                if step.status == "pending":
                    self._run_step(step)
        except CommandFailed as exc:
            errors = self._undo(op)
            self._finish(op, "rolled_back", None, handler_index=0, error=str(exc))
            if errors:
                raise RollbackIncomplete(exc, errors) from None
            raise
        except BaseException as exc:  # KeyboardInterrupt, SIGTERM turned into an exception...
            errors = self._undo(op)
            self._finish(op, "rolled_back", None, handler_index=0, error=repr(exc))
            raise
        self._finish(op, "done", on_success, handler_index=None)

    def _undo(self, op: Operation) -> list[str]:
        """Run the undos of every step that started, newest first; collect every error."""
        errors: list[str] = []
        for step in reversed(op.steps):
            if step.status not in ("started", "done", "failed"):
                continue
            failed = []
            for undo in step.undo:
                ok, err = self.runner.try_run(undo)
                # Undo is best effort: "not found" means the change never happened or is gone.
                if not ok and not _is_absent_error(err):
                    failed.append(err)
            if failed:
                errors += failed
                self._mark(step, "undo_failed", error="; ".join(failed)[-4000:])
            else:
                self._mark(step, "undone")
        return errors

    def _complete(self, op: Operation) -> None:
        for step in op.steps:
            if step.status not in ("pending", "started"):
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

    def _finish(self, op, status, on_success, handler_index, error: str | None = None) -> None:
        handler = None
        if handler_index is not None:
            handler = HANDLERS.get(op.kind, (None, None))[handler_index]
        elif op.direction == "destroy":
            handler = HANDLERS.get(op.kind, (None, None))[1]
        if error is None and op.errors:
            error = "; ".join(op.errors)
        with self.store.write() as conn:
            if handler:
                handler(conn, op.target)
            if on_success:
                on_success(conn)
            conn.exec_driver_sql(
                "UPDATE operations SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                (status, time.time(), error, op.id),
            )

    # --- crash recovery ---------------------------------------------------------------------------
    def load(self, conn: sa.Connection, op_id: int) -> Operation:
        row = conn.exec_driver_sql(
            "SELECT id, kind, target, direction FROM operations WHERE id = ?", (op_id,)
        ).first()
        op = Operation(row[0], row[1], row[2], row[3])
        for r in conn.exec_driver_sql(
            "SELECT id, seq, summary, do_json, undo_json, fallback_json, status FROM operation_steps "
            "WHERE operation_id = ? ORDER BY seq",
            (op_id,),
        ):
            op.steps.append(
                StepRow(r[0], r[1], r[2], Command.from_json(json.loads(r[3])), _cmds(r[4]), _cmds(r[5]), r[6])
            )
        return op

    def interrupted(self) -> list[int]:
        """Running operations whose owner process is gone, claimed by this process."""
        rows = self.store.conn.exec_driver_sql(
            "SELECT id, owner_pid, owner_start_time FROM operations WHERE status = 'running'"
        ).fetchall()
        claimed = []
        pid, start = procs.self_identity()
        for op_id, owner, owner_start in rows:
            if owner == pid or procs.alive(owner, owner_start):
                continue
            # Compare-and-swap the owner so two recovering processes never both act.
            cur = self.store.conn.exec_driver_sql(
                "UPDATE operations SET owner_pid = ?, owner_start_time = ?, recovered = 1 "
                "WHERE id = ? AND status = 'running' AND owner_pid IS ? AND owner_start_time IS ?",
                (pid, start, op_id, owner, owner_start),
            )
            if cur.rowcount == 1:
                claimed.append(op_id)
        return claimed

    def recover(self) -> list[str]:
        """Finish every interrupted operation; returns one line per operation for the user."""
        messages = []
        for op_id in self.interrupted():
            with self.store.read() as conn:
                op = self.load(conn, op_id)
            if op.direction == "create":
                errors = self._undo(op)
                self._finish(op, "rolled_back", None, handler_index=0, error="interrupted; rolled back by recovery")
                what = "rolled back" + (f" ({len(errors)} undo errors)" if errors else "")
            else:
                self._complete(op)
                self._finish(op, "done", None, handler_index=None)
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
