"""Shell completion for bash, zsh and fish through typer's public completion: typer's
`--install-completion` / `--show-completion` and the `_CNET_COMPLETE` protocol its scripts use,
plus `cnet completion SHELL`, which prints the same script. Typer's completion machinery costs
an import every command would pay, so the root app turns it on only when it is asked for
(cnet.cli.main): the completion options are then accepted, and a shell asking for completions
(`_CNET_COMPLETE` set) gets commands, options and the names below (the callbacks are in
cnet.cli.common, so that naming them at start-up imports nothing).

Container and network names come from the state database opened read-only (`mode=ro`); a missing
or unreadable database (not root, no state yet) completes nothing rather than fail. Ordinary
commands never import this module.
"""

import os

import typer

COMPLETE_VAR = "_CNET_COMPLETE"


def names(cli: typer.Context, kind: str, incomplete: str) -> list[str]:
    from ..db import connection, names_store
    from ..services.context import state_dir_from_env

    try:
        conn = connection.open_readonly(state_dir_from_env(cli.find_root().params.get("state_dir")))
    except Exception:  # no database or no permission: nothing to offer
        return []
    try:
        return names_store.names_starting(conn, kind, incomplete)
    except Exception:  # a schema from another version: nothing to offer
        return []
    finally:
        conn.close()


def print_script(shell: str) -> None:
    """The completion script of `shell` on stdout."""
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
