"""The only module that runs commands (through the `sh` package) or spawns processes.

ShellRunner.run() executes one Command (argv + optional stdin) and raises CommandFailed carrying
the argv, exit code and stderr. With an echo callback (-v/--verbose) every command is shown
before it runs, exactly as --dry-run would print it.

SpawnRunner keeps that contract without the `sh` package, for the CNI plugin alone: a runtime
execs the plugin for every attachment, and importing `sh` (with asyncio and importlib.metadata
behind it) costs several times what the reference bridge plugin takes for a whole ADD
(scripts/bench, "CNI plugin ADD/DEL"). It spawns exactly as ShellRunner's fast path does
(posix_spawn, stdin and output through memfds), only without sh's Python layer around it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any

from ._shfast import posix_spawn_for_sh
from .commands import Command
from .errors import CommandFailed
from .kernel.netns import HELD_FD

if TYPE_CHECKING:
    import subprocess

_sh: ModuleType | None = None
# Every process spawn() started (see there). cnet commands are short-lived: they end without
# waiting for these, which then belong to the init process.
_SPAWNED: list[subprocess.Popen[bytes]] = []


def _sh_module() -> ModuleType:
    global _sh
    if _sh is None:
        import sh  # imported by the commands that run something, not by `ps` or `--help`

        _sh = sh
    return _sh


@dataclass
class Result:
    stdout: str
    duration_ms: float


class ShellRunner:
    def __init__(self, echo: Callable[[str], None] | None = None):
        self.echo = echo

    def _echo(self, line: str) -> None:
        if not self.echo:
            return
        try:
            self.echo(line)
        except OSError:
            # -v output piped into `head` and closed: stop echoing, never abort a kernel change.
            self.echo = None

    def run(self, command: Command) -> Result:
        """Run a mutating command; its output (stdout and stderr) only matters when it fails.

        Through sh's foreground mode: one spawn with nothing in the child but exec (cnet._shfast),
        instead of sh's usual pipes, threads and Python code run in the forked child, which cost
        more than the `ip` command itself (scripts/bench). Foreground mode inherits this
        process's stdio, so for the duration of the call fd 0 is a memfd holding the command's
        stdin and fds 1 and 2 a memfd collecting its output; cnet is single-threaded when it runs
        kernel commands."""
        sh = _sh_module()
        self._echo(command.render())
        started = time.perf_counter()
        try:
            program = sh.Command(command.argv[0])
        except sh.CommandNotFound:
            raise CommandFailed(command.argv, 127, f"{command.argv[0]}: command not found") from None
        stdin_fd = os.memfd_create("cnet-stdin")
        out_fd = os.memfd_create("cnet-output")
        try:
            if command.stdin:
                os.write(stdin_fd, command.stdin.encode())
                os.lseek(stdin_fd, 0, os.SEEK_SET)
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:  # None when cnet was started with that fd closed
                    stream.flush()
            try:
                os.getcwd()
            except FileNotFoundError:
                # sh's foreground mode saves and restores the working directory: a deleted one
                # would fail every command. Kernel commands don't care where they run.
                os.chdir("/")
            saved = [os.dup(0), os.dup(1), os.dup(2)]
            try:
                os.dup2(stdin_fd, 0)
                os.dup2(out_fd, 1)
                os.dup2(out_fd, 2)
                with posix_spawn_for_sh():
                    program(*command.argv[1:], _fg=True, _env=_command_env())
                code = 0
            except sh.ErrorReturnCode as exc:  # includes SignalException: exit_code is -N
                code = exc.exit_code
            finally:
                for fd, target in zip(saved, (0, 1, 2), strict=True):
                    os.dup2(fd, target)
                    os.close(fd)
            duration = (time.perf_counter() - started) * 1000
            os.lseek(out_fd, 0, os.SEEK_SET)
            output = _read_all(out_fd).decode(errors="replace")
        finally:
            os.close(stdin_fd)
            os.close(out_fd)
        if code != 0:
            raise CommandFailed(command.argv, code, output)
        return Result(output, duration)

    def read(self, command: Command) -> str:
        """Run a read-only command (`iptables-save`, `ip -j link`) and return its stdout."""
        sh = _sh_module()
        self._echo(command.render())
        try:
            program = sh.Command(command.argv[0])
        except sh.CommandNotFound:
            raise CommandFailed(command.argv, 127, f"{command.argv[0]}: command not found") from None
        kwargs: dict[str, Any] = {"_tty_out": False, "_tty_in": False, "_env": _command_env()}
        if command.stdin is not None:
            kwargs["_in"] = command.stdin
        try:
            return str(program(*command.argv[1:], **kwargs))
        except sh.ErrorReturnCode as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc.stderr)
            raise CommandFailed(command.argv, exc.exit_code, stderr) from None
        except sh.SignalException as exc:
            raise CommandFailed(command.argv, -1, str(exc)) from None

    def try_run(self, command: Command) -> tuple[bool, str]:
        """Best effort: (ok, error text). Used by teardown, which never stops at an error."""
        try:
            self.run(command)
            return True, ""
        except CommandFailed as exc:
            return False, str(exc)

    def signal(self, pid: int, sig: int) -> bool:
        """Send a signal (stop/rm); False when the process is already gone."""
        import signal as signals

        self._echo(f"kill -s {signals.Signals(sig).name[3:]} {pid}")
        try:
            os.kill(pid, sig)
            return True
        except ProcessLookupError:
            return False

    def signal_group(self, pgid: int, sig: int) -> bool:
        """Signal a process group (a watcher started in its own session and what it runs)."""
        import signal as signals

        self._echo(f"kill -s {signals.Signals(sig).name[3:]} -- -{pgid}")
        try:
            os.killpg(pgid, sig)
            return True
        except ProcessLookupError:
            return False

    def replace_process(self, argv: list[str], env: dict[str, str]) -> None:
        """exec(): this process becomes argv (the watcher restarting a container). Never returns."""
        import shlex

        self._echo(shlex.join(argv))
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os.execvpe(argv[0], argv, env)

    # Process spawning for containers: these must outlive cnet, so they are plain children
    # started in their own session, not `sh` background jobs tied to this process.
    def spawn(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        stdin: IO[bytes] | int | None = None,
        stdout: IO[bytes] | int | None = None,
        stderr: IO[bytes] | int | None = None,
        new_session: bool = True,
        hold: int | None = None,
    ) -> subprocess.Popen[bytes]:
        """`hold`: a descriptor the child gets as fd HELD_FD (the watcher's held ports)."""
        import shlex

        self._echo(shlex.join(argv))
        proc = self._popen(argv, env, stdin, stdout, stderr, new_session, hold)
        # Kept referenced: a Popen dropped while its child runs joins subprocess's list of
        # children that every later Popen polls, one waitpid each, so `cnet up` of N containers
        # (two spawns each, never waited for: they outlive cnet) would poll N*N times.
        _SPAWNED.append(proc)
        return proc

    def _popen(
        self,
        argv: list[str],
        env: dict[str, str],
        stdin: IO[bytes] | int | None,
        stdout: IO[bytes] | int | None,
        stderr: IO[bytes] | int | None,
        new_session: bool,
        hold: int | None,
    ) -> subprocess.Popen[bytes]:
        import subprocess

        if hold is None:
            return subprocess.Popen(
                argv,
                env=env,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                start_new_session=new_session,
                close_fds=True,
            )
        # Popen passes descriptors under their own numbers: put it on HELD_FD for the call
        # (whatever this process had there, e.g. the database, is put back right after).
        try:
            saved: int | None = os.dup(HELD_FD)
        except OSError:
            saved = None
        try:
            os.dup2(hold, HELD_FD)
            return subprocess.Popen(
                argv,
                env=env,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                start_new_session=new_session,
                close_fds=True,
                pass_fds=(HELD_FD,),
            )
        finally:
            if saved is None:
                os.close(HELD_FD)
            else:
                os.dup2(saved, HELD_FD, inheritable=False)
                os.close(saved)


class SpawnRunner(ShellRunner):
    """ShellRunner with run and read spawning directly, without the `sh` package (see the module
    docstring); try_run, signal and spawn are ShellRunner's."""

    def run(self, command: Command) -> Result:
        self._echo(command.render())
        started = time.perf_counter()
        code, out, _ = _spawn(command, split_stderr=False)
        if code != 0:
            raise CommandFailed(command.argv, code, out)
        return Result(out, (time.perf_counter() - started) * 1000)

    def read(self, command: Command) -> str:
        self._echo(command.render())
        code, out, err = _spawn(command, split_stderr=True)
        if code != 0:
            raise CommandFailed(command.argv, code, err)
        return out


def _spawn(command: Command, *, split_stderr: bool) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one command: posix_spawnp with fd 0 a memfd holding its
    stdin and fds 1 and 2 memfds collecting its output (one, or two when split_stderr)."""
    from ._shfast import wait_exit_code

    fds = [os.memfd_create("cnet-stdin"), os.memfd_create("cnet-stdout")]
    if split_stderr:
        fds.append(os.memfd_create("cnet-stderr"))
    try:
        if command.stdin:
            os.write(fds[0], command.stdin.encode())
            os.lseek(fds[0], 0, os.SEEK_SET)
        actions = [
            (os.POSIX_SPAWN_DUP2, fds[0], 0),
            (os.POSIX_SPAWN_DUP2, fds[1], 1),
            (os.POSIX_SPAWN_DUP2, fds[-1], 2),
        ]
        env = _command_env()
        try:
            pid = os.posix_spawnp(command.argv[0], list(command.argv), env, file_actions=actions)
        except OSError as exc:
            # What a shell reports: 126 found but not executable, 127 not found.
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            return code, "", f"{command.argv[0]}: {exc.strerror}"
        code = wait_exit_code(pid)
        out = []
        for fd in fds[1:]:
            os.lseek(fd, 0, os.SEEK_SET)
            out.append(_read_all(fd).decode(errors="replace"))
        return code, out[0], out[-1]
    finally:
        for fd in fds:
            os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _command_env() -> dict[str, str]:
    # A fixed locale keeps error messages parseable; PATH is inherited (tests put fakes first).
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    return env
