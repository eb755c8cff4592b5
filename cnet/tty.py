"""Pseudo-terminals for `run -it` / `exec -it`: cnet keeps the master and copies bytes between it
and its own terminal, which it puts in raw mode, so that Ctrl-C, Ctrl-Z and the line editing are
the container's (its line discipline sends the signals to its foreground process group); the
window size follows cnet's terminal on every SIGWINCH. Standard library only."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import struct
import termios
import tty as _tty
from collections.abc import Iterator
from contextlib import contextmanager

_WINSIZE = struct.Struct("HHHH")


def copy_size(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * _WINSIZE.size)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass  # src is no terminal: the pty keeps its default size


def open_pty(size_from: int) -> tuple[int, int]:
    """(master, slave), the slave sized like `size_from` when that is a terminal."""
    master, slave = os.openpty()
    copy_size(size_from, slave)
    return master, slave


@contextmanager
def raw(fd: int) -> Iterator[None]:
    """The terminal on fd in raw mode for the block (nothing when fd is no terminal)."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        _tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)


class Proxy:
    """Copies stdin -> master and master -> stdout; pump() does one round."""

    def __init__(self, master: int, stdin: int = 0, stdout: int = 1):
        self.master, self.stdin, self.stdout = master, stdin, stdout
        self.stdin_open = True
        self.master_open = True
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old_wakeup = signal.set_wakeup_fd(self._wake_w)
        self._old_winch = signal.signal(signal.SIGWINCH, lambda *_: copy_size(self.stdin, self.master))

    def close(self) -> None:
        signal.set_wakeup_fd(self._old_wakeup)
        signal.signal(signal.SIGWINCH, self._old_winch)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def pump(self, timeout: float) -> None:
        fds = [self._wake_r]
        if self.master_open:
            fds.append(self.master)
        if self.stdin_open:
            fds.append(self.stdin)
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            return
        if self._wake_r in ready:
            try:
                os.read(self._wake_r, 512)
            except BlockingIOError:
                pass
        if self.master in ready:
            self._copy_out()
        if self.stdin_open and self.stdin in ready:
            data = os.read(self.stdin, 65536)
            if data:
                _write_all(self.master, data)
            else:
                self.stdin_open = False

    def _copy_out(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError as exc:  # EIO: every slave descriptor is closed
            if exc.errno != errno.EIO:
                raise
            data = b""
        if data:
            _write_all(self.stdout, data)
        else:
            self.master_open = False

    def drain(self) -> None:
        """What the container wrote last, after it ended."""
        while self.master_open and select.select([self.master], [], [], 0)[0]:
            self._copy_out()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]
