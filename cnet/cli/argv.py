"""Which command a command line names, read before typer is imported (cli/entry.py) or before
its commands are registered (cli/main.py): typer parses the command line itself afterwards."""

GLOBAL_FLAGS = ("--dry-run", "-v", "--verbose")


def command_word(args: list[str]) -> str | None:
    """The command (or group) named on the command line: the first word after the global options
    that take no value and --state-dir; any other option first gives that option (no command's)."""
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
        elif arg == "--state-dir":
            skip = True
        elif arg.startswith("--state-dir=") or arg in GLOBAL_FLAGS:
            continue
        else:
            # Only a last word is the help option: `cnet --help x` is typer's to answer.
            return arg if arg not in ("--help", "-h") or i == len(args) - 1 else None
    return None
