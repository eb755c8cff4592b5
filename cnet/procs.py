"""Process identity from /proc: a PID plus its start time names one process, never a reused PID."""

from __future__ import annotations

import os


def start_time(pid: int) -> int | None:
    data = _read_proc(f"/proc/{pid}/stat")
    if data is None:
        return None
    # The comm field may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(b")") + 2 :].split()
    if rest[0] == b"Z":  # a zombie has exited already
        return None
    return int(rest[19])


def alive(pid: int | None, expected_start: int | None) -> bool:
    if not pid:
        return False
    st = start_time(pid)
    return st is not None and (expected_start is None or st == expected_start)


def self_identity() -> tuple[int, int | None]:
    pid = os.getpid()
    return pid, start_time(pid)


def boot_id() -> str:
    data = _read_proc("/proc/sys/kernel/random/boot_id")
    return "unknown" if data is None else data.decode().strip()


def release_reason(
    pid: int | None,
    pid_start: int | None,
    watcher_pid: int | None,
    watcher_start: int | None,
    recorded_boot: str | None,
    boot: str,
) -> str | None:
    """Why a container marked running must be released now ("the host rebooted", "its process is
    gone"), or None while its process lives or its watcher does (which releases it within
    moments). Recovery (services/containers/reaping.py) releases on it, and `ps`'s check for
    work (cnet/db/recovery_store.py) asks the same question."""
    if recorded_boot is not None and recorded_boot != boot:
        return "the host rebooted"
    if pid and alive(pid, pid_start):
        return None
    if watcher_pid and alive(watcher_pid, watcher_start):
        return None
    return "its process is gone"


def children(pid: int) -> list[int]:
    data = _read_proc(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in data.split()] if data else []


def _read_proc(path: str) -> bytes | None:
    """A small /proc file, or None when it (the process) is gone. Plain os calls: every command
    checks each running container this way (reap_dead), and pathlib's read costs several times
    the read itself."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 65536)
    except OSError:  # ESRCH: the process exited between open and read
        return None
    finally:
        os.close(fd)
