"""State commands: sql, journal, db."""

from typing import Annotated, Optional

import typer

from . import common

db_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.command("sql")(sql)
    app.command("journal")(journal)
    app.add_typer(db_app, name="db", help="Database schema: upgrade, check for drift.")


def sql(
    cli: typer.Context,
    query: Annotated[
        str, typer.Argument(metavar="QUERY", help='One SQL statement (read-only), e.g. "SELECT * FROM v_containers".')
    ],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
) -> None:
    """Run one read-only SQL query on the state database. Views: v_containers, v_endpoints,
    v_ip_allocations, v_port_mappings, v_operation_commands."""
    from ..services import query as query_service

    ctx = common.context(cli)
    headers, rows = query_service.run_readonly(ctx.state_dir, query_text=query)
    if json_:
        common.print_json([dict(zip(headers, r, strict=True)) for r in rows])
        return
    from tabulate import tabulate

    print(tabulate(rows, headers=headers))


def journal(
    cli: typer.Context,
    operation: Annotated[
        Optional[int], typer.Argument(metavar="[OPERATION]", help="Operation id: show its commands and undos.")
    ] = None,
    limit: Annotated[int, typer.Option("-n", "--limit", metavar="N", help="How many recent operations to list.")] = 20,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List recent operations, or show the commands one operation ran and their undos."""
    from .. import validate
    from ..errors import NotFound
    from ..services import journal_view

    validate.integer(limit, "-n / --limit", 1)
    if operation is not None and not 1 <= operation <= validate.SQLITE_MAX_INT:
        raise NotFound(f"operation {operation} not found")
    ctx = common.reading(cli)
    with ctx.store.read() as conn:
        if operation is None:
            rows = journal_view.recent(conn, limit)
            if json_:
                common.print_json(rows)
            else:
                common.print_table(rows, ["id", "kind", "target", "status", "steps", "started", "ms", "error"])
            return
        detail = journal_view.detail(conn, operation)
    if json_:
        common.print_json(detail)
        return
    print(journal_view.render(detail))


@db_app.command("upgrade")
def db_upgrade(cli: typer.Context) -> None:
    """Create or upgrade the state database to the newest schema."""
    from ..db import migrate

    ctx = common.context(cli)
    ctx.require_root()
    from ..db import connection

    connection.ensure_state_dir(ctx.state_dir)
    with connection.open_state(ctx.state_dir) as conn:
        migrate.upgrade(conn)
        print(migrate.current_revision(conn))


@db_app.command("check")
def db_check(cli: typer.Context) -> None:
    """Report drift between cnet's models and the migrated database (exit 1 if any)."""
    from ..db import migrate

    ctx = common.context(cli)
    diffs = migrate.check(ctx.store)
    if diffs:
        for d in diffs:
            print(d)
        raise typer.Exit(1)
    print(f"schema matches the models (revision {migrate.current_revision(ctx.store)})")
