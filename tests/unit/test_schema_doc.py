"""docs/schema.md is generated from cnet/db/schema.py by scripts/schema-doc and must not go stale."""

import subprocess
import sys
from pathlib import Path

from cnet.db import schema

REPO = Path(__file__).resolve().parents[2]


def generated() -> str:
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "schema-doc")], capture_output=True, text=True, check=True, timeout=60
    )
    return res.stdout


def test_committed_schema_doc_is_current():
    assert (REPO / "docs" / "schema.md").read_text() == generated(), "run scripts/schema-doc --write"


def test_schema_doc_describes_every_table_column_and_view():
    doc = generated()
    for table in schema.metadata.tables.values():
        assert f"## `{table.name}`" in doc
        assert table.comment in doc
        for col in table.columns:
            row = next(
                ln
                for ln in doc.splitlines()
                if ln.startswith(f"| `{col.name}` |") and col.comment.replace("|", "\\|") in ln
            )
            assert row
    for name in schema.VIEWS:
        assert f"CREATE VIEW {name} AS" in doc


def test_check_mode():
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "schema-doc"), "--check"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
