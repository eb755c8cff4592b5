"""cnet's command line. Global options come before the command:

    cnet [--state-dir DIR] [--dry-run] [-v] COMMAND ...

Heavy modules (sqlalchemy, sh, tabulate, alembic) are imported inside the commands that need
them, so `cnet --help` costs what typer costs, and a command imports only the CLI module that
defines it (PARTS). Only typer's public names are used: typer 0.27 and
later derive every click error from `typer.TyperException` (see the pin in pyproject.toml).
"""

import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer

from .argv import command_word

COMPLETING = "_CNET_COMPLETE" in os.environ or any(
    a.startswith(("--install-completion", "--show-completion")) for a in sys.argv[1:]
)
app = typer.Typer(
    name="cnet",
    help="Docker-style bridge networking for Linux processes: bridge networks with IPAM, containers in "
    "fresh namespaces wired by veth pairs, NAT and port mappings (127.0.0.1 included). Every kernel change "
    "is a printed ip/iptables command, journaled so it can be undone; all state is in SQLite.",
    no_args_is_help=True,
    # typer's completion costs an import every command would pay: on only when asked for
    # (a shell asking, with _CNET_COMPLETE set, or the completion options; cnet/cli/complete.py).
    add_completion=COMPLETING,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"cnet {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    cli: typer.Context,
    state_dir: Annotated[
        Optional[str],
        typer.Option(
            "--state-dir",
            metavar="DIR",
            help="State directory holding cnet.db and container logs [env: CNET_STATE_DIR; default: /var/lib/cnet]",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact commands as a runnable shell script; change nothing.")
    ] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Echo each command as it runs.")] = False,
    etcd: Annotated[
        Optional[str],
        typer.Option(
            "--etcd",
            metavar="URL,...",
            help="etcd endpoints for overlay networks, comma-separated (http(s)://HOST:PORT) [env: CNET_ETCD]",
        ),
    ] = None,
    etcd_cacert: Annotated[
        Optional[str], typer.Option("--etcd-cacert", metavar="FILE", help="CA bundle to verify etcd (https).")
    ] = None,
    etcd_cert: Annotated[
        Optional[str], typer.Option("--etcd-cert", metavar="FILE", help="Client certificate for etcd.")
    ] = None,
    etcd_key: Annotated[
        Optional[str], typer.Option("--etcd-key", metavar="FILE", help="Client certificate key for etcd.")
    ] = None,
    _version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    from .invocation import new_context  # the Context the typer-free paths build too (cli/entry.py)

    ctx = new_context(state_dir, dry_run, verbose, etcd, etcd_cacert, etcd_cert, etcd_key)
    cli.obj = ctx  # subcommands' contexts inherit it
    cli.call_on_close(ctx.close)  # the root context closes last, on success and on every error


NET_HELP = "Bridge networks (alias: network): create, list, inspect, remove, prune; connect containers."
SHELLS = ("bash", "zsh", "fish")


def completion(shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", metavar="SHELL")]) -> None:
    """Print the completion script for a shell. Add to ~/.bashrc: eval "$(cnet completion bash)";
    zsh: eval "$(cnet completion zsh)"; fish: cnet completion fish | source."""
    if shell not in SHELLS:
        raise typer.BadParameter(f"{shell!r} is not one of {', '.join(SHELLS)}", param_hint="'SHELL'")
    from .complete import print_script

    print_script(shell)


def _net() -> None:
    from .networks import app as net_app

    app.add_typer(net_app, name="net", help=NET_HELP)
    app.add_typer(net_app, name="network", hidden=True, help=NET_HELP)  # Docker's spelling, listed once


def _containers() -> None:
    from .containers import register

    register(app)


def _stack() -> None:
    from .stack import register

    register(app)


def _state() -> None:
    from .state import register

    register(app)


def _completion() -> None:
    app.command("completion")(completion)


def _maintenance() -> None:
    from .maintenance import register
    from .networks import app as net_app

    register(app, net_app)


def _agent() -> None:
    from .agent import register

    register(app)


def _cni() -> None:
    from .cni import app as cni_app

    app.add_typer(
        cni_app,
        name="cni",
        help="Use cnet networks from CNI runtimes (podman, containerd, CRI-O): install the plugin, write conflists.",
    )


# The command words (commands and groups) each part registers, in the order `cnet --help` lists
# them: a command imports only the modules of the parts naming its word (all of them when the word
# is none of these). tests/unit/test_cli_help.py checks each part registers exactly its words.
PARTS: tuple[tuple[tuple[str, ...], Callable[[], None]], ...] = (
    (("net", "network"), _net),
    (
        ("run", "ps", "inspect", "exec", "logs", "stop", "start", "restart", "rm", "_reap", "container", "_started"),
        _containers,
    ),
    (("up", "down"), _stack),
    (("sql", "journal", "db"), _state),
    (("completion",), _completion),
    (("gc", "restore", "net", "network"), _maintenance),  # also `net restore`
    (("agent",), _agent),
    (("cni",), _cni),
)
_registered: set[Callable[[], None]] = set()


def register(word: str | None = None) -> typer.Typer:
    """Register the parts that define `word` on the app (every part when no part does, or for
    None), each once, and return the app."""
    parts = [fn for words, fn in PARTS if word in words] or [fn for _, fn in PARTS]
    for fn in parts:
        if fn not in _registered:
            _registered.add(fn)
            fn()
    return app


def main() -> None:

    from . import invocation

    os.umask(invocation.UMASK)
    code = 0
    try:
        args = sys.argv[1:]
        register(None if COMPLETING else command_word(args))
        rv = _only_the_invoked_command(lambda: app(prog_name="cnet", standalone_mode=False), args)
        code = rv if isinstance(rv, int) else 0  # click returns typer.Exit's code without standalone mode
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:  # click's translation of Ctrl-C / EOF
        code = 130
    except typer.TyperException as exc:  # usage errors (exit 2) and the other errors click reports
        if type(exc).__name__ == "NoArgsIsHelpError":  # `cnet` or `cnet net` alone: the message is the help
            print(exc.format_message(), file=sys.stderr)
        else:
            print(f"cnet: error: {exc.format_message()}", file=sys.stderr)
        code = exc.exit_code
    except (KeyboardInterrupt, Exception) as exc:  # cnet's own mapping, shared with cli/entry.py's
        code = invocation.failed(exc)
    exit_now(code)


def _only_the_invoked_command(call: Callable[[], Any], args: list[str]) -> Any:
    """Run `call` with typer building only the command (or group) named on the command line:
    typer turns every registered command into a click command, reading all its parameters, on
    each start, which costs more than most commands' own work (scripts/bench). The command then
    parses, helps and fails exactly as before. Anything else (no command word, an unknown one, a
    misplaced option, completion) builds them all, so click's own messages stay the same."""
    word = command_word(args)
    commands, groups = app.registered_commands, app.registered_groups
    # A command's name is its own, else its function's as typer derives it.
    keep_commands = [
        c for c in commands if (c.name or getattr(c.callback, "__name__", "").lower().replace("_", "-")) == word
    ]
    keep_groups = [g for g in groups if g.name == word]
    if COMPLETING or word is None or len(keep_commands) + len(keep_groups) != 1:
        return call()
    app.registered_commands, app.registered_groups = keep_commands, keep_groups
    try:
        return call()
    finally:
        app.registered_commands, app.registered_groups = commands, groups


def exit_now(code: int) -> None:
    """End the process once the work is done, without the interpreter's teardown (freeing every
    module and object one by one, which costs more than many a command's work: scripts/bench).

    By now the command has returned and click has closed the root context, so the database is
    closed (services.context.Context.close). What a normal exit would still do, done here: flush
    stdout and stderr (a failed flush is an error exit, as it would be), and logging's atexit
    handler (sh imports logging). When anything else could still need the interpreter's exit, a
    thread other than this one, we take the normal way. Containers never depend on this process:
    the detached ones run in their own session, and a foreground one has been waited for."""
    from .process_end import end_process

    end_process(code)


if __name__ == "__main__":
    main()
