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
from .lifecycle import (
    claim_and_release,
    mark_manually_stopped,
    reap,
    reap_dead,
    remove_container,
    remove_record,
    stop_container,
    stop_containers,
)
from .ports import release as release_ports
from .process import container_env, live_pid, start_process, wait_exec
from .restart import started
from .run import Wired, parse_run_request, run_container
from .start import restart_container, restore_containers, start_container
from .views import describe, exit_code, get_container, is_running, list_containers

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
    "live_pid",
    "mark_manually_stopped",
    "parse_run_request",
    "reap",
    "reap_dead",
    "release_ports",
    "remove_container",
    "remove_record",
    "restart_container",
    "restore_containers",
    "run_container",
    "start_container",
    "start_process",
    "started",
    "stop_container",
    "stop_containers",
    "wait_exec",
]
