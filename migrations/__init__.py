"""Alembic migrations for the cnet state database (shipped in the wheel as cnet.migrations)."""
