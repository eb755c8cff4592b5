"""The `cnet` command's entry point. `cnet --help` (or `-h`, after global flags only) prints the
help typer renders for the whole command line from cnet/cli/help_text.py, without importing typer
(whose import costs more than everything else `--help` does: scripts/bench). scripts/help-text
writes that text from typer's own rendering, and tests/unit/test_cli_help.py checks that it is
byte for byte what typer prints, so it cannot drift. Typer wraps help to the terminal, at most 80
columns: on a narrower terminal typer renders it. Everything else goes to cnet.cli.main."""

import sys

from .argv import command_word


def main() -> None:
    if command_word(sys.argv[1:]) in ("--help", "-h"):
        import shutil

        # click's help formatter: min(columns, 80) - 2, so every width from 80 on renders alike.
        if shutil.get_terminal_size().columns >= 80:
            from .help_text import HELP
            from .process_end import end_process

            if sys.stdout is not None:  # fd 1 closed: nothing to print to, as typer's echo
                sys.stdout.write(HELP)
            end_process(0)
    from .main import main as run

    run()
