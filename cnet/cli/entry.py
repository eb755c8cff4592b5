"""The `cnet` command's entry point. Three commands skip typer, whose import costs more than
everything else `--help` and `ps` do, and was the largest share of a `run` (scripts/bench):

- `cnet --help` (or `-h`, after global flags only) prints the help typer renders for the whole
  command line from cnet/cli/help_text.py. scripts/help-text writes that text from typer's own
  rendering, and tests/unit/test_cli_help.py checks that it is byte for byte what typer prints,
  so it cannot drift. Typer wraps help to the terminal, at most 80 columns: on a narrower
  terminal typer renders it.
- `cnet ps` and `cnet run` in the forms cli/plain_args.py is sure to read as typer does run
  cli/listing.py or cli/container_run.py (the bodies typer's `ps` and `run` run too), with
  cli/invocation.py's context and error mapping (typer's path uses the same).
  tests/unit/test_plain_args.py checks that typer reads alike every line this parser takes,
  tests/unit/test_ps_fast.py and tests/unit/test_run_fast.py the output and exit codes.

Everything else goes to cnet.cli.main."""

from __future__ import annotations

import os
import sys

from .argv import command_word

# typing itself is not imported: `cnet ps` loads this module (tests/unit/test_startup_imports.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def main() -> None:
    args = sys.argv[1:]
    # click's help formatter: min(columns, 80) - 2, so every width from 80 on renders alike.
    if command_word(args) in ("--help", "-h") and terminal_columns() >= 80:
        from .help_text import HELP
        from .process_end import end_process

        if sys.stdout is not None:  # fd 1 closed: nothing to print to, as typer's echo
            sys.stdout.write(HELP)
        end_process(0)
    if ("ps" in args or "run" in args) and not completing(args):
        from . import plain_args

        parsed = plain_args.parse_ps(args) if "ps" in args else None
        if parsed is not None:
            ps(*parsed)
        parsed = plain_args.parse_run(args) if "run" in args else None
        if parsed is not None:
            run(*parsed)
    from .main import main as typer_main

    typer_main()


def terminal_columns() -> int:
    """shutil.get_terminal_size().columns, the width click renders help for, without shutil (it
    imports re, which `--help` and `ps` never load otherwise): COLUMNS when it is a positive
    number, else the width of the terminal on stdout, else 80 (tests/unit/test_cli_help.py)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def completing(args: list[str]) -> bool:
    """Shell completion is typer's (cli/main.py's COMPLETING, the same test)."""
    return "_CNET_COMPLETE" in os.environ or any(
        a.startswith(("--install-completion", "--show-completion")) for a in args
    )


def ps(global_options: dict, options: dict) -> None:
    """`cnet ps` as typer's path runs it (cli/main.py's main and global options, cli/containers.py's
    ps): the same Context, body, closing, error mapping and end of the process."""
    from . import invocation, listing

    def body() -> int:
        state = invocation.ReadOnlyState(global_options)
        try:
            listing.ps(state.store, **options)
        finally:  # as click closes its root context, on success and on every error
            state.close()
        return 0

    _command(body)


def run(global_options: dict, options: dict) -> None:
    """`cnet run` as typer's path runs it (cli/main.py's main and global options, cli/containers.py's
    run): the same Context, body, closing, error mapping and end of the process, whose exit code
    is a foreground container's."""
    from . import container_run, invocation

    def body() -> int:
        ctx = invocation.new_context(**global_options)
        try:
            return container_run.run(lambda: invocation.mutating(ctx), **options) or 0
        finally:  # as click closes its root context, on success and on every error
            ctx.close()

    _command(body)


def _command(body: Callable[[], int]) -> None:
    """Run a command's body as cli/main.py's main does (the umask, one line on stderr and an exit
    code for a failure), then end the process with the body's exit code."""
    from . import invocation
    from .process_end import end_process

    os.umask(invocation.UMASK)
    try:
        code = body()
    except (KeyboardInterrupt, Exception) as exc:
        code = invocation.command_failed(exc)
    end_process(code)
