"""Process identity from /proc: a PID plus its start time names one process, never a reused PID."""

from __future__ import annotations

import os
from pathlib import Path


def start_time(pid: int) -> int | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
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
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]
