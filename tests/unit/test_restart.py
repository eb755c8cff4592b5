"""Restart policies, back-off, --init lookup and held ports (issue 14), without root."""

import errno
import socket

import pytest

from cnet import validate
from cnet.errors import CnetError, Conflict, ValidationError
from cnet.records import Container, ContainerState, PortSpec, RestartPolicy
from cnet.services.containers import ports, process, restart
from cnet.services.containers.start import parse_port


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("no", (RestartPolicy.NO, 0)),
        ("always", (RestartPolicy.ALWAYS, 0)),
        ("unless-stopped", (RestartPolicy.UNLESS_STOPPED, 0)),
        ("on-failure", (RestartPolicy.ON_FAILURE, 0)),
        ("on-failure:5", (RestartPolicy.ON_FAILURE, 5)),
    ],
)
def test_restart_policy_spellings(text, want):
    assert validate.restart_policy(text) == want


@pytest.mark.parametrize(
    "text", ["", "sometimes", "always:3", "on-failure:", "on-failure:x", "on-failure:-1", "On-failure"]
)
def test_bad_restart_policies(text):
    with pytest.raises(ValidationError):
        validate.restart_policy(text)


def test_restart_and_rm_conflict():
    kw = dict(name=None, networks=[], ports=[], ip=None, hostname=None, env=[], command=["true"])
    with pytest.raises(ValidationError, match="--rm"):
        validate.run_request(**kw, restart="always", remove=True)
    assert validate.run_request(**kw, restart="on-failure:2").restart_max == 2


def test_docker_backoff():
    assert restart.next_backoff_ms(0, 0.0) == 100
    seq = [100]
    for _ in range(12):
        seq.append(restart.next_backoff_ms(seq[-1], 0.5))
    assert seq[:5] == [100, 200, 400, 800, 1600] and seq[-1] == 60_000
    assert restart.next_backoff_ms(6400, 10.0) == 100  # reset after a run of 10 s


def _ctr(**kw) -> Container:
    base = dict(
        id="a" * 12, name="c", state=ContainerState.RUNNING, command=("true",), hostname="c", env={}, spec={},
        detached=True, netns="cnet-" + "a" * 12, created_at=0.0,
    )  # fmt: skip
    base.update(kw)
    return Container(**base)


def test_wants_restart():
    w = restart.wants_restart
    assert not w(_ctr(), 1)
    assert w(_ctr(restart_policy=RestartPolicy.ALWAYS), 0)
    assert w(_ctr(restart_policy=RestartPolicy.UNLESS_STOPPED, state=ContainerState.RESTARTING), 0)
    assert not w(_ctr(restart_policy=RestartPolicy.ALWAYS, manually_stopped=True), 1)
    assert not w(_ctr(restart_policy=RestartPolicy.ALWAYS, state=ContainerState.EXITED), 1)
    of = RestartPolicy.ON_FAILURE
    assert not w(_ctr(restart_policy=of), 0)
    assert w(_ctr(restart_policy=of), 3)
    assert w(_ctr(restart_policy=of, restart_max=2, restart_count=1), 3)
    assert not w(_ctr(restart_policy=of, restart_max=2, restart_count=2), 3)


def test_init_missing_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CnetError, match="--init needs tini or catatonit: apt-get install tini"):
        process.program_argv(["sleep", "1"], init=True, tty=False)
    fake = tmp_path / "catatonit"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert process.program_argv(["sleep", "1"], init=True, tty=True) == [
        "setsid",
        "--ctty",
        str(fake),
        "--",
        "sleep",
        "1",
    ]


def test_port_spec_round_trip():
    for spec in (PortSpec("0.0.0.0", 8080, 80, "tcp"), PortSpec("127.0.0.1", 53, 5353, "udp")):
        assert parse_port(spec.render()) == spec


def test_held_ports_refuse_other_binds_and_close_with_the_holder():
    # Unprivileged ports on loopback: any user may bind them; the kernel picks free ones.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    fd = ports.hold([PortSpec("127.0.0.1", port, 80, "tcp"), PortSpec("127.0.0.1", port, 80, "udp")])
    try:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError) as exc:
                s.bind(("127.0.0.1", port))
            assert exc.value.errno == errno.EADDRINUSE
            s.close()
        with pytest.raises(Conflict, match="in use by a host process"):
            ports.hold([PortSpec("127.0.0.1", port, 80, "tcp")])
    finally:
        ports.release(fd)
    again = ports.hold([PortSpec("127.0.0.1", port, 80, "tcp"), PortSpec("127.0.0.1", port, 80, "udp")])
    ports.release(again)


def test_a_restarting_container_counts_as_live_for_names(store):
    """Between two runs of its restart policy a container keeps its endpoints: its name must stay
    in its peers' hosts files and its own hosts file must keep being rewritten."""
    from cnet.db import names_store
    from cnet.db import store as st

    states = {"a" * 12: ContainerState.RUNNING, "b" * 12: ContainerState.RESTARTING, "c" * 12: ContainerState.EXITED}
    for cid, state in states.items():
        st.insert_container(store, _ctr(id=cid, name=cid, state=state, netns="cnet-" + cid))
    assert sorted(names_store.running_ids(store)) == ["a" * 12, "b" * 12]


def test_a_watcher_killed_in_its_back_off_frees_the_held_ports_at_once():
    """The back-off shell holds the published ports on HELD_FD; its `sleep` must not: killed with
    SIGKILL, the watcher (this shell) frees them at once, not when an orphaned sleep ends. The
    held descriptor here is a pipe's write end: its reader sees EOF once no process holds it."""
    import os
    import select
    import signal
    import subprocess

    from cnet.kernel import netns as nsk

    read, write = os.pipe()

    def on_held_fd() -> None:  # in the child, before exec: the pipe on HELD_FD, as restart does
        os.dup2(write, nsk.HELD_FD)  # `write` itself is close-on-exec

    shell = subprocess.Popen(
        nsk.backoff_argv(30, ["true"]),
        preexec_fn=on_held_fd,
        pass_fds=(nsk.HELD_FD,),
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the orphaned sleep is killed with it below
    )
    try:
        os.close(write)
        assert not select.select([read], [], [], 0.3)[0], "the held descriptor closed before the kill"
        shell.send_signal(signal.SIGKILL)  # the watcher alone, as `kill -9 WATCHER_PID`
        shell.wait()
        assert select.select([read], [], [], 5)[0], "an orphaned sleep still holds the ports"
        assert os.read(read, 1) == b""
    finally:
        os.close(read)
        try:
            os.killpg(shell.pid, signal.SIGKILL)  # the sleep left behind
        except ProcessLookupError:
            pass
