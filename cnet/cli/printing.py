"""Tables, JSON and dry-run plans on stdout, without typer: the typer-free paths of `ps` and `run`
(cli/entry.py) print with these as every other command does (through cli/common.py)."""

from __future__ import annotations

# typing itself is not imported: `cnet ps` loads this module (tests/unit/test_startup_imports.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..commands import Plan


def print_json(data: Any) -> None:
    import json

    print(json.dumps(data, indent=2, default=str))


def print_table(rows: list[dict], headers: list[str]) -> None:
    """tabulate's "simple" layout (numeric columns right-aligned, two spaces between columns),
    written out: importing tabulate and its per-cell number parsing would dominate what `cnet ps`
    spends beyond its imports for a few hundred rows (scripts/bench)."""
    cells = [[r.get(h, "") for h in headers] for r in rows]
    numeric = [
        any(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in cells)
        and all(isinstance(row[i], (int, float)) or row[i] in ("", None) for row in cells)
        for i in range(len(headers))
    ]
    text = [["" if v is None else str(v) for v in row] for row in cells]
    titles = [h.upper() for h in headers]
    widths = [max([len(titles[i]) + 2] + [len(row[i]) for row in text]) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(titles), "  ".join("-" * w for w in widths)] + [line(row) for row in text]
    print("\n".join(out))


def print_plan(plan: Plan, title: str) -> None:
    """A dry run's plan, as the runnable shell script it is."""
    import sys

    sys.stdout.write(plan.as_shell_script(title))
