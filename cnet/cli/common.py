"""Shared CLI plumbing of the typer commands: the per-command context and output helpers.

The global options build one services Context per invocation and hang it on click's context
object (`typer.Context.obj`, public API); every command takes `cli: typer.Context` and asks for
it through `context()`, `mutating()` or `reading()`. The root click context closes it on exit.
What needs no typer is in cli/invocation.py and cli/printing.py (named here too), so the
typer-free paths of `ps` and `run` (cli/entry.py) share it.
"""

import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import typer

from . import invocation
from .printing import print_json as print_json  # the commands print through common
from .printing import print_plan as print_plan
from .printing import print_table as print_table

if TYPE_CHECKING:  # loaded by the commands, not by `cnet --help`
    from ..commands import Plan
    from ..records import Container
    from ..services.context import Context


def context(cli: typer.Context) -> "Context":
    """cnet's Context for this invocation, as the global options made it."""
    from ..services.context import Context

    ctx = cli.obj
    if not isinstance(ctx, Context):  # only a command run without the root callback gets here
        raise RuntimeError("cnet's context was not set up by the global options")
    return ctx


def mutating(cli: typer.Context) -> "Context":
    """Context for a command that changes state: root check, then crash recovery first."""
    return invocation.mutating(context(cli))


def reading(cli: typer.Context) -> "Context":
    """Context for a read-only command; recovers only when it can (root), else just reads."""
    return invocation.reading(context(cli))


recover = invocation.recover


def load_container(ctx: "Context", ref: str) -> "Container":
    """The container record for a name, id or unique id prefix (NotFound otherwise)."""
    from ..services import containers

    with ctx.store.read() as conn:
        return containers.get_container(conn, ref)


def for_each(
    ctx: "Context", refs: Iterable[str], action: Callable[[str], "tuple[str, Plan | None]"], verb: str
) -> None:
    """Apply `action` to every ref as `docker rm a b c` does: a failure is reported and the rest go
    on; the exit status is 1 if any failed. `action(ref)` returns the name it acted on and its plan:
    the plan is printed under `--dry-run`, the name otherwise."""
    from ..errors import CnetError

    failed = False
    for ref in refs:
        try:
            name, plan = action(ref)
        except CnetError as exc:
            print(f"cnet: error: {exc}", file=sys.stderr)
            failed = True
            continue
        if ctx.dry_run:
            assert plan is not None, "a dry run returns its plan"
            print_plan(plan, f"cnet {verb} {name}")
        else:
            print(name)
    if failed:
        raise typer.Exit(1)


# Shell completion callbacks (typer's `autocompletion=`): defined here, in a module every command
# imports anyway, so naming them costs no import; the work is in cnet.cli.complete.
def complete_containers(cli: typer.Context, incomplete: str) -> list[str]:
    from .complete import names

    return names(cli, "container", incomplete)


def complete_networks(cli: typer.Context, incomplete: str) -> list[str]:
    from .complete import names

    return names(cli, "network", incomplete)


def complete_run_networks(cli: typer.Context, incomplete: str) -> list[str]:
    return [n for n in ["none", *complete_networks(cli, incomplete)] if n.startswith(incomplete)]


def complete_refs(cli: typer.Context, incomplete: str) -> list[str]:
    return complete_containers(cli, incomplete) + complete_networks(cli, incomplete)


def not_negative(value: float, option: str) -> None:
    # Checked here rather than with typer's min=: the message reads like cnet's other errors, and
    # a bounded option is what made typer >= 0.29 import pydantic on every run (the start-up test
    # guards that). nan and inf are refused too (a wait that never ends, or never starts).
    import math

    if not math.isfinite(value) or value < 0:
        raise typer.BadParameter(f"must be a finite number, 0 or more, not {value:g}", param_hint=f"'{option}'")
