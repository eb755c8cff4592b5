"""Commands and steps: the values every builder returns and the journal records.

A Command is an argv tuple (never a shell string) plus optional stdin, which the batch forms
(`ip -batch -`, `iptables-restore --noflush`) read. A Step pairs a mutating command with the
commands that undo it; the undo is known when the step is built, so a failure at any point can
be rolled back from the journal alone.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .frozen_record import FrozenRecord
from .records import Direction

HEREDOC_END = "CNET_EOF"


class Command(FrozenRecord):
    argv: tuple[str, ...]
    stdin: str | None = None

    def __post_init__(self) -> None:
        if not self.argv or not all(isinstance(a, str) for a in self.argv):
            raise TypeError(f"argv must be a non-empty tuple of str: {self.argv!r}")
        if self.stdin is not None and any(line == HEREDOC_END for line in self.stdin.splitlines()):
            raise ValueError("stdin may not contain the heredoc terminator")

    def render(self, suffix: str = "") -> str:
        """The command as a line a person can paste into a root shell (quoted, no expansion)."""
        line = shlex.join(self.argv)
        if self.stdin is None:
            return line + suffix
        # A quoted heredoc delimiter turns off every expansion inside the body.
        body = self.stdin if self.stdin.endswith("\n") else self.stdin + "\n"
        # The suffix belongs after the redirection: in `cmd || true <<EOF` the body would go to true.
        return f"{line} <<'{HEREDOC_END}'{suffix}\n{body}{HEREDOC_END}"

    def to_json(self) -> dict[str, object]:
        return {"argv": list(self.argv), "stdin": self.stdin}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Command:
        return cls(tuple(data["argv"]), data.get("stdin"))


def cmd(*argv: str, stdin: str | None = None) -> Command:
    return Command(tuple(argv), stdin)


class Step(FrozenRecord):
    """One journaled unit: run `do`; if anything later fails, run `undo` (in order)."""

    summary: str
    do: Command
    undo: tuple[Command, ...] = ()
    # Teardown only: when `do` fails (e.g. a batch delete where one rule is already gone), run
    # these one by one, tolerating errors, so teardown stays idempotent and best-effort.
    fallback: tuple[Command, ...] = ()
    # `do` is one all-or-nothing change (a single sysctl write, a one-table restore transaction):
    # when it fails, nothing changed, so a rollback has nothing of this step to undo.
    atomic: bool = False
    # Lower-case fragments of stderr by which a failing `do` says it had nothing to do (conntrack
    # exits 1 when no entry matched): the step counts as done, also in a create plan.
    nothing_to_do: tuple[str, ...] = ()

    def undo_json(self) -> str:
        return json.dumps([c.to_json() for c in self.undo])

    def fallback_json(self) -> str:
        return json.dumps([c.to_json() for c in self.fallback])

    def do_json(self) -> str:
        return json.dumps(self.do.to_json())


@dataclass
class Plan:
    """An ordered list of steps; the same value is printed by --dry-run and applied for real."""

    steps: list[Step] = field(default_factory=list)
    # CREATE: all or nothing (a failure undoes the started steps). DESTROY, a teardown: best effort,
    # an object already gone is fine and the journal goes past errors; the script says `|| true`
    # exactly there.
    direction: Direction = Direction.CREATE

    @property
    def teardown(self) -> bool:
        return self.direction == Direction.DESTROY

    def add(self, step: Step | None) -> None:
        if step is not None:
            self.steps.append(step)

    def extend(self, steps: Iterable[Step]) -> None:
        for s in steps:
            self.add(s)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def as_shell_script(self, title: str = "") -> str:
        lines = ["#!/bin/sh", "set -e"]
        if title:
            lines.append(f"# {title}")
        for step in self.steps:
            lines.append(f"# step: {step.summary}")
            lines.append(step.do.render(" || true" if self.teardown or step.nothing_to_do else ""))
        return "\n".join(lines) + "\n"
