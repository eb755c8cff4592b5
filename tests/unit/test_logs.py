"""Logs of detached containers (issue 14.6), without root: --log-max-size and --since/--until
parsing, the writer's command, and the writer itself driven through two pipes as the watcher's
container would (it needs only perl-base), with the reader of cnet logs over what it wrote."""

import calendar
import os
import shutil
import time

import pytest

from cnet import validate
from cnet.errors import ValidationError
from cnet.kernel import logwriter as lw
from cnet.plans import container as plans
from cnet.records import DEFAULT_LOG_MAX_SIZE, Container, ContainerState
from cnet.runner import ShellRunner
from cnet.services.containers import logs

NOW = 1_800_000_000 * 10**9 + 123_456_789  # a fixed "now", in ns


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10m", 10 * 2**20),
        ("512k", 512 * 2**10),
        ("4k", 4096),
        ("1024", 1024),
        ("1g", 2**30),
        ("1.5m", int(1.5 * 2**20)),
        ("10MiB", 10 * 2**20),
        ("10mb", 10 * 2**20),
        ("2K", 2048),
    ],
)
def test_log_max_size_docker_forms(text, size):
    assert validate.log_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "-1", "10q", "m", "1e6", "ten", "10 mm", "2t1", "4096k1"])
def test_bad_log_max_sizes(text):
    with pytest.raises(ValidationError, match="--log-max-size"):
        validate.log_size(text)


def test_log_max_size_reaches_the_request_and_defaults_to_10m():
    kw = dict(name=None, networks=[], ports=[], ip=None, hostname=None, env=[], command=["true"])
    assert validate.run_request(**kw).log_max_size == DEFAULT_LOG_MAX_SIZE == 10 * 2**20
    assert validate.run_request(**kw, log_max_size="4k").log_max_size == 4096
    with pytest.raises(ValidationError):
        validate.run_request(**kw, log_max_size="lots")


@pytest.mark.parametrize(
    ("text", "ago_s"),
    [("10m", 600), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("500ms", 0.5), ("2h0m1s", 7201), ("0s", 0)],
)
def test_since_durations(text, ago_s):
    assert validate.log_time(text, NOW) == NOW - int(ago_s * 10**9)


def test_since_unix_timestamps_and_rfc3339():
    assert validate.log_time("1700000000", NOW) == 1_700_000_000 * 10**9
    assert validate.log_time("1700000000.25", NOW) == 1_700_000_000 * 10**9 + 250_000_000
    assert validate.log_time("1700000000.000000001", NOW) == 1_700_000_000 * 10**9 + 1
    utc = calendar.timegm((2026, 1, 2, 15, 4, 5, 0, 0, 0)) * 10**9
    assert validate.log_time("2026-01-02T15:04:05Z", NOW) == utc
    assert validate.log_time("2026-01-02T15:04:05.5Z", NOW) == utc + 500_000_000
    assert validate.log_time("2026-01-02T16:04:05+01:00", NOW) == utc
    assert validate.log_time("2026-01-02T13:04:05.123456789-02:00", NOW) == utc + 123_456_789
    assert validate.log_time("2026-01-02T15:04Z", NOW) == utc - 5 * 10**9
    assert validate.log_time("2026-01-02Z", NOW) == calendar.timegm((2026, 1, 2, 0, 0, 0, 0, 0, 0)) * 10**9
    # Without a zone: local time, as docker logs reads it.
    local = int(time.mktime((2026, 1, 2, 15, 4, 5, 0, 0, -1))) * 10**9
    assert validate.log_time("2026-01-02T15:04:05", NOW) == local


@pytest.mark.parametrize(
    "text", ["", "yesterday", "-5m", "10x", "2026-13-01", "2026-01-02T25:00", "2026/01/02", "1h-5m", "now"]
)
def test_bad_since(text):
    with pytest.raises(ValidationError, match="invalid --until"):
        validate.log_time(text, NOW, "--until")


def test_stamps_compare_as_the_writer_writes_them():
    assert logs.stamp(NOW) == b"2027-01-15T08:00:00.123456789Z"
    assert len(logs.stamp(NOW)) == lw.TIME_WIDTH
    assert logs.stamp(NOW) < logs.stamp(NOW + 1) < logs.stamp(NOW + 10**9)


def test_parse_record():
    assert lw.parse_record(b"2026-01-02T15:04:05.120000000Z stdout F hello\n") == (
        b"2026-01-02T15:04:05.120000000Z",
        "stdout",
        b"hello\n",
    )
    assert lw.parse_record(b"2026-01-02T15:04:05.120000000Z stderr P no newline\n")[1:] == ("stderr", b"no newline")
    assert lw.parse_record(b"2026-01-02T15:04:05.120000000Z stdout F \n")[2] == b"\n"  # an empty line
    assert lw.parse_record(b"plain output of an older cnet\n") is None
    assert logs.parse(b"plain\n") == (None, "stdout", b"plain\n")


def test_writer_command_and_dry_run_step():
    argv = lw.writer_argv("/state/containers/abc/log", 4096, 1796000000.5)
    assert argv[:2] == ["perl", "-e"] and argv[2] == lw.WRITER_SCRIPT
    assert argv[3:] == ["/state/containers/abc/log", "4096", "1796000000.500000"]
    # No module: each would cost resident memory in every container's writer.
    assert "use " not in lw.WRITER_SCRIPT and "require" not in lw.WRITER_SCRIPT
    c = Container(
        id="abc", name="abc", state=ContainerState.CREATING, command=("true",), hostname="abc", env={},
        spec={"log_max_size": 4096}, detached=True, netns="cnet-abc", created_at=0.0, log_path="/s/log",
    )  # fmt: skip
    assert logs.max_size(c) == 4096 and logs.writer_argv(c)[3:5] == ["/s/log", "4096"]
    step = plans.log_writer_step(logs.writer_argv(c))
    assert step.do.argv[:3] == ("perl", "-e", lw.WRITER_SCRIPT) and "log writer" in step.summary


# --- the writer itself ----------------------------------------------------------------------------
needs_perl = pytest.mark.skipif(shutil.which("perl") is None, reason="perl-base is not installed")


class Writer:
    """The writer as cnet starts it: stdout pipe on its stdin, stderr pipe on fd 4."""

    def __init__(self, log, max_size):
        r_out, self.out = os.pipe()
        r_err, self.err = os.pipe()
        argv = lw.writer_argv(str(log), max_size, logs.clock_offset())
        # The stderr pipe lands on the writer's fd 4 (runner.spawn's `hold`), as start_writer does.
        self.proc = ShellRunner().spawn(argv, env=dict(os.environ), stdin=r_out, hold=r_err)
        os.close(r_out)
        os.close(r_err)

    def close(self):
        os.close(self.out)
        os.close(self.err)
        assert self.proc.wait(timeout=10) == 0


def records(log):
    out = []
    for path in (str(log) + ".1", str(log)):
        if os.path.exists(path):
            with open(path, "rb") as f:
                out += [lw.parse_record(line) for line in f]
    return out


@needs_perl
def test_writer_keeps_streams_partial_lines_and_times(tmp_path):
    log = tmp_path / "log"
    before = logs.stamp(time.time_ns() - 10**9)
    w = Writer(log, 10**6)
    os.write(w.out, b"one\ntwo\nhalf")
    time.sleep(0.05)
    os.write(w.err, b"oops\n")
    time.sleep(0.05)
    os.write(w.out, b"-done\n\nlast without newline")
    w.close()
    after = logs.stamp(time.time_ns() + 10**9)
    recs = records(log)
    assert all(r is not None for r in recs)
    assert [(s, d) for _t, s, d in recs] == [
        ("stdout", b"one\n"),
        ("stdout", b"two\n"),
        ("stderr", b"oops\n"),
        ("stdout", b"half-done\n"),
        ("stdout", b"\n"),
        ("stdout", b"last without newline"),  # kept at exit, marked partial (no newline added)
    ]
    times = [t for t, _s, _d in recs]
    assert times == sorted(times) and before < times[0] and times[-1] < after
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    assert not logs.writer_alive(str(log))  # it has exited: its lock is free


@needs_perl
def test_writer_bounds_a_long_line(tmp_path):
    log = tmp_path / "log"
    w = Writer(log, 10**7)
    for _ in range(20):
        os.write(w.out, b"x" * 10000)  # 200 kB without a newline
    os.write(w.out, b"\n")
    w.close()
    recs = records(log)
    assert b"".join(d for _t, _s, d in recs) == b"x" * 200_000 + b"\n"
    assert len(recs) > 5 and all(len(d) < 2 * lw.CHUNK for _t, _s, d in recs)
    assert log.read_bytes().splitlines()[-1][lw.TIME_WIDTH + 8 : lw.TIME_WIDTH + 9] == b"F"


@needs_perl
def test_writer_rotates_once_at_the_limit(tmp_path):
    log = tmp_path / "log"
    w = Writer(log, 4096)
    for i in range(300):
        os.write(w.out, b"line %03d ........................\n" % i)
    w.close()
    assert os.path.getsize(log) <= 4096 and os.path.getsize(str(log) + ".1") <= 4096
    assert sorted(os.listdir(tmp_path)) == ["log", "log.1", "log.lock"]
    got = [int(d.split()[1]) for _t, _s, d in records(log)]
    assert len(got) > 60 and got == list(range(300 - len(got), 300))  # the newest, none lost between the files


@needs_perl
def test_reader_tail_since_until_across_the_rotation(tmp_path):
    log = tmp_path / "log"
    w = Writer(log, 2048)
    for i in range(60):
        os.write(w.out, b"line %02d ....................\n" % i)
        if i == 49:
            time.sleep(0.3)
            middle = time.time_ns()
            time.sleep(0.3)
    w.close()
    assert os.path.exists(str(log) + ".1")
    kept = [d for _t, _s, d in records(log)]

    def read(**q):
        out = []
        logs.read(str(log), logs.Query(**q), out.append, lambda: False)
        return [d for _t, _s, d in out]

    assert read() == kept
    assert read(tail=3) == kept[-3:]
    assert read(tail=0) == []
    assert read(tail=10**6) == kept
    assert read(since=logs.stamp(middle)) == [b"line %02d ....................\n" % i for i in range(50, 60)]
    assert read(until=logs.stamp(middle)) == kept[:-10]
    assert read(tail=12, since=logs.stamp(middle)) == kept[-10:]


def test_reader_reads_an_old_log_without_times(tmp_path):
    log = tmp_path / "log"
    log.write_bytes(b"written before cnet kept times\nsecond\n")
    out = []
    logs.read(str(log), logs.Query(), out.append, lambda: False)
    assert out == [(None, "stdout", b"written before cnet kept times\n"), (None, "stdout", b"second\n")]
    out.clear()
    logs.read(str(log), logs.Query(tail=1), out.append, lambda: False)
    assert out == [(None, "stdout", b"second\n")]
