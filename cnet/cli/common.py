"""Shared CLI plumbing: the per-command context, output helpers, and error-to-exit mapping."""

from __future__ import annotations

import json
import sys

import typer

from ..services.context import Context

_ctx: Context | None = None


def set_context(ctx: Context) -> None:
    global _ctx
    _ctx = ctx


def context() -> Context:
    assert _ctx is not None
    return _ctx


def mutating() -> Context:
    """Context for a command that changes state: root check, then crash recovery first."""
    ctx = context()
    ctx.require_root()
    if not ctx.dry_run:
        recover(ctx)
    return ctx


def reading() -> Context:
    """Context for a read-only command; recovers only when it can (root), else just reads."""
    ctx = context()
    ctx.readonly = True
    import os

    if not ctx.dry_run and os.geteuid() == 0:
        recover(ctx)
    return ctx


def recover(ctx: Context) -> None:
    from ..services import recovery

    for line in recovery.recover_all(ctx):
        print(line, file=sys.stderr)


def print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_table(rows: list[dict], headers: list[str]) -> None:
    """tabulate's "simple" layout (numeric columns right-aligned, two spaces between columns),
    written out: importing tabulate and its per-cell number parsing cost ~30-50 ms for 300 rows,
    a quarter of what `cnet ps` may spend beyond its imports."""
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
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(titles), "  ".join("-" * w for w in widths)] + [line(row) for row in text]
    print("\n".join(out))


def print_plan(plan, title: str) -> None:
    sys.stdout.write(plan.as_shell_script(title))


def fail(message: str, code: int = 1) -> None:
    print(f"cnet: error: {message}", file=sys.stderr)
    raise typer.Exit(code)
