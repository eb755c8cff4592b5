"""The executable `cnet cni install` puts in the runtime's plugin directory. Pure.

Runtimes exec plugins with little more than the CNI_* variables (no PYTHONPATH, maybe no PATH),
so it names its interpreter and the directory holding the cnet package by absolute path. A Python
shebang, not a shell wrapper: the plugin runs on every runtime call, and a shell start-up would
be paid each time.
"""

from __future__ import annotations

from ..errors import ValidationError

# Linux reads at most this many bytes of a "#!" line (BINPRM_BUF_SIZE - 1).
SHEBANG_MAX = 255
PLUGIN_NAME = "cnet"


def shim_text(python: str, package_root: str) -> str:
    if not python.startswith("/") or any(c.isspace() for c in python):
        # The kernel splits a shebang at whitespace: such a path cannot be an interpreter line.
        raise ValidationError(f"the interpreter path {python!r} must be absolute and contain no whitespace")
    shebang = f"#!{python} -E"
    if len(shebang.encode()) > SHEBANG_MAX:
        raise ValidationError(f"the interpreter path {python!r} is too long for a #! line")
    return (
        f"{shebang}\n"
        "# cnet's CNI plugin (CNI type \"cnet\"), written by `cnet cni install`.\n"
        "# -E and the absolute paths: a runtime's environment decides nothing here.\n"
        "import sys\n"
        f"sys.path.insert(0, {package_root!r})\n"
        "from cnet.cli.cni_plugin import main\n"
        "main()\n"
    )
