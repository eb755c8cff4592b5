"""The runner: sh's foreground mode with stdin/output through memfds, and its fast spawn path."""

import os

import pytest

from cnet import _shfast
from cnet.commands import cmd
from cnet.errors import CommandFailed
from cnet.runner import ShellRunner


def test_run_feeds_stdin_and_returns_output():
    assert ShellRunner().run(cmd("cat", stdin="a\nb\n")).stdout == "a\nb\n"


def test_failure_carries_argv_exit_code_and_output():
    with pytest.raises(CommandFailed) as exc:
        ShellRunner().run(cmd("sh", "-c", "echo to-out; echo to-err >&2; exit 3"))
    assert exc.value.argv == ("sh", "-c", "echo to-out; echo to-err >&2; exit 3")
    assert exc.value.code == 3
    assert "to-err" in exc.value.stderr and "to-out" in exc.value.stderr


def test_missing_program_is_exit_127():
    with pytest.raises(CommandFailed) as exc:
        ShellRunner().run(cmd("cnet-no-such-program"))
    assert exc.value.code == 127


def test_killed_by_signal_is_negative():
    with pytest.raises(CommandFailed) as exc:
        ShellRunner().run(cmd("sh", "-c", "kill -9 $$"))
    assert exc.value.code == -9


def test_own_stdio_is_restored(capfd):
    ShellRunner().run(cmd("sh", "-c", "echo hidden; echo hidden >&2"))
    print("visible")
    out, err = capfd.readouterr()
    assert "hidden" not in out + err and "visible" in out


def test_sh_takes_the_posix_spawn_path(monkeypatch):
    calls = []
    real = _shfast.spawnve_posix

    def spy(*args):
        calls.append(args[1])
        return real(*args)

    monkeypatch.setattr(_shfast, "spawnve_posix", spy)
    ShellRunner().run(cmd("true"))
    assert calls and calls[0].endswith("/true")
    assert os.spawnve is _shfast.ORIGINAL_SPAWNVE  # put back after the call


def test_echo_survives_a_closed_pipe():
    def broken(_line):
        raise BrokenPipeError

    r = ShellRunner(echo=broken)
    r.run(cmd("true"))  # no exception: a closed -v pipe never aborts a kernel change
    assert r.echo is None


def test_unexecutable_program_is_126(tmp_path):
    script = tmp_path / "no-shebang"
    script.write_bytes(b"\x7fELF-not-really")
    script.chmod(0o755)
    with pytest.raises(CommandFailed) as exc:
        ShellRunner().run(cmd(str(script)))
    assert exc.value.code == 126


def test_closed_stdout_and_deleted_cwd_do_not_break_a_command(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    monkeypatch.setattr("sys.stdout", None)
    assert ShellRunner().run(cmd("cat", stdin="ok")).stdout == "ok"


def test_interrupt_waits_for_the_command_to_finish(tmp_path, monkeypatch):
    """A Ctrl-C while a command runs must not return before the command has ended: the journal's
    undo has to see its whole effect."""
    marker = tmp_path / "done"
    real_wait = _shfast.wait_exit_code
    calls = {"n": 0}

    def interrupted_once(pid):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real_wait(pid)

    monkeypatch.setattr(_shfast, "wait_exit_code", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        ShellRunner().run(cmd("sh", "-c", f"sleep 0.3; touch {marker}"))
    assert marker.exists()
