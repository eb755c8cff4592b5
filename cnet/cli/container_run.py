"""What `cnet run` does once its command line is parsed, without typer: typer's `run` command
(cli/containers.py) and `run`'s own parser (cli/entry.py, cli/plain_args.py) both call `run` here
with the values they parsed, so the two paths share one body."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..services.context import Context


def run(
    mutating_context: Callable[[], Context],
    command: list[str] | None,
    name: str | None,
    net: list[str] | None,
    network_alias: list[str] | None,
    label: list[str] | None,
    publish: list[str] | None,
    ip: str | None,
    ip6: str | None,
    hostname: str | None,
    env: list[str] | None,
    detach: bool,
    remove: bool,
    stop_timeout: float,
    restart: str,
    init: bool,
    interactive: bool,
    tty: bool,
    log_max_size: str | None,
) -> int | None:
    """Run the container: print its id (detached) or its plan (dry run) and return None, or, in
    the foreground, wait for it and return its exit status (cnet's exit code). `mutating_context`
    gives the Context, root-checked and recovered (cli/invocation.py), once the input is checked.
    The callers have refused a negative or endless `stop_timeout` and a terminal for a detached
    container."""
    from ..services import containers
    from .printing import print_plan

    req = containers.parse_run_request(
        name=name,
        networks=net or [],
        ports=publish or [],
        ip=ip,
        ip6=ip6,
        hostname=hostname,
        env=env or [],
        command=command or [],
        labels=label or [],
        aliases=network_alias or [],
        restart=restart,
        init=init,
        interactive=interactive,
        tty=tty,
        remove=remove,
        log_max_size=log_max_size,
    )
    ctx = mutating_context()
    out = containers.run_container(ctx, req, detached=detach, remove=remove)
    if ctx.dry_run:
        print_plan(out.plan, f"cnet run {out.result.container.name}")
        return None
    wired = out.result
    caught = None
    if not detach:
        from .foreground import Caught

        caught = Caught()
    master = slave = None
    if tty:
        from .. import tty as ttys

        master, slave = ttys.open_pty(0)
    try:
        proc, pid = containers.start_process(
            ctx,
            wired.container,
            foreground=not detach,
            network_ids=[ep.network_id for ep in wired.endpoints],
            held=wired.held,
            stdio=slave,
            stdin_open=interactive,
        )
    except OSError as exc:
        # The network is wired but no process runs: release it now rather than leave a
        # "running" container holding its veth, address and ports.
        from ..errors import CnetError

        containers.claim_and_release(ctx, wired.container.id, 127)
        raise CnetError(f"cannot start container {wired.container.name}: {exc}") from None
    finally:
        containers.release_ports(wired.held)
        if slave is not None:
            import os

            os.close(slave)
    if detach:
        print(wired.container.id)
        return None
    assert caught is not None
    from .foreground import attached

    return attached(ctx, containers, wired, pid, proc, stop_timeout, remove, caught, master)
