"""`cnet ps` opens the database directly (cnet/db/reading.py) only when recovery has nothing to do:
recovery_pending() (cnet/db/recovery_store.py) must say "something" on every state where
services/recovery.py's recover_all would act. Each recoverable state is built in a database of its
own and both are asked: the check, and recover_all itself with its two actions (the journal's
recovery, a container's release) replaced by recorders, so no plan ever runs here. The orphaned
removal, a database-only repair, runs for real."""

import os
import shutil
import time

import pytest

from cnet import journal, procs
from cnet.cli import invocation
from cnet.db import connection, migrate, queries, reading, recovery_store, store
from cnet.records import ContainerState
from cnet.services import recovery
from cnet.services.containers import lifecycle
from cnet.services.context import Context

from .test_ps_fast import container

ME = os.getpid()
MY_START = procs.start_time(ME)
# Our parent, named with another start time: a pid whose process is gone (reused since), and not
# ours (recovery leaves the operations of the process asking alone).
GONE = (os.getppid(), (procs.start_time(os.getppid()) or 0) + 12345)
BOOT = procs.boot_id()


def running(conn, cid, state=ContainerState.RUNNING, *, pid=(ME, MY_START), watcher=None, boot=BOOT):
    store.insert_container(conn, container(cid, "c" + cid[:4], state))
    store.set_pid(conn, cid, *pid)
    if watcher is not None:
        store.set_watcher(conn, cid, *watcher)
    conn.execute("UPDATE containers SET boot_id = ? WHERE id = ?", (boot, cid))


def operation(conn, owner):
    conn.execute(queries.OP_INSERT, ("run", "x" * 12, "create", owner[0], owner[1], time.time()))


# name -> (how to build it, whether recovery acts on it)
STATES = {
    "clean": (lambda c: running(c, "a1" * 6), False),
    "exited and creating only": (
        lambda c: (
            store.insert_container(c, container("b1" * 6, "old", ContainerState.EXITED)),
            store.insert_container(c, container("b2" * 6, "new", ContainerState.CREATING)),
        ),
        False,
    ),
    "an operation of a live owner": (lambda c: operation(c, (ME, MY_START)), False),
    "an interrupted operation": (lambda c: operation(c, GONE), True),
    "an interrupted operation, owner unknown": (lambda c: operation(c, (None, None)), True),
    "a removal nobody owns": (
        lambda c: store.insert_container(c, container("c1" * 6, "rm", ContainerState.REMOVING)),
        True,
    ),
    "a removal its operation owns": (
        lambda c: (
            store.insert_container(c, container("c2" * 6, "rm", ContainerState.REMOVING)),
            c.execute(queries.OP_INSERT, ("rm", "c2" * 6, "destroy", ME, MY_START, time.time())),
        ),
        False,
    ),
    "process gone, no watcher": (lambda c: running(c, "d1" * 6, pid=GONE), True),
    "process gone, watcher alive": (lambda c: running(c, "d2" * 6, pid=GONE, watcher=(ME, MY_START)), False),
    "process gone, watcher gone": (lambda c: running(c, "d3" * 6, pid=GONE, watcher=GONE), True),
    "restarting, both gone": (lambda c: running(c, "d4" * 6, ContainerState.RESTARTING, pid=GONE, watcher=GONE), True),
    "restarting, watcher alive": (
        lambda c: running(c, "d5" * 6, ContainerState.RESTARTING, pid=GONE, watcher=(ME, MY_START)),
        False,
    ),
    "no pid recorded yet": (lambda c: running(c, "d6" * 6, pid=(0, None)), True),
    "alive, but the host rebooted": (lambda c: running(c, "e1" * 6, boot="another-boot"), True),
    "alive, no boot recorded": (lambda c: running(c, "e2" * 6, boot=None), False),
    "one dead among live ones": (
        lambda c: (running(c, "f1" * 6), running(c, "f2" * 6, pid=GONE), running(c, "f3" * 6)),
        True,
    ),
}


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    d = tmp_path_factory.mktemp("migrated")
    connection.ensure_state_dir(d)
    conn = connection.open_state(d)
    migrate.upgrade(conn)
    conn.close()
    return connection.db_path(d)


@pytest.fixture
def recorders(monkeypatch):
    """recover_all's two actions, recorded instead of run (nothing may run ip/iptables here)."""
    acted: list[str] = []
    monkeypatch.setattr(journal.Journal, "recover", lambda self: acted.append("journal") or [])
    monkeypatch.setattr(lifecycle, "claim_and_release", lambda ctx, cid, code: acted.append(cid) or False)
    return acted


def build(migrated, tmp_path, name):
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    shutil.copy(migrated, connection.db_path(d))
    conn = connection.open_state(d)
    with conn.write():
        STATES[name][0](conn)
    conn.close()
    return d


def recover_all_acts(d, acted) -> bool:
    """Whether the full recovery did anything: an action recorded, or a row it repaired."""
    ctx = Context(state_dir=d)
    try:
        before = ctx.store.all("SELECT id, state FROM containers ORDER BY id")
        recovery.recover_all(ctx)
        after = ctx.store.all("SELECT id, state FROM containers ORDER BY id")
    finally:
        ctx.close()
    return bool(acted) or [tuple(r) for r in before] != [tuple(r) for r in after]


@pytest.mark.parametrize("name", list(STATES))
def test_the_check_says_what_recovery_would_do(migrated, tmp_path, recorders, name):
    d = build(migrated, tmp_path, name)
    conn = connection.open_state(d)
    try:
        pending = recovery_store.recovery_pending(conn)
    finally:
        conn.close()
    acts = recover_all_acts(d, recorders)
    assert (pending, acts) == (STATES[name][1], STATES[name][1]), recorders


@pytest.mark.parametrize("name", list(STATES))
def test_ps_opens_directly_only_when_nothing_is_to_recover(migrated, tmp_path, monkeypatch, name):
    """As root, a state with work goes through the Context (invocation.reading: the recovery);
    without root (no recovery runs) and with nothing to do, the database is opened directly."""
    d = build(migrated, tmp_path, name)
    direct = reading.open_current(str(d), root=True)
    assert (direct is None) == STATES[name][1]
    if direct is not None:
        direct.close()
    as_user = reading.open_current(str(d), root=False)
    assert as_user is not None
    as_user.close()
    prepared: list[Context] = []
    monkeypatch.setattr(invocation, "reading", lambda ctx: prepared.append(ctx) or ctx)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    options = dict(
        state_dir=str(d), dry_run=False, verbose=False, etcd=None, etcd_cacert=None, etcd_cert=None, etcd_key=None
    )
    state = invocation.ReadOnlyState(options)
    try:
        state.store()
    finally:
        state.close()
    assert len(prepared) == STATES[name][1]


def test_an_older_schema_goes_through_the_context(migrated, tmp_path):
    """The Context migrates it (cnet/db/migrate.py); the direct open leaves it as it is."""
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    shutil.copy(migrated, connection.db_path(d))
    conn = connection.open_state(d)
    conn.execute("UPDATE alembic_version SET version_num = '0007_ipv6'")
    conn.close()
    for root in (True, False):
        assert reading.open_current(str(d), root=root) is None
    conn = connection.open_state(d)
    assert migrate.current_revision(conn) == "0007_ipv6"
    conn.close()


def test_odd_state_dirs_go_through_the_context(tmp_path):
    """Anything the Context reports in one line is left to it; a missing one is the empty state."""
    wide = tmp_path / "wide"
    wide.mkdir()
    os.chmod(wide, 0o777)
    afile = tmp_path / "file"
    afile.write_text("x")
    for d in (wide, afile, afile / "below"):
        assert reading.open_current(str(d), root=True) is None, d
    for d in (tmp_path / "missing", tmp_path / "empty"):
        if d.name == "empty":
            d.mkdir(mode=0o700)
        conn = reading.open_current(str(d), root=True)
        assert conn is not None and migrate.current_revision(conn) == migrate.HEAD_REVISION
        assert conn.all("SELECT * FROM containers") == []
        conn.close()
        assert not connection.db_path(d).exists()
    assert not (tmp_path / "missing").exists()
