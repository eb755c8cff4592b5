"""What follows `cnet exec CTR`: cnet's own options (-i, -t, -e, -w, -u, as Docker spells them)
and the command, told apart before anything runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ValidationError
from .validate import env_pair


@dataclass(frozen=True)
class ExecArgs:
    """`cnet exec CTR [OPTIONS] COMMAND...`: cnet's options found after the container name."""

    command: tuple[str, ...]
    env: dict[str, str]
    workdir: str | None = None
    user: str | None = None
    interactive: bool = False
    tty: bool = False


_EXEC_FLAGS = {"-i": "interactive", "--interactive": "interactive", "-t": "tty", "--tty": "tty"}
_EXEC_VALUED = {"-e": "env", "--env": "env", "-w": "workdir", "--workdir": "workdir", "-u": "user", "--user": "user"}


def exec_args(
    args: Sequence[str], env: Sequence[str] = (), workdir: str | None = None, user: str | None = None
) -> ExecArgs:
    """Split what follows `exec CTR` into cnet's options (-i, -t, -e, -w, -u, combined as `-it`,
    values attached or next) and the command: the first word that is not one of them, or
    everything after `--`, starts the command, so `exec CTR -it sh -c 'ls -l'` runs `sh -c 'ls -l'`.
    -i keeps stdin open, -t gives the command a pseudo-terminal."""
    flags: set[str] = set()
    values: dict[str, list[str]] = {
        "env": list(env),
        "workdir": [workdir] if workdir else [],
        "user": [user] if user else [],
    }
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            i += 1
            break
        if tok.startswith("--"):
            opt, eq, val = tok.partition("=")
            if opt in _EXEC_FLAGS and not eq:
                flags.add(_EXEC_FLAGS[opt])
                i += 1
                continue
            if opt not in _EXEC_VALUED:
                break
            if not eq:
                if i + 1 >= len(args):
                    raise ValidationError(f"option {opt} needs a value")
                i, val = i + 1, args[i + 1]
            values[_EXEC_VALUED[opt]].append(val)
            i += 1
            continue
        if (
            not tok.startswith("-")
            or len(tok) < 2
            or any(f"-{ch}" not in _EXEC_FLAGS | _EXEC_VALUED for ch in tok[1:2])
        ):
            break
        j = 1
        while j < len(tok):
            opt = f"-{tok[j]}"
            if opt in _EXEC_FLAGS:
                flags.add(_EXEC_FLAGS[opt])
                j += 1
                continue
            if opt not in _EXEC_VALUED:
                raise ValidationError(f"unknown option {opt} in {tok!r} (cnet exec takes -i, -t, -e, -w, -u)")
            val = tok[j + 1 :]
            if not val:
                if i + 1 >= len(args):
                    raise ValidationError(f"option {opt} needs a value")
                i, val = i + 1, args[i + 1]
            values[_EXEC_VALUED[opt]].append(val)
            break
        i += 1
    command = tuple(args[i:])
    if not command:
        raise ValidationError("exec needs a command")
    if values["workdir"] and not values["workdir"][-1].startswith("/"):
        raise ValidationError(f"invalid working directory {values['workdir'][-1]!r}: it must be an absolute path")
    return ExecArgs(
        command=command,
        env=dict(env_pair(e) for e in values["env"]),
        workdir=values["workdir"][-1] if values["workdir"] else None,
        user=values["user"][-1] if values["user"] else None,
        interactive="interactive" in flags,
        tty="tty" in flags,
    )
