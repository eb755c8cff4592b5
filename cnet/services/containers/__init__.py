"""Container use cases, one module per job:

    run.py        validate, allocate, wire (one journaled operation)
    process.py    launch, start, find, signal the container's processes
    lifecycle.py  release when the process ends (watcher, stop, rm, recovery), stop, rm
    connect.py    net connect / disconnect
    views.py      inspect, ps

The CLI imports this package; the names below are its surface.
"""

from __future__ import annotations

from .connect import connect, disconnect
from .lifecycle import claim_and_release, reap, reap_dead, remove_container, remove_record, stop_container
from .process import container_env, start_process
from .run import Wired, parse_run_request, run_container
from .views import describe, exit_code, exited_ids, get_container, is_running, list_containers, matches

__all__ = [
    "Wired",
    "claim_and_release",
    "connect",
    "container_env",
    "describe",
    "disconnect",
    "exit_code",
    "exited_ids",
    "get_container",
    "is_running",
    "list_containers",
    "matches",
    "parse_run_request",
    "reap",
    "reap_dead",
    "remove_container",
    "remove_record",
    "run_container",
    "start_process",
    "stop_container",
]
