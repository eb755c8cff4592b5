"""`cnet sql`: one statement on a read-only connection, so a query can never change state."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ..db.connection import open_readonly
from ..errors import ValidationError


def run_readonly(state_dir: Path, *, query_text: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The user's own statement: the one place SQL text comes from outside cnet."""
    conn = open_readonly(state_dir)
    try:
        if not query_text.strip():
            raise ValidationError("empty SQL statement")
        # mode=ro and query_only stop writes to cnet.db, not ATTACH or VACUUM INTO, which create
        # files anywhere (as root): allow reading only.
        conn.raw.set_authorizer(_authorize)
        try:
            cur = conn.execute(query_text)
            rows = [tuple(r) for r in cur.fetchall()]
        except (sqlite3.ProgrammingError, sqlite3.Warning) as exc:
            if "one statement" in str(exc):
                raise ValidationError("cnet sql runs exactly one statement; remove the text after ';'") from None
            raise ValidationError(f"SQL error: {exc}") from None
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "readonly" in text or "read-only" in text or "query_only" in text or "authoriz" in text:
                raise ValidationError("cnet sql is read-only: the statement tries to write") from None
            raise ValidationError(f"SQL error: {text}") from None
        except sqlite3.DatabaseError as exc:
            if "authoriz" in str(exc):
                raise ValidationError("cnet sql is read-only: the statement tries to write") from None
            raise ValidationError(f"SQL error: {exc}") from None
        headers = [d[0] for d in cur.description] if cur.description else []
        return headers, rows
    finally:
        conn.close()


_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
# Pragmas that only describe the schema; any other pragma (or a pragma with a value) is refused.
_READ_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}


def _authorize(action: int, arg1: str | None, _arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action in _READ_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and arg1 in _READ_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY
