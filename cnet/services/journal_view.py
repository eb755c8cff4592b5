"""What `cnet journal` shows: recent operations, and one operation's commands with their undos."""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

from ..commands import Command
from ..errors import NotFound


def _ts(v):
    return datetime.datetime.fromtimestamp(v).strftime("%Y-%m-%d %H:%M:%S") if v else ""


def recent(conn: sa.Connection, limit: int) -> list[dict]:
    rows = conn.exec_driver_sql(
        "SELECT o.id, o.kind, o.target, o.status, o.started_at, o.finished_at, o.error, o.recovered, "
        "(SELECT count(*) FROM operation_steps s WHERE s.operation_id = o.id), "
        "(SELECT sum(duration_ms) FROM operation_steps s WHERE s.operation_id = o.id) "
        "FROM operations o ORDER BY o.id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {
            "id": r[0], "kind": r[1], "target": r[2],
            "status": r[3] + (" (recovered)" if r[7] else ""), "started": _ts(r[4]),
            "steps": r[8], "ms": round(r[9], 1) if r[9] is not None else "",
            "error": (r[6] or "")[:60],
        }
        for r in rows
    ]


def detail(conn: sa.Connection, op_id: int) -> dict:
    op = conn.exec_driver_sql(
        "SELECT id, kind, target, direction, status, started_at, finished_at, error, recovered FROM operations WHERE id = ?",
        (op_id,),
    ).first()
    if op is None:
        raise NotFound(f"operation {op_id} not found")
    steps = conn.exec_driver_sql(
        "SELECT seq, summary, command, undo_json, fallback_json, status, duration_ms, exit_code, error "
        "FROM operation_steps WHERE operation_id = ? ORDER BY seq",
        (op_id,),
    ).fetchall()
    return {
        "id": op[0], "kind": op[1], "target": op[2], "direction": op[3], "status": op[4],
        "started": _ts(op[5]), "finished": _ts(op[6]), "error": op[7], "recovered": bool(op[8]),
        "steps": [
            {
                "seq": s[0], "summary": s[1], "command": s[2],
                "undo": [Command.from_json(c).render() for c in json.loads(s[3])],
                "fallback": [Command.from_json(c).render() for c in json.loads(s[4])],
                "status": s[5], "duration_ms": s[6], "exit_code": s[7], "error": s[8],
            }
            for s in steps
        ],
    }


def render(d: dict) -> str:
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
