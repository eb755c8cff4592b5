"""`cnet up FILE` and `cnet down`: bring the host to the stack file, or remove the stack.

up: the whole file is checked against itself (spec) and against what exists (check) before
anything changes; then, in order, the containers to replace (and with --remove-orphans those no
longer in the file) go in one batch, the missing networks are created (one operation each, as
`net create`), and the new containers are wired in one operation and started. A later failure
removes the networks this `up` created, so a refused file changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ... import validate
from ...commands import Plan, Step
from ...db import stack_store, store
from ...errors import CnetError, TeardownIncomplete
from ...records import Direction, NetworkState
from ..context import Context
from .check import Diff, diff
from .spec import HASH_LABEL, STACK_LABEL, NetworkDef, StackSpec


@dataclass
class UpResult:
    stack: str
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)  # created by this up
    orphans: list[str] = field(default_factory=list)  # left running (no --remove-orphans)
    failed: list[str] = field(default_factory=list)  # could not be started


def up(ctx: Context, spec: StackSpec, *, remove_orphans: bool = False) -> tuple[Plan, UpResult]:
    ctx.require_root()
    with ctx.stack_lock():
        return _up(ctx, spec, remove_orphans)


def _up(ctx: Context, spec: StackSpec, remove_orphans: bool) -> tuple[Plan, UpResult]:
    d: Diff = diff(ctx, spec, remove_orphans=remove_orphans)
    result = UpResult(spec.name, kept=[c.name for c in d.keep])
    result.orphans = [] if remove_orphans else [c.name for c in d.orphans]
    if not d.changes(remove_orphans):
        return Plan(), result  # a no-op up loads nothing of the batch (start-up time)
    from .create import create_containers, start_all
    from .down import remove_containers

    if not ctx.dry_run:
        from ..containers.run import require_tools

        require_tools(udp=any(p.protocol == "udp" for c in d.create for p in c.request.ports))
        if any(c.request.init for c in d.create):
            from ..containers.process import init_program

            init_program()
    shown: list[Step] = []
    going = d.recreate + (d.orphans if remove_orphans else [])
    if going:
        shown += remove_containers(ctx, spec.name, going).plan.steps
        result.removed = [c.name for c in going]
    made: list[str] = []
    try:
        for n in d.networks:
            shown += _create_network(ctx, spec.name, n).steps
            made.append(n.name)
        if d.create:
            from ..containers.run import ensure_default_network
            from ..endpoints import restore_missing_networks

            wanted = tuple(dict.fromkeys(net for c in d.create for net in c.request.networks))
            shown += ensure_default_network(ctx, wanted)
            # Networks whose bridge a reboot took (not the ones just made: a dry run made none).
            restore = restore_missing_networks(ctx, tuple(n for n in wanted if n not in made))
            out = create_containers(ctx, spec.name, d.create, before=restore)
            shown += out.plan.steps
    except BaseException:
        if not ctx.dry_run:
            _remove_networks(ctx, made)
        raise
    result.networks = made
    result.created = [c.name for c in d.create]
    if not ctx.dry_run and d.create:
        failed = start_all(ctx, out.result)
        result.failed = [f"{w.container.name}: {why}" for w, why in failed]
    return Plan(shown), result


def _create_network(ctx: Context, stack: str, n: NetworkDef) -> Plan:
    from ..networks import create_network

    out = create_network(
        ctx,
        name=n.name,
        subnet=n.subnet,
        gateway=n.gateway,
        ip_range=n.ip_range,
        mtu=n.mtu,
        internal=n.internal,
        driver=n.driver,
        labels=n.labels | {STACK_LABEL: stack, HASH_LABEL: n.digest},
    )
    if ctx.dry_run:  # the in-memory copy: the network is as good as made
        with ctx.store.write() as conn:
            store.set_network_state(conn, out.result.id, NetworkState.READY)
    return out.plan


def _remove_networks(ctx: Context, names: list[str]) -> list[str]:
    """Best effort, newest first; the errors."""
    from ..networks import remove_network

    errors = []
    for name in reversed(names):
        try:
            remove_network(ctx, name)
        except TeardownIncomplete as exc:
            ctx.say(f"cnet: warning: {exc}")
        except CnetError as exc:
            errors.append(f"network {name}: {exc}")
    return errors


@dataclass
class DownResult:
    stack: str
    removed: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def down(ctx: Context, stack: str) -> tuple[Plan, DownResult]:
    """The stack's containers (one batch), then the networks it declared (labelled with it)."""
    ctx.require_root()
    validate.name(stack, "stack name")
    with ctx.stack_lock():
        return _down(ctx, stack)


def _down(ctx: Context, stack: str) -> tuple[Plan, DownResult]:
    with ctx.store.read() as conn:
        cs = stack_store.containers(conn, stack)
        nets = [n.name for n in stack_store.networks(conn, stack)]
    result = DownResult(stack)
    shown: list[Step] = []
    if cs:
        from .down import remove_containers

        shown += remove_containers(ctx, stack, cs).plan.steps
        result.removed = [c.name for c in cs]
    if ctx.dry_run:
        from ..networks import remove_network

        for name in reversed(nets):
            shown += remove_network(ctx, name).plan.steps
    else:
        result.errors = _remove_networks(ctx, nets)
    result.networks = nets
    return Plan(shown, direction=Direction.DESTROY), result
