"""Builders for the commands that start, enter and signal container processes."""

from __future__ import annotations

from ..naming import netns_path

SETPRIV = "/usr/bin/setpriv"  # util-linux

# The descriptor on which a container's watcher holds its published ports (see WATCH_SCRIPT), and
# those that keep its original stdin, stdout and stderr for a restart.
HELD_FD = 4
SAVED_STDIO = (5, 6, 7)

# Runs as the container's PID 1 for an instant, started by `env -i` with an empty environment:
# sets the hostname in the new UTS namespace, turns IPv6 router advertisements off
# (IPV6_SYSCTLS), bind-mounts the container's own hosts and resolv.conf files
# (cnet.services.names) over the host's in its private mount namespace (the host's files stay as
# they are), reads the container's environment (the `-e` variables and
# defaults: `export K='V'` lines that cnet wrote, values quoted) and exec()s the user's command,
# which becomes PID 1 and alone sees those variables: cnet's own processes (watcher, nsenter,
# unshare, setpriv, the reaper) never run with the container's PATH, LD_PRELOAD, PYTHONHOME...
# dash exports PWD by itself, hence the unset (a `-e PWD=` comes after it). User arguments are
# positional parameters, never parsed by the shell.
ENV_LOADER = 'unset PWD; . "$1" || exit 125; shift; exec "$@"'
# Router advertisements and duplicate address detection off inside the container (issue 12), in
# the same init shell, with builtins only: `all`, `default` (so an interface that `net connect`
# adds later inherits 0) and every interface already there. /proc/sys/net follows the netns of
# the process that reads it, and this shell is inside the container's. No IPv6 on the host
# (ipv6.disable=1): no directory, nothing to do. A file that is not writable (a /proc/sys mounted
# read-only, as some container hosts do) is skipped: the container still works (its addresses
# are added `nodad`, RAs from containers are dropped at the bridge and nothing else sends any).
# Any other failed write is not hidden: the shell prints it on the container's stderr, and the
# start goes on for the same reason.
IPV6_CONF = "/proc/sys/net/ipv6/conf"
IPV6_SYSCTLS = (
    f"[ ! -d {IPV6_CONF} ] || for f in {IPV6_CONF}/*/accept_ra {IPV6_CONF}/*/accept_dad; do "
    '[ ! -w "$f" ] || echo 0 > "$f"; done; '
)
INIT_SCRIPT = (
    'echo "$1" > /proc/sys/kernel/hostname || exit 125; '
    + IPV6_SYSCTLS
    + '[ ! -e /etc/hosts ] || mount --bind "$2" /etc/hosts || exit 125; '
    + '[ ! -e /etc/resolv.conf ] || mount --bind "$3" /etc/resolv.conf || exit 125; '
    + "shift 3; "
    + ENV_LOADER
)

# The watcher: the only process cnet keeps per container (a ~1.5 MB dash). It is started by
# `unshare --pid` without --fork, so it stays in the host's namespaces while its first child
# becomes PID 1 of a new PID namespace; that child enters the pinned netns and new mount/uts/ipc
# namespaces (fresh /proc) and exec()s the user's command. The watcher wait()s for it, so it has
# the real exit status (128+N for signal N), then exec()s cnet's reaper, which either releases the
# network and records the code, or (restart policy) exec()s the watcher again after a back-off:
# the same process all along, so its PID, held ports and the netns stay.
# - `nsenter -F --pid=/proc/self/ns/pid` (no fork): a PID namespace whose init died accepts no new
#   processes, and unshare(CLONE_NEWPID) needs the children's namespace to be the process's own;
#   entering its own PID namespace resets both, so the reaper can fork (ip, iptables-restore) and
#   a restart can make a fresh PID namespace.
# - fd 4 holds the published host ports (sockets in flight in a unix socket, see
#   services/containers/ports.py); fds 5-7 keep the watcher's original stdin/stdout/stderr for a
#   restart (a non-interactive shell gives background jobs /dev/null as stdin). The container gets
#   none of them.
# - `setpriv --pdeathsig KILL`: if the watcher is killed, the container dies with it (as
#   unshare --kill-child would), so no container runs unwatched;
# - `env -i --default-signal=INT,QUIT`: the init shell starts with an empty environment (it loads
#   the container's own); a non-interactive shell starts background jobs with SIGINT and SIGQUIT
#   ignored, which exec() keeps and no shell inside could undo. The watcher itself runs with
#   cnet's environment, so do the reaper it exec()s and `_started`.
# - backoff: 0 when a cnet command started it (and records PID 1 itself); the back-off in ms when
#   the watcher restarted it, and then `_started` records the new PID 1 and the state.
WATCH_SCRIPT = (
    "py=$1 pypath=$2 state=$3 id=$4 log=$5 ns=$6 init=$7 backoff=$8; shift 8; exec 5<&0 6>&1 7>&2; "
    'nsenter --net="$ns" unshare --mount --uts --ipc --mount-proc --propagation private '
    'setpriv --pdeathsig KILL env -i --default-signal=INT,QUIT /bin/sh -c "$init" cnet-init "$@" '
    "<&5 4<&- 5<&- 6>&- 7>&- & "
    "pid1=$!; "
    '[ "$backoff" = 0 ] || env PYTHONPATH="$pypath" "$py" -m cnet --state-dir "$state" _started "$id" "$pid1" '
    '</dev/null >>"$log" 2>&1 4<&- 5<&- 6>&- 7>&- & '
    "wait $pid1; rc=$?; "
    'exec nsenter -F --pid=/proc/self/ns/pid env PYTHONPATH="$pypath" "$py" -m cnet --state-dir "$state" '
    '_reap "$id" "$rc" "$backoff" </dev/null >>"$log" 2>&1'
)

# A restart's back-off, before the watcher is exec()ed again: `sleep` is the only process added
# meanwhile (a Python process would keep several MB for up to a minute).
BACKOFF_SCRIPT = 'sleep "$1"; shift; exec "$@"'
BACKOFF_NAME = "cnet-backoff"  # its $0


def launch_argv(
    *,
    container_id: str,
    hostname: str,
    hosts_file: str,
    resolv_file: str,
    command: list[str],
    python: str,
    pythonpath: str,
    state_dir: str,
    reap_log: str,
    env_file: str,
    backoff_ms: int = 0,
) -> list[str]:
    """The one command that starts a container: its watcher, which starts PID 1."""
    return [
        "unshare",
        "--pid",
        "/bin/sh",
        "-c",
        WATCH_SCRIPT,
        "cnet-watch",
        python,
        pythonpath,
        state_dir,
        container_id,
        reap_log,
        netns_path(container_id),
        INIT_SCRIPT,
        str(backoff_ms),
        hostname,
        hosts_file,
        resolv_file,
        env_file,
        *command,
    ]


def backoff_argv(delay_s: float, then: list[str]) -> list[str]:
    return ["/bin/sh", "-c", BACKOFF_SCRIPT, BACKOFF_NAME, f"{delay_s:.3f}", *then]


def enter_argv(
    pid: int,
    command: list[str],
    env_file: str | None = None,
    *,
    workdir: str | None = None,
    user: tuple[str, str, bool] | None = None,
) -> list[str]:
    """`exec`: enter every namespace of PID 1; `workdir` via nsenter's --wd; `user` as
    (uid or name, gid, init_groups) via setpriv (supplementary groups from the group database
    for a named user, none for a bare number). With env_file, the command gets the container's
    environment (as PID 1 did); nsenter and setpriv keep cnet's."""
    argv = ["nsenter", "--target", str(pid), "--mount", "--uts", "--ipc", "--net", "--pid"]
    if workdir:
        argv.append(f"--wd={workdir}")
    if env_file is not None:
        # Read as root (the file is root's), before setpriv drops to the user.
        argv += ["env", "-i", "/bin/sh", "-c", ENV_LOADER, "cnet-exec", env_file]
    if user:
        uid, gid, init_groups = user
        # By absolute path: from here on PATH is the container's (`-e PATH=` included).
        argv += [SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--init-groups" if init_groups else "--clear-groups"]
    return argv + command


def env_file_text(env: dict[str, str]) -> str:
    """The container's environment as the init shell sources it: one `export K='V'` per
    variable (names are checked identifiers, values quoted by shlex: newlines and quotes kept)."""
    import shlex

    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


def enter_hint(pid: int) -> str:
    return f"nsenter --target {pid} --mount --uts --ipc --net --pid"
