"""Maintenance commands: `cnet gc` (reconcile both ways) and `cnet net restore` (re-create after a reboot)."""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from . import common

if TYPE_CHECKING:
    from ..services.apply import Outcome
    from ..services.context import Context


def register(app: typer.Typer, net_app: typer.Typer) -> None:
    app.command("gc")(gc)
    app.command("restore")(restore)
    net_app.command("restore")(restore)


def _report(ctx: "Context", out: "Outcome", title: str) -> None:
    for line in out.result:
        print(f"cnet: {'would ' if ctx.dry_run else ''}{line}", file=sys.stderr)
    if ctx.dry_run:
        common.print_plan(out.plan, title)
        return
    print(f"{len(out.plan.steps)} repair step(s)" if out.plan.steps else "nothing to do")


def gc(
    cli: typer.Context,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also kill the processes in namespaces no record owns (a lost database) and remove them.",
        ),
    ] = False,
) -> None:
    """Compare the database with the kernel and repair both ways: remove cnet-named links, netns,
    chains and cnet-tagged rules that no record owns; re-create missing network objects and rules;
    re-attach containers' veths (bridge, up, hairpin); release dead containers. A namespace no
    record owns but where processes live is reported and kept (--force: killed and removed).
    Never touches anything that is not cnet's. With --dry-run: only list."""
    from ..services import reconcile

    ctx = common.mutating(cli)
    _report(ctx, reconcile.reconcile(ctx, clean=True, force=force), "cnet gc")


def restore(cli: typer.Context) -> None:
    """Re-create every network's kernel objects (bridge, address, rules, base chains) and the rules of
    live containers, re-attach their veths, then start the exited --restart always /
    unless-stopped containers that nobody stopped by hand, e.g. at boot (systemd/cnet-restore.service).
    Removes nothing. `cnet net restore` is the same command."""
    from ..services import containers, reconcile

    ctx = common.mutating(cli)
    _report(ctx, reconcile.reconcile(ctx, clean=False), "cnet restore")
    if ctx.dry_run:
        return
    failed = False
    for name, error in containers.restore_containers(ctx):
        if error:
            print(f"cnet: error: container {name}: {error}", file=sys.stderr)
            failed = True
        else:
            print(f"container {name} started")
    if failed:
        raise typer.Exit(1)
