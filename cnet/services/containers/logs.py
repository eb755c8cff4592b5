"""A detached container's log: starting its writer (cnet/kernel/logwriter.py) and reading it back
for `cnet logs` (--since/--until, --tail, -f across a rotation). The log is LOG.1 (the older half,
after a rotation) then LOG, both records of the writer; lines of a log written before cnet kept
times are read as stdout without a time."""

from __future__ import annotations

import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ...frozen_record import FrozenRecord
from ...kernel import logwriter as lw
from ...records import Container
from ..context import Context, container_dir

# (time or None, stream, the bytes as the program wrote them: with their newline if it ended a line)
Record = tuple[bytes | None, str, bytes]


def max_size(c: Container) -> int:
    return int(c.spec.get("log_max_size") or lw.DEFAULT_MAX_SIZE)


def clock_offset() -> float:
    """The epoch time minus the time since boot, which the writer adds to /proc/uptime."""
    with open("/proc/uptime", "rb") as f:
        up = float(f.read().split()[0])
    return time.time() - up


def writer_argv(c: Container) -> list[str]:
    assert c.log_path is not None
    return lw.writer_argv(c.log_path, max_size(c), clock_offset())


def start_writer(ctx: Context, c: Container, env: dict[str, str]) -> tuple[int, int]:
    """Start the container's log writer; returns the write ends of its stdout and stderr pipes,
    which the caller hands to the watcher, then closes."""
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    try:
        _spawn_writer(ctx, c, env, r_out, r_err)
    except BaseException:
        os.close(w_out)
        os.close(w_err)
        raise
    finally:
        os.close(r_out)
        os.close(r_err)
    return w_out, w_err


def _spawn_writer(ctx: Context, c: Container, env: dict[str, str], r_out: int, r_err: int) -> None:
    """The writer is in a session of its own: a kill of the watcher's process group leaves it to
    write what is still in the pipes. Its own errors go to the container's reap.log."""
    errors = os.open(container_dir(ctx, c.id) / "reap.log", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    try:
        ctx.runner.spawn(writer_argv(c), env=env, stdin=r_out, stdout=errors, stderr=errors, hold=r_err)
    finally:
        os.close(errors)


def _pipe_ends(c: Container) -> list[str] | None:
    """The watcher's write ends of a running detached container's pipes (it keeps them on fds 6
    and 7 for restarts), as paths that open the same pipes."""
    from ... import procs
    from ...kernel.netns import SAVED_STDIO

    if not (c.detached and c.log_path and c.live and c.watcher_pid):
        return None
    if not procs.alive(c.watcher_pid, c.watcher_start_time):
        return None
    return [f"/proc/{c.watcher_pid}/fd/{fd}" for fd in SAVED_STDIO[1:]]


def writer_gone(c: Container) -> bool:
    """Its writer was killed: its stdout pipe has no reader (poll on a write end, opened again
    through the watcher's, says POLLERR), a fact rather than a guess."""
    ends = _pipe_ends(c)
    if ends is None:
        return False
    try:
        fd = os.open(ends[0], os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False  # the watcher is gone, or has not made its copies yet
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode) and pipe_broken(fd)
    finally:
        os.close(fd)


def revive_writer(ctx: Context, c: Container, env: dict[str, str]) -> bool:
    """A running detached container whose log writer is gone: a new writer on the same pipes,
    their read ends opened again through the watcher's write ends. What the program wrote
    meanwhile is lost (its writes failed), nothing after. True when one was started. The lock
    (which writers hold shared) keeps two commands from both starting one."""
    ends = _pipe_ends(c)
    if ends is None or c.log_path is None:
        return False
    lock = os.open(c.log_path + ".lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a writer holds it: alive
        if not writer_gone(c):
            return False
        readers = [os.open(end, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC) for end in ends]
        try:
            for fd in readers:
                os.set_blocking(fd, True)
            _spawn_writer(ctx, c, env, readers[0], readers[1])
        finally:
            for fd in readers:
                os.close(fd)
        return True
    finally:
        os.close(lock)


def pipe_broken(fd: int) -> bool:
    """A pipe's write end whose reader is gone (the writer was killed): poll says POLLERR."""
    import select

    p = select.poll()
    p.register(fd, select.POLLOUT)
    return any(ev & (select.POLLERR | select.POLLNVAL) for _fd, ev in p.poll(0))


def writer_alive(log_path: str) -> bool:
    """Some writer of this log still runs (it holds LOG.lock shared until it exits)."""
    try:
        fd = os.open(log_path + ".lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def wait_writer(log_path: str, timeout: float = 2.0) -> None:
    """Until the writers have written what the container left in the pipes and exited."""
    deadline = time.monotonic() + timeout
    while writer_alive(log_path) and time.monotonic() < deadline:
        time.sleep(0.01)


class Query(FrozenRecord):
    since: bytes | None = None  # record times, as the writer writes them (logwriter.stamp)
    until: bytes | None = None
    tail: int | None = None
    follow: bool = False


def stamp(ns: int) -> bytes:
    """A time in nanoseconds since the epoch as the writer writes it (so times compare as bytes)."""
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z").encode()


def parse(line: bytes) -> Record:
    rec = lw.parse_record(line)
    return rec if rec is not None else (None, "stdout", line)


def _lines(f: BinaryIO) -> Iterator[bytes]:
    """Complete lines from f's position on (a line still being written is left for later)."""
    pending = b""
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            break
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line + b"\n"
    if pending:
        f.seek(-len(pending), os.SEEK_CUR)


def _open_files(log_path: str) -> list[BinaryIO]:
    """LOG.1 then LOG, LOG opened first: a rotation in between then shows as the same file."""
    out: list[BinaryIO] = []
    for path in (log_path, log_path + ".1"):
        try:
            f = open(path, "rb")  # noqa: SIM115 -- closed by read()
        except FileNotFoundError:
            continue
        if out and os.fstat(f.fileno()).st_ino == os.fstat(out[0].fileno()).st_ino:
            f.close()
            continue
        out.insert(0, f)
    return out


def _is_end(line: bytes) -> bool:
    """A record that ends a line (tag F), or a line that is no record (an old log's)."""
    return line[lw.TIME_WIDTH + 8 : lw.TIME_WIDTH + 9] != b"P" or lw.parse_record(line) is None


def _tail(files: list[BinaryIO], n: int) -> list[Record]:
    """The last n lines (a line: its partial records and the one that ends it; a stream's last
    partial record ends one too), read backwards in blocks from the end, newest file first.
    Leaves each file at its end."""
    raw: list[bytes] = []  # newest first
    ends = 0
    for f in reversed(files):
        end = pos = f.seek(0, os.SEEK_END)
        carry = b""
        while pos > 0 and ends <= n:
            step = min(1 << 16, pos)
            pos -= step
            f.seek(pos)
            lines = (f.read(step) + carry).split(b"\n")
            carry = lines.pop(0) if pos > 0 else b""  # maybe cut: completed by the next block
            for line in reversed(lines):
                if line:
                    raw.append(line + b"\n")
                    ends += _is_end(line)
        f.seek(end)
        if ends > n:
            break
    return _last_lines([parse(line) for line in reversed(raw)], n)


def _last_lines(recs: list[Record], n: int) -> list[Record]:
    if n == 0:
        return []
    last_of = {stream: i for i, (_t, stream, _d) in enumerate(recs)}
    ends = [i for i, (_t, s, d) in enumerate(recs) if d.endswith(b"\n") or last_of[s] == i]
    return recs if len(ends) <= n else recs[ends[-n - 1] + 1 :]


def read(
    log_path: str,
    query: Query,
    emit: Callable[[Record], None],
    still_running: Callable[[], bool],
    *,
    poll: float = 0.1,
) -> None:
    """Emit the log's records that match the query; with follow, go on (across rotations) until
    the container has ended and its writer has written the rest, or a record is past `until`."""
    files = _open_files(log_path)
    if not still_running():
        wait_writer(log_path)
    try:
        if query.tail is not None:
            backlog: Iterator[Record] = iter(_tail(files, query.tail))
        else:
            backlog = (parse(line) for f in files for line in _lines(f))
        if not _emit_all(backlog, query, emit):
            return
        if not query.follow:
            return
        current = files[-1] if files else None
        ended = False
        while True:
            before = current.tell() if current is not None else 0
            if current is not None and not _emit_all((parse(x) for x in _lines(current)), query, emit):
                return
            busy = current is not None and current.tell() != before
            try:
                now = os.stat(log_path).st_ino
            except FileNotFoundError:
                now = None
            if now is not None and (current is None or now != os.fstat(current.fileno()).st_ino):
                # Rotated (or created): the rest of the old one, then the new one from its start.
                if current is not None:
                    if not _emit_all((parse(x) for x in _lines(current)), query, emit):
                        return
                    files.remove(current)
                    current.close()
                current = open(log_path, "rb")  # noqa: SIM115 -- closed below
                files.append(current)
                continue
            if ended or (query.until is not None and stamp(time.time_ns()) > query.until):
                return
            if busy:  # while lines come, read on at once (a rotation is not missed)
                continue
            if not still_running():
                wait_writer(log_path)
                ended = True  # one more round: what the writer wrote last, a last rotation
                continue
            time.sleep(poll)
    finally:
        for f in files:
            f.close()


def _emit_all(recs: Iterator[Record], query: Query, emit: Callable[[Record], None]) -> bool:
    """False once a record is past `until` (nothing after it can be shown)."""
    since, until = query.since, query.until
    for rec in recs:
        t = rec[0]
        if since is not None or until is not None:
            if t is None:
                continue
            if until is not None and t > until:
                return False
            if since is not None and t < since:
                continue
        emit(rec)
    return True
