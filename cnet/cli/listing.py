"""What `cnet ps` does once its command line is parsed, without typer: typer's `ps` command
(cli/containers.py) and `ps`'s own parser (cli/entry.py, cli/plain_args.py) both call `ps` here with
the values they parsed, so the two paths share one body."""

from __future__ import annotations

from . import printing, shell_quote

# typing itself is not imported: `cnet ps` loads this module (tests/unit/test_startup_imports.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..db.connection import Connection

TABLE = ["name", "id", "state", "pid", "ips", "ports", "command"]


def ps(
    store: Callable[[], Connection], all_: bool, quiet: bool, filters: list[str], format_: str | None, json_: bool
) -> None:
    """List the containers (running ones, every one with `all_`) as a table, ids, JSON or `format_`.
    `store` opens the state database, prepared for reading (recovered first when run as root),
    once the input is checked: typer's path through its Context, cli/entry.py's through
    invocation.ReadOnlyState."""
    from ..services.containers import listing

    checked = []
    if filters:
        from .. import validate  # the checks of every other input too: only with a filter

        checked = [validate.ps_filter(f) for f in filters]
    # A status filter looks at every container (as Docker's does), whatever -a says.
    every = all_ or any(k == "status" for k, _ in checked)
    details = bool(checked or format_ or json_)
    with store().read() as conn:
        rows = listing.list_containers(conn, every, details=details)
    if checked:
        rows = [r for r in rows if listing.matches(r, checked)]
    if quiet:
        for r in rows:
            print(r["id"])
        return
    if format_ is not None:
        from . import output

        for line in output.format_rows(rows, format_):
            print(line)
        return
    if json_:
        printing.print_json(rows)
        return
    table = []
    for r in rows:  # the table shortens long commands; --json keeps them whole
        command = shell_quote.join(r["command"])
        table.append(
            r
            | {
                "pid": r["pid"] or "",
                "ips": ",".join(r["ips"]),
                "ports": ",".join(r["ports"]),
                "command": command if len(command) <= 40 else command[:39] + "…",
            }
        )
    printing.print_table(table, TABLE)
