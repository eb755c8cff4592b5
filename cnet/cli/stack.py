"""`cnet up FILE` and `cnet down`: a declarative stack file (TOML, compose's key names)."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common

STACK_HELP = "Stack name (default: the file's top-level `name`, else its directory's name, as compose)."


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)


def up(
    cli: typer.Context,
    file: Annotated[Path, typer.Argument(help="The stack file (TOML).", metavar="FILE")],
    stack: Annotated[Optional[str], typer.Option("--stack", "-p", metavar="NAME", help=STACK_HELP)] = None,
    remove_orphans: Annotated[
        bool, typer.Option("--remove-orphans", help="Remove the stack's containers that are no longer in the file.")
    ] = False,
) -> None:
    """Bring the host to the stack file: create what is missing, recreate containers whose
    definition changed, leave the others running; all containers in one batched operation."""
    from ..services.stack import spec
    from ..services.stack.apply import up as apply_up

    parsed = spec.load(file, stack)  # the whole file, before the state is even opened
    ctx = common.mutating(cli)
    plan, result = apply_up(ctx, parsed, remove_orphans=remove_orphans)
    if ctx.dry_run:
        common.print_plan(plan, f"cnet up {file} (stack {parsed.name})")
        return
    for name in result.removed:
        print(f"removed {name}")
    for name in result.networks:
        print(f"network {name} created")
    for name in result.created:
        print(f"started {name}")
    if result.orphans:
        print(
            f"cnet: warning: containers of stack {result.stack} no longer in the file: {', '.join(result.orphans)} "
            "(--remove-orphans removes them)",
            file=sys.stderr,
        )
    if not (result.removed or result.networks or result.created):
        print(f"stack {result.stack}: up to date ({len(result.kept)} container(s) running)", file=sys.stderr)
    if result.failed:
        for line in result.failed:
            print(f"cnet: error: cannot start {line}", file=sys.stderr)
        raise typer.Exit(1)


def down(
    cli: typer.Context,
    file: Annotated[Optional[Path], typer.Argument(help="The stack file (TOML); or --stack.", metavar="[FILE]")] = None,
    stack: Annotated[Optional[str], typer.Option("--stack", "-p", metavar="NAME", help=STACK_HELP)] = None,
) -> None:
    """Remove the stack's containers (in one batch) and the networks it declared."""
    from ..services.stack import spec
    from ..services.stack.apply import down as apply_down

    if file is None and stack is None:
        raise typer.BadParameter("give the stack file or --stack NAME", param_hint="'FILE'")
    name = stack if stack is not None else spec.load(file, None).name  # type: ignore[arg-type]
    ctx = common.mutating(cli)
    plan, result = apply_down(ctx, name)
    if ctx.dry_run:
        common.print_plan(plan, f"cnet down (stack {name})")
        return
    for c in result.removed:
        print(f"removed {c}")
    for n in result.networks:
        if not any(e.startswith(f"network {n}:") for e in result.errors):
            print(f"network {n} removed")
    if not (result.removed or result.networks):
        print(f"stack {name}: nothing to remove", file=sys.stderr)
    for e in result.errors:
        print(f"cnet: error: {e}", file=sys.stderr)
    if result.errors:
        raise typer.Exit(1)
