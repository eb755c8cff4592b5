"""A shim for the `sh` package: its foreground mode spawns through posix_spawn().

Why: sh's foreground mode (`_fg=True`, what cnet.runner uses for every kernel command) starts the
program with os.spawnve(), which forks this Python process and runs Python code in the child
before exec. posix_spawn() is vfork + exec in C, several times cheaper per command (scripts/bench
measures a run end to end). The project requires `sh` (design card), so instead of replacing it,
`posix_spawn_for_sh()` swaps os.spawnve for a posix_spawn-based equivalent with the same contract
(P_WAIT: the exit code, or -signal) for the duration of one call.

Correctness never depends on it: a sh that stops calling os.spawnve still works, just slower
(tests/unit/test_runner.py checks the fast path is taken, and that os.spawnve is put back).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

ORIGINAL_SPAWNVE = os.spawnve


@contextmanager
def posix_spawn_for_sh() -> Iterator[None]:
    """os.spawnve is spawnve_posix inside the block (cnet is single-threaded when it runs kernel
    commands)."""
    # Narrower than os.spawnve's declared signature, which accepts bytes and paths: sh passes str.
    os.spawnve = spawnve_posix  # type: ignore[assignment]
    try:
        yield
    finally:
        os.spawnve = ORIGINAL_SPAWNVE


def spawnve_posix(mode: int, file: str, args: list[str] | tuple[str, ...], env: Mapping[str, str]) -> int:
    if mode != os.P_WAIT:  # only the mode sh's foreground calls use
        return ORIGINAL_SPAWNVE(mode, file, args, env)
    try:
        pid = os.posix_spawn(file, list(args), env)
    except OSError as exc:
        # What a shell reports: 126 found but not executable, 127 not found.
        return 126 if exc.errno in (errno.EACCES, errno.ENOEXEC) else 127
    try:
        return wait_exit_code(pid)
    except BaseException:
        # Interrupted (Ctrl-C): let the command finish before the exception reaches the journal,
        # so its undo sees the command's whole effect, never a half-applied batch still running.
        while True:
            try:
                wait_exit_code(pid)
                break
            except KeyboardInterrupt:
                continue
            except ChildProcessError:
                break
        raise


def wait_exit_code(pid: int) -> int:
    while True:
        _, status = os.waitpid(pid, 0)
        if not os.WIFSTOPPED(status):
            return os.waitstatus_to_exitcode(status)
