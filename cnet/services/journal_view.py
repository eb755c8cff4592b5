"""What `cnet journal` shows: recent operations, and one operation's commands with their undos."""

from __future__ import annotations

import datetime
import json
from typing import Any

from ..commands import Command
from ..db import journal_store
from ..db.connection import Connection
from ..errors import NotFound


def _ts(v: float | None) -> str:
    return datetime.datetime.fromtimestamp(v).strftime("%Y-%m-%d %H:%M:%S") if v else ""


def recent(conn: Connection, limit: int) -> list[dict[str, Any]]:
    return [
        {
            "id": r["id"],
            "kind": r["kind"],
            "target": r["target"],
            "status": r["status"] + (" (recovered)" if r["recovered"] else ""),
            "started": _ts(r["started_at"]),
            "steps": r["steps"],
            "ms": round(r["ms"], 1) if r["ms"] is not None else "",
            "error": (r["error"] or "")[:60],
        }
        for r in journal_store.recent_operations(conn, limit)
    ]


def detail(conn: Connection, op_id: int) -> dict[str, Any]:
    op = journal_store.operation(conn, op_id)
    if op is None:
        raise NotFound(f"operation {op_id} not found")
    return {
        "id": op["id"],
        "kind": op["kind"],
        "target": op["target"],
        "direction": op["direction"],
        "status": op["status"],
        "started": _ts(op["started_at"]),
        "finished": _ts(op["finished_at"]),
        "error": op["error"],
        "recovered": bool(op["recovered"]),
        "steps": [
            {
                "seq": s["seq"],
                "summary": s["summary"],
                "command": s["command"],
                "undo": [Command.from_json(c).render() for c in json.loads(s["undo_json"])],
                "fallback": [Command.from_json(c).render() for c in json.loads(s["fallback_json"])],
                "status": s["status"],
                "duration_ms": s["duration_ms"],
                "exit_code": s["exit_code"],
                "error": s["error"],
            }
            for s in journal_store.operation_steps(conn, op_id)
        ],
    }


def render(d: dict[str, Any]) -> str:
    out = [
        f"operation {d['id']}: {d['kind']} {d['target']} ({d['direction']}) {d['status']}"
        + (" (recovered)" if d["recovered"] else ""),
        f"started {d['started']}  finished {d['finished'] or '-'}",
    ]
    if d["error"]:
        out.append(f"error: {d['error']}")
    for s in d["steps"]:
        ms = f" {s['duration_ms']:.1f} ms" if s["duration_ms"] is not None else ""
        out.append(f"\n# step {s['seq']}: {s['summary']} [{s['status']}{ms}]")
        out.append(s["command"])
        for u in s["undo"]:
            out.append("# undo: " + u.replace("\n", "\n#       "))
        if s["error"]:
            out.append(f"# error: {s['error'].strip()}")
    return "\n".join(out)
