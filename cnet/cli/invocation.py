"""One `cnet` invocation without typer: its services Context, the preparation of it for a read-only
or a mutating command, and how a command's failure ends the process (one line on stderr and an
exit code). Both entry paths use these: typer's (cli/main.py: the global options callback and
main()) and the own one of `ps` and `run` (cli/entry.py, cli/plain_args.py), so the two cannot
differ in what they build or how they fail.
typer's own exceptions (usage errors, Exit, Abort) stay in cli/main.py: only typer raises them."""

from __future__ import annotations

import os
import sys

# typing itself is not imported: `cnet ps` loads this module (tests/unit/test_startup_imports.py)
TYPE_CHECKING = False
if TYPE_CHECKING:  # loaded by the commands that build one, not by main's error path
    from ..db.connection import Connection
    from ..services.context import Context

# State, logs and journal are private to root.
UMASK = 0o077


def new_context(
    state_dir: str | None,
    dry_run: bool,
    verbose: bool,
    etcd: str | None,
    etcd_cacert: str | None,
    etcd_cert: str | None,
    etcd_key: str | None,
) -> Context:
    """The Context the global options describe (their values exactly as parsed)."""
    from ..services.context import Context, state_dir_from_env

    return Context(
        state_dir=state_dir_from_env(state_dir),
        dry_run=dry_run,
        verbose=verbose,
        say=lambda line: print(line, file=sys.stderr, flush=True),
        echo=lambda line: print(f"+ {line}", file=sys.stderr, flush=True),
        etcd=etcd or os.environ.get("CNET_ETCD") or None,
        etcd_tls=(etcd_cacert, etcd_cert, etcd_key),
    )


class ReadOnlyState:
    """The state database of a read-only command run without typer (`ps`, cli/entry.py): opened
    directly (cnet/db/reading.py) when a Context would only open it, else through the Context the
    global options describe, prepared by reading() (its recovery, migration and one-line errors).
    Opened when the command first asks for it, so its input errors come first, as on typer's path."""

    def __init__(self, global_options: dict) -> None:
        self.options = global_options
        self.ctx: Context | None = None
        self.conn: Connection | None = None

    def store(self) -> Connection:
        if self.conn is None:
            if not self.options["dry_run"]:
                from ..db import reading as direct

                state_dir = direct.state_dir_name(self.options["state_dir"])
                self.conn = direct.open_current(state_dir, root=os.geteuid() == 0)
            if self.conn is None:
                self.ctx = new_context(**self.options)
                self.conn = reading(self.ctx).store
        return self.conn

    def close(self) -> None:
        """As the Context closes (click closes typer's on success and on every error)."""
        if self.ctx is not None:
            self.ctx.close()
        elif self.conn is not None:
            self.conn.close()


def mutating(ctx: Context) -> Context:
    """Prepare a Context for a command that changes state: root check, then crash recovery first."""
    ctx.require_root()
    if not ctx.dry_run:
        recover(ctx)
    return ctx


def reading(ctx: Context) -> Context:
    """Prepare a Context for a read-only command: recovery only when it can (root), else just reads."""
    ctx.readonly = True
    if not ctx.dry_run and os.geteuid() == 0:
        recover(ctx)
    return ctx


def recover(ctx: Context) -> None:
    from ..services import recovery

    for line in recovery.recover_all(ctx):
        print(line, file=sys.stderr)


def command_failed(exc: BaseException) -> int:
    """Report a command's exception the way typer's main reports it, then cnet's main: the exit code.

    Raised inside typer's command, EOFError and Ctrl-C are typer's (EOFError: a blank line and an
    abort; both exit 130), a closed pipe on output is typer's too (exit 1, nothing printed): the
    typer-free path must end the same way for the same exception."""
    import errno

    if isinstance(exc, EOFError):
        print(file=sys.stderr)
        return 130
    if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
        return 1
    return failed(exc)


def failed(exc: BaseException) -> int:
    """cnet's own mapping of an exception to one line on stderr and an exit code (cli/main.py's
    main() uses it for everything that is not typer's): a user error (CnetError) or a broken state
    database exits 1, Ctrl-C 130, a bug 70 (its traceback only with CNET_DEBUG set)."""
    from ..errors import CnetError

    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, CnetError):
        print(f"cnet: error: {exc}", file=sys.stderr)
        return 1
    if isinstance(exc, BrokenPipeError):
        return 1
    if not isinstance(exc, Exception):  # SystemExit and the like are not failures to report
        raise exc
    state = _state_error(exc)
    if state is not None:
        print(f"cnet: error: {state}", file=sys.stderr)
        return 1
    if os.environ.get("CNET_DEBUG"):  # a bug: one line, full traceback only on request
        raise exc
    print(f"cnet: internal error: {type(exc).__name__}: {exc} (set CNET_DEBUG=1 for a traceback)", file=sys.stderr)
    return 70


def _state_error(exc: Exception) -> str | None:
    """A full disk, a read-only or damaged state database met after start-up (a write in the
    middle of a command): one line, as when the database is opened (services/context.py)."""
    import errno

    full_or_readonly = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT)
    if type(exc).__module__ == "sqlite3" or full_or_readonly:
        from ..db.connection import state_error

        return state_error(exc, None)
    return None
