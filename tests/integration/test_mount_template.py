"""Containers start from a mount namespace template: the host's mounts without the netns pins in
/run/netns (cnet.kernel.netns.MOUNT_TEMPLATE_SCRIPT). What a container sees stays as before (the
host's files, its own /etc/hosts and resolv.conf, the working directory cnet was started in); it
no longer holds a copy of every other container's netns pin; a removed container's namespace is
freed while others run; the template comes back after a reboot, and a cnet killed while making it
leaves nothing the next command does not repair."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def pid1(sb, name: str) -> int:
    return json.loads(sb.cnet("inspect", name).stdout)["pid"]


def inside(sb, pid: int, *argv: str) -> str:
    return sb.run(["nsenter", "--target", str(pid), "--mount", *argv], check=True).stdout


def mount_points(sb, pid: int) -> list[str]:
    """The mount points of the container's mount namespace (its PID 1's, read from the host)."""
    return [line.split()[4] for line in sb.run(["cat", f"/proc/{pid}/mountinfo"], check=True).stdout.splitlines()]


def test_containers_see_no_netns_pins_but_the_host_files_and_their_own_names(sandbox, tmp_path):
    sb = sandbox
    sb.cnet("net", "create", "m", "--subnet", "10.72.0.0/24")
    dry = sb.cnet("--dry-run", "run", "-d", "--net", "m", "--", "true").stdout
    assert f"flock {sb.state_dir}/mntns.lock /bin/sh -c " in dry  # the first start makes it
    work = tmp_path / "work"
    work.mkdir()
    (work / "file").write_text("from the host\n")
    sb.cnet("run", "-d", "--name", "a", "--net", "m", "--", "sleep", "1000")
    # The working directory as `cnet run` had it (entering the template would make it /).
    sb.run(
        ["sh", "-c", f"cd {work} && exec {' '.join(sb.cnet_argv())} run -d --name b --net m -- sleep 1000"],
        check=True,
    )
    a, b = pid1(sb, "a"), pid1(sb, "b")
    assert sb.run(["readlink", f"/proc/{b}/cwd"], check=True).stdout.strip() == str(work)
    assert inside(sb, b, "cat", f"{work}/file") == "from the host\n"
    # Its own names files over the host's; no netns pin at all (the host has two).
    hosts = inside(sb, b, "cat", "/etc/hosts")
    assert any(line.split()[1:] == ["b"] for line in hosts.splitlines() if line.strip()), hosts
    assert len(sb.netns()) == 2
    for pid in (a, b):
        points = mount_points(sb, pid)
        assert not [p for p in points if p.startswith("/run/netns")], points
        assert "/etc/hosts" in points and "/etc/resolv.conf" in points
        assert inside(sb, pid, "ls", "-A", "/run/netns").strip() == ""
    # The template: pinned under the state dir, private folder, nothing under /run/netns.
    assert str(sb.template()) in sb.mount_points()
    assert sb.template_netns_mounts() == []
    assert (
        f"flock {sb.state_dir}/mntns.lock" not in sb.cnet("--dry-run", "run", "-d", "--net", "m", "--", "true").stdout
    )
    # `exec` still enters everything of the container.
    assert sb.cnet("exec", "b", "hostname").stdout.strip() == "b"
    sb.cnet("rm", "-f", "a", "b")
    sb.cnet("net", "rm", "m")


def test_a_removed_containers_namespace_is_freed_while_others_run(sandbox):
    # Its veth's peer lives in its namespace: the host veth goes when the namespace is freed. A
    # pin held by another container's mount namespace would keep it (and the veth) alive.
    sb = sandbox
    sb.cnet("net", "create", "m", "--subnet", "10.72.1.0/24")
    sb.cnet("run", "-d", "--name", "a", "--net", "m", "--", "sleep", "1000")
    veth_a = json.loads(sb.cnet("inspect", "a").stdout)["networks"][0]["host_veth"]
    sb.cnet("run", "-d", "--name", "b", "--net", "m", "--", "sleep", "1000")
    sb.cnet("rm", "-f", "a")
    assert sb.wait_for(lambda: veth_a not in sb.link_names(), timeout=10), sb.link_names()
    assert pid1(sb, "b") > 0  # b still runs
    sb.cnet("rm", "-f", "b")
    sb.cnet("net", "rm", "m")


def test_the_template_comes_back_after_a_reboot_and_restarts_use_it(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "m", "--subnet", "10.72.2.0/24")
    sb.cnet("run", "-d", "--name", "a", "--net", "m", "--", "sleep", "1000")
    sb.cnet("rm", "-f", "a")
    sb.reboot()
    assert str(sb.template()) not in sb.mount_points()  # a plain file now
    assert f"flock {sb.state_dir}/mntns.lock" in sb.cnet("--dry-run", "run", "-d", "--net", "m", "--", "true").stdout
    # A restart policy: the watcher starts the command again, from the template.
    sb.cnet("run", "-d", "--name", "r", "--restart", "always", "--net", "m", "--", "sh", "-c", "sleep 2; exit 3")

    def restarted() -> int | None:
        info = json.loads(sb.cnet("inspect", "r").stdout)
        return info["pid"] if info["restart_count"] >= 1 and info["state"] == "running" else None

    again = sb.wait_for(restarted, timeout=30, interval=0.2)
    assert again
    assert not [p for p in mount_points(sb, again) if p.startswith("/run/netns")]
    assert sb.template_netns_mounts() == []
    sb.cnet("rm", "-f", "r")
    sb.cnet("net", "rm", "m")


# A `flock` first on PATH that SIGKILLs cnet (its parent) before or after the real one ran.
FAKE_FLOCK = """#!/bin/sh
[ "$(cat "{mode}")" = pre ] && kill -KILL $PPID && exit 137
/usr/bin/flock "$@"
rc=$?
[ "$(cat "{mode}")" = post ] && kill -KILL $PPID && exit 137
exit $rc
"""


@pytest.mark.parametrize("mode", ["pre", "post"])
def test_cnet_killed_while_making_the_template_is_repaired(sandbox, tmp_path, mode):
    sb = sandbox
    sb.cnet("net", "create", "m", "--subnet", "10.72.3.0/24")
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (fakes / "mode").write_text(mode)
    (fakes / "flock").write_text(FAKE_FLOCK.format(mode=fakes / "mode"))
    (fakes / "flock").chmod(0o755)
    path = f"{fakes}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    res = sb.cnet("run", "-d", "--name", "a", "--net", "m", "--", "sleep", "1000", check=False, env={"PATH": path})
    assert res.returncode in (-9, 137), res
    # The next command rolls the run back: its namespace, veth and rows go.
    sb.cnet("ps")
    assert sb.netns() == []
    assert sb.template_netns_mounts() == []
    assert (str(sb.template()) in sb.mount_points()) == (mode == "post")  # made: kept, as always
    sb.cnet("run", "-d", "--name", "a", "--net", "m", "--", "sleep", "1000")
    assert not [p for p in mount_points(sb, pid1(sb, "a")) if p.startswith("/run/netns")]
    sb.cnet("rm", "-f", "a")
    sb.cnet("net", "rm", "m")


# An `unshare` first on PATH that, for the template's own unshare only, pins a plain copy of the
# host's mount namespace (netns pins included, as the real one holds them until its umount loop
# has run) and then SIGKILLs the template's maker: a maker killed half-way. Every other unshare is
# the real one. The kernel's loop check may refuse a CPU (see MOUNT_TEMPLATE_SCRIPT): the maker
# tries the next, and so does this.
FAKE_UNSHARE = """#!/bin/sh
case "$1" in --mount={template})
    {unshare} "$1" --propagation slave true || exit
    kill -KILL $PPID
    exit 137;;
esac
exec {unshare} "$@"
"""


def test_a_template_left_half_made_is_made_again_by_the_next_start(sandbox, tmp_path):
    sb = sandbox
    sb.cnet("net", "create", "m", "--subnet", "10.72.4.0/24")
    # A container whose pin a half-made template would hold; then the template goes (a reboot
    # takes it, here by hand) so the next start makes it again.
    sb.cnet("run", "-d", "--name", "b", "--net", "m", "--", "sleep", "1000")
    sb.sh(f"umount {sb.template()}")
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    unshare = shutil.which("unshare")
    (fakes / "unshare").write_text(FAKE_UNSHARE.format(template=sb.template(), unshare=unshare))
    (fakes / "unshare").chmod(0o755)
    path = f"{fakes}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    res = sb.cnet("run", "-d", "--name", "a", "--net", "m", "--", "sleep", "1000", check=False, env={"PATH": path})
    assert res.returncode == 1, res  # the step failed: the run is rolled back
    # Left pinned, holding the pins, with no ready mark.
    assert str(sb.template()) in sb.mount_points()
    assert sb.template_netns_mounts() != []
    assert not Path(f"{sb.template()}.ready").exists()
    # The next start plans the step again and gets a clean template.
    assert f"flock {sb.state_dir}/mntns.lock" in sb.cnet("--dry-run", "run", "-d", "--net", "m", "--", "true").stdout
    sb.cnet("run", "-d", "--name", "a", "--net", "m", "--", "sleep", "1000")
    assert sb.template_netns_mounts() == []
    assert Path(f"{sb.template()}.ready").exists()
    assert not [p for p in mount_points(sb, pid1(sb, "a")) if p.startswith("/run/netns")]
    assert (
        f"flock {sb.state_dir}/mntns.lock" not in sb.cnet("--dry-run", "run", "-d", "--net", "m", "--", "true").stdout
    )
    sb.cnet("rm", "-f", "a", "b")
    sb.cnet("net", "rm", "m")
