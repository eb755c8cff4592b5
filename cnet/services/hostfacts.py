"""What the plans need to know of the host before they are built: sysctl values (read from /proc,
no process), whether /proc/sys can be written, and cnet's rules as the kernel shows them."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CommandFailed
from ..kernel import ebtables as eb
from ..kernel import parse
from ..plans.network import HostFacts
from .context import Context

PROC_SYS = "/proc/sys/net/ipv4"


def sysctl(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def sysctl_writable() -> bool:
    """False when /proc/sys is mounted read-only (an unprivileged container, a hardened host).
    The mount flag, not access(): a --dry-run as a normal user must plan what root would do."""
    try:
        return not os.statvfs(PROC_SYS).f_flag & os.ST_RDONLY
    except OSError:
        return True


def read_ip_forward() -> str:
    return sysctl(f"{PROC_SYS}/ip_forward") or "0"


def _read(ctx: Context, command_argv: tuple[str, ...]) -> str:
    """A rule listing, or "" when it cannot be read (a --dry-run without root, a tool missing):
    the plan then assumes nothing is left over, as on a fresh host."""
    from ..commands import Command

    try:
        return ctx.runner.read(Command(command_argv))
    except CommandFailed:
        return ""


def observe_rules(ctx: Context) -> tuple[parse.Ruleset, parse.Ruleset]:
    """(iptables-save, ebtables-save) as rule sets."""
    return parse.iptables_save(_read(ctx, ("iptables-save",))), parse.ebtables_save(_read(ctx, eb.save().argv))


def host_facts(ctx: Context | None = None) -> HostFacts:
    """Sysctls and writability; with ctx, also the rule sets (two processes: only worth it for the
    first network, whose base chains adopt what an earlier life left)."""
    rules, bridge_rules = observe_rules(ctx) if ctx is not None else (parse.Ruleset(), parse.Ruleset())
    return HostFacts(
        ip_forward=read_ip_forward(),
        ip6_forward=sysctl("/proc/sys/net/ipv6/conf/all/forwarding") or "0",
        route_localnet_default=sysctl(f"{PROC_SYS}/conf/default/route_localnet") or "0",
        sysctl_writable=sysctl_writable(),
        rules=rules,
        bridge_rules=bridge_rules,
    )
