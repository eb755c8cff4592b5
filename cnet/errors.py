"""The error tree. The CLI turns every CnetError into one line on stderr and exit code 1."""

from __future__ import annotations


class CnetError(Exception):
    """Base of every error a user can cause or see; never shown with a traceback."""


class ValidationError(CnetError):
    """Bad input, found before anything was changed."""


class NotFound(CnetError):
    """A named network, container or operation does not exist."""


class Conflict(CnetError):
    """The request clashes with existing state (name taken, overlap, port in use...)."""


class AllocationError(CnetError):
    """IPAM could not hand out an address (subnet or range exhausted)."""


class PermissionDenied(CnetError):
    """A mutating command was run without root."""


class StateError(CnetError):
    """The state dir or database cannot be used as it is (full disk, damaged or newer database,
    read-only, wrong owner or mode); nothing was changed."""


class CommandFailed(CnetError):
    """A generated kernel command exited non-zero."""

    def __init__(self, argv: tuple[str, ...], code: int, stderr: str):
        import shlex  # here: `cnet ps` loads this module, and shlex imports re (cli/shell_quote.py)

        self.argv = tuple(argv)
        self.code = code
        self.stderr = stderr.strip()
        # Not just the last line: iptables-restore ends with a "Try `... -h'" hint and names the
        # real cause ("Chain ... does not exist") above it; the journal recognises an undo of
        # something already gone by that text.
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip() and not ln.startswith("Try `")]
        detail = "; ".join(lines[-3:]) if lines else "no error output"
        super().__init__(f"command failed (exit {code}): {shlex.join(self.argv)}: {detail}")

    def add_detail(self, text: str) -> None:
        """Append what the rollback found (e.g. "nothing was changed") to the one-line message."""
        self.args = (f"{self.args[0]} ({text})",)


class RollbackIncomplete(CnetError):
    """A failure (or an interrupt: Ctrl-C, SIGTERM) happened and some undo commands failed too;
    every error is listed."""

    def __init__(self, cause: BaseException, errors: list[str]):
        self.cause = cause
        self.errors = list(errors)
        joined = "; ".join(errors)
        reason = str(cause) if isinstance(cause, Exception) and str(cause) else "interrupted"
        super().__init__(f"{reason} (rollback incomplete: {joined})")


class TeardownIncomplete(CnetError):
    """A teardown went past some errors (it always finishes); every error is listed."""

    def __init__(self, what: str, errors: list[str]):
        self.what = what
        self.errors = list(errors)
        super().__init__(f"{what} with errors: {'; '.join(errors)}")
