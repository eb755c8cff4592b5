"""SQLite state: schema (SQLAlchemy Core), connections, migrations."""
