"""cnet's command line. Global options come before the command:

    cnet [--state-dir DIR] [--dry-run] [-v] COMMAND ...

Heavy modules (sqlalchemy, sh, tabulate, alembic) are imported inside the commands that need
them, so `cnet --help` costs what typer costs.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from . import common
from .cni import app as cni_app
from .containers import register as register_containers
from .maintenance import register as register_maintenance
from .networks import app as net_app
from .state import register as register_state

app = typer.Typer(
    name="cnet",
    help="Docker-style bridge networking for Linux processes: bridge networks with IPAM, containers in "
    "fresh namespaces wired by veth pairs, NAT and port mappings (127.0.0.1 included). Every kernel change "
    "is a printed ip/iptables command, journaled so it can be undone; all state is in SQLite.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"cnet {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    state_dir: Annotated[
        Optional[str],
        typer.Option("--state-dir", help="State directory holding cnet.db and container logs [env: CNET_STATE_DIR; default: /var/lib/cnet]"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact commands as a runnable shell script; change nothing.")
    ] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Echo each command as it runs.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    from ..services.context import Context, state_dir_from_env

    common.set_context(
        Context(
            state_dir=state_dir_from_env(state_dir), dry_run=dry_run, verbose=verbose,
            say=lambda line: print(line, file=sys.stderr, flush=True),
            echo=lambda line: print(f"+ {line}", file=sys.stderr, flush=True),
        )
    )


app.add_typer(net_app, name="net", help="Create, list, inspect and remove bridge networks; connect containers.")
register_containers(app)
register_state(app)
register_maintenance(app, net_app)
app.add_typer(cni_app, name="cni", help="Use cnet networks from CNI runtimes (podman, containerd, CRI-O): install the plugin, write conflists.")


def _click_exceptions():
    """(Exit, Abort, UsageError) classes: typer >= 0.20 vendors click as typer._click, older
    releases use click itself; accept both so an upgrade of typer cannot turn usage errors into
    tracebacks."""
    exits, aborts, usage = [typer.Exit], [typer.Abort], []
    try:
        from typer._click import exceptions as vendored

        usage.append(vendored.UsageError)
    except ImportError:
        pass
    try:
        # Only a loaded click can raise its exceptions: with a vendoring typer nothing imports
        # it, and importing it just for this costs ~9 ms per command.
        if usage and "click" not in sys.modules:
            raise ImportError
        import click.exceptions as real

        exits.append(real.Exit)
        aborts.append(real.Abort)
        usage.append(real.UsageError)
    except ImportError:
        pass
    return tuple(exits), tuple(aborts), tuple(usage)


def main() -> None:
    import os

    os.umask(0o077)  # state, logs and journal are private to root
    from ..errors import CnetError

    exit_types, abort_types, usage_types = _click_exceptions()
    code = 0
    try:
        from .fastparams import install as fast_params

        fast_params()  # typer would import pydantic (~100 ms) to convert plain values
        rv = app(prog_name="cnet", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except exit_types as exc:
        code = exc.exit_code
    except usage_types as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # help was printed; like `git` with no args
            code = 2
        else:
            print(f"cnet: error: {exc.format_message()}", file=sys.stderr)
            code = 2
    except abort_types:
        code = 130
    except KeyboardInterrupt:
        code = 130
    except CnetError as exc:
        print(f"cnet: error: {exc}", file=sys.stderr)
        code = 1
    except BrokenPipeError:
        code = 1
    except Exception as exc:  # a bug: one line, full traceback only on request
        if os.environ.get("CNET_DEBUG"):
            raise
        print(f"cnet: internal error: {type(exc).__name__}: {exc} (set CNET_DEBUG=1 for a traceback)", file=sys.stderr)
        code = 70
    finally:
        ctx = common._ctx
        if ctx is not None:
            ctx.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
