"""Putting cnet where runtimes look: the plugin executable and a network's configuration list."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..cni import conflist as conflist_mod
from ..cni import shim
from ..errors import CnetError
from ..records import Network
from .context import DEFAULT_STATE_DIR

DEFAULT_BIN_DIR = "/opt/cni/bin"


def package_root() -> str:
    """The directory holding the `cnet` package this process runs (site-packages or a checkout)."""
    return str(Path(__file__).resolve().parents[2])


def install_plugin(bin_dir: Path, python: str | None = None) -> Path:
    """Write `bin_dir/cnet` (mode 0755) for this interpreter and package, atomically: a runtime
    exec'ing it at that moment sees the old file or the new one, never half of one."""
    text = shim.shim_text(python or sys.executable, package_root(), search_path())
    target = bin_dir / shim.PLUGIN_NAME
    _write_atomically(target, text, 0o755)
    return target


def search_path() -> list[str]:
    """The directories this interpreter imports from beyond what `python -S` has by itself (the
    standard library): site-packages, user site, what .pth files added. Absolute paths only ('' is
    the working directory, which the plugin must not depend on)."""
    import sysconfig

    stdlib = sysconfig.get_path("stdlib")
    own = {stdlib, os.path.join(stdlib, "lib-dynload")}
    # sys.path[0] is this process's script directory or working directory (`python -m cnet`), not
    # a place the plugin should ever import from.
    entries = sys.path if sys.flags.safe_path else sys.path[1:]
    return [p for p in entries if p and os.path.isabs(p) and p not in own and not p.endswith(".zip")]


def conflist_for(network: Network, state_dir: Path) -> dict:
    resolved = str(state_dir.resolve())
    default = str(Path(DEFAULT_STATE_DIR).resolve())
    return conflist_mod.conflist(network.name, None if resolved == default else resolved)


def write_conflist(path: Path, doc: dict) -> None:
    import json

    _write_atomically(path, json.dumps(doc, indent=2) + "\n", 0o644)


def _write_atomically(target: Path, text: str, mode: int) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)
        try:
            os.write(fd, text.encode())
            os.fchmod(fd, mode)  # the umask must not narrow what runtimes need to read or exec
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        raise CnetError(f"cannot write {target}: {exc.strerror or exc}") from None
