"""CNET_PROFILE=1: where one command's time goes, as one line of JSON on stderr at exit.

    cnet-profile: {"start": T0, "end": T1, "ms": {"imports": ..., "sqlite": ..., "kernel": ...,
                   "watcher": ..., "python": ...}, "sqlite_statements": N, "kernel_commands": N}

`start` is the wall clock (time.time()) when the cnet package began to load and `end` the moment
before the process exits; the caller (scripts/bench) knows when it launched the process and when
it saw it exit, so it derives interpreter start (launch -> start) and shutdown (end -> exit).
Between them every moment is credited to exactly one category, the innermost one active:

    imports   executing `import` statements (the __import__ hook below)
    sqlite    connecting, and every statement executed (sqlite3.connect with a timing factory)
    kernel    cnet.runner.ShellRunner running or reading a command (sh, spawn, wait)
    watcher   starting a container's watcher and waiting for its PID 1 (minus the above)
    python    everything else: parsing, validation, planning, the journal's own code

CNET_PROFILE=sql adds the SQL statements, in order. Nothing here runs without the variable: the
package imports this module only then (cnet/__init__.py), and the hooks are installed by it.
"""

from __future__ import annotations

import builtins
import json
import sys
import time
from collections.abc import Callable
from typing import Any

_perf = time.perf_counter


class Profile:
    def __init__(self, list_sql: bool, start: float, start_perf: float) -> None:
        self.start = start
        self.last = start_perf
        self.stack: list[str] = []
        self.ms: dict[str, float] = {"imports": 0.0, "sqlite": 0.0, "kernel": 0.0, "watcher": 0.0, "python": 0.0}
        self.counts = {"sqlite_statements": 0, "kernel_commands": 0}
        self.sql: list[str] | None = [] if list_sql else None
        self.patched: set[str] = set()

    def _credit(self) -> None:
        now = _perf()
        self.ms[self.stack[-1] if self.stack else "python"] += (now - self.last) * 1000
        self.last = now

    def enter(self, category: str) -> None:
        self._credit()
        self.stack.append(category)

    def leave(self) -> None:
        self._credit()
        self.stack.pop()

    def timed(self, category: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.enter(category)
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()

        wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
        return wrapper

    def on_statement(self, sql: str) -> None:
        if sql.startswith("--"):  # a trigger's body, reported as a comment: not a statement of ours
            return
        self.counts["sqlite_statements"] += 1
        if self.sql is not None:
            self.sql.append(sql)

    def report(self) -> None:
        self._credit()
        out: dict[str, Any] = {"start": self.start, "end": time.time(), "ms": self.ms, **self.counts}
        if self.sql is not None:
            out["sql"] = self.sql
        try:
            sys.stderr.write("cnet-profile: " + json.dumps(out) + "\n")
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass

    # --- hooks ------------------------------------------------------------------------------------
    def patch_loaded(self) -> None:
        """Wrap the timed functions of modules as soon as they are loaded."""
        for name, (needed, patch) in _PATCHES.items():
            module = sys.modules.get(name)
            # A module is in sys.modules while its body still runs: wait for the name to exist.
            if name not in self.patched and module is not None and hasattr(module, needed):
                self.patched.add(name)
                patch(self, module)


def _patch_sqlite3(prof: Profile, mod: Any) -> None:
    base = mod.Connection

    class TimedConnection(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.set_trace_callback(prof.on_statement)

    for method in ("execute", "executemany", "executescript", "commit", "rollback", "close", "backup"):
        setattr(TimedConnection, method, prof.timed("sqlite", getattr(base, method)))
    connect = mod.connect

    def timed_connect(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("factory", TimedConnection)
        return connect(*args, **kwargs)

    mod.connect = prof.timed("sqlite", timed_connect)


def _patch_runner(prof: Profile, mod: Any) -> None:
    # SpawnRunner (the CNI plugin's) overrides both methods: each class's own are timed.
    for cls in (mod.ShellRunner, getattr(mod, "SpawnRunner", None)):
        for method in ("run", "read"):
            if cls is None or method not in vars(cls):
                continue
            fn = vars(cls)[method]

            def counted(*args: Any, _fn: Callable[..., Any] = fn, **kwargs: Any) -> Any:
                prof.counts["kernel_commands"] += 1
                return _fn(*args, **kwargs)

            setattr(cls, method, prof.timed("kernel", counted))


def _patch_process(prof: Profile, mod: Any) -> None:
    mod.start_process = prof.timed("watcher", mod.start_process)


_PATCHES: dict[str, tuple[str, Callable[[Profile, Any], None]]] = {
    "sqlite3": ("connect", _patch_sqlite3),
    "cnet.runner": ("SpawnRunner", _patch_runner),
    "cnet.services.containers.process": ("start_process", _patch_process),
}

PROFILE: Profile | None = None


def start(mode: str, wall: float, perf: float) -> Profile:
    """Install the hooks; `wall`/`perf`: when the cnet package began to load (this module's own
    import is credited to imports)."""
    global PROFILE
    prof = PROFILE = Profile(mode == "sql", wall, perf)
    prof.stack.append("imports")
    prof.leave()
    original = builtins.__import__

    def timed_import(*args: Any, **kwargs: Any) -> Any:
        if prof.stack and prof.stack[-1] == "imports":  # nested: the outer import is timing it
            module = original(*args, **kwargs)
        else:
            prof.enter("imports")
            try:
                module = original(*args, **kwargs)
            finally:
                prof.leave()
        prof.patch_loaded()
        return module

    builtins.__import__ = timed_import
    prof.patch_loaded()
    return prof
