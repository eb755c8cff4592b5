"""`cnet cni ...`: install the CNI plugin, print a network's configuration list."""

from typing import Annotated, Optional

import typer

from . import common

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@app.command("install")
def install(
    bin_dir: Annotated[
        str, typer.Option("--bin-dir", metavar="DIR", help="The runtime's CNI plugin directory.")
    ] = "/opt/cni/bin",
) -> None:
    """Put the plugin executable `cnet` (the CNI type) into the runtime's plugin directory. It runs
    this interpreter and this cnet package by absolute path, whatever environment the runtime gives."""
    from pathlib import Path

    from ..services import cni_setup

    path = cni_setup.install_plugin(Path(bin_dir))
    print(path)


@app.command("conflist")
def conflist(
    cli: typer.Context,
    network: Annotated[str, typer.Argument(metavar="NETWORK", help="An existing cnet network.")],
    output: Annotated[
        Optional[str],
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write it to this file (e.g. /etc/cni/net.d/NAME.conflist) instead of printing it.",
        ),
    ] = None,
) -> None:
    """Print (or write) the CNI configuration list that puts a runtime's containers on a cnet network."""
    from pathlib import Path

    from ..db import store
    from ..services import cni_setup

    ctx = common.reading(cli)
    with ctx.store.read() as conn:
        net = store.get_network(conn, network)
    doc = cni_setup.conflist_for(net, ctx.state_dir)
    if output is None:
        common.print_json(doc)
        return
    cni_setup.write_conflist(Path(output), doc)
    print(output)
