"""Builders for the commands that start, enter and signal container processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..naming import netns_path

if TYPE_CHECKING:
    from ..commands import Step

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
    # The watcher's working directory (CNET_WD), as the container's; / when the template's copy
    # of the mounts lacks it (a mount made after the template that did not propagate to it).
    'cd -- "$CNET_WD" 2>/dev/null || cd /; unset CNET_WD OLDPWD; '
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
# - tmpl: the mount namespace template (MOUNT_TEMPLATE_SCRIPT), or "" for the host's own. Entering
#   a mount namespace makes its root the working directory: the init script goes back to the
#   watcher's (CNET_WD, as without a template), or to / when the template's mounts lack it.
WATCH_SCRIPT = (
    "py=$1 pypath=$2 state=$3 id=$4 log=$5 ns=$6 init=$7 backoff=$8 tmpl=$9; shift 9; exec 5<&0 6>&1 7>&2; "
    "wd=$PWD; "
    'nsenter --net="$ns" ${tmpl:+"--mount=$tmpl"} unshare --mount --uts --ipc --mount-proc --propagation private '
    'setpriv --pdeathsig KILL env -i --default-signal=INT,QUIT CNET_WD="$wd" /bin/sh -c "$init" cnet-init "$@" '
    "<&5 4<&- 5<&- 6>&- 7>&- & "
    "pid1=$!; "
    '[ "$backoff" = 0 ] || env PYTHONPATH="$pypath" "$py" -m cnet --state-dir "$state" _started "$id" "$pid1" '
    '</dev/null >>"$log" 2>&1 4<&- 5<&- 6>&- 7>&- & '
    "wait $pid1; rc=$?; "
    'exec nsenter -F --pid=/proc/self/ns/pid env PYTHONPATH="$pypath" "$py" -m cnet --state-dir "$state" '
    '_reap "$id" "$rc" "$backoff" </dev/null >>"$log" 2>&1'
)

# A restart's back-off, before the watcher is exec()ed again: `sleep` is the only process added
# meanwhile (a Python process would keep several MB for up to a minute). Only this shell holds the
# published ports (HELD_FD), not its `sleep`: a watcher killed in its back-off must free them at
# once, not when an orphaned `sleep` ends.
BACKOFF_SCRIPT = 'sleep "$1" 4<&-; shift; exec "$@"'
BACKOFF_NAME = "cnet-backoff"  # its $0


# The mount namespace every container's own is copied from (kept once made, until a reboot):
# the host's mounts without the netns pins under /run/netns, each of which is a mount. A copy of
# the host's own namespace copies every pin: N containers would hold N*N mounts in kernel memory,
# and each start and exit copies or frees as many as containers run. Made under flock (parallel runs);
# idempotent, so a crash at any point is repaired by the next start that needs it:
# - its folder is bind-mounted on itself and made private: a namespace file may only be bound
#   on a mount that does not propagate (else the namespace would receive its own pin);
# - `--propagation slave`: mounts the host makes or removes later (a USB disk, an NFS share) still
#   reach it, and so each container started after that, as they reach the host; none of its own
#   goes back to the host;
# - every mount on /run/netns goes (lazily: with what is mounted below it) until umount finds
#   none (a /run/netns hidden under a later /run mount stays, with nothing under it): the host's
#   pins made later land on the host's /run/netns mount, which the template no longer has.
#   Containers see an empty /run/netns, as in Docker.
# - a template that still holds a mount on /run/netns (made by a run killed mid-way) is made
#   again; the ready mark beside it is written only once it is clean and removed before it is
#   made, so a start plans this step whenever the mark or the mount is missing (a reboot takes
#   the mount, a killed maker leaves no mark);
# - the kernel refuses to bind a mount namespace that looks older than the caller's (a loop
#   check) and, since it numbers namespaces from per-CPU batches, a new one made on another CPU
#   than the caller's may look older: unshare is tried again pinned to each CPU in turn (the one
#   that made the caller's namespace numbers the new one higher). Seen in a sandbox (a recent
#   namespace), not in a host's first one.
MOUNT_TEMPLATE_DIR = "mntns"  # under the state dir
MOUNT_TEMPLATE_FILE = "template"
MOUNT_TEMPLATE_LOCK = "mntns.lock"
NETNS_DIR = "/run/netns"
MOUNT_TEMPLATE_SCRIPT = (
    'd=$1 t=$2 run=$3; mkdir -p "$d" || exit; '
    # Whether the template holds a mount under /run/netns (a pin).
    'pins() { nsenter --mount="$t" awk -v r="$run/" '
    "'index($5, r) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; }; "
    # A clean template gets its ready mark (what the next start checks); one that holds a pin, or
    # is being made, has none, so a maker killed half-way leaves a template the next start redoes.
    'if mountpoint -q "$t"; then pins || { : > "$t.ready"; exit 0; }; umount "$t" || exit; fi; '
    'rm -f "$t.ready" || exit; '
    'mountpoint -q "$d" || mount --bind "$d" "$d" || exit; mount --make-private "$d" || exit; '
    ': > "$t" || exit; '
    "for cpu in any $(seq 0 $(($(nproc --all) - 1))); do "
    'if [ "$cpu" = any ]; then pin=; else pin="taskset -c $cpu"; fi; '
    '$pin unshare --mount="$t" --propagation slave /bin/sh -c '
    '\'while umount -l "$1" 2>/dev/null; do :; done\' cnet-template "$run" 2>/dev/null && ! pins '
    '&& { : > "$t.ready"; exit 0; }; '
    'if mountpoint -q "$t"; then umount "$t" || exit; fi; '
    "done; "
    # Not fatal: a start without the template copies the host's mount namespace, as before it.
    'echo "cnet: warning: could not pin a mount namespace without mounts under $run on $t:" '
    '"containers start from a copy of the host\'s" >&2; exit 0'
)


def mount_template_paths(state_dir: str) -> tuple[str, str, str]:
    """(the template's pin, its ready mark, the lock file), under the state dir (an absolute path)."""
    pin = f"{state_dir}/{MOUNT_TEMPLATE_DIR}/{MOUNT_TEMPLATE_FILE}"
    return pin, f"{pin}.ready", f"{state_dir}/{MOUNT_TEMPLATE_LOCK}"


def mount_template_step(state_dir: str) -> Step:
    """Kept on purpose, so no undo: a container being started at that moment may be entering it,
    and every start after this one needs it again (README, "Mount namespaces")."""
    from ..commands import Step, cmd  # not at import: `cnet ps` loads this module (its views: the nsenter hint)

    pin, _ready, lock = mount_template_paths(state_dir)
    return Step(
        summary=f"make the mount namespace containers start from: the host's without the netns pins in {NETNS_DIR}",
        do=cmd(
            "flock",
            lock,
            "/bin/sh",
            "-c",
            MOUNT_TEMPLATE_SCRIPT,
            "cnet-template",
            f"{state_dir}/{MOUNT_TEMPLATE_DIR}",
            pin,
            NETNS_DIR,
        ),
    )


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
    template: str = "",
) -> list[str]:
    """The one command that starts a container: its watcher, which starts PID 1 (in a copy of the
    mount namespace `template`, or of the host's when "")."""
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
        template,
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
