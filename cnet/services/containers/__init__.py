"""Container use cases, one module per job:

    run.py        validate, allocate, wire (one journaled operation)
    process.py    launch, start, find, signal the container's processes
    lifecycle.py  release when the process ends (watcher, stop, rm, recovery), stop, rm
    connect.py    net connect / disconnect
    views.py      inspect, ps

The CLI imports this package; the names below are its surface. Each is loaded from its module
when first used (PEP 562), so `cnet ps` loads views.py alone and `cnet run` not connect.py
(start-up: tests/unit/test_startup_imports.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connect import connect, disconnect
    from .lifecycle import claim_and_release, reap, reap_dead, remove_container, remove_record, stop_container
    from .process import container_env, start_process
    from .run import Wired, parse_run_request, run_container
    from .views import describe, exit_code, get_container, is_running, list_containers

_HOME = {
    "connect": "connect",
    "disconnect": "connect",
    "claim_and_release": "lifecycle",
    "reap": "lifecycle",
    "reap_dead": "lifecycle",
    "remove_container": "lifecycle",
    "remove_record": "lifecycle",
    "stop_container": "lifecycle",
    "container_env": "process",
    "start_process": "process",
    "Wired": "run",
    "parse_run_request": "run",
    "run_container": "run",
    "describe": "views",
    "exit_code": "views",
    "get_container": "views",
    "is_running": "views",
    "list_containers": "views",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # The import statement's own function (CNET_PROFILE times imports through it).
    value = getattr(__import__(f"{__name__}.{home}", fromlist=(name,)), name)
    globals()[name] = value  # found once; later lookups are plain attribute reads
    return value


__all__ = [
    "Wired",
    "claim_and_release",
    "connect",
    "container_env",
    "describe",
    "disconnect",
    "exit_code",
    "get_container",
    "is_running",
    "list_containers",
    "parse_run_request",
    "reap",
    "reap_dead",
    "remove_container",
    "remove_record",
    "run_container",
    "start_process",
    "stop_container",
]
