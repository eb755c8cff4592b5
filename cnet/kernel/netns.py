"""Builders for the commands that start, enter and signal container processes."""

from __future__ import annotations

from ..naming import netns_path

# Runs as the container's PID 1 for an instant: sets the hostname in the new UTS namespace, then
# exec()s the user's command, which becomes PID 1. User arguments are positional parameters,
# never parsed by the shell.
INIT_SCRIPT = 'echo "$1" > /proc/sys/kernel/hostname || exit 125; shift; exec "$@"'

# The watcher: a ~1 MB shell that waits for the container and then exec()s cnet's reaper, which
# releases the network and records the exit code. Nothing heavier stays resident per container.
WATCH_SCRIPT = (
    'py=$1 pypath=$2 state=$3 id=$4 log=$5; shift 5; "$@"; rc=$?; '
    'exec env PYTHONPATH="$pypath" "$py" -m cnet --state-dir "$state" _reap "$id" "$rc" '
    '</dev/null >>"$log" 2>&1'
)


def container_argv(container_id: str, hostname: str, command: list[str]) -> list[str]:
    return [
        "nsenter",
        f"--net={netns_path(container_id)}",
        "unshare",
        "--uts",
        "--ipc",
        "--pid",
        "--mount",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        INIT_SCRIPT,
        "cnet-init",
        hostname,
        *command,
    ]


def watcher_argv(
    *, python: str, pythonpath: str, state_dir: str, container_id: str, reap_log: str, container: list[str]
) -> list[str]:
    return ["/bin/sh", "-c", WATCH_SCRIPT, "cnet-watch", python, pythonpath, state_dir, container_id, reap_log, *container]


def enter_argv(pid: int, command: list[str]) -> list[str]:
    return ["nsenter", "--target", str(pid), "--mount", "--uts", "--ipc", "--net", "--pid", "--", *command]


def enter_hint(pid: int) -> str:
    return f"nsenter --target {pid} --mount --uts --ipc --net --pid"
