"""`cnet [global options] ps ...` and `cnet [global options] run ...` parsed without typer.

Why: importing typer (and the click inside it) costs more than everything else `cnet ps` does,
even with hundreds of containers, and is the largest share of a `cnet run -d` (scripts/bench).
So cli/entry.py reads these two command lines here first, and runs the command's body
(cli/listing.py, cli/container_run.py) with what it finds, without ever importing typer.

How it stays equal to typer: it takes only the plain, unambiguous forms, parsed as click's parser
does (`--opt value`, `--opt=value`, short flags clustered `-aq`, a short option's value attached
`-fKEY=V` or in the next word, the next word taken as a value whatever it looks like; for `run`,
the first word that is not an option, or the words after `--`, are the container's command,
since `run` does not let options follow it), and declines everything else: an unknown option, a
flag given a value, a missing value, a value option given twice, `--help`, `--version`, a value
typer would refuse (a `--stop-timeout` that is no number, or negative; `-t` with `-d`), and `--`
or a positional word where the command takes none. Declined command lines go to typer, which then
parses, helps and fails exactly as before. tests/unit/test_plain_args.py runs a generated corpus
of command lines through both parsers and checks that whatever this one accepts, typer passes the
very same values to the same body.
"""

from __future__ import annotations

# typing itself is not imported: `cnet ps` loads this module (tests/unit/test_startup_imports.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Parsed = tuple[dict[str, Any], dict[str, Any]]


class Options:
    """One command's options as typer declares them: each name -> the parameter of the body it
    fills. Flags are booleans; values are strings, a list of them when repeatable."""

    def __init__(
        self, flags: dict[str, str], values: dict[str, str], repeatable: frozenset[str], defaults: dict[str, Any]
    ) -> None:
        self.flags, self.values, self.repeatable, self.defaults = flags, values, repeatable, defaults


# Global options (cli/main.py's callback): the parameters of invocation.new_context.
GLOBAL = Options(
    flags={"--dry-run": "dry_run", "-v": "verbose", "--verbose": "verbose"},
    values={
        "--state-dir": "state_dir",
        "--etcd": "etcd",
        "--etcd-cacert": "etcd_cacert",
        "--etcd-cert": "etcd_cert",
        "--etcd-key": "etcd_key",
    },
    repeatable=frozenset(),
    defaults={
        "dry_run": False,
        "verbose": False,
        "state_dir": None,
        "etcd": None,
        "etcd_cacert": None,
        "etcd_cert": None,
        "etcd_key": None,
    },
)
# `ps`'s options (cli/containers.py): the parameters of listing.ps.
PS = Options(
    flags={"-a": "all_", "--all": "all_", "-q": "quiet", "--quiet": "quiet", "--json": "json_"},
    values={"-f": "filters", "--filter": "filters", "--format": "format_"},
    repeatable=frozenset({"filters"}),
    defaults={"all_": False, "quiet": False, "json_": False, "filters": [], "format_": None},
)
# `run`'s options (cli/containers.py): the parameters of container_run.run. typer gives None for
# a repeatable option never given, and for no command words.
RUN = Options(
    flags={
        "-d": "detach",
        "--detach": "detach",
        "--rm": "remove",
        "--init": "init",
        "-i": "interactive",
        "--interactive": "interactive",
        "-t": "tty",
        "--tty": "tty",
    },
    values={
        "--name": "name",
        "--net": "net",
        "--network": "net",
        "--network-alias": "network_alias",
        "-l": "label",
        "--label": "label",
        "-p": "publish",
        "--publish": "publish",
        "--ip": "ip",
        "--ip6": "ip6",
        "--hostname": "hostname",
        "-e": "env",
        "--env": "env",
        "--stop-timeout": "stop_timeout",
        "--restart": "restart",
        "--log-max-size": "log_max_size",
    },
    repeatable=frozenset({"net", "network_alias", "label", "publish", "env"}),
    defaults={
        "command": None,
        "name": None,
        "net": None,
        "network_alias": None,
        "label": None,
        "publish": None,
        "ip": None,
        "ip6": None,
        "hostname": None,
        "env": None,
        "detach": False,
        "remove": False,
        "stop_timeout": 10.0,
        "restart": "no",
        "init": False,
        "interactive": False,
        "tty": False,
        "log_max_size": None,
    },
)


def parse_ps(args: list[str]) -> Parsed | None:
    """The global options' values (invocation.new_context's keywords) and ps's (listing.ps's),
    or None when this command line is not one this parser is sure to read as typer does."""
    found = _command(args, "ps", PS)
    if found is None:
        return None
    common, ps, rest = found
    if rest is not None:  # `--` or a positional word: `ps` takes none
        return None
    return common, ps


def parse_run(args: list[str]) -> Parsed | None:
    """The global options' values and run's (container_run.run's keywords), or None when this
    command line is not one this parser is sure to read as typer does, or typer would refuse."""
    found = _command(args, "run", RUN)
    if found is None:
        return None
    common, run, command = found
    if command:
        run["command"] = command
    timeout = run["stop_timeout"]
    if isinstance(timeout, str):
        try:
            run["stop_timeout"] = timeout = float(timeout)  # as click's FLOAT converts it
        except ValueError:
            return None
    # Refused by typer's `run` before its body (cli/containers.py): typer's to report.
    if not (0 <= timeout < float("inf")) or (run["tty"] and run["detach"]):
        return None
    return common, run


def _command(args: list[str], word: str, options: Options) -> tuple[dict, dict, list[str] | None] | None:
    """The global options, the command's options (defaults filled in) and the words after them
    (None when there are none, not even `--`), or None for anything declined."""
    found = _options(args, 0, GLOBAL)
    if found is None:
        return None
    given, i = found
    if i >= len(args) or args[i] != word:
        return None
    found = _options(args, i + 1, options)
    if found is None:
        return None
    command_given, end = found
    rest = None
    if end < len(args):
        rest = args[end + 1 :] if args[end] == "--" else args[end:]
    return _defaults(GLOBAL) | given, _defaults(options) | command_given, rest


def _defaults(options: Options) -> dict[str, Any]:
    """The values of options not given: a fresh list each time, the body may keep it."""
    return {name: v.copy() if isinstance(v, list) else v for name, v in options.defaults.items()}


def _options(args: list[str], i: int, options: Options) -> tuple[dict, int] | None:
    """Options from args[i] on, up to the first positional word or `--`: (their values, that
    word's index), or None for anything declined."""
    flags, values = options.flags, options.values
    given: dict[str, Any] = {}

    def value(name: str, v: str) -> bool:
        if name in options.repeatable:
            given.setdefault(name, []).append(v)
            return True
        if name in given:  # given twice: typer's to read
            return False
        given[name] = v
        return True

    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg in ("-", "--"):
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
