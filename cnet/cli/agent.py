"""`cnet agent`: the overlay networks' membership keeper (foreground; cnet/systemd/cnet-agent.service)."""

import sys
from typing import Annotated

import typer

from . import common


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)


def agent(
    cli: typer.Context,
    ttl: Annotated[
        int, typer.Option("--ttl", metavar="SECONDS", help="Seconds this host stays a member without renewing.")
    ] = 30,
) -> None:
    """Keep this host's membership of its overlay networks alive in etcd (a lease of --ttl
    seconds) and apply peers' changes as etcd reports them. Runs in the foreground until SIGTERM
    or Ctrl-C; a host whose agent stops is dropped by the others after the TTL."""
    import signal
    import threading

    from ..services.agent import run_agent

    ctx = common.mutating(cli)
    stop = threading.Event()

    def on_term(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    try:
        run_agent(ctx, ttl=ttl, say=lambda line: print(line, file=sys.stderr, flush=True), stop=stop)
    except KeyboardInterrupt:
        pass
