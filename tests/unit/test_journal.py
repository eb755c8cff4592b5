"""The journal with a fake runner: rollback in reverse at every failure point, teardown that rolls
forward, and crash recovery of operations whose owner process is gone."""

import subprocess
import sys

import pytest

from cnet import journal as journal_mod
from cnet import procs
from cnet.commands import Plan, Step, cmd
from cnet.db import connection
from cnet.errors import CommandFailed, RollbackIncomplete, TeardownIncomplete
from cnet.journal import Handlers
from cnet.records import Direction, OpKind
from cnet.runner import Result
from cnet.services.handlers import JOURNAL_HANDLERS

STEPS = 4


class FakeRunner:
    """Records every command; fails the do-command whose argv is in `fail`, with exit 3."""

    def __init__(self, fail=(), fail_undo=(), absent_undo=()):
        self.calls: list[tuple[str, ...]] = []
        self.fail = set(fail)
        self.fail_undo = set(fail_undo)
        self.absent_undo = set(absent_undo)

    def run(self, command):
        self.calls.append(command.argv)
        if command.argv in self.fail:
            raise CommandFailed(command.argv, 3, "some warning\nboom: it broke")
        if command.argv in self.fail_undo:
            raise CommandFailed(command.argv, 2, "undo exploded")
        if command.argv in self.absent_undo:
            raise CommandFailed(command.argv, 1, 'Cannot find device "x"')
        return Result("", 1.0)

    def try_run(self, command):
        try:
            self.run(command)
            return True, ""
        except CommandFailed as exc:
            return False, str(exc)


SEEN: list[tuple[str, str]] = []
TEST_HANDLERS = {
    "test-create": Handlers(rolled_back=lambda conn, target: SEEN.append(("rolled_back", target))),
    "test-destroy": Handlers(completed=lambda conn, target: SEEN.append(("completed", target))),
}


@pytest.fixture
def handlers():
    """Test handlers for the kinds used here (passed to every Journal below); records calls."""
    SEEN.clear()
    yield SEEN
    SEEN.clear()


def journal(store, runner):
    return journal_mod.Journal(store, runner, TEST_HANDLERS)


def plan_of(n: int = STEPS, fallback: bool = False) -> Plan:
    plan = Plan()
    for i in range(1, n + 1):
        plan.add(
            Step(
                f"step {i}",
                cmd("do", str(i)),
                undo=(cmd("undo", str(i), "a"), cmd("undo", str(i), "b")),
                fallback=(cmd("fb", str(i)),) if fallback else (),
            )
        )
    return plan


def begin(store, runner, kind="test-create", direction="create", plan=None, target="T1"):
    j = journal(store, runner)
    plan = plan or plan_of()
    plan.direction = Direction(direction)
    with store.write() as conn:
        op = j.begin(conn, kind, target, plan)
    return j, op


def op_row(store, op_id):
    return tuple(store.one("SELECT status, error, recovered FROM operations WHERE id = ?", (op_id,)))


def step_statuses(store, op_id):
    return [
        r[0] for r in store.execute("SELECT status FROM operation_steps WHERE operation_id = ? ORDER BY seq", (op_id,))
    ]


def test_all_steps_run_in_order_and_op_is_done(store, handlers):
    runner = FakeRunner()
    j, op = begin(store, runner)
    called = []
    j.execute(op, on_success=lambda conn: called.append(True))
    assert runner.calls == [("do", str(i)) for i in range(1, STEPS + 1)]
    assert op_row(store, op.id)[0] == "done"
    assert step_statuses(store, op.id) == ["done"] * STEPS
    assert called == [True]
    assert handlers == []


def test_steps_are_journaled_before_they_run(store, handlers, tmp_path):
    """When a command runs, its step row already says `started` (committed), and every later
    step is still `pending`."""
    seen = []

    class Peeking(FakeRunner):
        def run(self, command):
            # A second connection sees only committed data.
            other = connection.open_state(tmp_path)
            try:
                seen.append(step_statuses(other, op.id))
            finally:
                other.close()
            return super().run(command)

    j, op = begin(store, Peeking())
    j.execute(op)
    assert seen == [
        ["started", "pending", "pending", "pending"],
        ["done", "started", "pending", "pending"],
        ["done", "done", "started", "pending"],
        ["done", "done", "done", "started"],
    ]


@pytest.mark.parametrize("n", range(1, STEPS + 1))
def test_failure_at_step_n_undoes_in_reverse(store, handlers, n):
    runner = FakeRunner(fail={("do", str(n))})
    j, op = begin(store, runner)
    success = []
    with pytest.raises(CommandFailed) as exc:
        j.execute(op, on_success=lambda conn: success.append(True))
    dos = [("do", str(i)) for i in range(1, n + 1)]
    # The failed step is undone too (a batch may have applied half of its lines), then the
    # done steps, newest first; each step's own undo commands in their given order.
    undos = [u for i in range(n, 0, -1) for u in (("undo", str(i), "a"), ("undo", str(i), "b"))]
    assert runner.calls == dos + undos
    status, error, recovered = op_row(store, op.id)
    assert status == "rolled_back" and recovered == 0
    assert step_statuses(store, op.id) == ["undone"] * n + ["pending"] * (STEPS - n)
    assert handlers == [("rolled_back", "T1")]
    assert success == []
    # The error names the command, its exit code and its stderr.
    msg = str(exc.value)
    assert f"do {n}" in msg and "exit 3" in msg and "boom: it broke" in msg
    assert exc.value.argv == ("do", str(n)) and exc.value.code == 3
    assert "boom: it broke" in error
    failed = store.one(
        "SELECT exit_code, error FROM operation_steps WHERE operation_id = ? AND seq = ?", (op.id, n - 1)
    )
    assert failed[0] == 3 and "boom: it broke" in failed[1]


def test_undo_errors_are_collected_and_absent_is_fine(store, handlers):
    runner = FakeRunner(
        fail={("do", "3")}, fail_undo={("undo", "2", "a")}, absent_undo={("undo", "1", "a"), ("undo", "3", "b")}
    )
    j, op = begin(store, runner)
    with pytest.raises(RollbackIncomplete) as exc:
        j.execute(op)
    # Every undo still ran despite the failure in the middle.
    assert [c for c in runner.calls if c[0] == "undo"] == [
        ("undo", "3", "a"),
        ("undo", "3", "b"),
        ("undo", "2", "a"),
        ("undo", "2", "b"),
        ("undo", "1", "a"),
        ("undo", "1", "b"),
    ]
    assert "undo exploded" in str(exc.value) and "boom: it broke" in str(exc.value)
    assert len(exc.value.errors) == 1
    assert op_row(store, op.id)[0] == "rolled_back"
    assert step_statuses(store, op.id) == ["undone", "undo_failed", "undone", "pending"]
    assert handlers == [("rolled_back", "T1")]


def test_interrupt_rolls_back_too(store, handlers):
    class Interrupting(FakeRunner):
        def run(self, command):
            if command.argv == ("do", "2"):
                self.calls.append(command.argv)
                raise KeyboardInterrupt
            return super().run(command)

    runner = Interrupting()
    j, op = begin(store, runner)
    with pytest.raises(KeyboardInterrupt):
        j.execute(op)
    assert runner.calls[2:] == [("undo", "2", "a"), ("undo", "2", "b"), ("undo", "1", "a"), ("undo", "1", "b")]
    assert op_row(store, op.id)[0] == "rolled_back"
    assert handlers == [("rolled_back", "T1")]


def test_destroy_runs_fallbacks_and_completes(store, handlers):
    runner = FakeRunner(fail={("do", "2"), ("do", "3"), ("fb", "3")})
    j, op = begin(store, runner, kind="test-destroy", direction="destroy", plan=plan_of(fallback=True))
    with pytest.raises(TeardownIncomplete) as exc:
        j.execute(op)
    assert exc.value.errors == op.errors and "fb 3" in str(exc.value)
    assert runner.calls == [("do", "1"), ("do", "2"), ("fb", "2"), ("do", "3"), ("fb", "3"), ("do", "4")]
    status, error, _ = op_row(store, op.id)
    assert status == "done"
    assert "fb 3" in error  # the fallback's failure is kept, the operation still completes
    assert op.errors and "fb 3" in op.errors[0]
    assert step_statuses(store, op.id) == ["done", "failed", "failed", "done"]
    assert handlers == [("completed", "T1")]


def test_destroy_without_fallback_tolerates_absent(store, handlers):
    class Absent(FakeRunner):
        def run(self, command):
            self.calls.append(command.argv)
            if command.argv == ("do", "1"):
                raise CommandFailed(command.argv, 1, 'Cannot find device "cnet-x"')
            if command.argv == ("do", "2"):
                raise CommandFailed(command.argv, 1, "Operation not permitted")
            return Result("", 1.0)

    runner = Absent()
    j, op = begin(store, runner, kind="test-destroy", direction="destroy")
    with pytest.raises(TeardownIncomplete) as exc:
        j.execute(op)
    assert "Operation not permitted" in str(exc.value) and len(exc.value.errors) == 1
    assert runner.calls == [("do", str(i)) for i in range(1, STEPS + 1)]
    assert len(op.errors) == 1 and "Operation not permitted" in op.errors[0]
    assert op_row(store, op.id)[0] == "done"
    assert handlers == [("completed", "T1")]


# --- crash recovery ----------------------------------------------------------------------------
def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def set_progress(store, op_id, statuses, owner_pid, owner_start):
    with store.write() as conn:
        for seq, st in enumerate(statuses):
            conn.execute("UPDATE operation_steps SET status = ? WHERE operation_id = ? AND seq = ?", (st, op_id, seq))
        conn.execute(
            "UPDATE operations SET owner_pid = ?, owner_start_time = ? WHERE id = ?", (owner_pid, owner_start, op_id)
        )


def test_recovery_rolls_back_create_of_dead_owner(store, handlers):
    _, op = begin(store, FakeRunner())
    set_progress(store, op.id, ["done", "done", "started", "pending"], dead_pid(), 12345)
    runner = FakeRunner()
    j = journal(store, runner)
    lines = j.recover()
    assert lines == [f"cnet: recovered interrupted operation {op.id} (test-create T1): rolled back"]
    assert runner.calls == [
        ("undo", "3", "a"),
        ("undo", "3", "b"),
        ("undo", "2", "a"),
        ("undo", "2", "b"),
        ("undo", "1", "a"),
        ("undo", "1", "b"),
    ]
    status, error, recovered = op_row(store, op.id)
    assert (status, recovered) == ("rolled_back", 1)
    assert "interrupted" in error
    assert step_statuses(store, op.id) == ["undone", "undone", "undone", "pending"]
    assert handlers == [("rolled_back", "T1")]
    # Nothing left to recover.
    assert journal(store, FakeRunner()).recover() == []


def test_recovery_completes_destroy_of_dead_owner(store, handlers):
    _, op = begin(store, FakeRunner(), kind="test-destroy", direction="destroy", target="T2")
    set_progress(store, op.id, ["done", "started", "pending", "pending"], dead_pid(), None)
    runner = FakeRunner()
    lines = journal(store, runner).recover()
    assert lines == [f"cnet: recovered interrupted operation {op.id} (test-destroy T2): completed"]
    # The started step runs again (teardown is idempotent), then the rest.
    assert runner.calls == [("do", "2"), ("do", "3"), ("do", "4")]
    assert op_row(store, op.id)[:1] == ("done",)
    assert op_row(store, op.id)[2] == 1
    assert step_statuses(store, op.id) == ["done"] * STEPS
    assert handlers == [("completed", "T2")]


def test_live_owner_is_not_touched(store, handlers):
    _, op = begin(store, FakeRunner())
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        set_progress(
            store, op.id, ["done", "started", "pending", "pending"], sleeper.pid, procs.start_time(sleeper.pid)
        )
        runner = FakeRunner()
        assert journal(store, runner).recover() == []
        assert runner.calls == []
        assert op_row(store, op.id) == ("running", None, 0)
        assert handlers == []
    finally:
        sleeper.kill()
        sleeper.wait()
    # Once the owner is gone, it is recovered.
    assert len(journal(store, FakeRunner()).recover()) == 1
    assert op_row(store, op.id)[0] == "rolled_back"


def test_reused_pid_counts_as_dead(store, handlers):
    """A live process with the owner's PID but another start time is not the owner."""
    _, op = begin(store, FakeRunner())
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        set_progress(
            store, op.id, ["started", "pending", "pending", "pending"], sleeper.pid, procs.start_time(sleeper.pid) - 1
        )
        runner = FakeRunner()
        assert len(journal(store, runner).recover()) == 1
        assert runner.calls == [("undo", "1", "a"), ("undo", "1", "b")]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_own_running_operation_is_not_recovered(store, handlers):
    """begin() records this process as the owner: recovery in the same process leaves it alone."""
    _, op = begin(store, FakeRunner())
    assert journal(store, FakeRunner()).recover() == []
    assert op_row(store, op.id)[0] == "running"


def test_finished_operations_are_not_recovered(store, handlers):
    j, op = begin(store, FakeRunner())
    j.execute(op)
    with store.write() as conn:
        conn.execute("UPDATE operations SET owner_pid = ? WHERE id = ?", (dead_pid(), op.id))
    runner = FakeRunner()
    assert journal(store, runner).recover() == []
    assert runner.calls == []


def test_interrupt_with_failing_undo_says_rollback_incomplete(store, handlers):
    """After Ctrl-C, undo failures are not dropped: the user is told the rollback is incomplete."""

    class Interrupting(FakeRunner):
        def run(self, command):
            if command.argv == ("do", "3"):
                self.calls.append(command.argv)
                raise KeyboardInterrupt
            return super().run(command)

    runner = Interrupting(fail_undo={("undo", "2", "b")})
    j, op = begin(store, runner)
    with pytest.raises(RollbackIncomplete) as exc:
        j.execute(op)
    assert isinstance(exc.value.cause, KeyboardInterrupt)
    assert len(exc.value.errors) == 1 and "undo exploded" in exc.value.errors[0]
    assert str(exc.value).startswith("interrupted (rollback incomplete: ")
    # Every undo still ran, newest first.
    assert [c for c in runner.calls if c[0] == "undo"] == [
        ("undo", "3", "a"),
        ("undo", "3", "b"),
        ("undo", "2", "a"),
        ("undo", "2", "b"),
        ("undo", "1", "a"),
        ("undo", "1", "b"),
    ]
    assert op_row(store, op.id)[0] == "rolled_back"
    assert step_statuses(store, op.id) == ["undone", "undo_failed", "undone", "pending"]
    assert handlers == [("rolled_back", "T1")]


def test_unknown_kind_is_refused_at_begin(store):
    j = journal(store, FakeRunner())
    with store.write() as conn, pytest.raises(ValueError, match="no journal handlers for operation kind 'nope'"):
        j.begin(conn, "nope", "T1", plan_of())
    assert store.scalar("SELECT count(*) FROM operations") == 0


def test_every_operation_kind_has_handlers():
    assert set(JOURNAL_HANDLERS) == set(OpKind)
    for kind, h in JOURNAL_HANDLERS.items():
        assert isinstance(h, Handlers), kind


def test_teardown_plan_is_journaled_as_destroy(store, handlers):
    plan = plan_of()
    plan.direction = Direction.DESTROY
    j = journal(store, FakeRunner())
    with store.write() as conn:
        op = j.begin(conn, "test-destroy", "T9", plan)
    assert store.scalar("SELECT direction FROM operations WHERE id = ?", (op.id,)) == "destroy"
    j.execute(op)
    assert handlers == [("completed", "T9")]


def test_a_failed_atomic_first_step_has_nothing_to_undo_and_says_so(store, handlers):
    """A single sysctl write (or one-table restore) that fails changed nothing: its undo is not run
    (on a read-only /proc/sys it would fail too and turn into "rollback incomplete"), and the error
    says that nothing was changed."""
    plan = Plan([Step("one value", cmd("do", "1"), undo=(cmd("undo", "1"),), atomic=True), *plan_of(2).steps[1:]])
    runner = FakeRunner(fail={("do", "1")})
    j, op = begin(store, runner, plan=plan)
    with pytest.raises(CommandFailed) as exc:
        j.execute(op)
    assert not isinstance(exc.value, RollbackIncomplete)
    assert str(exc.value).endswith("boom: it broke (nothing was changed)")
    assert [c for c in runner.calls if c[0] == "undo"] == []
    assert step_statuses(store, op.id) == ["failed", "pending"]
    assert op_row(store, op.id)[:2] == ("rolled_back", str(exc.value))


def test_a_failed_atomic_later_step_undoes_the_earlier_ones_only(store, handlers):
    plan = plan_of(2)
    plan.add(Step("one value", cmd("do", "3"), undo=(cmd("undo", "3"),), atomic=True))
    runner = FakeRunner(fail={("do", "3")})
    j, op = begin(store, runner, plan=plan)
    with pytest.raises(CommandFailed) as exc:
        j.execute(op)
    assert "nothing was changed" not in str(exc.value)
    assert [c for c in runner.calls if c[0] == "undo"] == [
        ("undo", "2", "a"),
        ("undo", "2", "b"),
        ("undo", "1", "a"),
        ("undo", "1", "b"),
    ]


def test_nothing_to_do_counts_as_done_in_a_create_plan(store, handlers):
    class NoEntries(FakeRunner):
        def run(self, command):
            if command.argv == ("conntrack", "-D"):
                self.calls.append(command.argv)
                raise CommandFailed(command.argv, 1, "conntrack v1.4.7: 0 flow entries have been deleted.")
            return super().run(command)

    plan = plan_of(1)
    plan.add(Step("flush", cmd("conntrack", "-D"), nothing_to_do=("0 flow entries",)))
    runner = NoEntries()
    j, op = begin(store, runner, plan=plan)
    j.execute(op)
    assert step_statuses(store, op.id) == ["done", "done"]
    assert op_row(store, op.id)[0] == "done"
