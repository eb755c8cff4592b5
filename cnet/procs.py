"""Process identity from /proc: a PID plus its start time names one process, never a reused PID."""

from __future__ import annotations

import os
from pathlib import Path


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
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


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
