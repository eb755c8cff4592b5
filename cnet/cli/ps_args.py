"""`cnet [global options] ps [ps options]` parsed without typer.

Why: importing typer (and the click inside it) costs more than everything else `cnet ps` does,
even with hundreds of containers (scripts/bench). So cli/entry.py reads a `ps` command line here
first, and runs `ps` (cli/listing.py) with what it finds, without ever importing typer.

How it stays equal to typer: it takes only the plain, unambiguous forms, parsed as click's parser
does (`--opt value`, `--opt=value`, short flags clustered `-aq`, a short option's value attached
`-fKEY=V` or in the next word, the next word taken as a value whatever it looks like), and
declines everything else: an unknown option, a flag given a value, a missing value, `--`, a
positional word, a value option given twice, `--help`, `--version`. Declined command lines go to
typer, which then parses, helps and fails exactly as before. tests/unit/test_ps_args.py runs a
generated corpus of command lines through both parsers and checks that whatever this one
accepts, typer passes the very same values to the same body.
"""

from __future__ import annotations

# typing itself is not imported: `cnet ps` loads this module (tests/unit/test_startup_imports.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Global options (cli/main.py's callback): each name -> the parameter of invocation.new_context.
GLOBAL_FLAGS = {"--dry-run": "dry_run", "-v": "verbose", "--verbose": "verbose"}
GLOBAL_VALUES = {
    "--state-dir": "state_dir",
    "--etcd": "etcd",
    "--etcd-cacert": "etcd_cacert",
    "--etcd-cert": "etcd_cert",
    "--etcd-key": "etcd_key",
}
# `ps`'s options (cli/containers.py): each name -> the parameter of listing.ps.
PS_FLAGS = {"-a": "all_", "--all": "all_", "-q": "quiet", "--quiet": "quiet", "--json": "json_"}
PS_VALUES = {"-f": "filters", "--filter": "filters", "--format": "format_"}
REPEATABLE = {"filters"}


def parse(args: list[str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The global options' values (invocation.new_context's keywords) and ps's (listing.ps's),
    or None when this command line is not one this parser is sure to read as typer does."""
    found = _options(args, 0, GLOBAL_FLAGS, GLOBAL_VALUES)
    if found is None:
        return None
    given, i = found
    if i >= len(args) or args[i] != "ps":
        return None
    found = _options(args, i + 1, PS_FLAGS, PS_VALUES)
    if found is None:
        return None
    ps_given, end = found
    if end != len(args):  # a positional word: `ps` takes none
        return None
    common = {name: False for name in GLOBAL_FLAGS.values()} | {name: None for name in GLOBAL_VALUES.values()}
    ps: dict[str, Any] = {name: False for name in PS_FLAGS.values()} | {"filters": [], "format_": None}
    return common | given, ps | ps_given


def _options(args: list[str], i: int, flags: dict[str, str], values: dict[str, str]) -> tuple[dict, int] | None:
    """Options from args[i] on, up to the first positional word: (their values, that word's index),
    or None for anything declined."""
    given: dict[str, Any] = {}

    def value(name: str, v: str) -> bool:
        if name in REPEATABLE:
            given.setdefault(name, []).append(v)
            return True
        if name in given:  # given twice: typer's to read
            return False
        given[name] = v
        return True

    while i < len(args):
        arg = args[i]
        if arg == "--":
            return None
        if not arg.startswith("-") or arg == "-":
            break
        i += 1
        if arg.startswith("--"):
            name, eq, attached = arg.partition("=")
            if name in flags and not eq:
                given[flags[name]] = True
            elif name in values and eq:
                if not value(values[name], attached):
                    return None
            elif name in values and i < len(args):
                if not value(values[name], args[i]):
                    return None
                i += 1
            else:  # unknown, a flag with a value, or a value missing
                return None
            continue
        for j in range(1, len(arg)):  # a cluster of short options, as click reads it
            name = "-" + arg[j]
            if name in flags:
                given[flags[name]] = True
            elif name in values:
                if j + 1 < len(arg):
                    v = arg[j + 1 :]
                elif i < len(args):
                    v = args[i]
                    i += 1
                else:
                    return None
                if not value(values[name], v):
                    return None
                break
            else:
                return None
    return given, i
