"""Create and upgrade the schema with Alembic, importing Alembic only when the schema is behind.

HEAD_REVISION must name the newest migration in migrations/versions (a unit test checks it), so a
command on an up-to-date database pays one SELECT, not the import of Alembic and SQLAlchemy
(tests/unit/test_startup_imports.py). Upgrading and checking wrap the very sqlite3 connection of a
cnet.db.connection.Connection in a SQLAlchemy connection (sqlalchemy_connection), so they work the
same on a file and on --dry-run's in-memory copy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .connection import Connection

if TYPE_CHECKING:
    import sqlalchemy as sa
    from alembic.config import Config

HEAD_REVISION = "0007_ipv6"


def migrations_dir() -> Path:
    """The Alembic script folder: the checkout's own ./migrations when cnet runs from a checkout,
    else the packaged cnet.migrations. The checkout comes first: an editable install of another
    checkout (a second git worktree) maps cnet.migrations to *its* folder, whose revisions are
    not this code's."""
    import importlib.util

    checkout = Path(__file__).resolve().parents[2] / "migrations"
    if (checkout / "versions" / "0001_initial.py").exists():
        return checkout
    spec = importlib.util.find_spec("cnet.migrations")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return checkout


CURRENT_REVISION = "SELECT version_num FROM alembic_version"


def current_revision(conn: Connection) -> str | None:
    try:
        rev: str | None = conn.scalar(CURRENT_REVISION)
    except sqlite3.OperationalError:  # no such table: never migrated
        return None
    return rev


@contextmanager
def sqlalchemy_connection(conn: Connection) -> Iterator[sa.Connection]:
    """A SQLAlchemy connection over the Connection's own sqlite3 connection (one connection: no
    lock waits against ourselves, and an in-memory database stays the same database). AUTOCOMMIT,
    as cnet's: Alembic's transaction_per_migration controls the transactions (migrations/env.py)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import StaticPool

    raw = conn.raw
    raw.row_factory = None  # SQLAlchemy expects plain tuples
    engine = sa.create_engine("sqlite://", creator=lambda: raw, poolclass=StaticPool)
    try:
        with engine.connect() as sa_conn:
            yield sa_conn.execution_options(isolation_level="AUTOCOMMIT")
    finally:
        # Returning the connection to the pool resets it to SQLAlchemy's default isolation
        # (sqlite3's implicit BEGINs); cnet needs autocommit back, and sqlite3.Row rows. No
        # engine.dispose(): it would close the connection, which the Connection still owns.
        raw.isolation_level = None
        raw.row_factory = sqlite3.Row


def alembic_config(conn: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def upgrade(conn: Connection, revision: str = "head") -> None:
    from alembic import command

    with sqlalchemy_connection(conn) as sa_conn:
        command.upgrade(alembic_config(sa_conn), revision)


def known_revisions() -> set[str]:
    """The revision ids this cnet ships (each migration's file is named after its id)."""
    return {p.stem for p in (migrations_dir() / "versions").glob("*.py") if not p.stem.startswith("_")}


def check_not_newer(rev: str | None) -> None:
    if rev is not None and rev != HEAD_REVISION and rev not in known_revisions():
        from ..errors import StateError

        raise StateError(f"state database is at schema {rev}, this cnet knows up to {HEAD_REVISION}: upgrade cnet")


def ensure_current(conn: Connection, lock_path: Path | None = None) -> bool:
    """Upgrade to head if needed. Returns True when a migration ran.

    With lock_path, the upgrade runs under an exclusive file lock and re-checks the revision:
    several first-ever cnet commands started at once would otherwise all run the migration
    ("table ... already exists")."""
    rev = current_revision(conn)
    if rev == HEAD_REVISION:
        return False
    check_not_newer(rev)
    if lock_path is None:
        upgrade(conn)
        return True
    import fcntl
    import os

    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if current_revision(conn) == HEAD_REVISION:
            return False
        upgrade(conn)
        return True
    finally:
        os.close(fd)


def check(conn: Connection) -> list[str]:
    """Differences between the models (cnet.db.schema) and the migrated database; [] = none."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from .schema import metadata

    with sqlalchemy_connection(conn) as sa_conn:
        ctx = MigrationContext.configure(sa_conn, opts={"compare_type": True, "render_as_batch": True})
        return [repr(d) for d in compare_metadata(ctx, metadata)]
