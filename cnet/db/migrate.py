"""Create and upgrade the schema with Alembic, importing Alembic only when the schema is behind.

HEAD_REVISION must name the newest migration in migrations/versions (a unit test checks it), so a
command on an up-to-date database pays one SELECT, not Alembic's ~270 ms import.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa

HEAD_REVISION = "0001_initial"


def migrations_dir() -> Path:
    """The Alembic script folder: packaged as cnet.migrations when installed, else ./migrations."""
    spec = importlib.util.find_spec("cnet.migrations")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parents[2] / "migrations"


def current_revision(conn: sa.Connection) -> str | None:
    try:
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    except sa.exc.OperationalError:
        return None
    return row[0] if row else None


def alembic_config(conn: sa.Connection | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def upgrade(conn: sa.Connection, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(conn), revision)


def ensure_current(conn: sa.Connection, lock_path: Path | None = None) -> bool:
    """Upgrade to head if needed. Returns True when a migration ran.

    With lock_path, the upgrade runs under an exclusive file lock and re-checks the revision:
    several first-ever cnet commands started at once would otherwise all run the migration
    ("table ... already exists")."""
    if current_revision(conn) == HEAD_REVISION:
        return False
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


def check(conn: sa.Connection) -> list[str]:
    """Differences between the models (cnet.db.schema) and the migrated database; [] = none."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from .schema import metadata

    ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
    return [repr(d) for d in compare_metadata(ctx, metadata)]
