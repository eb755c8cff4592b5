"""The own parser of `cnet ps` and `cnet run` (cnet/cli/plain_args.py) reads a command line exactly
as typer does, or declines it. A generated corpus of command lines goes through both: typer's app
(every command registered, as `cnet` builds it) with the functions both paths call replaced by
recorders (cli/invocation.new_context, the global options' Context; cli/listing.ps and
cli/container_run.run, the bodies), and the typer-free path (cli/entry.ps or cli/entry.run with
what plain_args found; `ps` hands the global options to invocation.ReadOnlyState, which passes
them on to new_context). Whatever the typer-free path accepts, typer must have called the same
functions with the same values."""

import contextlib
import inspect
import io
import itertools
import random
from pathlib import Path

import pytest
import typer.main

from cnet.cli import container_run, entry, invocation, listing, plain_args, process_end
from cnet.cli.main import register
from cnet.services.context import Context

COMMAND = typer.main.get_command(register())

# Pieces of a command line before `ps` (global options) and after it, valid or not.
GLOBAL = [
    [],
    ["--dry-run"],
    ["-v"],
    ["--verbose"],
    ["-vv"],
    ["-v", "--verbose"],
    ["--state-dir", "/tmp/s"],
    ["--state-dir", "/tmp/with space"],
    ["--state-dir=/tmp/s=x"],
    ["--state-dir", ""],
    ["--state-dir="],
    ["--state-dir", "-v"],
    ["--state-dir", "--help"],
    ["--state-dir", "ps"],
    ["--state-dir", "a", "--state-dir", "b"],
    ["--etcd", "http://127.0.0.1:2379"],
    ["--etcd=https://a:1,https://b:2"],
    ["--etcd-cacert", "ca.pem"],
    ["--etcd-cert=c.pem"],
    ["--etcd-key", "k.pem"],
    ["--version"],
    ["--help"],
    ["-h"],
    ["--"],
    ["--dry-run=1"],
    ["--verbose="],
    ["-x"],
    ["-vx"],
    ["--state"],
    ["--dry"],
    ["--etcd"],
    ["-"],
    [""],
    ["--install-completion"],
]
PS = [
    [],
    ["-a"],
    ["--all"],
    ["-q"],
    ["--quiet"],
    ["--json"],
    ["-aq"],
    ["-qa"],
    ["-aa"],
    ["--all", "--all"],
    ["-f", "name=web"],
    ["-fname=web"],
    ["-f=x"],
    ["-f", "label=a=b c"],
    ["--filter", "status=running"],
    ["--filter=label=k=v"],
    ["--filter=status=exited", "-f", "id=ab"],
    ["-f", ""],
    ["--filter="],
    ["--filter", ""],
    ["-af", "id=ab"],
    ["-qafstatus=exited"],
    ["-fa"],
    ["-f", "-a"],
    ["-f", "--"],
    ["-f", "--help"],
    ["--format", "{{.Name}}"],
    ["--format={{.ID}} {{.State}}"],
    ["--format", ""],
    ["--format="],
    ["--format", "json"],
    ["--format", "-q"],
    ["--format", "a", "--format", "b"],
    ["--json=1"],
    ["--all="],
    ["-a=1"],
    ["extra"],
    ["-a", "extra"],
    ["--"],
    ["--", "-a"],
    ["--help"],
    ["-h"],
    ["-ah"],
    ["-z"],
    ["-A"],
    ["--no-all"],
    ["--jso"],
    ["--Format", "x"],
    ["--filter"],
    ["-f"],
    ["--format"],
    ["-qf"],
    ["-"],
    [""],
    ["--state-dir", "/tmp/s"],
    ["-v"],
    ["--dry-run"],
]


RUN = [
    [],
    ["-d"],
    ["--detach"],
    ["--rm"],
    ["--init"],
    ["-i"],
    ["-t"],
    ["-it"],
    ["-dt"],
    ["-t", "-d"],
    ["--tty", "--interactive"],
    ["-di"],
    ["-dd"],
    ["--name", "web"],
    ["--name=web"],
    ["--name", ""],
    ["--name", "-d"],
    ["--name", "--"],
    ["--name", "a", "--name", "b"],
    ["--net", "a"],
    ["--network=b"],
    ["--net", "a", "--network", "b"],
    ["--net", "none"],
    ["--network-alias", "x"],
    ["--network-alias=y", "--network-alias", "z"],
    ["-l", "a=b"],
    ["-la=b c"],
    ["--label", "k"],
    ["--label=k=v=w"],
    ["-p", "8080:80"],
    ["-p8080:80/udp"],
    ["--publish", "127.0.0.1:80:80"],
    ["--publish=1-2:3-4", "-p", "5:5"],
    ["-dp", "80:80"],
    ["-dp80:80"],
    ["-pd"],
    ["--ip", "10.5.0.9"],
    ["--ip6=fd00::9"],
    ["--hostname", "h"],
    ["-e", "A=1"],
    ["-eA=1", "--env", "B=2 3", "--env=C"],
    ["-de", "A=1"],
    ["--stop-timeout", "2"],
    ["--stop-timeout=0.5"],
    ["--stop-timeout", "1e1"],
    ["--stop-timeout", " 3 "],
    ["--stop-timeout", "1_0"],
    ["--stop-timeout", "0"],
    ["--stop-timeout", "-1"],
    ["--stop-timeout", "nan"],
    ["--stop-timeout", "inf"],
    ["--stop-timeout", "x"],
    ["--stop-timeout", ""],
    ["--stop-timeout", "1", "--stop-timeout", "2"],
    ["--restart", "always"],
    ["--restart=on-failure:3"],
    ["--restart", "sometimes"],
    ["--log-max-size", "1m"],
    ["--log-max-size="],
    ["--detach=1"],
    ["--rm="],
    ["-d=1"],
    ["--help"],
    ["-h"],
    ["-dh"],
    ["-z"],
    ["--nam", "x"],
    ["--networks", "a"],
    ["--name"],
    ["-p"],
    ["-e"],
    ["--stop-timeout"],
    ["-"],
    ["--state-dir", "/tmp/s"],
    ["-v"],
]
# What may follow run's options: the container's command, or nothing.
RUN_TAILS = [
    [],
    ["true"],
    ["sleep", "1"],
    ["--"],
    ["--", "true"],
    ["--", "-d", "x"],
    ["--", "--", "x"],
    ["--", ""],
    ["sh", "-c", "echo $A"],
    ["busybox", "httpd", "-f", "-p", "80"],
    ["ls", "--help"],
    ["echo", "--"],
    ["-", "x"],
    ["", "x"],
]


def corpus(word: str, pieces: list[list[str]], tails: list[list[str]], seed: int) -> list[list[str]]:
    """Every global piece with every piece of the command, then random mixes (a fixed seed: the
    same corpus on every run) of up to two global pieces, up to four of the command's and a tail (half of them none),
    plus command lines whose command is not (only) `word`."""
    lines = [g + [word] + p + t for g, p, t in itertools.product(GLOBAL, pieces, tails[:1])]
    lines += [[word] + p + t for p, t in itertools.product(pieces, tails[1:])]
    rng = random.Random(seed)
    for _ in range(1500):
        g = itertools.chain.from_iterable(rng.sample(GLOBAL, rng.randint(0, 2)))
        p = itertools.chain.from_iterable(rng.sample(pieces, rng.randint(0, 4)))
        tail = rng.choice(tails) if rng.random() < 0.5 else tails[0]  # most often none
        lines.append([*g, word, *p, *tail])
    lines += [[word, word], ["--state-dir", word], [word.title()], [word + "="], ["--dry-run", "--", word]]
    lines += [["-v", word, "--", "-a"], ["ps", "run"], ["run", "ps"]]
    unique: dict[tuple[str, ...], None] = dict.fromkeys(tuple(line) for line in lines)
    return [list(line) for line in unique]


CORPUS = {"ps": corpus("ps", PS, [[], ["x"]], 16), "run": corpus("run", RUN, RUN_TAILS, 17)}
# The forms people type: the fast path must take every one (else the equality holds vacuously).
COMMON = [
    ["ps"],
    ["ps", "-a"],
    ["ps", "-q"],
    ["ps", "-aq"],
    ["ps", "--all", "--quiet"],
    ["ps", "--json"],
    ["ps", "-a", "--json"],
    ["ps", "--format", "{{.Name}} {{.State}}"],
    ["ps", "--format=json"],
    ["ps", "-f", "name=web"],
    ["ps", "--filter", "status=exited", "--filter", "label=app"],
    ["ps", "-fname=web", "-a"],
    ["--state-dir", "/tmp/s", "ps"],
    ["--state-dir=/tmp/s", "-v", "ps", "-a"],
    ["--dry-run", "ps"],
    ["--etcd", "http://127.0.0.1:2379", "ps"],
    ["run"],
    ["run", "true"],
    ["run", "-d", "busybox", "httpd", "-f", "-p", "80"],
    ["run", "-d", "--name", "web", "--net", "a", "-p", "8080:80", "--", "busybox", "httpd", "-f", "-p", "80"],
    ["run", "--rm", "-it", "sh"],
    ["run", "--rm", "-i", "--", "cat"],
    ["run", "-d", "--restart", "always", "--init", "-e", "A=1", "-l", "app=web", "sleep", "1d"],
    ["run", "--net", "a", "--net", "b", "--network-alias", "db", "--ip", "10.5.0.9", "--ip6", "fd00::9", "true"],
    ["run", "--hostname", "h", "--stop-timeout", "2", "--log-max-size", "1m", "-d", "true"],
    ["--state-dir", "/tmp/s", "-v", "run", "-d", "true"],
    ["--dry-run", "run", "--net", "none", "--", "true"],
    ["--etcd", "http://127.0.0.1:2379", "run", "-d", "--net", "overlay1", "true"],
]


def recorder(real, log: list, result=None):
    """A stand-in for `real` that logs the arguments it was called with, by parameter name."""
    signature = inspect.signature(real)

    def record(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        log.append({k: v for k, v in bound.arguments.items() if k not in ("ctx", "store", "mutating_context")})
        return result

    return record


@pytest.fixture
def calls(monkeypatch):
    """Both paths' calls of new_context and the bodies, logged instead of run."""
    log: dict[str, list] = {"context": [], "ps": [], "run": [], "end": []}
    ctx = Context(state_dir=Path("/nonexistent/cnet-test-plain-args"))
    monkeypatch.setattr(invocation, "new_context", recorder(invocation.new_context, log["context"], ctx))
    monkeypatch.setattr(listing, "ps", recorder(listing.ps, log["ps"]))
    monkeypatch.setattr(container_run, "run", recorder(container_run.run, log["run"]))

    class State:
        """The typer-free path of `ps` hands the global options to invocation.ReadOnlyState, which
        builds the Context from them (new_context(**options)) unless it opens the database directly."""

        def __init__(self, global_options: dict) -> None:
            log["context"].append(dict(global_options))

        def store(self):
            raise AssertionError("the recorded body opens nothing")

        def close(self) -> None:
            pass

    monkeypatch.setattr(invocation, "ReadOnlyState", State)
    monkeypatch.setattr(process_end, "end_process", lambda code: log["end"].append(code))
    return log


def typer_reads(word: str, argv: list[str], log: dict) -> tuple[dict, dict] | None:
    """What typer passes to new_context and `word`'s body for this command line (None: it runs
    no body, for a usage error, help, --version...)."""
    for calls in log.values():
        calls.clear()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            rv = COMMAND.main(args=list(argv), prog_name="cnet", standalone_mode=False)
        except (Exception, SystemExit):
            return None
    if rv not in (None, 0) or len(log[word]) != 1:
        return None
    assert len(log["context"]) == 1, argv
    return log["context"][0], log[word][0]


FAST = {"ps": (plain_args.parse_ps, entry.ps), "run": (plain_args.parse_run, entry.run)}


def fast_reads(word: str, argv: list[str], log: dict) -> tuple[dict, dict] | None:
    """What the typer-free path passes to them (None: it declines, typer would run)."""
    for calls in log.values():
        calls.clear()
    parse, body = FAST[word]
    parsed = parse(list(argv))
    if parsed is None:
        return None
    body(*parsed)
    assert log["end"] == [0], (argv, log)
    return log["context"][0], log[word][0]


@pytest.mark.parametrize("word", list(CORPUS))
def test_the_corpus_is_large_and_mixed(word):
    lines = CORPUS[word]
    assert len(lines) > 2000
    assert any("--" in line for line in lines) and any("" in line for line in lines)


def declined_on_purpose(word: str, argv: list[str]) -> bool:
    """What the fast parser leaves to typer although typer reads it: `--` before the command
    word or (for `ps`) anywhere, a value option twice."""
    value_options = [*plain_args.GLOBAL.values, *plain_args.PS.values, *plain_args.RUN.values]
    options, value_next, seen_word = [], False, False
    for arg in argv:  # the words up to the first that is neither an option nor a value
        if value_next:
            value_next = False
            continue
        if arg == "--":
            if not seen_word or word == "ps":
                return True
            break
        if arg == word and not seen_word:
            seen_word = True
            continue
        if seen_word and (not arg.startswith("-") or arg == "-"):
            break
        options.append(arg.partition("=")[0])
        if arg.startswith("--"):
            value_next = arg in value_options
        else:  # a short cluster: its first value option takes the rest, or the next word
            at = next((i for i, c in enumerate(arg[1:], 1) if "-" + c in value_options), None)
            value_next = at == len(arg) - 1
    once = [*plain_args.GLOBAL.values, *plain_args.RUN.values, "--format"]
    return any(options.count(o) > 1 for o in once)


@pytest.mark.parametrize("word", list(CORPUS))
def test_whatever_the_fast_parser_accepts_typer_reads_alike(calls, word):
    accepted, typer_only = 0, []
    for argv in CORPUS[word]:
        fast = fast_reads(word, argv, calls)
        slow = typer_reads(word, argv, calls)
        if fast is not None:
            accepted += 1
            assert fast == slow, f"cnet {' '.join(argv)!r}: fast {fast} != typer {slow}"
        elif slow is not None:
            typer_only.append(argv)
    # Not vacuous: the fast path takes most of what typer takes, and leaves only what it means to.
    assert accepted > 700 and accepted > 4 * len(typer_only), (accepted, len(typer_only))
    left = [a for a in typer_only if not declined_on_purpose(word, a)]
    assert not left, [" | ".join(a) for a in left]


@pytest.mark.parametrize("argv", COMMON, ids=" ".join)
def test_the_fast_parser_takes_the_common_forms(calls, argv):
    word = "ps" if "ps" in argv else "run"
    fast = fast_reads(word, argv, calls)
    assert fast is not None, "declined"
    assert fast == typer_reads(word, argv, calls)


@pytest.mark.parametrize(
    "argv",
    [["ps", "--help"], ["--version", "ps"], ["ps", "--"], ["ps", "-a", "x"], ["ps", "-f"], ["ps", "--all=1"]],
    ids=" ".join,
)
def test_it_declines_what_typer_must_answer(argv):
    assert plain_args.parse_ps(argv) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--help"],
        ["--version", "run"],
        ["run", "-dt", "sh"],
        ["run", "--stop-timeout", "-1", "sh"],
        ["run", "--stop-timeout", "nan", "sh"],
        ["run", "--stop-timeout", "x", "sh"],
        ["run", "-p"],
        ["run", "--detach=yes", "sh"],
    ],
    ids=" ".join,
)
def test_it_declines_what_typer_must_answer_for_run(argv):
    assert plain_args.parse_run(argv) is None


@pytest.mark.parametrize("status, code", [(None, 0), (0, 0), (3, 3), (130, 130)])
def test_both_paths_exit_with_the_foreground_containers_status(calls, monkeypatch, status, code):
    """The body returns a foreground container's exit status (None when detached or a dry run):
    typer's path exits with it through typer.Exit, the typer-free one through end_process."""
    monkeypatch.setattr(container_run, "run", recorder(container_run.run, calls["run"], status))
    argv = ["run", "--rm", "--", "sh", "-c", "exit 3"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rv = COMMAND.main(args=list(argv), prog_name="cnet", standalone_mode=False)
    assert (rv or 0) == code
    calls["end"].clear()
    parsed = plain_args.parse_run(argv)
    assert parsed is not None
    entry.run(*parsed)
    assert calls["end"] == [code]
