"""cnet.procs: process identity from /proc (PID + start time), read with plain os calls."""

import os
import subprocess
import time

from cnet import procs


def test_a_live_process_is_named_by_pid_and_start_time():
    me, start = procs.self_identity()
    assert me == os.getpid() and isinstance(start, int)
    assert procs.alive(me, start) and procs.alive(me, None)
    assert not procs.alive(me, start + 1)  # a reused PID is another process
    assert not procs.alive(None, None)


def test_exited_and_zombie_processes_are_not_alive():
    p = subprocess.Popen(["sleep", "30"])
    try:
        start = procs.start_time(p.pid)
        assert procs.alive(p.pid, start)
        assert p.pid in procs.children(os.getpid())
    finally:
        p.kill()
    deadline = time.monotonic() + 10
    while procs.start_time(p.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert procs.start_time(p.pid) is None, "a zombie has exited already"  # not reaped yet
    p.wait()
    assert not procs.alive(p.pid, start)
    assert procs.start_time(p.pid) is None and procs.children(p.pid) == []
