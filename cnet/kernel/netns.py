"""Builders for the commands that start, enter and signal container processes."""

from __future__ import annotations

from ..naming import netns_path

# Runs as the container's PID 1 for an instant: gives the container back its own stderr (fd 3,
# see WATCH_SCRIPT), sets the hostname in the new UTS namespace, then exec()s the user's command,
# which becomes PID 1. User arguments are positional parameters, never parsed by the shell.
INIT_SCRIPT = (
    'if [ -e /proc/self/fd/3 ]; then exec 2>&3 3>&-; fi; '
    'echo "$1" > /proc/sys/kernel/hostname || exit 125; shift; exec "$@"'
)

# The watcher: a ~1 MB shell that waits for the container and then exec()s cnet's reaper, which
# releases the network and records the exit code. Nothing heavier stays resident per container.
#
# unshare's own stderr goes to a file (the container's stderr travels on fd 3): util-linux 2.38's
# unshare cannot re-raise SIGKILL on itself ("sigprocmask unblock failed") and exits 1 instead, so
# that message is how a SIGKILLed container is told from one that exited with 1; it gets 137.
WATCH_SCRIPT = (
    'py=$1 pypath=$2 state=$3 id=$4 log=$5; shift 5; "$@" 3>&2 2>>"$log.unshare"; rc=$?; '
    'if [ "$rc" = 1 ] && grep -q "sigprocmask unblock failed" "$log.unshare" 2>/dev/null; then rc=137; fi; '
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
    return ["nsenter", "--target", str(pid), "--mount", "--uts", "--ipc", "--net", "--pid", *command]


def enter_hint(pid: int) -> str:
    return f"nsenter --target {pid} --mount --uts --ipc --net --pid"
