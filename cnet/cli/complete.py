"""Shell completion for bash, zsh and fish through typer's public completion: typer's
`--install-completion` / `--show-completion` and the `_CNET_COMPLETE` protocol its scripts use,
plus `cnet completion SHELL`, which prints the same script. Typer's completion machinery costs
an import every command would pay, so the root app turns it on only when it is asked for
(`wanted()`): the completion options are then accepted, and a shell asking for completions
(`_CNET_COMPLETE` set) gets commands, options and the names below.

Container and network names come from the state database opened read-only (`mode=ro`); a missing
or unreadable database (not root, no state yet) completes nothing rather than fail. Nothing here is
imported by ordinary commands: only the completion functions' names are referenced at start-up.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_CNET_COMPLETE"


def wanted(argv: list[str]) -> bool:
    """Whether this run needs typer's completion: a shell asking, or the completion options."""
    return COMPLETE_VAR in os.environ or any(a.startswith(("--install-completion", "--show-completion")) for a in argv)


def _names(cli: typer.Context, kind: str, incomplete: str) -> list[str]:
    from ..db import connection, store
    from ..services.context import state_dir_from_env

    try:
        conn = connection.open_readonly(state_dir_from_env(cli.find_root().params.get("state_dir")))
    except Exception:  # no database or no permission: nothing to offer
        return []
    try:
        return store.names_starting(conn, kind, incomplete)
    except Exception:  # a schema from another version: nothing to offer
        return []
    finally:
        conn.close()


def containers(cli: typer.Context, incomplete: str) -> list[str]:
    return _names(cli, "container", incomplete)


def networks(cli: typer.Context, incomplete: str) -> list[str]:
    return _names(cli, "network", incomplete)


def run_networks(cli: typer.Context, incomplete: str) -> list[str]:
    return [n for n in ["none", *_names(cli, "network", incomplete)] if n.startswith(incomplete)]


def containers_and_networks(cli: typer.Context, incomplete: str) -> list[str]:
    return _names(cli, "container", incomplete) + _names(cli, "network", incomplete)


def completion(shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", metavar="SHELL")]) -> None:
    """Print the completion script for a shell. Add to ~/.bashrc: eval "$(cnet completion bash)";
    zsh: eval "$(cnet completion zsh)"; fish: cnet completion fish | source."""
    if shell not in SHELLS:
        raise typer.BadParameter(f"{shell!r} is not one of {', '.join(SHELLS)}", param_hint="'SHELL'")
    from typer.main import get_command

    # typer's completion protocol asked for the script (`_CNET_COMPLETE=source_SHELL cnet` does the
    # same), on a small app of cnet's name with completion turned on.
    shower = typer.Typer(add_completion=True)
    shower.command()(lambda: None)
    os.environ[COMPLETE_VAR] = f"source_{shell}"
    try:
        get_command(shower).main([], prog_name="cnet")
    except SystemExit as exc:  # the protocol exits once the script is printed
        if exc.code not in (0, None):
            raise
    finally:
        del os.environ[COMPLETE_VAR]
