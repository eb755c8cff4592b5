"""Alembic environment for cnet.

cnet runs migrations programmatically (cnet.db.migrate) and passes its open connection in
config.attributes["connection"]; the `alembic` CLI works too, with -x db=PATH.
"""

from alembic import context
import sqlalchemy as sa

from cnet.db.schema import metadata

config = context.config


def run_with(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite can only ALTER via table copies
        compare_type=True,
        # Only the connection's explicit transaction control applies (cnet uses AUTOCOMMIT).
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    db = context.get_x_argument(as_dictionary=True).get("db", "cnet.db")
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        run_with(conn)
