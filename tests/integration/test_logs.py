"""Logs of detached containers (issue 14.6), as a user reads them: per-line times (-t), --since and
--until, stdout and stderr kept apart, one rotation at --log-max-size with `logs -f` following
across it, the log writer dying with its container, and a killed writer or watcher leaving nothing."""

from __future__ import annotations

import calendar
import json
import re
import subprocess
import time

import pytest

from .conftest import inspect
from .test_services import row

pytestmark = pytest.mark.root

STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$")


def epoch(stamp: str) -> float:
    whole, frac = stamp[:-1].split(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1e9


def writers(sb, cid: str | None = None) -> list[int]:
    """PIDs of log writers (of one container: its id is in the log path)."""
    out = sb.run(["ps", "-eo", "pid=,args="], check=True).stdout
    return [
        int(line.split()[0])
        for line in out.splitlines()
        if line.split()[1:3] == ["perl", "-e"] and (cid is None or f"/containers/{cid}/log" in line)
    ]


def cid_of(sb, name: str) -> str:
    return inspect(sb, name)["id"]


def test_timestamps_streams_since_until_and_a_partial_last_line(sandbox):
    sb = sandbox
    before = time.time()
    script = "echo one; echo two >&2; sleep 1.2; echo three; echo four >&2; printf 'no newline'"
    sb.cnet("run", "-d", "--name", "t", "--net", "none", "--", "sh", "-c", script)
    assert sb.wait_for(lambda: row(sb, "t").get("state") == "exited", timeout=10)
    after = time.time()

    plain = sb.cnet("logs", "t")
    assert plain.stdout == "one\nthree\nno newline"  # the partial last line is kept, as written
    assert plain.stderr == "two\nfour\n"
    merged = sb.run(["sh", "-c", 'exec "$@" 2>&1', "sh", *sb.cnet_argv("logs", "t")], check=True).stdout
    assert merged == "one\ntwo\nthree\nfour\nno newline"

    stamped = sb.cnet("logs", "-t", "t")
    lines = [STAMP.match(x) for x in stamped.stdout.split("\n")]
    assert all(lines), stamped.stdout
    assert [m[2] for m in lines] == ["one", "three", "no newline"]
    times = {m[2]: m[1] for m in lines} | {m[2]: m[1] for m in map(STAMP.match, stamped.stderr.splitlines())}
    assert before - 1 <= epoch(times["one"]) <= epoch(times["two"]) < epoch(times["three"]) <= after + 1
    assert 1.0 < epoch(times["three"]) - epoch(times["one"]) < 5  # the sleep between them

    # --since / --until: an RFC 3339 time, a Unix timestamp, a duration; inclusive bounds.
    since = sb.cnet("logs", "--since", times["three"], "t")
    assert (since.stdout, since.stderr) == ("three\nno newline", "four\n")
    assert sb.cnet("logs", "--since", f"{epoch(times['three']) - 0.3:.3f}", "t").stdout == "three\nno newline"
    assert sb.cnet("logs", "--since", "1h", "t").stdout == plain.stdout
    assert sb.cnet("logs", "--since", "2030-01-01T00:00:00Z", "t").stdout == ""
    until = sb.cnet("logs", "--until", times["two"], "t")
    assert (until.stdout, until.stderr) == ("one\n", "two\n")
    window = sb.cnet("logs", "-t", "--since", times["one"], "--until", f"{epoch(times['two']) + 0.5:.3f}", "t")
    assert [STAMP.match(x)[2] for x in window.stdout.splitlines()] == ["one"]
    # --tail combines: the last lines of both streams, then the time filter.
    tail = sb.cnet("logs", "--tail", "2", "t")
    assert (tail.stdout, tail.stderr) == ("no newline", "four\n")
    assert sb.cnet("logs", "--tail", "3", "--since", times["three"], "t").stdout == "three\nno newline"

    bad = sb.cnet("logs", "--since", "yesterday", "t", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr
    assert not writers(sb)  # the writer ended with its container
    sb.cnet("rm", "t")


def test_rotation_at_the_limit_and_follow_across_it(sandbox):
    sb = sandbox
    bad = sb.cnet("run", "-d", "--net", "none", "--log-max-size", "4q", "--", "true", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--log-max-size" in bad.stderr
    assert sb.cnet("ps", "-aq").stdout == ""  # nothing was made

    n = 300
    script = f'i=0; while [ $i -lt {n} ]; do echo "line $i ...................."; i=$((i+1)); sleep 0.01; done'
    sb.cnet("run", "-d", "--name", "r", "--net", "none", "--log-max-size", "4k", "--", "sh", "-c", script)
    cid = cid_of(sb, "r")
    follow = sb.popen(sb.cnet_argv("logs", "-f", "r"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = follow.communicate(timeout=60)
    finally:
        if follow.poll() is None:
            follow.kill()
    assert follow.returncode == 0, err
    # Every line, in order, although the log was rotated about ten times under the reader.
    assert [int(x.split()[1]) for x in out.splitlines()] == list(range(n))

    log = sb.state_dir / "containers" / cid / "log"
    assert log.stat().st_size <= 4096 and log.with_name("log.1").stat().st_size <= 4096
    assert sorted(p.name for p in log.parent.glob("log*")) == ["log", "log.1", "log.lock"]
    kept = [int(x.split()[1]) for x in sb.cnet("logs", "r").stdout.splitlines()]
    assert len(kept) > 50 and kept == list(range(n - len(kept), n))  # log.1 then log: the newest lines
    assert inspect(sb, "r")["log_max_size"] == 4096
    sql = sb.cnet("sql", "SELECT json_extract(spec, '$.log_max_size') AS m FROM containers", "--json").stdout
    assert json.loads(sql) == [{"m": 4096}]
    sb.cnet("rm", "r")


def test_dry_run_shows_the_log_writer(sandbox):
    sb = sandbox
    out = sb.cnet("--dry-run", "run", "-d", "--net", "none", "--log-max-size", "512k", "--", "true").stdout
    lines = out.splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("perl -e "))
    assert "log writer" in lines[at - 1] and lines[at + 1].startswith("# step: start the watcher")
    assert re.search(r"/containers/[0-9a-f]{12}/log 524288 \d+\.\d{6}$", out.split("\n# step: start the watcher")[0])
    assert "perl -e" not in sb.cnet("--dry-run", "run", "--net", "none", "--", "true").stdout  # foreground


def test_start_and_restart_policy_continue_the_same_log(sandbox):
    sb = sandbox
    sb.cnet("run", "-d", "--name", "s", "--net", "none", "--", "sh", "-c", "echo run; echo err >&2")
    assert sb.wait_for(lambda: row(sb, "s").get("state") == "exited", timeout=10)
    sb.cnet("start", "s")
    assert sb.wait_for(lambda: row(sb, "s").get("state") == "exited", timeout=10)
    logs = sb.cnet("logs", "-t", "s")
    assert [x.split(" ", 1)[1] for x in logs.stdout.splitlines()] == ["run", "run"]
    assert [x.split(" ", 1)[1] for x in logs.stderr.splitlines()] == ["err", "err"]
    assert not writers(sb)
    sb.cnet("rm", "s")


def test_killed_writer_restart_policy_gets_a_new_one(sandbox):
    """A writer SIGKILLed under --init: the program (not PID 1) dies of SIGPIPE at its next line,
    the restart policy brings it back with a new writer on the same log; rm -f leaves no writer."""
    sb = sandbox
    script = 'i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 0.1; done'
    sb.cnet("run", "-d", "--name", "k", "--net", "none", "--init", "--restart", "always", "--", "sh", "-c", script)
    cid = cid_of(sb, "k")
    assert sb.wait_for(lambda: "tick 3" in sb.cnet("logs", "k").stdout, timeout=10)
    (old,) = writers(sb, cid)
    sb.run(["kill", "-9", str(old)], check=True)
    assert sb.wait_for(lambda: row(sb, "k").get("restart_count", 0) >= 1, timeout=10), row(sb, "k")
    assert row(sb, "k")["last_exit_code"] == 141  # 128 + SIGPIPE
    assert sb.wait_for(lambda: sb.cnet("logs", "k").stdout.count("tick 3\n") == 2, timeout=10)
    new = writers(sb, cid)
    assert len(new) == 1 and new != [old]
    sb.cnet("rm", "-f", "k")
    assert sb.wait_for(lambda: not writers(sb), timeout=5)


def test_killed_writer_is_replaced_by_logs_and_gc(sandbox):
    """A program that is PID 1 does not die of SIGPIPE (the kernel spares a PID namespace's init):
    its writes fail while no writer reads. `cnet logs` (and `cnet gc`) start a new writer on the
    same pipes, and the log goes on."""
    sb = sandbox
    script = 'i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 0.05; done'
    sb.cnet("run", "-d", "--name", "p1", "--net", "none", "--", "sh", "-c", script)
    cid = cid_of(sb, "p1")
    assert sb.wait_for(lambda: "tick 2\n" in sb.cnet("logs", "p1").stdout, timeout=10)
    assert "nothing to do" in sb.cnet("gc").stdout
    for repair in (("logs", "p1"), ("gc",)):
        (old,) = writers(sb, cid)
        sb.run(["kill", "-9", str(old)], check=True)
        time.sleep(0.3)
        assert row(sb, "p1")["state"] == "running"
        if repair == ("gc",):
            assert sb.cnet("--dry-run", "gc").stderr.count("start the log writer of p1 again") == 1
        r = sb.cnet(*repair)
        assert "log writer" in (r.stdout + r.stderr), r
        (new,) = writers(sb, cid)
        assert new != old
        n = len(sb.cnet("logs", "p1").stdout.splitlines())
        assert sb.wait_for(lambda n=n: len(sb.cnet("logs", "p1").stdout.splitlines()) >= n + 3, timeout=10)
        last = [int(x.split()[1]) for x in sb.cnet("logs", "p1").stdout.splitlines()]
        assert last == sorted(last)
    assert "nothing to do" in sb.cnet("gc").stdout  # a live writer is left alone
    sb.cnet("rm", "-f", "p1")
    assert sb.wait_for(lambda: not writers(sb), timeout=5)


def test_killed_watcher_ends_the_writer_and_the_next_command_releases(sandbox):
    sb = sandbox
    sb.cnet("net", "create", "n1", "--subnet", "10.10.7.0/24")
    script = 'i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 0.1; done'
    sb.cnet("run", "-d", "--name", "w2", "--net", "n1", "-p", "8082:80", "--", "sh", "-c", script)
    assert sb.wait_for(lambda: "tick 2" in sb.cnet("logs", "w2").stdout, timeout=10)
    sb.run(["kill", "-9", str(row(sb, "w2")["watcher_pid"])], check=True)
    # The program dies with its watcher; the writer writes the rest and exits.
    assert sb.wait_for(lambda: not writers(sb), timeout=5)
    res = sb.cnet("ps", "-a", "--json")  # the next command releases it
    assert "marked exited" in res.stderr, res.stderr
    assert row(sb, "w2")["state"] == "exited"
    assert "tick 2\n" in sb.cnet("logs", "w2").stdout
    assert "cnet:ctr:" not in sb.iptables_save()
    assert not [n for n in sb.netns() if n.startswith("cnet-")]
    sb.cnet("rm", "w2")
    sb.cnet("net", "rm", "n1")
