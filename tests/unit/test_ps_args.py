"""`cnet ps`'s own parser (cnet/cli/ps_args.py) reads a command line exactly as typer does, or
declines it. A generated corpus of command lines goes through both: typer's app (every command
registered, as `cnet` builds it) with the two functions both paths call replaced by recorders
(cli/invocation.new_context, the global options' Context; cli/listing.ps, the body), and the
typer-free path (cli/entry.ps with what ps_args.parse found: the global options go to
invocation.ReadOnlyState, which passes them on to new_context). Whatever the typer-free path
accepts, typer must have called the same functions with the same values."""

import contextlib
import inspect
import io
import itertools
import random
from pathlib import Path

import pytest
import typer.main

from cnet.cli import entry, invocation, listing, process_end, ps_args
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


def corpus() -> list[list[str]]:
    """Every global piece with every ps piece, then random mixes (a fixed seed: the same corpus
    on every run) of up to two global pieces and up to four ps pieces, plus command lines whose
    command is not (only) `ps`."""
    lines = [g + ["ps"] + p for g, p in itertools.product(GLOBAL, PS)]
    rng = random.Random(16)
    for _ in range(1500):
        g = itertools.chain.from_iterable(rng.sample(GLOBAL, rng.randint(0, 2)))
        p = itertools.chain.from_iterable(rng.sample(PS, rng.randint(0, 4)))
        lines.append([*g, "ps", *p])
    lines += [["ps", "ps"], ["--state-dir", "ps"], ["Ps"], ["ps="], ["--dry-run", "--", "ps"], ["-v", "ps", "--", "-a"]]
    unique: dict[tuple[str, ...], None] = dict.fromkeys(tuple(line) for line in lines)
    return [list(line) for line in unique]


CORPUS = corpus()
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
]


def recorder(real, log: list, result=None):
    """A stand-in for `real` that logs the arguments it was called with, by parameter name."""
    signature = inspect.signature(real)

    def record(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        log.append({k: v for k, v in bound.arguments.items() if k not in ("ctx", "store")})
        return result

    return record


@pytest.fixture
def calls(monkeypatch):
    """Both paths' calls of new_context and the ps body, logged instead of run."""
    log: dict[str, list] = {"context": [], "ps": [], "end": []}
    ctx = Context(state_dir=Path("/nonexistent/cnet-test-ps-args"))
    monkeypatch.setattr(invocation, "new_context", recorder(invocation.new_context, log["context"], ctx))
    monkeypatch.setattr(listing, "ps", recorder(listing.ps, log["ps"]))

    class State:
        """The typer-free path hands the global options to invocation.ReadOnlyState, which builds
        the Context from them (new_context(**options)) unless it opens the database directly."""

        def __init__(self, global_options: dict) -> None:
            log["context"].append(dict(global_options))

        def store(self):
            raise AssertionError("the recorded body opens nothing")

        def close(self) -> None:
            pass

    monkeypatch.setattr(invocation, "ReadOnlyState", State)
    monkeypatch.setattr(process_end, "end_process", lambda code: log["end"].append(code))
    return log


def typer_reads(argv: list[str], log: dict) -> tuple[dict, dict] | None:
    """What typer passes to the two functions for this command line (None: it runs neither body,
    for a usage error, help, --version...)."""
    for calls in log.values():
        calls.clear()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            rv = COMMAND.main(args=list(argv), prog_name="cnet", standalone_mode=False)
        except (Exception, SystemExit):
            return None
    if rv not in (None, 0) or len(log["ps"]) != 1:
        return None
    assert len(log["context"]) == 1, argv
    return log["context"][0], log["ps"][0]


def fast_reads(argv: list[str], log: dict) -> tuple[dict, dict] | None:
    """What the typer-free path passes to them (None: it declines, typer would run)."""
    for calls in log.values():
        calls.clear()
    parsed = ps_args.parse(list(argv))
    if parsed is None:
        return None
    entry.ps(*parsed)
    assert log["end"] == [0], (argv, log)
    return log["context"][0], log["ps"][0]


def test_the_corpus_is_large_and_mixed():
    assert len(CORPUS) > 2000
    assert any("--" in line for line in CORPUS) and any("" in line for line in CORPUS)


def declined_on_purpose(argv: list[str]) -> bool:
    """What the fast parser leaves to typer although typer reads it: `--`, a value option twice."""
    names = [a.partition("=")[0] for a in argv]
    return "--" in argv or any(names.count(o) > 1 for o in ("--format", *ps_args.GLOBAL_VALUES))


def test_whatever_the_fast_parser_accepts_typer_reads_alike(calls):
    accepted, typer_only = 0, []
    for argv in CORPUS:
        fast = fast_reads(argv, calls)
        slow = typer_reads(argv, calls)
        if fast is not None:
            accepted += 1
            assert fast == slow, f"cnet {' '.join(argv)!r}: fast {fast} != typer {slow}"
        elif slow is not None:
            typer_only.append(argv)
    # Not vacuous: the fast path takes most of what typer takes, and leaves only what it means to.
    assert accepted > 700 and accepted > 4 * len(typer_only), (accepted, len(typer_only))
    assert all(declined_on_purpose(argv) for argv in typer_only), [a for a in typer_only if not declined_on_purpose(a)]


@pytest.mark.parametrize("argv", COMMON, ids=" ".join)
def test_the_fast_parser_takes_the_common_forms(calls, argv):
    fast = fast_reads(argv, calls)
    assert fast is not None, "declined"
    assert fast == typer_reads(argv, calls)


@pytest.mark.parametrize(
    "argv",
    [["ps", "--help"], ["--version", "ps"], ["ps", "--"], ["ps", "-a", "x"], ["ps", "-f"], ["ps", "--all=1"]],
    ids=" ".join,
)
def test_it_declines_what_typer_must_answer(argv):
    assert ps_args.parse(argv) is None
