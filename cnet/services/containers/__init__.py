"""Container use cases, one module per job:

    run.py        validate, allocate, wire (one journaled operation)
    process.py    launch, start, find, signal the container's processes
    lifecycle.py  release when the process ends (watcher, stop, rm, recovery), stop, rm
    reaping.py    find the running containers whose process is gone (every command's recovery)
    connect.py    net connect / disconnect
    views.py      inspect
    listing.py    ps (without records: start-up)

The CLI imports this package; the names below are its surface. Each is loaded from its module
when first used (PEP 562), so `cnet ps` loads listing.py alone and `cnet run` not connect.py
(start-up: tests/unit/test_startup_imports.py).
"""

from __future__ import annotations

# typing itself is not imported: `cnet ps` loads this module (tests/unit/test_startup_imports.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .connect import connect, disconnect
    from .lifecycle import (
        claim_and_release,
        mark_manually_stopped,
        reap,
        remove_container,
        remove_record,
        stop_container,
        stop_containers,
    )
    from .listing import list_containers, matches
    from .ports import release as release_ports
    from .process import (
        cnet_env,
        container_env,
        env_file,
        live_pid,
        start_process,
        wait_exec,
        write_env_file,
        write_exec_env_file,
    )
    from .reaping import reap_dead
    from .restart import started
    from .run import Wired, parse_run_request, run_container
    from .start import restart_container, restore_containers, start_container
    from .views import describe, exit_code, exited_ids, get_container, is_running

# Names bound under another name than the module's own.
_ALIAS = {"release_ports": "release"}

_HOME = {
    "connect": "connect",
    "disconnect": "connect",
    "claim_and_release": "lifecycle",
    "reap": "lifecycle",
    "reap_dead": "reaping",
    "remove_container": "lifecycle",
    "remove_record": "lifecycle",
    "stop_container": "lifecycle",
    "stop_containers": "lifecycle",
    "mark_manually_stopped": "lifecycle",
    "release_ports": "ports",
    "live_pid": "process",
    "wait_exec": "process",
    "started": "restart",
    "restart_container": "start",
    "restore_containers": "start",
    "start_container": "start",
    "cnet_env": "process",
    "container_env": "process",
    "env_file": "process",
    "write_env_file": "process",
    "write_exec_env_file": "process",
    "start_process": "process",
    "Wired": "run",
    "parse_run_request": "run",
    "run_container": "run",
    "describe": "views",
    "exit_code": "views",
    "exited_ids": "views",
    "matches": "listing",
    "get_container": "views",
    "is_running": "views",
    "list_containers": "listing",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # The import statement's own function (CNET_PROFILE times imports through it).
    module = __import__(f"{__name__}.{home}", fromlist=(name,))
    # Bind every name of that module at once: loading connect.py makes the package attribute
    # `connect` the submodule, which must be the function again, as the eager imports left it.
    for other, other_home in _HOME.items():
        if other_home == home:
            globals()[other] = getattr(module, _ALIAS.get(other, other))
    return globals()[name]


__all__ = [
    "Wired",
    "claim_and_release",
    "cnet_env",
    "connect",
    "container_env",
    "describe",
    "disconnect",
    "env_file",
    "exit_code",
    "exited_ids",
    "get_container",
    "is_running",
    "list_containers",
    "live_pid",
    "mark_manually_stopped",
    "matches",
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
    "write_env_file",
    "write_exec_env_file",
]
